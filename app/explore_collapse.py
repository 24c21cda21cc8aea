"""The explorer's posterior-collapse panel: active units and the KL (or variance) of each
latent unit."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from app.explore_context import Ctx
from core import explore as ex


@st.cache_data(max_entries=8, show_spinner=False)
def _diagnostics(_space: dict, key: str) -> dict:
    return ex.diagnostics(None, _space)


@st.cache_resource(max_entries=8, show_spinner=False)
def _diagnostics_figure(key: str, unit: str, measure: str, values: tuple, active: tuple):
    """The bar chart of KL (or variance) per unit; shared and never modified."""
    prefix = "var " if unit == "variable" else "z"
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
    d = _diagnostics(ctx.space, ctx.key)
    st.metric(
        f"Active {d['unit']}s",
        f"{d['active']} / {d['units']}",
        help=f"A {d['unit']} is active when its {d['rule']}.",
    )
    fig = _diagnostics_figure(
        ctx.key, d["unit"], d["measure"], tuple(d["values"]), tuple(d["active_mask"])
    )
    st.plotly_chart(fig, key="ex_diag_chart", config={"displayModeBar": False})
    where = "the latent table's rows" if ctx.is_table else "the encoded test set"
    st.caption(f"Blue: active, red: collapsed. Computed on {where}.")
    if ctx.model.has_kl and ctx.model.continuous_latent:
        st.caption(
            "A dimension whose KL is near 0 carries no information about the image: "
            "the encoder ignores it and the decoder learns to ignore it too "
            "(posterior collapse)."
        )
