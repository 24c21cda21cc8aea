"""The latent explorer's context: the current run's model, its encoded set and the cached
arrays derived from it (principal directions, plane ranges, decoded sprites, hover
thumbnails, placed images), and the page header.

Computation lives in ``core.explore``. Derived arrays are cached twice: in the run's cache
folder (``explore-space-*.npz``, so a new server process does not re-encode) and with
``st.cache_data`` (so a rerun does not even read the file). Every cache key carries the
checkpoint's path and modification time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from app.common import get_dataset, get_model, run_dataset
from app.explore_common import big_png, class_names, fit_image
from app.text import md_escape
from core import explore as ex
from core.data import DatasetError
from core.embed import cached
from core.runs import Run

MAX_POINTS = 1000  # encoded points drawn on the plane (with hover thumbnails)


# ----------------------------------------------------------------------------- context
@dataclass
class Ctx:
    """What every section of the explorer needs about the current run."""

    run: Run
    model: object
    key: str  # checkpoint identity for caches
    names: list[str]  # class names
    test: object  # ImageData of the test split
    items: object  # ImageData behind the plotted points (test split, or training items)
    space: dict  # {"z", "labels", optional "kl_dims", "logits"}: one row per item
    style: dict  # {"dark_background", "ink_extent"} of the dataset

    @property
    def dim(self) -> int:
        return int(self.space["z"].shape[1])

    @property
    def conditional(self) -> bool:
        return bool(self.model.conditional)

    @property
    def is_table(self) -> bool:
        """The model finds codes by optimisation (it has no encoder): its points are the
        stored codes of its training items, and new images are placed, not encoded."""
        return not self.model.encodes


def model_key(run: Run) -> str:
    p = run.checkpoint_path
    return f"{p.resolve()}|{p.stat().st_mtime_ns}"


def _short(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:12]


@st.cache_data(max_entries=8, show_spinner="Encoding the dataset for the plane…")
def _space(
    _model,
    key: str,
    dataset: str,
    data_dir: str | None,
    train_size: int,
    seed: int,
    cache_dir: str,
    use_table: bool = True,
) -> dict:
    """The points of the plane: the encoded test split, or an autodecoder's latent table
    with the labels of its training items (without the training split at hand, the
    autodecoder's test images placed by latent optimisation). Stored in the run's cache
    folder too."""
    name = f"explore-space-{_short(key)}" + ("" if use_table else "-placed")

    def compute():
        codes = _model.stored_codes() if use_table else None
        if codes is not None:
            train = get_dataset(dataset, "train", data_dir)
            items = ex.table_items(train, train_size, seed)
            z = codes.detach().float().cpu().numpy()
            if len(z) != len(items):
                raise ValueError(
                    f"The latent table has {len(z)} rows but the training split has "
                    f"{len(items)} items: the run's dataset changed since training."
                )
            return {"z": z, "labels": items.labels.numpy()}
        test = get_dataset(dataset, "test", data_dir)  # encoded (or placed) test images
        out = ex.encode_set(_model, test.images, test.labels)
        out["labels"] = test.labels.numpy()
        return out

    for old in Path(cache_dir).glob("explore-space-*.npz"):  # earlier checkpoints of the run
        if old.stem != name:
            old.unlink(missing_ok=True)
    res = cached(Path(cache_dir), name, compute)
    res.pop("seconds", None)
    return res


@st.cache_data(max_entries=8, show_spinner=False)
def _style(dataset: str, data_dir: str | None) -> dict:
    return ex.dataset_style(get_dataset(dataset, "test", data_dir).images)


def load_context(run: Run) -> Ctx:
    model, ckpt = get_model(run)
    t = run.config().get("train", {})
    dataset, data_dir = t.get("dataset", "digits"), t.get("data_dir")
    key = model_key(run)
    test = run_dataset(run, "test")  # without the test images the page stops, saying why
    use_table = model.stored_codes() is not None
    if use_table:
        try:
            train = get_dataset(dataset, "train", data_dir)
        except DatasetError:
            use_table = False
            st.caption(
                "The training split is not available here, so the plane shows the test "
                "images placed by latent optimisation instead of the learned latent table."
            )
    args = (model, key, dataset, data_dir, int(t.get("train_size") or 0), int(t.get("seed") or 0))
    try:
        space = _space(*args, str(run.cache_dir), use_table)
    except ValueError as e:  # the table does not match the training split here
        if not use_table:
            raise
        use_table = False
        st.caption(f"{md_escape(e)} The plane shows the test images placed by optimisation.")
        space = _space(*args, str(run.cache_dir), use_table)
    if use_table:
        items = ex.table_items(train, int(t.get("train_size") or 0), int(t.get("seed") or 0))
    else:
        items = test
    n = max(int(getattr(model, "num_classes", 0) or 0), int(test.labels.max()) + 1)
    names = class_names(ckpt, list(test.class_names), n)
    return Ctx(run, model, key, names, test, items, space, _style(dataset, data_dir))


def header(ctx: Ctx, title: str) -> None:
    st.title(title)
    cfg = ctx.run.config().get("train", {})
    m = ctx.model
    latent = m.latent_description
    cond = f" · conditional on {m.num_classes} labels" if ctx.conditional else ""
    st.caption(
        f"**{md_escape(ctx.run.name)}** · {md_escape(cfg.get('model', '?'))} on "
        f"{md_escape(cfg.get('dataset', '?'))} · {latent}{cond}"
    )


# ----------------------------------------------------------------------------- bases, planes
@st.cache_data(max_entries=16, show_spinner=False)
def _basis(_z: np.ndarray, key: str, kind: str) -> ex.Basis:
    return ex.pca_basis(_z) if kind == "pca" else ex.dims_basis(_z.shape[1], _z)


def basis(ctx: Ctx, kind: str) -> ex.Basis:
    if kind == "pca" and len(ctx.space["z"]) < 2:
        kind = "dims"
    return _basis(ctx.space["z"], ctx.key, kind)


def plane_spec(plane: ex.Plane) -> tuple:
    return (plane.basis.kind, plane.i, plane.j, tuple(np.round(plane.fixed, 5).tolist()))


@st.cache_data(max_entries=32, show_spinner=False)
def _extent(_z: np.ndarray, key: str, spec: tuple, _plane: ex.Plane, n_std: float) -> tuple:
    return ex.plane_extent(_plane, _z, n_std)


def extent_of(ctx: Ctx, plane: ex.Plane, n_std: float) -> tuple:
    """The plane's range: mean +- n_std standard deviations of the encoded points."""
    return _extent(ctx.space["z"], ctx.key, plane_spec(plane), plane, float(n_std))


def labels_arg(ctx: Ctx, label):
    return int(label) if ctx.conditional else None


@st.cache_data(max_entries=24, show_spinner="Decoding the plane…")
def _sprite(
    _model,
    key: str,
    spec: tuple,
    _plane: ex.Plane,
    extent: tuple,
    grid: int,
    label,
    pad: int = 0,
    scale: int = 1,
) -> dict:
    images = ex.decode_grid(_model, _plane, extent, grid, label)
    png = ex.png_bytes(ex.sprite(images, grid, pad=pad), scale)
    return {"png": png, "id": hashlib.sha1(png).hexdigest()[:16], "src": ex.data_url(png)}


def sprite_png(ctx: Ctx, plane, extent, grid: int, label, pad: int = 0, scale: int = 1) -> dict:
    """PNG of the n x n decoded grid (cached per model, plane, range and label)."""
    ext = tuple(tuple(round(v, 6) for v in e) for e in extent)
    return _sprite(ctx.model, ctx.key, plane_spec(plane), plane, ext, grid, label, pad, scale)


@st.cache_data(max_entries=8, show_spinner=False)
def _thumbs(_images: torch.Tensor, key: str, which_key: str, _which: np.ndarray) -> dict:
    idx = torch.as_tensor(_which, dtype=torch.long)
    cols = max(1, int(np.ceil(np.sqrt(len(idx)))))
    png = ex.png_bytes(ex.sprite(_images[idx], cols))
    return {"src": ex.data_url(png), "id": hashlib.sha1(png).hexdigest()[:16], "cols": cols}


def shown_points(ctx: Ctx, limit: int = MAX_POINTS) -> np.ndarray:
    n = len(ctx.space["z"])
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, limit, replace=False))


