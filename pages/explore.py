"""Latent explorer: scrub the latent plane at mouse speed, pin a point, decode a grid,
interpolate, draw your own picture, and watch for posterior collapse."""

import streamlit as st

from app import url_state
from app.common import explain, require_run
from app.explore_categories import categories_section
from app.explore_collapse import diagnostics_section
from app.explore_common import reset_on_run_change
from app.explore_context import header, load_context
from app.explore_draw import draw_section, placement_section
from app.explore_exact import exact_decoder, preload_decoder
from app.explore_page import EXPLORE_URL_KEYS, apply_url_once, explain_text, url_values
from app.explore_pinned import grid_section, interpolation_section, pinned_section
from app.explore_plane import plane_component, plane_controls, record_new_pin
from core.runs import CheckpointError

run = require_run()
reset_on_run_change(run, "ex_", EXPLORE_URL_KEYS)
try:
    decoder = preload_decoder(run)  # the browser fetches it while the plane is computed
    ctx = load_context(run)
except CheckpointError as e:  # a damaged or foreign checkpoint: one sentence, no traceback
    st.error(str(e))
    st.stop()
header(ctx, "Latent explorer")
explain(explain_text(ctx))
apply_url_once(ctx)

view = plane_controls(ctx)
record_new_pin(ctx, view)

plane_slot = st.container()
col_pin, col_draw, col_diag = st.columns(3, gap="medium")
extra = ([] if ctx.model.continuous_latent else ["Categories"]) + (
    ["Place an image"] if ctx.is_table else []
)
tabs = dict(zip(extra + ["Decoded grid", "Interpolation"],
                st.tabs(extra + ["Decoded grid", "Interpolation"]), strict=True))  # fmt: skip

markers = []
with col_draw:
    st.markdown("##### Draw your own")
    markers += draw_section(ctx, view)
if ctx.is_table:
    with tabs["Place an image"]:
        markers += placement_section(ctx, view)
with tabs["Interpolation"]:
    path, ends, interp = interpolation_section(ctx, view)
with plane_slot:
    plane_component(ctx, view, ends + markers, path, exact_decoder(ctx, view, decoder, interp))
with col_pin:
    st.markdown("##### Pinned point")
    pinned_section(ctx, view)
with col_diag:
    st.markdown("##### Posterior collapse")
    diagnostics_section(ctx)
with tabs["Decoded grid"]:
    grid_section(ctx, view)
if not ctx.model.continuous_latent:
    with tabs["Categories"]:
        categories_section(ctx, view)

url_state.write(url_values(ctx, view))
