"""Streamlit glue of the latent explorer and the conditional-sampling pages: cached derived
arrays (the encoded set, principal directions, decoded sprites, thumbnails), the plane's
controls with their URL mirror, and one function per section of a page.

Computation lives in ``core.explore``; the browser components in ``app.components``.
Derived arrays are cached twice: in the run's cache folder (``explore-space-*.npz``, so a
new server process does not re-encode) and with ``st.cache_data`` (so a rerun does not
even read the file). Every cache key carries the checkpoint's path and modification time.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from app import components
from app.common import get_dataset, get_model, run_dataset
from app.text import html_escape, md_escape
from core import explore as ex
from core.data import DatasetError
from core.embed import cached
from core.runs import Run
from core.uploads import PictureError, open_picture, picture_from_data_url

MAX_POINTS = 1000  # encoded points drawn on the plane (with hover thumbnails)
PAD_SIZE = 224
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
    def kind(self) -> str:
        return self.model.latent_kind

    @property
    def dim(self) -> int:
        return int(self.space["z"].shape[1])

    @property
    def conditional(self) -> bool:
        return bool(self.model.conditional)

    @property
    def is_table(self) -> bool:
        return self.kind == "table"


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
        if _model.latent_kind == "table" and use_table:
            train = get_dataset(dataset, "train", data_dir)
            items = ex.table_items(train, train_size, seed)
            z = _model.table.weight.detach().float().cpu().numpy()
            if len(z) != len(items):
                raise ValueError(
                    f"The latent table has {len(z)} rows but the training split has "
                    f"{len(items)} items: the run's dataset changed since training."
                )
            return {"z": z, "labels": items.labels.numpy()}
        test = get_dataset(dataset, "test", data_dir)
        if _model.latent_kind == "table":  # no training split: place the test images
            y = test.labels if _model.conditional else None
            z = _model.infer(test.images.to(_model.device), y)["z"].float().cpu().numpy()
            return {"z": z, "labels": test.labels.numpy()}
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
    use_table = model.latent_kind == "table"
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
    test = run_dataset(run, "test")
    if use_table:
        items = ex.table_items(train, int(t.get("train_size") or 0), int(t.get("seed") or 0))
    else:
        items = test
    n = max(int(getattr(model, "num_classes", 0) or 0), int(test.labels.max()) + 1)
    names = class_names(ckpt, list(test.class_names), n)
    return Ctx(run, model, key, names, test, items, space, _style(dataset, data_dir))


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


def header(ctx: Ctx, title: str) -> None:
    st.title(title)
    cfg = ctx.run.config().get("train", {})
    m = ctx.model
    if ctx.kind == "categorical":
        v, k = m.latent_shape
        latent = f"{v} categorical variables × {k} categories"
    else:
        latent = f"{m.latent_dim}-D {ctx.kind} latent"
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


@st.cache_data(max_entries=8, show_spinner=False)
def _diagnostics(_space: dict, key: str, kind: str) -> dict:
    return ex.diagnostics(kind, _space)


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


def pick_test_image(ctx: Ctx, label: str, key: str, default: int = 0, help=None) -> int:
    n = len(ctx.test)
    idx = st.number_input(label, 0, n - 1, min(default, n - 1), 1, key=key, help=help)
    return int(idx)


def thumb(ctx: Ctx, idx: int, width: int = 72) -> None:
    img = ctx.test.images[idx]
    name = md_escape(ctx.names[int(ctx.test.labels[idx])])
    st.image(big_png(img, 112), width=width, caption=f"#{idx} · {name}")


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


# ----------------------------------------------------------------------------- URL mirror
def apply_url_once(ctx: Ctx) -> None:
    """On the first run of a session (per run), set the plane from the link's ?axes=,
    ?pin=, ?label= and ?fix=."""
    flag = f"ex_url_done_{ctx.run.id}"
    if st.session_state.get(flag):
        return
    st.session_state[flag] = True
    for key, value in parse_url(ctx).items():
        st.session_state[key] = value


def parse_url(ctx: Ctx) -> dict:
    """The session-state values a link asks for: each query parameter parsed strictly
    (ASCII digits, finite numbers, ranges checked); anything else is ignored."""
    out: dict = {}
    axes = query_text("axes")
    if axes and axes.isascii():
        try:
            ax = ex.parse_axes(axes, ctx.dim)
        except (ValueError, OverflowError):
            ax = None
        if ax:
            kind, i, j = ax
            out["ex_kind"] = kind
            out[f"ex_{kind}_i"], out[f"ex_{kind}_j"] = int(i), int(j)
    pin = query_text("pin")
    if pin and pin.isascii():
        try:
            uv = ex.parse_pair(pin)
        except (ValueError, OverflowError):
            uv = None
        if uv:
            u, v = finite_float(uv[0], MAX_PIN), finite_float(uv[1], MAX_PIN)
            if u is not None and v is not None:
                out["ex_pin"] = (u, v)
    if ctx.conditional:
        lab = strict_int(query_text("label"), 0, int(ctx.model.num_classes) - 1)
        if lab is not None:
            out["ex_label"] = lab
    fix = query_text("fix") or ""
    if fix.startswith("img:"):
        idx = strict_int(fix[4:], 0, len(ctx.test) - 1)
        if idx is not None:
            out["ex_fix"] = "a test image"
            out["ex_fix_img"] = idx
    return out


EXPLORE_URL_KEYS = ("axes", "pin", "label", "fix")


def write_url(values: dict) -> None:
    """Mirror the explorer's view into the query string (only what changed)."""
    for k, v in values.items():
        if v is None:
            if k in st.query_params:
                del st.query_params[k]
        elif st.query_params.get(k) != v:
            st.query_params[k] = v


