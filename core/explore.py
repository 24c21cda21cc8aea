"""Geometry and pictures behind the latent explorer: planes through latent space, grid
decoding in one batch, interpolation, categorical (Gumbel-softmax) latents, placing a
drawn or uploaded picture, diagnostics for posterior collapse, and image encoders (PNG
sprites, strips, animated GIFs).

A *plane* is a 2-D slice through latent space. Latent space gets a coordinate system, a
*basis*: either the latent dimensions themselves (``dims_basis``) or the principal
directions of an encoded set (``pca_basis``, Pearson 1901). A point's basis coordinates are
``s = (z - center) @ vectors.T``; the plane lets two of them (``i``, ``j``) follow the mouse
and fixes the others (``fixed``), so ``z = center + s @ vectors``.

The geometry lives in ``core.latent_geometry`` and the image encoders in ``core.images``;
this module re-exports both, so ``from core import explore as ex`` reaches everything.

Nothing here imports Streamlit: a notebook can do what the page does::

    enc = encode_set(model, test.images, test.labels)
    plane = Plane(pca_basis(enc["z"]), 0, 1)
    images = decode_grid(model, plane, plane_extent(plane, enc["z"]), 16)
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch.nn import functional as F

from core.images import (
    data_url,
    dataset_style,
    gif_bytes,
    label_rows,
    png_bytes,
    prepare_image,
    sprite,
    strip,
    to_uint8,
)
from core.latent_geometry import (
    Basis,
    Plane,
    dims_basis,
    format_axes,
    format_pair,
    grid_uv,
    lerp,
    parse_axes,
    parse_pair,
    pca_basis,
    plane_extent,
    slerp,
)
from core.metrics import ACTIVE_THRESHOLD, active_units
from core.models.base import check_temperature

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


# ----------------------------------------------------------------------------- conditional
@torch.no_grad()
def conditional_samples(
    model, label: int, n: int, seed: int = 0, temperature: float = 1.0, density=None
) -> torch.Tensor:
    """n samples decoded under one label, drawn at ``temperature``, (n, C, H, W): z from
    the prior, or from the label's own codes with a ``core.label_density`` ``density``."""
    _check_conditional(model, label)
    g = torch.Generator().manual_seed(seed)
    if density is None:
        z = model.prior_z(n, g, torch.tensor(label), temperature)
    else:
        z = density.sample(torch.full((n,), label), g, check_temperature(temperature, model))
    return decode_points(model, z.cpu().numpy(), label)


@torch.no_grad()
def class_z_grid(model, n_z: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
    """Every label decoded with the same n_z prior draws (at ``temperature``): row c is
    label c, column j shares one draw across all rows (one z; under a learned prior per
    label, one place in each label's Gaussian), (num_classes * n_z, C, H, W), row-major."""
    _check_conditional(model, 0)
    z = model.prior_z(n_z, torch.Generator().manual_seed(seed), torch.tensor(0), temperature)
    k = model.num_classes
    zz = torch.cat([model.carry_z(z, 0, c) for c in range(k)]).cpu().numpy()  # row-major
    y = np.repeat(np.arange(k), n_z)
    return decode_points(model, zz, torch.as_tensor(y))


@torch.no_grad()
def class_swap(model, x: torch.Tensor, label: int, move: bool = True, density=None) -> dict:
    """Encode one image with its own label, then decode its latent under every label
    (``move``: first moved by ``model.carry_z`` to the same place under each label's prior,
    which changes it only for a model whose prior depends on the label; with a
    ``core.label_density`` ``density``, to the same place among each label's own codes).

    Returns:
        {"latent": (L,), "images": (num_classes, C, H, W), row c decoded with label c}.
    """
    _check_conditional(model, label)
    latent = place_image(model, x, label)["latent"]
    k = model.num_classes
    zs = np.tile(latent, (k, 1)).astype(np.float32)
    if move and density is not None:  # from its label's own codes to each label's
        zs = density.carry(torch.as_tensor(zs), label, torch.arange(k)).numpy()
    elif move:  # a class prior moves it
        zs = model.carry_z(torch.as_tensor(zs), label, torch.arange(k)).cpu().numpy()
    images = decode_points(model, zs, torch.arange(k))
    return {"latent": latent, "images": images}


def _check_conditional(model, label: int) -> None:
    if not model.conditional:
        raise ValueError("This model is not conditional: it was trained without labels.")
    if not 0 <= int(label) < model.num_classes:
        raise ValueError(f"Labels must lie in 0..{model.num_classes - 1}, got {label}.")
