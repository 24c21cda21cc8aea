"""The explorer's sections that decode from the plane: the pinned point, the decoded grid
and the interpolation between two test images or two pins."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from app.explore_common import big_png, fit_image
from app.explore_context import (
    Ctx,
    extent_of,
    labels_arg,
    pick_test_image,
    sprite_png,
    test_latent,
    thumb,
)
from app.explore_plane import View, num
from core import explore as ex


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
    fit_image(png, 256, caption=f"{a} = {pin[0]:.3f}, {b} = {pin[1]:.3f}")
    with st.container(horizontal=True, gap="small"):  # wraps in a narrow column
        st.download_button(
            "Download PNG",
            png,
            file_name=f"pin_{ex.format_pair(pin)}.png",
            mime="image/png",
            key="ex_dl_pin",
            on_click="ignore",
        )
        if st.button("Unpin", key="ex_unpin"):
            st.session_state["ex_pin"] = None
            st.rerun()
    with st.expander("Its full latent vector"):
        st.code(np.array2string(z[0], precision=3, max_line_width=60, separator=", "))


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
    fit_image(
        png,
        width,
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


def interpolation_section(ctx: Ctx, view: View) -> tuple[list, list, dict | None]:
    """Returns (path on the plane, markers, ends) for the plane component; ends: {"z0",
    "z1", "method"}, which the browser follows with its slider "along A → B"."""
    pins = st.session_state.get("ex_pins", [])
    sources = ["two test images", "the last two pins"]
    src = st.radio("Between", sources, key="ex_int_src", horizontal=True)
    label = labels_arg(ctx, view.label)
    if src == "the last two pins":
        if len(pins) < 2:
            st.info("Pin two points on the plane first (click it twice).")
            return [], [], None
        z0, z1 = np.asarray(pins[-2]["z"]), np.asarray(pins[-1]["z"])
        if len(z0) != ctx.model.latent_dim or len(z1) != ctx.model.latent_dim:
            st.info("Those pins belong to another model: pin two new points.")
            return [], [], None
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
        methods = (
            ["linear", "spherical"]
            if ctx.model.has_kl and ctx.model.continuous_latent
            else ["linear"]
        )
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
    st.caption(
        "The dashed line on the plane is the path's projection onto the plane's axes; the "
        "slider *along A → B* beside the plane decodes any point of the path in your browser."
    )
    ends = {"z0": np.asarray(z0, np.float64).tolist(), "z1": np.asarray(z1, np.float64).tolist()}
    return path, marks, ends | {"method": method}