def pick_test_image(ctx: Ctx, label: str, key: str, default: int = 0, help=None) -> int:
    n = len(ctx.test)
    idx = st.number_input(label, 0, n - 1, min(default, n - 1), 1, key=key, help=help)
    return int(idx)


def thumb(ctx: Ctx, idx: int, width: int = 72) -> None:
    img = ctx.test.images[idx]
    name = md_escape(ctx.names[int(ctx.test.labels[idx])])
    fit_image(big_png(img, 112), width, caption=f"#{idx} · {name}")


@st.cache_data(max_entries=64, show_spinner="Placing the image…")
def _place(_model, key: str, digest: str, _x: torch.Tensor, label, steps, lr) -> dict:
    return ex.place_image(_model, _x, label, steps, lr)


def place(ctx: Ctx, x: torch.Tensor, label=None, steps=None, lr=None) -> dict:
    """``core.explore.place_image`` cached by the image's bytes (autodecoders optimise)."""
    x = x.float().contiguous()
    digest = hashlib.sha1(x.numpy().tobytes()).hexdigest()
    return _place(ctx.model, ctx.key, digest, x, labels_arg(ctx, label), steps, lr)


def test_latent(ctx: Ctx, idx: int, label=None) -> np.ndarray:
    """The plane point of test image ``idx`` (encoded; placed by optimisation for tables)."""
    if not ctx.is_table:
        return ctx.space["z"][idx]
    return place(ctx, ctx.test.images[idx], label if label is not None else ctx.test.labels[idx])[
        "z"
    ]
