"""The Embeddings page's charts: the three linked scatters, the hover thumbnails and the
selection read back from plotly.

Hover thumbnails: plotly's hover label cannot show an image, so a small
``st.components.v2`` component (``app.components.embedding_hover``: JS in
``app/js/hover.js``, no iframe) listens to plotly's ``plotly_hover`` / ``plotly_unhover``
events on the page's embedding charts and shows the hovered image in a floating tooltip,
cut from one sprite sheet of the sample (sent once per run and sample; each point's
``customdata`` is its position in the sample). The same component reports a click on a dot
(``plotly_click``; in plotly's drag-to-select mode a click does not select a point), so the
page can show that image beside its nearest neighbours in each embedding. Box and lasso
selections come back through ``st.plotly_chart(on_select=...)``.

The scatters are WebGL (``scattergl``): three charts of 5,000 points draw in about a third
of the time SVG takes.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import components
from app.compare_common import PALETTE
from core import projections as proj
from core.projections import View
from core.runs import Run

TIP_PX = 96


@st.cache_data(max_entries=8, show_spinner=False)
def _sprite(run_path: str, n: int, seed: int, stamp: str) -> dict:
    """The sample's thumbnail sheet (``core.projections.thumbnail_sheet``) as a data URL
    with its geometry. ``stamp`` changes when the sheet file does."""
    raw, mime, geometry = proj.thumbnail_sheet(Run(Path(run_path)), n, seed)
    return dict(geometry, sprite=f"data:{mime};base64,{base64.b64encode(raw).decode()}")


def hover_thumbnails(run: Run, n: int, index, labels, class_names, tag: str, hint: str):
    """Mount the hover component for the charts whose ``layout.meta.ll_tag`` is ``tag``.

    Returns the dot clicked in this rerun, ``{"index": test index, "pos": sample
    position}``, or None."""
    sprite = _sprite(str(run.path), n, 0, proj.checkpoint_signature(run))
    data = dict(sprite, tag=tag, tip_px=TIP_PX, hint=hint, index=[int(v) for v in index],
                labels=[int(v) for v in labels], class_names=list(class_names))  # fmt: skip
    res = components.embedding_hover(data, key="ll_hover")
    clicked = getattr(res, "clicked", None)
    if isinstance(clicked, dict) and clicked.get("tag") == tag:
        return {"index": int(clicked["index"]), "pos": int(clicked["pos"])}
    return None


# ----------------------------------------------------------------------------- scatters
def scatter(
    view: View,
    labels: np.ndarray,
    class_names: list[str],
    tag: str,
    selected: Iterable[int] | None = None,
    point: int | None = None,
    near: np.ndarray | None = None,
    height: int = 460,
    webgl: bool = True,
) -> go.Figure:
    """The 2-D view as a plotly scatter, one trace per class (colours as in
    :func:`legend_html`); each point's ``customdata`` is its sample position.

    Built from plain dicts without plotly's per-property validation (a second or more
    for 3 x 5,000 points otherwise); the arrays go out as binary typed arrays.

    Args:
        selected: sample positions to highlight (the others are dimmed), or None.
        point: sample position of the clicked image (a black star), or None.
        near: sample positions of its nearest neighbours in this view (black rings).
    """
    n = len(labels)
    size = 4 if n > 3000 else 6 if n > 800 else 8
    pos = np.arange(n, dtype=np.int32)
    sel = None if selected is None else np.isin(pos, np.fromiter(selected, int))
    xy = view.xy.astype(np.float32)
    kind = "scattergl" if webgl else "scatter"
    traces = []
    for c, name in enumerate(class_names):
        m = labels == c
        if not m.any():
            continue
        tr = dict(
            type=kind, x=xy[m, 0], y=xy[m, 1], mode="markers", name=name,
            showlegend=False, customdata=pos[m],
            marker=dict(size=size, color=PALETTE[c % len(PALETTE)], opacity=0.8),
            hovertemplate="<b>%{fullData.name}</b><extra></extra>",
        )  # fmt: skip
        if sel is not None:
            tr.update(selectedpoints=np.flatnonzero(sel[m]).tolist(),
                      selected=dict(marker=dict(opacity=1.0)),
                      unselected=dict(marker=dict(opacity=0.07)))  # fmt: skip
        traces.append(tr)
    if point is not None:
        if near is not None and len(near):
            traces.append(dict(
                type="scatter", x=xy[near, 0], y=xy[near, 1], mode="markers",
                name=f"{len(near)} nearest (full-dim)", showlegend=False,
                customdata=pos[near], hovertemplate="neighbour<extra></extra>",
                marker=dict(size=size + 8, color="rgba(0,0,0,0)",
                            line=dict(color="black", width=2)),
            ))  # fmt: skip
        traces.append(dict(
            type="scatter", x=xy[[point], 0], y=xy[[point], 1], mode="markers",
            name="clicked image", showlegend=False, customdata=pos[[point]],
            hovertemplate="clicked image<extra></extra>",
            marker=dict(size=16, symbol="star", color="black", line=dict(color="white", width=1)),
        ))  # fmt: skip
    layout = dict(
        height=height, margin=dict(l=10, r=10, t=10, b=10), dragmode="select",
        meta={"ll_tag": tag, "view": view.name}, uirevision=f"{tag}-{view.name}",
        xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False),
        hoverlabel=dict(bgcolor="white"),
    )  # fmt: skip
    return go.Figure(data=traces, layout=layout, _validate=False)


def legend_html(class_names: list[str], with_point: bool = False) -> str:
    """One shared legend for the three charts: a colour chip per class (and the markers of
    a clicked image and its neighbours)."""
    chip = (
        '<span style="display:inline-flex;align-items:center;margin-right:14px;'
        'white-space:nowrap"><span style="width:11px;height:11px;border-radius:50%;'
        'background:{c};display:inline-block;margin-right:5px;{b}"></span>{t}</span>'
    )
    items = [chip.format(c=PALETTE[i % len(PALETTE)], b="", t=html.escape(name))
             for i, name in enumerate(class_names)]  # fmt: skip
    if with_point:
        items.append(chip.format(c="black", b="", t="★ clicked image"))
        items.append(chip.format(c="transparent", b="border:2px solid black;",
                                 t="its 8 nearest neighbours (full-dim)"))  # fmt: skip
    return f'<div style="font-size:0.85rem;line-height:1.9">{"".join(items)}</div>'


def _position(customdata) -> int | None:
    """The sample position a point carries (a number; a list or dict when it went through
    a JSON encoder as an array)."""
    if isinstance(customdata, list | tuple):
        customdata = customdata[0] if customdata else None
    elif isinstance(customdata, dict):
        customdata = customdata.get("0")
    return None if customdata is None else int(customdata)


def selection_of(event) -> tuple[str, list[int]]:
    """Read a plotly selection event: ("region", positions) for a box or lasso (or a
    shift-click of several points), ("point", [pos]) for a click on one point, ("clear", [])
    when the selection was emptied."""
    sel = event.get("selection", {}) if event else {}
    pts = sel.get("points", []) or []
    positions = sorted({_position(p.get("customdata")) for p in pts} - {None})
    if sel.get("box") or sel.get("lasso"):
        return "region", positions
    if len(positions) == 1:
        return "point", positions
    if not positions:
        return "clear", []
    return "region", positions


def share(part: int, whole: int) -> str:
    """A share as a whole percentage, "<1%" for a small non-zero one."""
    return "<1%" if 0 < part < whole / 100 else f"{part / whole:.0%}"
