"""The one home of the URL's query parameters (``?run=``, ``?axes=``, ``?n=``, ...): every
page reads and writes them here, and nowhere else touches ``st.query_params``.

Reading: every link is untrusted input. ``text`` is a parameter's value (None when absent,
not text, or longer than ``MAX_TEXT``); ``read`` parses it with one of the strict parsers
of ``core.latent_geometry`` (``parse_int``, ``parse_float``, ``parse_pair``, ``parse_axes``,
re-exported here) and returns the value, or the default when it is absent or refused. A
refused value is either ignored silently (the explorer's view) or explained in one sentence
shown as text (``must=``: "Ignored ?n=lots: it must be a whole number of at least 1.").

Writing: ``write`` mirrors page state into the URL, setting or deleting a parameter only
when it changes (None deletes); ``forget`` deletes; ``link`` draws a page link that carries
parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import streamlit as st

from app.text import md_escape
from core.latent_geometry import (  # noqa: F401 - the parsers, re-exported for the pages
    MAX_TEXT,
    parse_axes,
    parse_float,
    parse_int,
    parse_pair,
)

SHOWN = 40  # characters of a refused value shown in its warning


# ----------------------------------------------------------------------------- reading
def raw(name: str) -> str | None:
    """The parameter's value as the link has it (None when absent or not text); never
    raises on a malformed query string."""
    try:
        v = st.query_params.get(name)
    except Exception:  # noqa: BLE001 - a malformed query string is no reason to crash
        return None
    return v if isinstance(v, str) else None


def text(name: str) -> str | None:
    """The parameter's value (None when absent, not text, or longer than ``MAX_TEXT``)."""
    v = raw(name)
    return v if v is not None and len(v) <= MAX_TEXT else None


def read(name: str, parse: Callable[[str], object], default=None, *, must: str | None = None):
    """``parse(value)`` of the parameter, or ``default`` when it is absent, empty or refused
    (``parse`` returned None). With ``must`` (what a valid value is, e.g. "a whole
    number"), a refused value is explained in one warning, shown as text."""
    v = raw(name)
    if v is None or v == "":
        return default
    parsed = parse(v) if len(v) <= MAX_TEXT else None
    if parsed is not None:
        return parsed
    if must:
        st.warning(f"Ignored ?{name}={md_escape(v[:SHOWN])}: it must be {must}.")
    return default


def read_int(
    name: str,
    default: int | None = None,
    lo: int | None = None,
    hi: int | None = None,
    *,
    warn: bool = True,
) -> int | None:
    """A whole-number parameter in [lo, hi] (``parse_int``), else ``default``; a refused
    value is explained in one sentence unless ``warn`` is False."""
    if lo is not None and hi is not None:
        hint = f" from {lo} to {hi}"
    elif lo is not None:
        hint = f" of at least {lo}"
    elif hi is not None:
        hint = f" of at most {hi}"
    else:
        hint = ""
    must = f"a whole number{hint}" if warn else None
    return read(name, lambda v: parse_int(v, lo, hi), default, must=must)


# ----------------------------------------------------------------------------- writing
def write(values: Mapping[str, object]) -> None:
    """Mirror page state into the URL: each value as text, None deleting the parameter;
    only what changed is written (a write reruns nothing, but keeps history clean)."""
    qp = st.query_params
    for k, v in values.items():
        if v is None:
            if k in qp:
                del qp[k]
        elif qp.get(k) != str(v):
            qp[k] = str(v)


def forget(*names: str) -> None:
    """Delete these parameters from the URL (those that are there)."""
    write(dict.fromkeys(names))


def link(page: str, label: str, params: Mapping[str, str], **kwargs) -> None:
    """A link to another page that carries query parameters (``st.page_link``)."""
    st.page_link(page, label=label, query_params=dict(params), **kwargs)
