"""The explorer's "Draw your own" column and the autodecoder's placement tab: a drawing or
an uploaded picture prepared like the dataset, encoded (or placed by latent optimisation)
and marked on the plane.

The drawing pad is ``app.components.draw_pad``; pictures are untrusted (``core.uploads``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import components
from app.explore_common import big_png, fit_image
from app.explore_context import Ctx, labels_arg, pick_test_image, place, thumb
from app.explore_plane import View, num
from core import explore as ex
from core.uploads import PictureError, open_picture, picture_from_data_url

PAD_SIZE = 224


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
        fit_image(big_png(x, 112), 112, caption=f"{name}, as the model sees it")
    with c2:
        png = big_png(res["recon"], 112)
        fit_image(png, 112, caption="its reconstruction")
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
        fit_image(big_png(ctx.test.images[idx], 112), 112, caption="target")
    with c2:
        fit_image(big_png(res["recon"], 112), 112, caption="decoded at the found z")
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
