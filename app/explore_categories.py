"""The explorer's *Categories* tab for Gumbel-softmax latents: flip categories and decode,
relaxed samples at a temperature. The grid is ``app.components.category_grid``."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from app import components
from app.explore_common import big_png, fit_image, show_images
from app.explore_context import Ctx, labels_arg, pick_test_image, thumb
from app.explore_plane import View
from app.url_state import parse_int
from core import explore as ex


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
        fv = parse_int(str(flip.get("v")), 0, nv - 1) if isinstance(flip, dict) else None
        fk = parse_int(str(flip.get("k")), 0, k - 1) if isinstance(flip, dict) else None
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
            fit_image(big_png(ctx.test.images[idx], 128), 128, caption="test image")
        with b:
            png = big_png(img, 128)
            fit_image(png, 128, caption="decoded from the chosen categories")
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
