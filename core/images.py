"""Pictures in and out: the one home of image encoding in the lab.

In: ``dataset_style`` and ``prepare_image`` turn any drawn or uploaded picture into a
model input shaped like the dataset's. Out: ``to_uint8``, ``sprite``, ``strip`` and
``grid_image`` lay image tensors out as one picture; ``png_bytes`` (and ``jpeg_bytes``,
``gif_bytes``, ``data_url``) encode it. Every PNG the lab writes or shows is made by
``png_bytes``.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import torch
from PIL import Image

__all__ = [
    "dataset_style",
    "prepare_image",
    "to_uint8",
    "sprite",
    "pil_image",
    "grid_image",
    "png_bytes",
    "jpeg_bytes",
    "data_url",
    "strip",
    "gif_bytes",
    "label_rows",
]


def dataset_style(images: torch.Tensor, threshold: float = 0.3) -> dict:
    """How a dataset's pictures look, for preparing drawn ones like them.

    Returns:
        {"dark_background": border pixels are dark on average (MNIST: white on black),
        "ink_extent": median share of the side the object's bounding box spans}.
    """
    x = images[:2000].float().mean(1)  # (N, H, W) luminance
    border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], 1)
    dark = bool(border.mean() < 0.5)
    ink = (x > threshold) if dark else (x < 1 - threshold)
    extents = []
    for m in ink[:500]:
        rows, cols = m.any(1).nonzero(), m.any(0).nonzero()
        if len(rows) and len(cols):
            h = int(rows.max() - rows.min() + 1) / m.shape[0]
            w = int(cols.max() - cols.min() + 1) / m.shape[1]
            extents.append(max(h, w))
    extent = float(np.median(extents)) if extents else 1.0
    return {"dark_background": dark, "ink_extent": round(extent, 3)}


def prepare_image(
    img,
    image_shape,
    dark_background: bool = True,
    ink_extent: float | None = None,
    fit: bool = True,
) -> torch.Tensor:
    """Turn any picture into a model input shaped like the dataset's, (C, H, W) in [0, 1].

    Steps: flatten transparency onto white; grayscale or RGB as the model wants; invert
    when its background (the median of its border) is light and the dataset's is dark, or
    the other way round; for grayscale data with ``fit``: crop to the ink and scale it so
    its longer side spans ``ink_extent`` of the frame, centred like the dataset; else a
    centre square crop; then resize with antialiasing.

    Args:
        img: a PIL image, or an array (H, W) / (H, W, 3|4) of uint8 or floats in [0, 1].
        image_shape: (C, H, W) of the model's input.
        dark_background: the dataset has a dark background (``dataset_style``).
        ink_extent: share of the side the object spans (``dataset_style``); None = 1.
    """
    c, h, w = (int(v) for v in image_shape)
    if c not in (1, 3):
        raise ValueError(f"Only 1- or 3-channel images can be prepared, the model has {c}.")
    if not isinstance(img, Image.Image):
        arr = np.asarray(img)
        if arr.dtype != np.uint8:
            arr = (np.clip(arr.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
        img = Image.fromarray(arr)
    if img.width < 1 or img.height < 1:
        raise ValueError("The picture is empty.")
    if img.mode in ("RGBA", "LA", "P", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    img = img.convert("L" if c == 1 else "RGB")
    a = np.asarray(img, dtype=np.float32) / 255.0  # (H, W) or (H, W, 3)
    lum = a if a.ndim == 2 else a.mean(2)
    border = np.concatenate([lum[0], lum[-1], lum[:, 0], lum[:, -1]])
    if (np.median(border) < 0.5) != dark_background:
        a, lum = 1.0 - a, 1.0 - lum
    bg = 0.0 if dark_background else 1.0
    if c == 1 and fit:
        ink = np.abs(lum - bg) > 0.15
        if ink.any():
            rows, cols = np.nonzero(ink.any(1))[0], np.nonzero(ink.any(0))[0]
            a = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        side = max(a.shape[0], a.shape[1])
        extent = min(max(ink_extent or 1.0, 0.1), 1.0)
        frame = max(side, int(math.ceil(side / extent)))
        canvas = np.full((frame, frame), bg, dtype=np.float32)
        top, left = (frame - a.shape[0]) // 2, (frame - a.shape[1]) // 2
        canvas[top : top + a.shape[0], left : left + a.shape[1]] = a
        a = canvas
    else:
        s = min(a.shape[0], a.shape[1])
        top, left = (a.shape[0] - s) // 2, (a.shape[1] - s) // 2
        a = a[top : top + s, left : left + s]
    pil = Image.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8))
    pil = pil.resize((w, h), Image.BOX if pil.width >= w else Image.BILINEAR)
    out = np.asarray(pil, dtype=np.float32) / 255.0
    out = out[None] if out.ndim == 2 else out.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(out))


# ----------------------------------------------------------------------------- pictures
def to_uint8(images) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> (N, H, W, C) uint8."""
    x = torch.as_tensor(images).detach().float().cpu().clamp(0, 1)
    return (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def sprite(images, cols: int, pad: int = 0, pad_value: int = 255) -> np.ndarray:
    """Tile N images (N, C, H, W) into one (rows*(H+pad)-pad, cols*(W+pad)-pad, C) uint8
    picture, row-major (image k at row k // cols, column k % cols)."""
    a = to_uint8(images)
    n, h, w, c = a.shape
    cols = max(1, min(cols, n)) if n else 1
    rows = max(1, math.ceil(n / cols))
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), pad_value, np.uint8)
    for k in range(n):
        r, q = divmod(k, cols)
        out[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = a[k]
    return out


def pil_image(picture, scale: int = 1) -> Image.Image:
    """Any picture as a PIL image, upscaled by ``scale`` (nearest neighbour).

    Args:
        picture: a PIL image; an array (H, W) or (H, W, C) with C = 1, 3 or 4, of uint8
            or of floats in [0, 1]; or a tensor (C, H, W) or (1, C, H, W) of floats in
            [0, 1].
    """
    if isinstance(picture, Image.Image):
        img = picture
    else:
        if isinstance(picture, torch.Tensor):
            t = picture.detach()
            t = t[None] if t.ndim == 2 else t
            t = t[0] if t.ndim == 4 and len(t) == 1 else t
            if t.ndim != 3:
                raise ValueError(f"Expected one image (C, H, W), got shape {tuple(picture.shape)}.")
            arr = to_uint8(t[None])[0]
        else:
            arr = np.asarray(picture)
            if arr.dtype != np.uint8:
                arr = (np.clip(arr.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        img = Image.fromarray(arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def grid_image(
    images: torch.Tensor, nrow: int = 8, scale: int = 1, padding: int = 2, pad_value: float = 1.0
) -> Image.Image:
    """(B, C, H, W) in [0, 1] -> one PIL grid image (torchvision's ``make_grid``: ``nrow``
    images a row, ``padding`` pixels of ``pad_value`` around each), upscaled by ``scale``."""
    from torchvision.utils import make_grid  # lazy: keeps `import core.images` light

    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=padding,
                     pad_value=pad_value)  # fmt: skip
    arr = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return pil_image(arr, scale)


def png_bytes(picture, scale: int = 1) -> bytes:
    """PNG file of a picture (anything ``pil_image`` takes), upscaled by ``scale``."""
    buf = io.BytesIO()
    pil_image(picture, scale).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def jpeg_bytes(picture, quality: int = 88) -> bytes:
    """JPEG file of a picture (anything ``pil_image`` takes)."""
    buf = io.BytesIO()
    pil_image(picture).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def strip(images, scale: int = 1, pad: int = 2) -> np.ndarray:
    """One row of images with white gaps, (H, N*(W+pad)-pad, C) uint8, upscaled."""
    arr = sprite(images, cols=len(images), pad=pad)
    if scale > 1:
        arr = np.repeat(np.repeat(arr, scale, 0), scale, 1)
    return arr


def gif_bytes(images, scale: int = 4, duration_ms: int = 80, bounce: bool = True) -> bytes:
    """An endlessly looping animated GIF of a sequence of images (Pillow), played forward
    and, with ``bounce``, back again."""
    a = to_uint8(images)
    if len(a) == 0:
        raise ValueError("An animation needs at least one frame.")
    order = list(range(len(a)))
    if bounce and len(a) > 2:
        order += order[-2:0:-1]
    frames = [pil_image(a[k], scale).convert("RGB" if a.shape[3] == 3 else "L") for k in order]
    buf = io.BytesIO()
    frames[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=duration_ms,
        loop=0,
        disposal=2,
    )
    return buf.getvalue()


def label_rows(arr: np.ndarray, names: list[str], font_px: int = 13) -> np.ndarray:
    """Add a white margin with one name per row on the left of a picture of equal-height
    rows, (H, W, C) uint8 -> (H, W + margin, 3) uint8."""
    from PIL import ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=font_px)
    except (TypeError, OSError):  # Pillow without FreeType
        font = ImageFont.load_default()
    img = pil_image(arr).convert("RGB")
    probe = ImageDraw.Draw(img)
    margin = 10 + max((int(probe.textlength(n, font=font)) for n in names), default=0)
    out = Image.new("RGB", (img.width + margin, img.height), (255, 255, 255))
    out.paste(img, (margin, 0))
    draw = ImageDraw.Draw(out)
    row = img.height / max(len(names), 1)
    for k, name in enumerate(names):
        draw.text((margin - 6, (k + 0.5) * row), name, fill=(40, 40, 40), font=font, anchor="rm")
    return np.asarray(out)
