"""Geometry and pictures behind the latent explorer: planes through latent space, grid
decoding in one batch, interpolation, categorical (Gumbel-softmax) latents, placing a
drawn or uploaded picture, diagnostics for posterior collapse, and image encoders (PNG
sprites, strips, animated GIFs).

A *plane* is a 2-D slice through latent space. Latent space gets a coordinate system, a
*basis*: either the latent dimensions themselves (``dims_basis``) or the principal
directions of an encoded set (``pca_basis``, Pearson 1901). A point's basis coordinates are
``s = (z - center) @ vectors.T``; the plane lets two of them (``i``, ``j``) follow the mouse
and fixes the others (``fixed``), so ``z = center + s @ vectors``.

Nothing here imports Streamlit: a notebook can do what the page does::

    enc = encode_set(model, test.images, test.labels)
    plane = Plane(pca_basis(enc["z"]), 0, 1)
    images = decode_grid(model, plane, plane_extent(plane, enc["z"]), 16)
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from core.metrics import ACTIVE_THRESHOLD, active_units

__all__ = [
    "Basis",
    "Plane",
    "dims_basis",
    "pca_basis",
    "plane_extent",
    "grid_uv",
    "decode_points",
    "torch_threads",
    "decode_grid",
    "encode_set",
    "place_image",
    "diagnostics",
    "lerp",
    "slerp",
    "interpolate",
    "onehot_choice",
    "logits_with_choice",
    "relaxed_samples",
    "table_items",
    "dataset_style",
    "prepare_image",
    "to_uint8",
    "sprite",
    "png_bytes",
    "data_url",
    "strip",
    "gif_bytes",
    "label_rows",
    "parse_pair",
    "format_pair",
    "parse_axes",
    "format_axes",
    "conditional_samples",
    "class_z_grid",
    "class_swap",
]


# ----------------------------------------------------------------------------- bases
@dataclass(frozen=True, eq=False)
class Basis:
    """A coordinate system of latent space.

    Attributes:
        kind: "dims" (the latent dimensions) or "pca" (principal directions).
        center: (L,) origin of the coordinates.
        vectors: (L, L) orthonormal rows; row k is the direction of coordinate k.
        names: one short name per coordinate ("z3", "PC1").
        variance: (L,) variance of the encoded set along each coordinate, when known.
    """

    kind: str
    center: np.ndarray
    vectors: np.ndarray
    names: tuple[str, ...]
    variance: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return len(self.center)

    def scores(self, z) -> np.ndarray:
        """Coordinates of latent vectors z (N, L) in this basis, (N, L)."""
        z = np.asarray(z, dtype=np.float64)
        return (z - self.center) @ self.vectors.T

    def latent(self, scores) -> np.ndarray:
        """Latent vectors (N, L) of basis coordinates (N, L)."""
        return self.center + np.asarray(scores, dtype=np.float64) @ self.vectors


def dims_basis(latent_dim: int, z: np.ndarray | None = None) -> Basis:
    """The latent dimensions themselves: scores are the raw coordinates z_k."""
    var = None if z is None else np.asarray(z, dtype=np.float64).var(0)
    return Basis(
        "dims",
        np.zeros(latent_dim),
        np.eye(latent_dim),
        tuple(f"z{k}" for k in range(latent_dim)),
        var,
    )


def pca_basis(z: np.ndarray) -> Basis:
    """Principal directions of an encoded set z (N, L), by variance, largest first.

    Every direction's largest entry is made positive, so the same data gives the same
    axes. With fewer points than dimensions the trailing directions complete an
    orthonormal basis (their variance is 0).
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2:
        raise ValueError("Principal directions need at least two encoded points.")
    mean = z.mean(0)
    zc = z - mean
    var, vecs = np.linalg.eigh(zc.T @ zc / (len(z) - 1))  # ascending; (L,), (L, L) columns
    order = np.argsort(-var, kind="stable")
    var, vt = np.clip(var[order], 0, None), vecs[:, order].T  # rows = directions
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])
    vt = vt * np.where(signs == 0, 1.0, signs)[:, None]
    return Basis("pca", mean, vt, tuple(f"PC{k + 1}" for k in range(len(vt))), var)


