"""The latent plane of the explorer: its controls (axes, range, label, the other
coordinates), the plane component with its points, markers and path, and pins.

The browser component itself is ``app.components.latent_plane``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import streamlit as st

from app import components
from app.explore_common import MAX_PIN
from app.explore_context import (
    MAX_POINTS,
    Ctx,
    _short,
    _thumbs,
    basis,
    extent_of,
    labels_arg,
    pick_test_image,
    shown_points,
    sprite_png,
    test_latent,
    thumb,
)
from app.url_state import parse_float
from core import explore as ex

# ----------------------------------------------------------------------------- plane controls
CONTROL_W = 170  # px: a select box or slider in the row of plane controls
BROWSER_SLIDERS = 8  # other coordinates the browser offers as sliders at the cursor
PAGE_SLIDERS = 24  # and the page, under "The other coordinates"


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

    # One row that wraps (a horizontal container) rather than fixed columns: every control
    # keeps the width it needs, so none is clipped in a narrow window (the segmented
    # control needs its full ~290 px); what does not fit moves to the next line.
    bar = st.container(horizontal=True, gap="small", vertical_alignment="bottom")
    with bar:
        kind = st.segmented_control(
            "Axes",
            ["dims", "pca"],
            key="ex_kind",
            required=True,
            format_func={"dims": "Latent dimensions", "pca": "Principal directions"}.get,
            help="Latent dimensions: two coordinates of z. Principal directions: the two "
            "directions along which the encoded test set varies most.",
            width="content",
        )
    b = basis(ctx, kind)

    def fmt(k):
        v = b.variance[k] if b.variance is not None else None
        return f"{b.names[k]} (var {v:.2g})" if v is not None else b.names[k]

    options = list(range(L))
    with bar:
        i = st.selectbox(
            "Horizontal axis", options, key=f"ex_{kind}_i", format_func=fmt, width=CONTROL_W
        )
        j = st.selectbox(
            "Vertical axis",
            options,
            key=f"ex_{kind}_j",
            format_func=fmt,
            disabled=L < 2,
            width=CONTROL_W,
        )
    if L > 1 and i == j:
        st.warning("Pick two different axes: the vertical axis moved to the next coordinate.")
        j = (i + 1) % L
    with bar:
        n_std = st.slider(
            "Range (± std)",
            1.0,
            6.0,
            3.0,
            0.5,
            key="ex_range",
            help="The plane spans the mean of the encoded points plus or "
            "minus this many standard deviations along each axis.",
            width=CONTROL_W + 20,
        )
    label = None
    if ctx.conditional:
        with bar:
            label = st.selectbox(
                "Decoder label",
                list(range(ctx.model.num_classes)),
                key="ex_label",
                format_func=lambda c: ctx.names[c],
                help="A conditional decoder draws the plane for this label.",
                width=CONTROL_W,
            )
    fixed, note = other_coordinates(ctx, b, i, j)
    # what apply_pin needs to turn the browser's coordinates into the page's sliders
    others = [k for k in range(L) if k not in (i, j)]
    st.session_state["ex_plane_now"] = {
        "kind": b.kind,
        "fixed": fixed.tolist(),
        "others": others,
        "labels": ctx.model.num_classes if ctx.conditional else 0,
    }
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
        if src != "sliders":
            st.session_state.pop("ex_fix_base", None)
        if src == "sliders":
            if len(others) > PAGE_SLIDERS:
                st.caption(
                    f"Showing sliders for the first {PAGE_SLIDERS} of {len(others)} coordinates."
                )
            # the coordinates without a slider: the mean, or those a pin left (apply_pin)
            base = st.session_state.get("ex_fix_base")
            ok = isinstance(base, dict) and base.get("kind") == b.kind
            fixed = np.asarray(base["fixed"], np.float64) if ok else mean_scores.copy()
            if fixed.shape != mean_scores.shape or not np.isfinite(fixed).all():
                fixed = mean_scores.copy()
            lo, hi = slider_ranges(ctx, b)
            cols = st.columns(3)
            for n, k in enumerate(others[:PAGE_SLIDERS]):
                key = f"ex_fix_{b.kind}_{k}"
                if key in st.session_state:  # set by the slider, or by a pin (apply_pin)
                    st.session_state[key] = min(max(float(st.session_state[key]), lo[k]), hi[k])
                    start = {}
                else:
                    start = {"value": float(min(max(fixed[k], lo[k]), hi[k]))}
                with cols[n % 3]:
                    fixed[k] = st.slider(
                        b.names[k],
                        lo[k],
                        hi[k],
                        step=(hi[k] - lo[k]) / 100,
                        key=key,
                        format="%.2f",
                        **start,
                    )
            return fixed, ""
        st.caption("At the mean of the encoded points.")
    return mean_scores, ""


def slider_ranges(ctx: Ctx, b: ex.Basis) -> tuple[list[float], list[float]]:
    """The sliders' ranges of every basis coordinate: the encoded set's mean ± 4 std (the
    page's and the browser's sliders; computed once per encoded set and basis)."""
    return _slider_ranges(ctx.space["z"], ctx.key, b.kind, b)


@st.cache_data(max_entries=8, show_spinner=False)
def _slider_ranges(_z, key: str, kind: str, _b: ex.Basis) -> tuple[list[float], list[float]]:
    scores = _b.scores(_z)
    m, sd = scores.mean(0), scores.std(0)
    return (m - 4 * sd - 1e-3).tolist(), (m + 4 * sd + 1e-3).tolist()


# ----------------------------------------------------------------------------- the plane
def _on_pin() -> None:
    res = st.session_state.get("explore_plane") or {}
    apply_pin(st.session_state, res.get("pin") if isinstance(res, dict) else None)


def apply_pin(state, pin) -> None:
    """A click on the plane (``pin``, from the browser: untrusted like a link) into the
    session ``state``: the point, and with it what the browser decoded it with (its label at
    the cursor, its other coordinates), so that the page decodes the same point. Anything
    malformed is ignored, so is a label beyond the model's or a coordinate the browser does
    not offer (``ex_plane_now``, recorded by ``plane_controls``); a coordinate out of its
    slider's range is clamped by ``other_coordinates``."""
    if not isinstance(pin, dict):
        return
    u, v = parse_float(pin.get("u"), MAX_PIN), parse_float(pin.get("v"), MAX_PIN)
    if u is None or v is None:
        return
    state["ex_pin"] = (u, v)
    state["ex_pin_new"] = True
    now = state.get("ex_plane_now")
    if not isinstance(now, dict):
        return
    label = pin.get("label")
    if type(label) is int and 0 <= label < now["labels"] and "ex_label" in state:
        state["ex_label"] = label
    others = pin.get("others")
    if not isinstance(others, dict):
        return
    kind, fixed, free = now["kind"], now["fixed"], now["others"][:BROWSER_SLIDERS]
    values = {}
    for k, value in itertools.islice(others.items(), BROWSER_SLIDERS):
        x = parse_float(value, MAX_PIN)
        index = int(k) if isinstance(k, str) and re.fullmatch(r"[0-9]{1,6}", k) else None
        if index in free and x is not None:
            values[index] = x
    if not values:
        return
    # The page's sliders take over: every coordinate keeps the value the plane had (the
    # mean, a test image's, or the sliders'), except those the browser moved.
    state["ex_fix"] = "sliders"
    state["ex_fix_base"] = {"kind": kind, "fixed": list(fixed)}
    for k in now["others"][:PAGE_SLIDERS]:
        state[f"ex_fix_{kind}_{k}"] = values.get(k, fixed[k])


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


def plane_component(ctx: Ctx, view: View, markers: list, path: list | None, exact: dict) -> None:
    """The plane; ``exact``: what the browser needs to decode it itself
    (``app.explore_exact.exact_decoder``)."""
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
        "exact": exact,
    }
    components.latent_plane(data, key="explore_plane", on_pin=_on_pin)
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
            "see its image. The picture at the cursor is the decoder's own output, computed "
            f"in your browser; untick *exact decoding* to see instead the {view.grid}×"
            f"{view.grid} grid decoded on the server, blended between cells (the fallback "
            "when the browser cannot run the decoder). A pin is decoded on the server."
        )


def num(v: float, digits: int = 2) -> str:
    """A coordinate for captions (no "-0.00")."""
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text
