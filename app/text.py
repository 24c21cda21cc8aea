"""User text (run names, class names, URL values) shown inside Markdown, as text.

Streamlit renders Markdown in captions, labels, ``st.info`` and friends: a run named
``![x](http://example.invalid/x.png)`` would make every visitor's browser fetch that URL,
and ``:red[...]`` or ``$...$`` would restyle the page. ``md_escape`` backslash-escapes every
character Markdown (CommonMark, GFM, Streamlit's directives and LaTeX) gives a meaning, so
the text shows literally; ``html_escape`` does the same for Plotly's pseudo-HTML labels.
"""

from __future__ import annotations

import html
import re
import unicodedata

# every ASCII punctuation character CommonMark lets a backslash escape
_MD_SPECIAL = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def one_line(s: object, limit: int = 200) -> str:
    """``s`` as one line of plain text: control and line-separator characters made spaces,
    at most ``limit`` characters (an ellipsis marks a cut)."""
    text = "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in str(s)
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def md_escape(s: str) -> str:
    """``s`` escaped for Markdown: shown literally in ``st.markdown``, ``st.caption``,
    ``st.info``, widget labels and image captions (one line; no link, image, HTML,
    emphasis, colour directive or formula survives)."""
    return _MD_SPECIAL.sub(r"\\\1", one_line(s, 10_000))


def html_escape(s: str) -> str:
    """``s`` escaped for Plotly's labels and hover text (which read a little HTML)."""
    return html.escape(one_line(s, 10_000), quote=True)
