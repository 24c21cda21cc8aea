"""What the latent explorer and the conditional-sampling pages share: link values read as
untrusted input (strict integers, finite floats, bounded texts), class names from a
checkpoint, forgetting a page's choices when the run changes, the URL mirror, and image
grids drawn as one picture.
"""

from __future__ import annotations

import math
import re

import streamlit as st
import torch

from core import explore as ex
from core.runs import Run

MAX_PIN = 1e3  # a pinned coordinate from a link or the browser beyond this is ignored
MAX_PARAM = 200  # characters of a query parameter that are read at all


# ----------------------------------------------------------------------------- hostile input
def query_text(key: str) -> str | None:
    """A query parameter as text (None when absent, not text, or absurdly long): every
    link is untrusted input."""
    try:
        v = st.query_params.get(key)
    except Exception:  # noqa: BLE001 - a malformed query string is no reason to crash
        return None
    if not isinstance(v, str) or len(v) > MAX_PARAM:
        return None
    return v


def strict_int(text, lo: int, hi: int) -> int | None:
    """ASCII digits only (no sign, spaces, underscores, superscripts or other scripts'
    digits), in [lo, hi]; None otherwise."""
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{1,12}", text):
        return None
    v = int(text)
    return v if lo <= v <= hi else None


def finite_float(v, limit: float = math.inf) -> float | None:
    """``v`` as a finite float of magnitude at most ``limit``, else None."""
    if isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) and abs(f) <= limit else None


def class_names(ckpt: dict, fallback: list[str], n: int) -> list[str]:
    """The checkpoint's class names when they name at least ``n`` classes (texts), else
    the dataset's; padded with indices so any label in range has a name."""
    dataset = ckpt.get("dataset") if isinstance(ckpt, dict) else None
    stored = dataset.get("class_names") if isinstance(dataset, dict) else None
    names = list(fallback or [])
    if (
        isinstance(stored, list | tuple)
        and all(isinstance(s, str) for s in stored)
        and len(stored) >= max(n, len(names))
    ):
        names = list(stored)
    names = [str(s) for s in names]
    return names + [str(k) for k in range(len(names), n)]


def reset_on_run_change(run: Run, prefix: str, url_keys: tuple[str, ...] = ()) -> None:
    """Forget a page's choices when the sidebar switches to another run, and the link's
    values that belonged to the previous run (a first visit keeps them: a shared link)."""
    mark = f"_{prefix}run"
    previous = st.session_state.get(mark)
    if previous != run.id:
        for k in [k for k in st.session_state if str(k).startswith(prefix)]:
            del st.session_state[k]
        if previous is not None:
            for k in url_keys:
                if k in st.query_params:
                    del st.query_params[k]
        st.session_state[mark] = run.id


def write_url(values: dict) -> None:
    """Mirror the explorer's view into the query string (only what changed)."""
    for k, v in values.items():
        if v is None:
            if k in st.query_params:
                del st.query_params[k]
        elif st.query_params.get(k) != v:
            st.query_params[k] = v


# ----------------------------------------------------------------------------- images
def show_images(
    images, caption=None, width: int | str = "content", nrow=None, scale=None, pad: int = 2
) -> bytes:
    """Draw images (N, C, H, W) as one grid picture; returns its PNG bytes (for download)."""
    images = torch.as_tensor(images)
    nrow = nrow or len(images)
    h = images.shape[-1]
    scale = scale or max(1, 112 // h if len(images) <= 2 else 56 // h)
    arr = ex.sprite(images, nrow, pad=pad)
    png = ex.png_bytes(arr, scale)
    st.image(png, caption=caption, width=width)
    return png


def big_png(image: torch.Tensor, side: int = 256) -> bytes:
    """One image (C, H, W) upscaled (nearest) to about ``side`` pixels."""
    h = image.shape[-1]
    return ex.png_bytes(ex.sprite(image[None], 1), max(1, side // h))