# ----------------------------------------------------------------------------- plane controls
@dataclass
class View:
    plane: ex.Plane
    extent: tuple
    label: int | None
    grid: int
    n_std: float
    fix_note: str


def plane_controls(ctx: Ctx) -> View:
    """Axes, label, range and the other coordinates; returns the plane to show."""
    L = ctx.dim
    dims_b = basis(ctx, "dims")
    var = dims_b.variance if dims_b.variance is not None else np.ones(L)
    top = [int(k) for k in np.argsort(-var)[:2]] if L > 1 else [0, 0]
    default_kind = "dims" if L <= 2 else "pca"
    st.session_state.setdefault("ex_kind", default_kind)
    st.session_state.setdefault("ex_dims_i", min(top))
    st.session_state.setdefault("ex_dims_j", max(top) if L > 1 else 0)
    st.session_state.setdefault("ex_pca_i", 0)
    st.session_state.setdefault("ex_pca_j", 1 if L > 1 else 0)

    cols = st.columns([1.5, 1, 1, 1.2, 1.2] if ctx.conditional else [1.5, 1, 1, 1.2])
    with cols[0]:
        kind = st.segmented_control(
            "Axes",
            ["dims", "pca"],
            key="ex_kind",
            required=True,
            format_func={"dims": "Latent dimensions", "pca": "Principal directions"}.get,
            help="Latent dimensions: two coordinates of z. Principal directions: the two "
            "directions along which the encoded test set varies most.",
        )
    b = basis(ctx, kind)

    def fmt(k):
        v = b.variance[k] if b.variance is not None else None
        return f"{b.names[k]} (var {v:.2g})" if v is not None else b.names[k]

    options = list(range(L))
    with cols[1]:
        i = st.selectbox("Horizontal axis", options, key=f"ex_{kind}_i", format_func=fmt)
    with cols[2]:
        j = st.selectbox(
            "Vertical axis", options, key=f"ex_{kind}_j", format_func=fmt, disabled=L < 2
        )
    if L > 1 and i == j:
        st.warning("Pick two different axes: the vertical axis moved to the next coordinate.")
        j = (i + 1) % L
    with cols[3]:
        n_std = st.slider(
            "Range (± std)",
            1.0,
            6.0,
            3.0,
            0.5,
            key="ex_range",
            help="The plane spans the mean of the encoded points plus or "
            "minus this many standard deviations along each axis.",
        )
    label = None
    if ctx.conditional:
        with cols[4]:
            label = st.selectbox(
                "Decoder label",
                list(range(ctx.model.num_classes)),
                key="ex_label",
                format_func=lambda c: ctx.names[c],
                help="A conditional decoder draws the plane for this label.",
            )
    fixed, note = other_coordinates(ctx, b, i, j)
    plane = ex.Plane(b, int(i), int(j), fixed)
    extent = extent_of(ctx, plane, n_std)
    grid = int(st.session_state.get("ex_res", 32))
    return View(plane, extent, label, grid, n_std, note)


def other_coordinates(ctx: Ctx, b: ex.Basis, i: int, j: int) -> tuple[np.ndarray, str]:
    """The coordinates that do not follow the mouse: the mean of the encoded points, those
    of one test image, or set by hand."""
    L = b.dim
    mean_scores = b.scores(ctx.space["z"].mean(0, keepdims=True))[0]
    others = [k for k in range(L) if k not in (i, j)]
    if not others:
        return mean_scores, ""
    with st.expander(f"The other {len(others)} coordinates", expanded=False):
        src = st.radio(
            "Take them from",
            ["the mean", "a test image", "sliders"],
            key="ex_fix",
            horizontal=True,
            help="The plane is a slice through latent space: these coordinates "
            "stay fixed while the mouse moves the two on the axes.",
        )
        if src == "a test image":
            c1, c2 = st.columns([2, 1])
            with c1:
                idx = pick_test_image(ctx, "Test image", "ex_fix_img")
            with c2:
                thumb(ctx, idx, 64)
            z = test_latent(ctx, idx, st.session_state.get("ex_label"))
            return b.scores(z[None])[0], f"fix=img:{idx}"
        if src == "sliders":
            if len(others) > 24:
                st.caption(f"Showing sliders for the first 24 of {len(others)} coordinates.")
            scores = b.scores(ctx.space["z"])
            fixed = mean_scores.copy()
            cols = st.columns(3)
            for n, k in enumerate(others[:24]):
                lo = float(scores[:, k].mean() - 4 * scores[:, k].std() - 1e-3)
                hi = float(scores[:, k].mean() + 4 * scores[:, k].std() + 1e-3)
                with cols[n % 3]:
                    fixed[k] = st.slider(
                        b.names[k],
                        lo,
                        hi,
                        float(mean_scores[k]),
                        (hi - lo) / 100,
                        key=f"ex_fix_{b.kind}_{k}",
                        format="%.2f",
                    )
            return fixed, ""
        st.caption("At the mean of the encoded points.")
    return mean_scores, ""


