"""Latent explorer: scrub the latent plane at mouse speed, pin a point, decode a grid,
interpolate, draw your own picture, and watch for posterior collapse."""

import streamlit as st

from app import explore_ui as ui
from app.common import explain, require_run
from core.runs import CheckpointError

run = require_run()
ui.reset_on_run_change(run, "ex_", ui.EXPLORE_URL_KEYS)
try:
    ctx = ui.load_context(run)
except CheckpointError as e:  # a damaged or foreign checkpoint: one sentence, no traceback
    st.error(str(e))
    st.stop()
ui.header(ctx, "Latent explorer")
explain(ui.explain_text(ctx))
ui.apply_url_once(ctx)

view = ui.plane_controls(ctx)
ui.record_new_pin(ctx, view)

plane_slot = st.container()
col_pin, col_draw, col_diag = st.columns(3, gap="medium")
extra = {"categorical": ["Categories"], "table": ["Place an image"]}.get(ctx.kind, [])
tabs = dict(zip(extra + ["Decoded grid", "Interpolation"],
                st.tabs(extra + ["Decoded grid", "Interpolation"]), strict=True))  # fmt: skip

markers = []
with col_draw:
    st.markdown("##### Draw your own")
    markers += ui.draw_section(ctx, view)
if ctx.is_table:
    with tabs["Place an image"]:
        markers += ui.placement_section(ctx, view)
with tabs["Interpolation"]:
    path, ends = ui.interpolation_section(ctx, view)
with plane_slot:
    ui.plane_component(ctx, view, ends + markers, path)
with col_pin:
    st.markdown("##### Pinned point")
    ui.pinned_section(ctx, view)
with col_diag:
    st.markdown("##### Posterior collapse")
    ui.diagnostics_section(ctx)
with tabs["Decoded grid"]:
    ui.grid_section(ctx, view)
if ctx.kind == "categorical":
    with tabs["Categories"]:
        ui.categories_section(ctx, view)

ui.write_url(ui.url_values(ctx, view))
