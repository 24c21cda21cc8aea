"""What the latent explorer and the conditional-sampling pages share: class names from a
checkpoint, forgetting a page's choices (and their URL parameters) when the run changes,
and image grids drawn as one picture. The URL itself is ``app.url_state``'s.
"""

from __future__ import annotations

import streamlit as st
import torch

from app import url_state
from core import explore as ex
from core.runs import Run

MAX_PIN = 1e3  # a pinned coordinate from a link or the browser beyond this is ignored


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
            url_state.forget(*url_keys)
        st.session_state[mark] = run.id


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
    if isinstance(width, int):
        fit_image(png, width, caption)
    else:
        st.image(png, caption=caption, width=width)
    return png


def fit_image(png: bytes, width: int, caption: str | None = None) -> None:
    """A picture ``width`` pixels wide, or as wide as its column where that is narrower:
    ``st.image(width=N)`` keeps N pixels and spills over the next column in a narrow
    window (the pinned point over the drawing pad at 1024 px)."""
    with st.container(width=width):
        st.image(png, caption=caption, width="stretch")


def big_png(image: torch.Tensor, side: int = 256) -> bytes:
    """One image (C, H, W) upscaled (nearest) to about ``side`` pixels."""
    h = image.shape[-1]
    return ex.png_bytes(ex.sprite(image[None], 1), max(1, side // h))