# ----------------------------------------------------------------------------- the plane
def _on_pin() -> None:
    res = st.session_state.get("explore_plane") or {}
    pin = res.get("pin") if isinstance(res, dict) else None
    if isinstance(pin, dict):  # from the browser: untrusted like a link
        u, v = finite_float(pin.get("u"), MAX_PIN), finite_float(pin.get("v"), MAX_PIN)
        if u is not None and v is not None:
            st.session_state["ex_pin"] = (u, v)
            st.session_state["ex_pin_new"] = True


def record_new_pin(ctx: Ctx, view: View) -> None:
    """Keep the last pins (as latent vectors) for interpolation between pinned points."""
    if not st.session_state.pop("ex_pin_new", False):
        return
    pin = st.session_state.get("ex_pin")
    if pin is None:
        return
    z = view.plane.to_z([pin])[0]
    pins = list(st.session_state.get("ex_pins", []))
    pins.append({"z": z.tolist(), "uv": list(pin), "axes": list(view.plane.names)})
    st.session_state["ex_pins"] = pins[-10:]


def plane_component(ctx: Ctx, view: View, markers: list, path: list | None) -> None:
    plane, extent = view.plane, view.extent
    c, h, w = ctx.model.image_shape
    sp = sprite_png(ctx, plane, extent, view.grid, labels_arg(ctx, view.label))
    which = shown_points(ctx, MAX_POINTS if c == 1 else MAX_POINTS // 2)
    uv = plane.to_uv(ctx.space["z"][which])
    th = _thumbs(ctx.items.images, ctx.key, _short(which.tobytes().hex()), which)
    pin = st.session_state.get("ex_pin")
    marks = list(markers)
    if pin is not None:
        marks.append({"u": pin[0], "v": pin[1], "kind": "pin", "color": "#d00", "text": "pin"})
    data = {
        "sprite": {"src": sp["src"], "id": sp["id"], "grid": view.grid},
        "cell": [c, h, w],
        "extent": {"u": list(extent[0]), "v": list(extent[1])},
        "axes": list(plane.names),
        "points": {
            "u": np.round(uv[:, 0], 4).tolist(),
            "v": np.round(uv[:, 1], 4).tolist(),
            "label": ctx.space["labels"][which].astype(int).tolist(),
            "index": which.astype(int).tolist(),
        },
        "thumbs": th,
        "class_names": ctx.names,
        "markers": marks,
        "path": path or [],
        "start": list(pin) if pin else None,
        "start_note": "at the pin" if pin else "at the centre",
        "size": 500,
    }
    components.latent_plane(data, key="explore_plane", on_pin=_on_pin)
    what = "training items (the latent table)" if ctx.is_table else "test images"
    c1, c2 = st.columns([1, 2.2], vertical_alignment="center")
    with c1:
        st.select_slider(
            "Scrubbing grid (cells per side)",
            [16, 24, 32, 48],
            value=32,
            key="ex_res",
            help="More cells follow the decoder more closely "
            "between grid points and take longer to decode, once per plane.",
        )
    with c2:
        what = "training items (the latent table)" if ctx.is_table else "test images"
        st.caption(
            f"{len(which)} of {len(ctx.space['z'])} {what}, coloured by label; hover a dot to "
            f"see its image. The picture follows the mouse by blending a {view.grid}×"
            f"{view.grid} grid decoded on the server in one batch; a pin is decoded exactly."
        )


def num(v: float, digits: int = 2) -> str:
    """A coordinate for captions (no "-0.00")."""
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


# ----------------------------------------------------------------------------- sections
def pinned_section(ctx: Ctx, view: View) -> None:
    pin = st.session_state.get("ex_pin")
    if pin is None:
        st.info(
            "Click the plane to pin a point: its exact decoding appears here and the "
            "page's link then reopens this view."
        )
        return
    z = view.plane.to_z([pin])
    img = ex.decode_points(ctx.model, z, labels_arg(ctx, view.label))[0]
    png = big_png(img, 256)
    a, b = view.plane.names
    st.image(png, width=256, caption=f"{a} = {pin[0]:.3f}, {b} = {pin[1]:.3f}")
    c1, c2 = st.columns(2)
    with c1:
        st.download_button(
            "Download PNG",
            png,
            file_name=f"pin_{ex.format_pair(pin)}.png",
            mime="image/png",
            key="ex_dl_pin",
            on_click="ignore",
        )
    with c2:
        if st.button("Unpin", key="ex_unpin"):
            st.session_state["ex_pin"] = None
            st.rerun()
    with st.expander("Its full latent vector"):
        st.code(np.array2string(z[0], precision=3, max_line_width=60, separator=", "))


@st.cache_resource(max_entries=8, show_spinner=False)
def _diagnostics_figure(key: str, kind: str, measure: str, values: tuple, active: tuple):
    """The bar chart of KL (or variance) per unit; shared and never modified."""
    prefix = "var " if kind == "categorical" else "z"
    fig = go.Figure(
        go.Bar(
            x=[f"{prefix}{k}" for k in range(len(values))],
            y=list(values),
            marker_color=["#1f77b4" if a else "#d62728" for a in active],
        )
    )
    fig.update_layout(
        height=230,
        margin=dict(l=10, r=10, t=30, b=10),
        title=dict(text=measure, font=dict(size=13)),
        xaxis=dict(type="category"),
    )
    return fig


def diagnostics_section(ctx: Ctx) -> None:
    d = _diagnostics(ctx.space, ctx.key, ctx.kind)
    st.metric(
        f"Active {d['unit']}s",
        f"{d['active']} / {d['units']}",
        help=f"A {d['unit']} is active when its {d['rule']}.",
    )
    fig = _diagnostics_figure(
        ctx.key, ctx.kind, d["measure"], tuple(d["values"]), tuple(d["active_mask"])
    )
    st.plotly_chart(fig, key="ex_diag_chart", config={"displayModeBar": False})
    where = "the latent table's rows" if ctx.is_table else "the encoded test set"
    st.caption(f"Blue: active, red: collapsed. Computed on {where}.")
    if ctx.kind == "gaussian":
        st.caption(
            "A dimension whose KL is near 0 carries no information about the image: "
            "the encoder ignores it and the decoder learns to ignore it too "
            "(posterior collapse)."
        )


def grid_section(ctx: Ctx, view: View) -> None:
    c1, c2 = st.columns(2)
    with c1:
        n = st.slider("Cells per side", 3, 30, 15, key="ex_grid_n")
    with c2:
        n_std = st.slider("Range (± std)", 0.5, 6.0, float(view.n_std), 0.5, key="ex_grid_std")
    extent = extent_of(ctx, view.plane, n_std)
    h = ctx.model.image_shape[1]
    side = n * (h + 1) - 1
    scale = max(1, -(-640 // side))  # upscale (nearest) to at least 640 px, shown at 640
    png = sprite_png(ctx, view.plane, extent, n, labels_arg(ctx, view.label), 1, scale)["png"]
    width = min(scale * side, 640)
    a, b = view.plane.names
    (u0, u1), (v0, v1) = extent
    st.image(
        png,
        width=width,
        caption=f"{a} from {num(u0)} (left) to {num(u1)} (right); "
        f"{b} from {num(v1)} (top) to {num(v0)} (bottom)",
    )
    st.download_button(
        "Download grid PNG",
        png,
        file_name=f"grid_{n}x{n}.png",
        mime="image/png",
        key="ex_dl_grid",
        on_click="ignore",
    )


@st.cache_data(max_entries=32, show_spinner=False)
def _interpolation(_model, key: str, z0: bytes, z1: bytes, steps: int, method: str, label) -> dict:
    res = ex.interpolate(
        _model, np.frombuffer(z0, np.float32), np.frombuffer(z1, np.float32), steps, method, label
    )
    h = res["images"].shape[-1]
    scale = max(1, 112 // h if len(res["images"]) <= 2 else 56 // h)
    res["png"] = ex.png_bytes(ex.sprite(res["images"], len(res["images"]), pad=2), scale)
    return res


def interpolation_section(ctx: Ctx, view: View) -> tuple[list, list]:
    """Returns (path on the plane, markers) for the plane component."""
    pins = st.session_state.get("ex_pins", [])
    sources = ["two test images", "the last two pins"]
    src = st.radio("Between", sources, key="ex_int_src", horizontal=True)
    label = labels_arg(ctx, view.label)
    if src == "the last two pins":
        if len(pins) < 2:
            st.info("Pin two points on the plane first (click it twice).")
            return [], []
        z0, z1 = np.asarray(pins[-2]["z"]), np.asarray(pins[-1]["z"])
        if len(z0) != ctx.model.latent_dim or len(z1) != ctx.model.latent_dim:
            st.info("Those pins belong to another model: pin two new points.")
            return [], []
    else:
        labels = ctx.test.labels
        other = int(torch.nonzero(labels != labels[0])[0]) if (labels != labels[0]).any() else 1
        c = st.columns([1, 0.6, 1, 0.6])
        with c[0]:
            a = pick_test_image(ctx, "From test image", "ex_int_a", 0)
        with c[1]:
            thumb(ctx, a, 56)
        with c[2]:
            b = pick_test_image(ctx, "To test image", "ex_int_b", other)
        with c[3]:
            thumb(ctx, b, 56)
        z0, z1 = test_latent(ctx, a, label), test_latent(ctx, b, label)
    c1, c2 = st.columns(2)
    with c1:
        steps = st.slider("Steps", 2, 24, 10, key="ex_int_steps")
    with c2:
        methods = ["linear", "spherical"] if ctx.kind == "gaussian" else ["linear"]
        method = st.radio(
            "Path",
            methods,
            key="ex_int_method",
            horizontal=True,
            help="Spherical (slerp) follows a great circle, where a Gaussian "
            "prior keeps its mass; offered for Gaussian latents.",
        )
    res = _interpolation(
        ctx.model,
        ctx.key,
        np.asarray(z0, np.float32).tobytes(),
        np.asarray(z1, np.float32).tobytes(),
        steps,
        method,
        label,
    )
    png = res["png"]
    st.image(png, width="stretch")
    d1, d2 = st.columns(2)
    with d1:
        st.download_button(
            "Download strip PNG",
            png,
            file_name="interpolation.png",
            mime="image/png",
            key="ex_dl_strip",
            on_click="ignore",
        )
    with d2:
        images = res["images"]
        st.download_button(
            "Download animated GIF",
            lambda: ex.gif_bytes(images, scale=max(1, 112 // images.shape[-1])),
            file_name="interpolation.gif",
            mime="image/gif",
            key="ex_dl_gif",
        )
    uv = view.plane.to_uv(res["z"])
    path = np.round(uv, 4).tolist()
    marks = [
        {"u": float(uv[0, 0]), "v": float(uv[0, 1]), "kind": "point", "color": "#222", "text": "A"},
        {
            "u": float(uv[-1, 0]),
            "v": float(uv[-1, 1]),
            "kind": "point",
            "color": "#222",
            "text": "B",
        },
    ]
    st.caption("The dashed line on the plane is the path's projection onto the plane's axes.")
    return path, marks


def draw_section(ctx: Ctx, view: View) -> list:
    """The drawing pad and the upload; returns their markers on the plane."""
    c, h, w = ctx.model.image_shape
    if c not in (1, 3):
        st.info("Drawing works for grayscale and RGB models only.")
        return []
    dark = bool(ctx.style["dark_background"])
    marks = []
    pad = components.draw_pad("explore_pad", dark=dark, rgb=c == 3, size=PAD_SIZE)
    url = pad.get("image") if isinstance(pad, dict) else None
    st.caption(
        "Draw with the mouse; after each stroke the drawing is prepared like the "
        "dataset, encoded and shown on the plane as ◆ drawing."
    )
    label = labels_arg(ctx, view.label)
    if url:
        try:
            x = ex.prepare_image(
                picture_from_data_url(url), ctx.model.image_shape, dark, ctx.style["ink_extent"]
            )
        except ValueError as e:  # PictureError included: one sentence
            st.error(str(e))
            x = None
        if x is not None:
            marks += _placed(ctx, view, x, label, "drawing", "#7b2cbf", "ex_dl_drawn")
    up = st.file_uploader(
        "…or upload a picture", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"], key="ex_upload"
    )
    if up is not None:
        try:  # the pixel cap is checked on the header, before anything is decoded
            pic = open_picture(up.getvalue())
            x = ex.prepare_image(pic, ctx.model.image_shape, dark, ctx.style["ink_extent"])
        except PictureError as e:
            st.error(str(e))
        except (ValueError, OSError):
            st.error("That picture could not be prepared for the model: upload a PNG or JPEG.")
        else:
            marks += _placed(ctx, view, x, label, "upload", "#e07000", "ex_dl_upload")
    return marks


def _placed(ctx: Ctx, view: View, x, label, name: str, color: str, key: str) -> list:
    res = place(ctx, x, label)
    uv = view.plane.to_uv(res["z"][None])[0]
    c1, c2 = st.columns(2)
    with c1:
        st.image(big_png(x, 112), width=112, caption=f"{name}, as the model sees it")
    with c2:
        png = big_png(res["recon"], 112)
        st.image(png, width=112, caption="its reconstruction")
    st.caption(
        f"◆ {name} on the plane at ({num(uv[0])}, {num(uv[1])})"
        + (" after latent optimisation" if ctx.is_table else "")
    )
    if res["trace"]:
        st.line_chart(
            pd.DataFrame({"loss (BCE + prior)": res["trace"]}),
            height=130,
            x_label="optimisation step",
        )
    st.download_button(
        f"Download the {name}'s reconstruction",
        big_png(res["recon"], 256),
        file_name=f"{name}_reconstruction.png",
        mime="image/png",
        key=key,
        on_click="ignore",
    )
    return [{"u": float(uv[0]), "v": float(uv[1]), "kind": "point", "color": color, "text": name}]


def placement_section(ctx: Ctx, view: View) -> list:
    """Autodecoders: place a test image by latent optimisation (model.infer); drawings and
    uploads go the same way in the "Draw your own" column."""
    st.markdown(
        "An autodecoder has no encoder. To put a new image on the plane it searches "
        "the latent space: starting from the table's mean, Adam changes z (the decoder "
        "stays frozen) to lower reconstruction loss plus the prior term. Drawings and "
        "uploads (*Draw your own*) are placed the same way."
    )
    cfg = ctx.model.config
    c = st.columns([1.2, 0.6, 1, 1])
    with c[0]:
        idx = pick_test_image(ctx, "Test image", "ex_place_img", 0)
    with c[1]:
        thumb(ctx, idx, 56)
    with c[2]:
        steps = st.slider("Steps", 10, 500, int(cfg.infer_steps), 10, key="ex_place_steps")
    with c[3]:
        lr = st.select_slider(
            "Learning rate",
            [0.005, 0.01, 0.02, 0.05, 0.1, 0.2],
            value=float(cfg.infer_lr)
            if cfg.infer_lr in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
            else 0.05,
            key="ex_place_lr",
        )
    label = labels_arg(ctx, view.label if view.label is not None else ctx.test.labels[idx])
    res = place(ctx, ctx.test.images[idx], label, steps, lr)
    c1, c2, c3 = st.columns([1, 1, 2.5])
    with c1:
        st.image(big_png(ctx.test.images[idx], 112), width=112, caption="target")
    with c2:
        st.image(big_png(res["recon"], 112), width=112, caption="decoded at the found z")
    with c3:
        st.line_chart(
            pd.DataFrame({"loss": res["trace"]}),
            height=180,
            x_label="step",
            y_label="loss (BCE + prior)",
        )
    uv = view.plane.to_uv(res["z"][None])[0]
    return [
        {
            "u": float(uv[0]),
            "v": float(uv[1]),
            "kind": "point",
            "color": "#e07000",
            "text": f"placed #{idx}",
        }
    ]


def categories_section(ctx: Ctx, view: View) -> None:
    """Gumbel-softmax latents: flip categories, decode; relaxed samples at a temperature."""
    m = ctx.model
    nv, k = m.latent_shape
    c = st.columns([1.2, 0.6, 3])
    with c[0]:
        idx = pick_test_image(ctx, "Start from test image", "ex_cat_img", 0)
    with c[1]:
        thumb(ctx, idx, 56)
    logits = np.asarray(ctx.space["logits"][idx])  # (V, K)
    if st.session_state.get("ex_cat_for") != idx or "ex_choice" not in st.session_state:
        st.session_state["ex_choice"] = logits.argmax(1).tolist()
        st.session_state["ex_cat_for"] = idx
    probs = torch.as_tensor(logits).softmax(-1).numpy()
    left, right = st.columns([1.4, 1])
    with left:
        st.markdown(
            f"**{nv} variables × {k} categories** (shade: the encoder's q(z|x); ● the "
            "chosen category). Click a cell to flip that variable."
        )
        res = components.category_grid("explore_cats", st.session_state["ex_choice"], k, probs)
        flip = res.get("flip") if isinstance(res, dict) else None
        fv = strict_int(str(flip.get("v")), 0, nv - 1) if isinstance(flip, dict) else None
        fk = strict_int(str(flip.get("k")), 0, k - 1) if isinstance(flip, dict) else None
        if fv is not None and fk is not None:  # from the browser: untrusted
            choice = list(st.session_state["ex_choice"])
            choice[fv] = fk
            st.session_state["ex_choice"] = choice
        if st.button("Back to the encoder's choice", key="ex_cat_reset"):
            st.session_state["ex_choice"] = logits.argmax(1).tolist()
            st.rerun()
    choice = st.session_state["ex_choice"]
    label = labels_arg(ctx, view.label)
    z = ex.onehot_choice(choice, k)
    img = ex.decode_points(m, z[None], label)[0]
    with right:
        a, b = st.columns(2)
        with a:
            st.image(big_png(ctx.test.images[idx], 128), width=128, caption="test image")
        with b:
            png = big_png(img, 128)
            st.image(png, width=128, caption="decoded from the chosen categories")
        st.download_button(
            "Download PNG",
            big_png(img, 256),
            file_name="categories.png",
            mime="image/png",
            key="ex_dl_cat",
            on_click="ignore",
        )
    st.divider()
    sample = st.toggle(
        "Sample with temperature",
        key="ex_cat_sample",
        help="Relaxed Gumbel-softmax samples softmax((logits + g) / τ) around "
        "the chosen categories.",
    )
    if sample:
        c1, c2, c3 = st.columns(3)
        with c1:
            tau = st.slider(
                "Temperature τ",
                0.05,
                5.0,
                float(round(float(m.tau), 2)),
                0.05,
                key="ex_cat_tau",
                help=f"The model trained down to τ = {float(m.tau):.2f}.",
            )
        with c2:
            n = st.slider("Samples", 2, 16, 8, key="ex_cat_n")
        with c3:
            seed = st.number_input("Seed", 0, 10_000, 0, key="ex_cat_seed")
        lg = ex.logits_with_choice(logits, choice)
        zs = ex.relaxed_samples(lg, tau, n, int(seed))
        imgs = ex.decode_points(m, zs, label)
        png = show_images(
            imgs,
            caption=f"{n} relaxed samples at τ = {tau:.2f}: low τ gives "
            "nearly one-hot codes, high τ blends categories.",
        )
        st.download_button(
            "Download samples PNG",
            png,
            file_name=f"relaxed_tau{tau:.2f}.png",
            mime="image/png",
            key="ex_dl_relaxed",
            on_click="ignore",
        )


def url_values(ctx: Ctx, view: View) -> dict:
    pin = st.session_state.get("ex_pin")
    plane = view.plane
    return {
        "axes": ex.format_axes(plane.basis.kind, plane.i, plane.j) if ctx.dim > 1 else None,
        "pin": ex.format_pair(pin) if pin else None,
        "label": str(view.label) if view.label is not None else None,
        "fix": view.fix_note[4:] if view.fix_note.startswith("fix=") else None,
    }


def explain_text(ctx: Ctx) -> str:
    extra = {
        "categorical": "\n\nThis model's latent is **categorical**: each variable picks one "
        "of K categories. The plane is a slice through the space of category probabilities; "
        "the *Categories* tab lets you set the categories directly.",
        "table": "\n\nThis is an **autodecoder**: the points are its learned latent table, one "
        "row per training image. New images are placed by optimisation (*Place an image*).",
        "deterministic": "\n\nThis is a plain **autoencoder**: there is no prior, so regions "
        "between the points may decode to nonsense.",
    }.get(ctx.kind, "")
    return (
        "Every image the model knows is a point *z* in its latent space; the decoder turns any "
        "point into an image. The plane is a 2-D slice through that space: each dot is a "
        "test image encoded by the model, coloured by its label. Move the mouse over the "
        "plane to see what the decoder draws there; click to pin a point.\n\n"
        "With more than two latent dimensions, pick two axes (two coordinates of *z*, or "
        "the two principal directions along which the encoded images vary most) and fix the "
        "others. **Posterior collapse**: dimensions that the encoder stopped using show a KL "
        "near zero." + extra
    )


# ----------------------------------------------------------------------------- conditional page
TRAIN_PAGE = Path(__file__).resolve().parent.parent / "pages" / "train.py"


def not_conditional(run: Run, model) -> None:
    """What a conditional run is, and the way to the train page with labels switched on."""
    family = str(run.config().get("train", {}).get("model", "mlp-vae"))
    st.info(
        f"**{md_escape(run.name)}** is not conditional: it was trained without labels, so it "
        "cannot be asked for a class."
    )
    st.markdown(
        "A **conditional** autoencoder (a CVAE, Sohn et al. 2015) also receives the label: "
        "the one-hot class joins the encoder's input and the decoder's input. The latent *z* "
        "is then free to hold what the label does not say, the *style* (slant, thickness, "
        "shape), and at sampling time you choose the class and draw *z* from the prior: "
        '"draw me a 7", or "this same style as a 3".'
    )
    st.page_link(
        str(TRAIN_PAGE),
        label="Train a conditional VAE (cvae)",
        icon=":material/model_training:",
        query_params={"model": "cvae"},
    )
    if family not in ("cvae", "mlp-vae"):  # cvae is the conditional mlp-vae
        st.page_link(
            str(TRAIN_PAGE),
            label=f"Train a conditional {md_escape(family)}",
            icon=":material/model_training:",
            query_params={"model": family, "conditional": "1"},
        )


def safe_file_part(text: str) -> str:
    """A piece of a download's file name: letters, digits, dot, dash and underscore."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")[:60] or "class"


def class_label(k: int, names: list[str]) -> str:
    """ "3 · Dress", or just "3" when the class is named by its index (digits)."""
    return names[k] if names[k] == str(k) else f"{k} · {names[k]}"


def class_picker(names: list[str]) -> int:
    """The class to sample, mirrored in the URL as ?class=<index>."""
    if not st.session_state.get("cd_url_done"):
        st.session_state["cd_url_done"] = True
        wanted = strict_int(query_text("class"), 0, len(names) - 1)
        if wanted is not None:
            st.session_state["cd_class"] = wanted
    label = st.selectbox(
        "Class",
        list(range(len(names))),
        key="cd_class",
        format_func=lambda c: class_label(c, names),
    )
    write_url({"class": str(label)})
    return int(label)


def _seed_button(key: str, label: str = "New draw") -> int:
    st.session_state.setdefault(key, 0)
    if st.button(label, key=f"{key}_btn", icon=":material/casino:"):
        st.session_state[key] += 1
    return int(st.session_state[key])


def samples_section(model, names: list[str], label: int) -> None:
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    with c1:
        n = st.slider("Samples", 4, 64, 16, 4, key="cd_n")
    with c2:
        seed = _seed_button("cd_seed")
    imgs = ex.conditional_samples(model, label, n, seed)
    if getattr(model.config, "class_prior", False):
        prior = "label's learned prior"
    else:
        prior = "prior N(0, I)" if model.latent_kind == "gaussian" else "prior"
    png = show_images(
        imgs,
        nrow=min(n, 8),
        scale=max(1, 64 // model.image_shape[-1]),
        caption=f"{n} draws of z from the {prior}, decoded as “{md_escape(names[label])}”",
    )
    st.download_button(
        "Download PNG",
        png,
        file_name=f"samples_{safe_file_part(names[label])}.png",
        mime="image/png",
        key="cd_dl_samples",
        on_click="ignore",
    )


def class_grid_section(model, names: list[str]) -> None:
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    with c1:
        n_z = st.slider("Columns (one z each)", 2, 12, 8, key="cd_nz")
    with c2:
        seed = _seed_button("cd_grid_seed")
    imgs = ex.class_z_grid(model, n_z, seed)
    h = model.image_shape[-1]
    scale = max(1, 48 // h)
    arr = ex.sprite(imgs, n_z, pad=2)
    arr = np.repeat(np.repeat(arr, scale, 0), scale, 1)
    png = ex.png_bytes(ex.label_rows(arr, [class_label(k, names) for k in range(len(names))]))
    st.image(
        png,
        caption="Each column shares one z across all classes: the z carries the "
        "style, the label the class.",
    )
    st.download_button(
        "Download PNG",
        png,
        file_name="class_by_z.png",
        mime="image/png",
        key="cd_dl_grid",
        on_click="ignore",
    )


def class_swap_section(model, test, names: list[str], label: int) -> None:
    labels = test.labels
    first = int(torch.nonzero(labels == label)[0]) if (labels == label).any() else 0
    c1, c2 = st.columns([2, 1])
    with c1:
        idx = st.number_input(
            "Test image",
            0,
            len(test) - 1,
            first,
            key="cd_swap_img",
            help="Defaults to the first test image of the chosen class.",
        )
    with c2:
        own = int(labels[idx])
        st.image(
            big_png(test.images[idx], 112), width=84, caption=f"#{idx} · {md_escape(names[own])}"
        )
    res = ex.class_swap(model, test.images[int(idx)], own)
    scale = max(1, 64 // model.image_shape[-1])
    arr = ex.sprite(res["images"], len(names), pad=2)
    png = ex.png_bytes(arr, scale)
    st.image(
        [big_png(im, 96) for im in res["images"]],
        width=72,
        caption=[("▸ " if k == own else "") + md_escape(n) for k, n in enumerate(names)],
    )
    st.caption(
        f"The image is encoded with its own label ({md_escape(names[own])}); its latent z is "
        "then decoded under every label. ▸ marks its own class."
    )
    st.download_button(
        "Download PNG",
        png,
        file_name=f"class_swap_{idx}.png",
        mime="image/png",
        key="cd_dl_swap",
        on_click="ignore",
    )


def accuracy_section(run: Run, names: list[str]) -> None:
    ev = run.evaluation() or {}
    cond = ev.get("conditional")
    st.markdown(
        "**Conditional-sample accuracy** asks whether the model draws the class you asked "
        "for. An independent judge (a CNN trained on the real training images, some "
        "of them blurred so that it reads a blurry image by its shape) "
        "classifies 1,000 prior samples per class; the score is the share it assigns to the "
        "asked class. Read it beside the judge's own accuracy on real test images: a model "
        "cannot look more recognisable than the judge can recognise."
    )
    if not cond:
        st.info(
            "Not computed for this run yet. It scores the whole test split (``core.evaluate``) "
            "with the judge shipped for Fashion-MNIST; for other datasets it first trains one "
            "(once: about 8 minutes on two CPU cores for 60,000 images)."
        )
        if st.button("Compute it", key="cd_eval", icon=":material/fact_check:"):
            from core.evaluate import evaluate

            with st.spinner("Evaluating the run (judge, samples, test metrics)…"):
                evaluate(run.path)
            st.rerun()
        return
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "Conditional-sample accuracy",
        f"{cond['sample_accuracy']:.1%}",
        help=f"{cond.get('samples_per_class', 100)} prior samples per class",
    )
    c2.metric(
        "Judge accuracy on real test images",
        f"{cond['judge_test_accuracy']:.1%}",
        help=cond.get("judge", ""),
    )
    if "recon_accuracy" in cond:
        c3.metric(
            "Judge accuracy on its reconstructions",
            f"{cond['recon_accuracy']:.1%}",
            help="The model's reconstructions of the real test images, each with its true "
            "label: what the decoder can draw. A gap between this and the sample accuracy "
            "is where the prior puts the samples.",
        )
    st.caption(f"Chance level: {1 / len(names):.0%} (a model that ignored the label).")
    per = cond.get("per_class") or []
    if per:
        xs = [html_escape(class_label(k, names)) for k in range(len(per))]
        fig = go.Figure(go.Bar(x=xs, y=per, name="samples", marker_color="#1f77b4"))
        real = cond.get("judge_per_class")
        if real:  # what the judge scores on real images of the class: the attainable bar
            fig.add_bar(x=xs, y=real, name="real test images", marker_color="#bbbbbb")
        fig.update_layout(
            height=260,
            barmode="group",
            legend=dict(orientation="h", y=1.15, x=1, xanchor="right"),
            margin=dict(l=10, r=10, t=30, b=10),
            yaxis=dict(range=[0, 1], tickformat=".0%"),
            title=dict(text="per class", font=dict(size=13)),
        )
        st.plotly_chart(fig, key="cd_acc_chart", config={"displayModeBar": False})
