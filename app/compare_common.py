"""What the Embeddings and Compare pages share: the class palette, page state mirrored in
the URL, and thumbnails and image grids."""

from __future__ import annotations

import math

import streamlit as st
import torch

from app.text import md_escape
from core.images import grid_image, png_bytes

# a qualitative palette with 10 well separated colours (plotly's D3)
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]  # fmt: skip

# ----------------------------------------------------------------------------- URL state


def query_int(name: str, default: int | None, lo: int | None = None) -> int | None:
    """An integer query parameter (``?name=123``), or ``default`` with a one-sentence
    warning when it is not a whole number (at least ``lo``)."""
    raw = st.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        if not (raw.isascii() and raw.lstrip("-").isdigit() and len(raw) < 19):
            raise ValueError
        v = int(raw)
        if lo is not None and v < lo:
            raise ValueError
        return v
    except ValueError:
        hint = f" of at least {lo}" if lo is not None else ""
        st.warning(f"Ignored ?{name}={md_escape(raw[:40])}: it must be a whole number{hint}.")
        return default


def set_query(**params) -> None:
    """Mirror page state into the URL (None removes a parameter)."""
    for k, v in params.items():
        if v is None:
            if k in st.query_params:
                del st.query_params[k]
        elif st.query_params.get(k) != str(v):
            st.query_params[k] = str(v)


# ----------------------------------------------------------------------------- thumbnails
def thumbs(images: torch.Tensor, scale: int):
    """Each image as its own PIL image, nearest-neighbour upscaled."""
    return [grid_image(im[None], nrow=1, scale=scale, padding=0) for im in images]


def thumb_scale(image_shape) -> int:
    """Upscale factor that makes a thumbnail about 64 pixels wide."""
    return max(1, math.ceil(64 / image_shape[-1]))


def grid_png(images: torch.Tensor, nrow: int, scale: int) -> bytes:
    """A grid of images (1-pixel white gaps before upscaling) as PNG bytes."""
    return png_bytes(grid_image(images, nrow=nrow, scale=scale, padding=1))
