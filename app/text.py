"""User text (run names, class names, URL values) shown inside Markdown, as text.

Streamlit renders Markdown in captions, labels, ``st.info`` and friends: a run named
``![x](http://example.invalid/x.png)`` would make every visitor's browser fetch that URL,
and ``:red[...]`` or ``$...$`` would restyle the page. ``md_escape`` backslash-escapes every
character Markdown (CommonMark, GFM, Streamlit's directives and LaTeX) gives a meaning, so
the text shows literally; ``html_escape`` does the same for Plotly's pseudo-HTML labels.
``os_error_sentence`` tells a file-system error (full disk, no permission, a file in the
way) as one sentence with what to do, not as Python's "[Errno 17] File exists: /srv/...".
"""

from __future__ import annotations

import errno
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


def _named(filename) -> str:
    """' named "x"' for a path's last part (no folders: the server's layout is not the
    visitor's business), or "" without one."""
    if not filename:
        return ""
    return f' named "{one_line(str(filename).rstrip("/").rsplit("/", 1)[-1], 80)}"'


_FULL = (errno.ENOSPC, errno.EDQUOT)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def os_error_sentence(e: OSError, failed: str) -> str:
    """One sentence for a file-system error met while doing something for the user, e.g.
    ``failed="The run could not be started"``: what went wrong and what to do, without
    Python's "[Errno N]" prefix or the server's paths."""
    if e.errno in _FULL:
        return f"{failed}: the disk is full. Free some space, then try again."
    if e.errno in _DENIED:
        return (
            f"{failed}: this server may not write its runs folder. Give it write access, or "
            "start it with LATENTLAB_RUNS_DIR set to a folder it can write."
        )
    if e.errno in (errno.EEXIST, errno.ENOTDIR):  # a file where a folder should be
        name = _named(e.filename)
        return f"{failed}: a file{name} is in the way of a folder. Move it, then try again."
    if not e.strerror:
        return f"{failed} ({type(e).__name__}). Try again."
    reason = one_line(e.strerror, 120).rstrip(".")
    return f"{failed}: {reason[:1].lower()}{reason[1:]}. Try again."
