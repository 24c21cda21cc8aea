"""What the Embeddings and Compare pages share: the class palette, thumbnails and image
grids. Their URL state is ``app.url_state``'s."""

from __future__ import annotations

import math

import torch

from core.images import grid_image, png_bytes

# a qualitative palette with 10 well separated colours (plotly's D3)
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]  # fmt: skip


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