@dataclass(eq=False)
class Plane:
    """The 2-D slice ``z(u, v) = center + s @ vectors`` with ``s[i] = u``, ``s[j] = v`` and
    the other coordinates ``s[k] = fixed[k]``.

    Attributes:
        basis: the coordinate system.
        i, j: the coordinates on the horizontal and vertical axes.
        fixed: (L,) the other coordinates; None means the basis center (all zeros), i.e.
            for a PCA basis the mean of the encoded set.
    """

    basis: Basis
    i: int
    j: int
    fixed: np.ndarray | None = field(default=None)

    def __post_init__(self):
        n = self.basis.dim
        if n < 1:
            raise ValueError("A plane needs a latent space with at least one dimension.")
        if not (0 <= self.i < n and 0 <= self.j < n):
            raise ValueError(f"Axes must be coordinates 0..{n - 1}, got {self.i} and {self.j}.")
        if self.i == self.j and n > 1:
            raise ValueError("Pick two different axes for the plane.")
        self.fixed = (
            np.zeros(n) if self.fixed is None else np.asarray(self.fixed, np.float64).copy()
        )
        if self.fixed.shape != (n,):
            raise ValueError(f"fixed must hold {n} coordinates, got {self.fixed.shape}.")

    @property
    def names(self) -> tuple[str, str]:
        b = self.basis.names
        return b[self.i], (b[self.j] if self.j != self.i else "(none)")

    def to_z(self, uv) -> np.ndarray:
        """Plane coordinates (N, 2) -> latent vectors (N, L), float32."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        s = np.repeat(self.fixed[None, :], len(uv), 0)
        s[:, self.i] = uv[:, 0]
        if self.j != self.i:
            s[:, self.j] = uv[:, 1]
        return self.basis.latent(s).astype(np.float32)

    def to_uv(self, z) -> np.ndarray:
        """Latent vectors (N, L) -> their projection on the plane's axes, (N, 2)."""
        s = self.basis.scores(np.asarray(z).reshape(-1, self.basis.dim))
        v = s[:, self.j] if self.j != self.i else np.zeros(len(s))
        return np.stack([s[:, self.i], v], 1).astype(np.float32)


def plane_extent(plane: Plane, z: np.ndarray, n_std: float = 3.0) -> tuple[tuple, tuple]:
    """((u_min, u_max), (v_min, v_max)): the mean of the encoded set's plane coordinates
    plus or minus ``n_std`` standard deviations along each axis."""
    uv = plane.to_uv(z).astype(np.float64)
    mean, std = uv.mean(0), np.maximum(uv.std(0), 1e-3)
    lo, hi = mean - n_std * std, mean + n_std * std
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def grid_uv(extent, n: int) -> np.ndarray:
    """Plane coordinates of an n x n grid over ``extent``, row-major, (n*n, 2).

    Row 0 is the top of the picture (v = v_max), column 0 its left edge (u = u_min);
    both ends of each range are included."""
    if n < 1:
        raise ValueError("A grid needs at least one cell per side.")
    (u0, u1), (v0, v1) = extent
    us = np.linspace(u0, u1, n) if n > 1 else np.array([(u0 + u1) / 2])
    vs = np.linspace(v1, v0, n) if n > 1 else np.array([(v0 + v1) / 2])
    vv, uu = np.meshgrid(vs, us, indexing="ij")
    return np.stack([uu.ravel(), vv.ravel()], 1)


# ----------------------------------------------------------------------------- decoding
def _labels(model, y, n: int) -> torch.Tensor | None:
    if not model.conditional:
        return None
    if y is None:
        raise ValueError("This model is conditional: pick the label to decode with.")
    y = torch.as_tensor(y).long().reshape(-1)
    return (y.expand(n) if y.numel() == 1 else y).to(model.device)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run a block with ``n`` intra-op CPU threads (None: leave torch's setting alone).

    The explorer decodes small batches on demand; extra threads only add synchronisation,
    and on a shared CPU they wait for each other: on a 2-core machine under load, one
    16x16 grid of fcconv-vae decodings took 150 ms with 2 threads and 9 ms with 1
    (bench/interaction.py).
    """
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def decode_points(model, z, y=None, batch: int = 4096, threads: int | None = 1) -> torch.Tensor:
    """Decode latent vectors z (N, L) [with label(s) y] in batches -> (N, C, H, W) on CPU,
    with ``threads`` intra-op threads on a CPU model (see ``torch_threads``)."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1, model.latent_dim)
    model.eval()
    out = []
    with torch_threads(threads if model.device.type == "cpu" else None):
        yb_all = _labels(model, y, len(z))
        for k in range(0, len(z), batch):
            zb = z[k : k + batch].to(model.device)
            yb = yb_all[k : k + batch] if yb_all is not None else None
            out.append(model.decode(zb, yb).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, *model.image_shape)


def decode_grid(model, plane: Plane, extent, n: int, y=None) -> torch.Tensor:
    """Decode an n x n grid over ``extent`` on ``plane`` in one batch, (n*n, C, H, W),
    row-major as ``grid_uv``."""
    return decode_points(model, plane.to_z(grid_uv(extent, n)), y)


# ----------------------------------------------------------------------------- encoding
@torch.no_grad()
def encode_set(
    model,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    batch: int = 1000,
    threads: int | None = 1,
) -> dict:
    """The explorer's view of a set of images, from the model's own posterior
    (``model.encode``), so every number is the one its ``forward`` computes.

    Returns:
        {"z": (N, D) float32 points on the plane (``Posterior.point``: the posterior mean;
        for categorical latents the category probabilities, flattened), "kl_dims": (N, d)
        float32 KL to the model's own prior per latent dimension (per variable for
        categorical latents; under a learned class prior, to each image's label's
        Gaussian), absent when the model has no KL term, "logits": (N, V, K) for
        categorical latents}.

    A model without an encoder (``model.encodes`` False: the autodecoder) places each
    image by optimisation, which costs far more; its training items' codes are
    ``model.stored_codes()``.
    """
    with torch_threads(threads if model.device.type == "cpu" else None):
        return _encode_set(model, images, labels, batch)


def _encode_set(model, images, labels, batch: int) -> dict:
    model.eval()
    zs, kls, logits = [], [], []
    for k in range(0, len(images), batch):
        x = images[k : k + batch].to(model.device)
        y = labels[k : k + batch].to(model.device) if model.conditional else None
        q = model.encode(x, y)
        zs.append(q.point.float().cpu())
        kd = q.kl_per_dim()
        if kd is not None:
            kls.append(kd.float().cpu())
        if q.logits is not None:
            logits.append(q.logits.float().cpu())
    out = {"z": torch.cat(zs).numpy().astype(np.float32)}
    if kls:
        out["kl_dims"] = torch.cat(kls).numpy().astype(np.float32)
    if logits:
        out["logits"] = torch.cat(logits).numpy().astype(np.float32)
    return out


@torch.no_grad()
def place_image(
    model,
    x: torch.Tensor,
    y=None,
    steps: int | None = None,
    lr: float | None = None,
    threads: int | None = 1,
) -> dict:
    """Put one image (C, H, W) or (1, C, H, W) in latent space (``model.place``).

    Returns:
        {"z": (D,) its point on the plane (as ``encode_set``), "latent": (L,) the vector the
        decoder takes, "recon": (C, H, W) its reconstruction, "trace": the loss per
        optimisation step for a model that places images by optimisation (``steps`` steps
        at rate ``lr``, None: the model's defaults), else None}.
    """
    with torch_threads(threads if model.device.type == "cpu" else None):
        return _place_image(model, x, y, steps, lr)


def _place_image(model, x, y, steps, lr) -> dict:
    x = torch.as_tensor(x).float().reshape(1, *model.image_shape).to(model.device)
    yt = _labels(model, y, 1)
    model.eval()
    q = model.place(x, yt, steps=steps, lr=lr)
    recon = model.decode(q.code.float(), yt)[0].float().cpu()
    return {
        "z": q.point[0].float().cpu().numpy(),
        "latent": q.code[0].float().cpu().numpy(),
        "recon": recon,
        "trace": q.trace,
    }


def diagnostics(latent_kind: str | None, enc: dict, threshold: float = ACTIVE_THRESHOLD) -> dict:
    """Per-unit numbers that show posterior collapse, from an encoded set (``encode_set``,
    or ``{"z": model.stored_codes()}``).

    What is measured follows from ``enc`` itself: "logits" marks a categorical latent,
    "kl_dims" a model with a KL term. ``latent_kind`` is not used (kept so older callers
    keep working).

    Returns:
        {"values": per-unit list, "measure": what they are, "active": count,
        "active_mask": per-unit booleans, "units": total, "unit": "dimension" | "variable",
        "rule": how "active" is decided}.
        With a KL: the mean KL(q(z_u|x) || p(z_u)) per dimension, to the model's own
        prior (N(0, 1), or the label's Gaussian under a learned class prior), and active
        units by Burda et al. (2016): Var_x E_q[z_u] > threshold
        (``core.metrics.active_units``). Categorical: mean KL(q || uniform) per variable; a
        variable is active when the variance of its category probabilities across images,
        summed over categories, exceeds the threshold. Without a KL (autoencoder codes,
        latent tables): variance per dimension, active when above the threshold.
    """
    z = torch.as_tensor(enc["z"]).float()
    if "logits" in enc:
        logits = torch.as_tensor(enc["logits"]).float()
        probs = logits.softmax(-1)  # (N, V, K)
        var = probs.var(0).sum(-1)  # (V,)
        kl = torch.as_tensor(enc["kl_dims"]).float().mean(0)
        return {
            "values": [float(v) for v in kl],
            "measure": "KL to uniform (nats)",
            "active": int((var > threshold).sum()),
            "active_mask": [bool(v > threshold) for v in var],
            "units": len(var),
            "unit": "variable",
            "rule": f"variance of its category probabilities across images > {threshold}",
        }
    count, var = active_units(z, threshold)
    if "kl_dims" in enc:
        kl = np.asarray(enc["kl_dims"], dtype=np.float64).mean(0)
        values, measure = [float(v) for v in kl], "KL to the prior (nats)"
    else:
        values, measure = [float(v) for v in var], "variance across images"
    return {
        "values": values,
        "measure": measure,
        "active": count,
        "active_mask": [v > threshold for v in var],
        "units": len(var),
        "unit": "dimension",
        "rule": f"Var over images of the posterior mean > {threshold}",
    }


# ----------------------------------------------------------------------------- interpolation
def lerp(z0, z1, steps: int) -> np.ndarray:
    """``steps`` points on the straight line from z0 to z1 (both included), (steps, L)."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    return ((1 - t) * z0 + t * z1).astype(np.float32)


def slerp(z0, z1, steps: int) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985; White 2016 for latent spaces): the great
    arc between the directions of z0 and z1 with the norm interpolated linearly, so the
    path stays where a Gaussian prior has its mass instead of cutting through the
    low-norm middle. Parallel or zero vectors fall back to ``lerp``."""
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if n0 < 1e-8 or n1 < 1e-8:
        return lerp(z0, z1, steps)
    cos = float(np.clip(np.dot(z0 / n0, z1 / n1), -1.0, 1.0))
    omega = math.acos(cos)
    if omega < 1e-4 or math.pi - omega < 1e-4:
        return lerp(z0, z1, steps)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    a = np.sin((1 - t) * omega) / math.sin(omega)
    b = np.sin(t * omega) / math.sin(omega)
    direction = a * (z0 / n0) + b * (z1 / n1)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    norm = (1 - t) * n0 + t * n1
    out = direction * norm
    out[0], out[-1] = z0, z1
    return out.astype(np.float32)


def interpolate(model, z0, z1, steps: int = 10, method: str = "linear", y=None) -> dict:
    """Decode the path from z0 to z1: {"z": (steps, L), "images": (steps, C, H, W)}."""
    if steps < 2:
        raise ValueError("An interpolation needs at least 2 steps.")
    if method not in ("linear", "spherical"):
        raise ValueError(f"Unknown interpolation '{method}': use linear or spherical.")
    path = (slerp if method == "spherical" else lerp)(z0, z1, steps)
    return {"z": path, "images": decode_points(model, path, y)}


# ----------------------------------------------------------------------------- categorical
def onehot_choice(choice, categories: int) -> np.ndarray:
    """One category per variable -> the flattened one-hot z, (V * K,)."""
    choice = np.asarray(choice, dtype=np.int64)
    if choice.min() < 0 or choice.max() >= categories:
        raise ValueError(f"Categories must lie in 0..{categories - 1}.")
    return np.eye(categories, dtype=np.float32)[choice].reshape(-1)


def logits_with_choice(logits, choice) -> np.ndarray:
    """Logits (V, K) changed so each variable's chosen category is the most probable one:
    the chosen category's logit and the current maximum swap places (the rest of the
    distribution keeps its shape)."""
    lg = np.array(logits, dtype=np.float32, copy=True)
    for v, k in enumerate(np.asarray(choice, dtype=np.int64)):
        top = int(lg[v].argmax())
        lg[v, top], lg[v, k] = lg[v, k], lg[v, top]
    return lg


def relaxed_samples(logits, tau: float, n: int, seed: int = 0) -> np.ndarray:
    """n Gumbel-softmax samples at temperature tau (Jang et al. 2017):
    softmax((logits + g) / tau) with g ~ Gumbel(0, 1), flattened to (n, V * K). Low tau
    gives nearly one-hot vectors, high tau nearly uniform ones."""
    if tau <= 0:
        raise ValueError("The temperature must be positive.")
    lg = torch.as_tensor(np.asarray(logits, np.float32))
    g = torch.Generator().manual_seed(seed)
    u = torch.rand((n, *lg.shape), generator=g).clamp(1e-10, 1 - 1e-10)
    gumbel = -torch.log(-torch.log(u))
    return F.softmax((lg[None] + gumbel) / tau, -1).flatten(1).numpy()


# ----------------------------------------------------------------------------- data
def table_items(train, train_size: int = 0, seed: int = 0):
    """The training items behind an autodecoder's latent table, in table order: the
    training split, or the same ``subset(train_size, seed)`` the trainer drew."""
    return train.subset(train_size, seed=seed) if train_size else train


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


def _pil(arr: np.ndarray, scale: int = 1) -> Image.Image:
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def png_bytes(arr: np.ndarray, scale: int = 1) -> bytes:
    """PNG file of a (H, W, C) uint8 picture (C = 1 or 3), upscaled by ``scale``."""
    buf = io.BytesIO()
    _pil(arr, scale).save(buf, format="PNG", optimize=False, compress_level=6)
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
    frames = [_pil(a[k], scale).convert("RGB" if a.shape[3] == 3 else "L") for k in order]
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
    img = _pil(arr).convert("RGB")
    probe = ImageDraw.Draw(img)
    margin = 10 + max((int(probe.textlength(n, font=font)) for n in names), default=0)
    out = Image.new("RGB", (img.width + margin, img.height), (255, 255, 255))
    out.paste(img, (margin, 0))
    draw = ImageDraw.Draw(out)
    row = img.height / max(len(names), 1)
    for k, name in enumerate(names):
        draw.text((margin - 6, (k + 0.5) * row), name, fill=(40, 40, 40), font=font, anchor="rm")
    return np.asarray(out)


# ----------------------------------------------------------------------------- URL values
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_pair(text: str | None) -> tuple[float, float] | None:
    """ "0.5,-1.2" -> (0.5, -1.2); None for anything else."""
    if not text:
        return None
    m = re.fullmatch(rf"\s*({_NUM})\s*,\s*({_NUM})\s*", text)
    if not m:
        return None
    u, v = float(m.group(1)), float(m.group(2))
    return (u, v) if math.isfinite(u) and math.isfinite(v) else None


def format_pair(uv) -> str:
    return f"{float(uv[0]):.4g},{float(uv[1]):.4g}"


def parse_axes(text: str | None, latent_dim: int) -> tuple[str, int, int] | None:
    """ "z0,z3" -> ("dims", 0, 3); "pc1,pc2" -> ("pca", 0, 1); None when malformed or out
    of range."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(z|pc)(\d+)\s*,\s*(z|pc)(\d+)\s*", text.lower())
    if not m or m.group(1) != m.group(3):
        return None
    kind = "dims" if m.group(1) == "z" else "pca"
    off = 0 if kind == "dims" else 1
    i, j = int(m.group(2)) - off, int(m.group(4)) - off
    if not (0 <= i < latent_dim and 0 <= j < latent_dim) or (i == j and latent_dim > 1):
        return None
    return kind, i, j


def format_axes(kind: str, i: int, j: int) -> str:
    return f"z{i},z{j}" if kind == "dims" else f"pc{i + 1},pc{j + 1}"


# ----------------------------------------------------------------------------- conditional
@torch.no_grad()
def conditional_samples(model, label: int, n: int, seed: int = 0) -> torch.Tensor:
    """n prior samples decoded under one label, (n, C, H, W)."""
    _check_conditional(model, label)
    z = model.prior_z(n, torch.Generator().manual_seed(seed), torch.tensor(label))
    return decode_points(model, z.cpu().numpy(), label)


@torch.no_grad()
def class_z_grid(model, n_z: int, seed: int = 0) -> torch.Tensor:
    """Every label decoded with the same n_z prior draws: row c is label c, column j shares
    one draw across all rows (one z; under a learned prior per label, one place in each
    label's Gaussian), (num_classes * n_z, C, H, W), row-major."""
    _check_conditional(model, 0)
    z = model.prior_z(n_z, torch.Generator().manual_seed(seed), torch.tensor(0))
    k = model.num_classes
    zz = torch.cat([model.carry_z(z, 0, c) for c in range(k)]).cpu().numpy()  # row-major
    y = np.repeat(np.arange(k), n_z)
    return decode_points(model, zz, torch.as_tensor(y))


@torch.no_grad()
def class_swap(model, x: torch.Tensor, label: int) -> dict:
    """Encode one image with its own label, then decode its latent under every label.

    Returns:
        {"latent": (L,), "images": (num_classes, C, H, W), row c decoded with label c}.
    """
    _check_conditional(model, label)
    latent = place_image(model, x, label)["latent"]
    k = model.num_classes
    zs = torch.as_tensor(np.tile(latent, (k, 1)), dtype=torch.float32)
    zs = model.carry_z(zs, label, torch.arange(k)).cpu().numpy()  # a class prior moves it
    images = decode_points(model, zs, torch.arange(k))
    return {"latent": latent, "images": images}


def _check_conditional(model, label: int) -> None:
    if not model.conditional:
        raise ValueError("This model is not conditional: it was trained without labels.")
    if not 0 <= int(label) < model.num_classes:
        raise ValueError(f"Labels must lie in 0..{model.num_classes - 1}, got {label}.")
