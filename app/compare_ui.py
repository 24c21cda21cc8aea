"""Streamlit glue for the Embeddings and Compare pages: the three linked scatters, the
hover thumbnails, the selection kept in session state, URL query parameters, and the
side-by-side pieces of the run comparison (decoded grids, loss curves, metric cards).

Hover thumbnails: plotly's hover label cannot show an image, so a small
``st.components.v2`` component (inline JS, no iframe) listens to plotly's
``plotly_hover`` / ``plotly_unhover`` events on the page's embedding charts and shows the
hovered image in a floating tooltip, cut from one sprite sheet of the sample (sent once
per run and sample; each point's ``customdata`` is its position in the sample). The same
component reports a click on a dot (``plotly_click``; in plotly's drag-to-select mode a
click does not select a point), so the page can show that image beside its nearest
neighbours in each embedding. Box and lasso selections come back through
``st.plotly_chart(on_select=...)``.

The scatters are WebGL (``scattergl``): three charts of 5,000 points draw in about a third
of the time SVG takes.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from app.common import png_bytes, to_pil
from app.text import md_escape
from core import projections as proj
from core.projections import View
from core.runs import Run

# a qualitative palette with 10 well separated colours (plotly's D3)
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]  # fmt: skip
TIP_PX = 96

# ----------------------------------------------------------------------------- URL state


def query_int(name: str, default: int | None, lo: int | None = None) -> int | None:
    """An integer query parameter (``?name=123``), or ``default`` with a one-sentence
    warning when it is not a whole number (at least ``lo``)."""
    raw = st.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        if not (raw.isascii() and raw.lstrip("-").isdigit() and len(raw) < 19):
            raise ValueError
        v = int(raw)
        if lo is not None and v < lo:
            raise ValueError
        return v
    except ValueError:
        hint = f" of at least {lo}" if lo is not None else ""
        st.warning(f"Ignored ?{name}={md_escape(raw[:40])}: it must be a whole number{hint}.")
        return default


def set_query(**params) -> None:
    """Mirror page state into the URL (None removes a parameter)."""
    for k, v in params.items():
        if v is None:
            if k in st.query_params:
                del st.query_params[k]
        elif st.query_params.get(k) != str(v):
            st.query_params[k] = str(v)


# ----------------------------------------------------------------------------- hover images
HOVER_HTML = """<div class="ll-hint"></div>"""
HOVER_CSS = """.ll-hint { font-size: 0.85rem; color: var(--st-text-color); opacity: 0.7; }"""
HOVER_JS = """
export default function (component) {
  const { data, parentElement } = component;
  const hint = parentElement.querySelector('.ll-hint');
  if (hint) hint.textContent = data.hint || '';
  const S = (window.__llHover = window.__llHover || { tag: null, data: null });
  S.data = data;
  S.setTrigger = component.setTriggerValue;
  S.tag = data.tag;
  let tip = document.getElementById('ll-hover-tip');
  if (!tip) {
    tip = document.createElement('div');
    tip.id = 'll-hover-tip';
    tip.style.cssText = 'position:fixed;z-index:100000;pointer-events:none;display:none;' +
      'background:#fff;border:1px solid #888;border-radius:6px;padding:4px;' +
      'box-shadow:0 2px 8px rgba(0,0,0,.25);font:12px sans-serif;color:#222;text-align:center';
    const img = document.createElement('div');
    img.className = 'll-img';
    img.style.cssText = 'image-rendering:pixelated;background-repeat:no-repeat;margin:auto';
    const cap = document.createElement('div');
    cap.className = 'll-cap';
    tip.appendChild(img);
    tip.appendChild(cap);
    document.body.appendChild(tip);
  }
  const img = tip.querySelector('.ll-img');
  const cap = tip.querySelector('.ll-cap');
  const px = data.tip_px;
  const sx = px / data.cell_w, sy = px / data.cell_h;
  img.style.width = px + 'px';
  img.style.height = Math.round(data.cell_h * sy) + 'px';
  img.style.backgroundImage = 'url(' + data.sprite + ')';
  img.style.backgroundSize = (data.sheet_w * sx) + 'px ' + (data.sheet_h * sy) + 'px';

  const show = (ev) => {
    const d = S.data;
    const p = ev.points && ev.points[0];
    const pos = p ? Number(p.customdata) : NaN;
    if (!(pos >= 0 && pos < d.labels.length)) return;
    const col = pos % d.cols, row = Math.floor(pos / d.cols);
    img.style.backgroundPosition = (-col * d.cell_w * sx) + 'px ' + (-row * d.cell_h * sy) + 'px';
    cap.textContent = d.class_names[d.labels[pos]] + ' · #' + d.index[pos];
    tip.dataset.pos = String(pos);
    tip.style.display = 'block';
    const e = ev.event || {};
    const x = (e.clientX || 0) + 18, y = (e.clientY || 0) + 18;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.min(x, window.innerWidth - w - 4) + 'px';
    tip.style.top = Math.min(y, window.innerHeight - h - 4) + 'px';
  };
  const hide = () => { tip.style.display = 'none'; };
  // a click on a dot (plotly_click: drag-select mode does not select single points)
  const click = (ev) => {
    const p = ev.points && ev.points[0];
    const pos = p ? Number(p.customdata) : NaN;
    if (!(pos >= 0 && pos < S.data.labels.length)) return;
    S.setTrigger('clicked', { tag: S.tag, index: S.data.index[pos], pos: pos });
  };

  const attach = () => {
    document.querySelectorAll('.js-plotly-plot').forEach((gd) => {
      const meta = gd.layout && gd.layout.meta;
      if (!meta || meta.ll_tag !== S.tag || gd.__llTag === S.tag || !gd.on) return;
      if (gd.__llHandlers) {
        gd.removeListener('plotly_hover', gd.__llHandlers[0]);
        gd.removeListener('plotly_unhover', gd.__llHandlers[1]);
        gd.removeListener('plotly_click', gd.__llHandlers[2]);
      }
      gd.on('plotly_hover', show);
      gd.on('plotly_unhover', hide);
      gd.on('plotly_click', click);
      gd.__llHandlers = [show, hide, click];
      gd.__llTag = S.tag;
    });
  };
  attach();
  if (S.timer) clearInterval(S.timer);
  S.timer = setInterval(attach, 400);
  return () => { clearInterval(S.timer); S.timer = null; hide(); };
}
"""


@st.cache_resource
def _hover_component():
    return st.components.v2.component(
        "latentlab.embedding_hover", html=HOVER_HTML, css=HOVER_CSS, js=HOVER_JS
    )


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
    res = _hover_component()(data=data, key="ll_hover", on_clicked_change=lambda: None)
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


# ----------------------------------------------------------------------------- thumbnails
def thumbs(images: torch.Tensor, scale: int):
    """Each image as its own PIL image, nearest-neighbour upscaled."""
    return [to_pil(im[None], nrow=1, scale=scale, padding=0) for im in images]


def thumb_scale(image_shape) -> int:
    """Upscale factor that makes a thumbnail about 64 pixels wide."""
    return max(1, math.ceil(64 / image_shape[-1]))


def grid_png(images: torch.Tensor, nrow: int, scale: int) -> bytes:
    """A grid of images (1-pixel white gaps before upscaling) as PNG bytes."""
    return png_bytes(to_pil(images, nrow=nrow, scale=scale, padding=1))


# ----------------------------------------------------------------------------- compare page
@torch.no_grad()
def decoded_grid(model, kind: str, n: int = 64, label: int = 0, seed: int = 0):
    """Decoded images for a side-by-side look, with a caption.

    kind "samples": ``n`` prior samples (conditional models: the labels cycle 0, 1, ...).
    kind "plane": an 8 x 8 grid over latent dimensions 0 and 1, mean +/- 2 standard
    deviations of the model's prior (estimated from 4,096 prior draws), the other
    dimensions at the prior mean; only for continuous latents of 2 or more dimensions.
    Returns (images (B, C, H, W), nrow, caption) or (None, 0, reason).
    """
    g = torch.Generator().manual_seed(seed)
    y = None
    if kind == "samples":
        if model.conditional:
            n = max(1, n // model.num_classes) * model.num_classes
            y = torch.arange(n) % model.num_classes
            cap = f"{n} prior samples, one column per label (0 to {model.num_classes - 1})"
        else:
            cap = f"{n} prior samples (seed {seed})"
        nrow = model.num_classes if model.conditional and model.num_classes <= 10 else 8
        return model.sample(n, y, generator=g).cpu(), nrow, cap
    if model.latent_kind == "categorical":
        return None, 0, "a latent plane needs a continuous latent; this one is categorical"
    if model.latent_dim < 2:
        return None, 0, "a latent plane needs at least 2 latent dimensions"
    draws = model.prior_z(4096, generator=g).float()
    mu, sd = draws.mean(0), draws.std(0)
    steps = 8
    t = torch.linspace(-2, 2, steps)
    z = mu.repeat(steps * steps, 1)
    z[:, 0] = mu[0] + t.repeat(steps) * sd[0]  # columns: dimension 0
    z[:, 1] = mu[1] - t.repeat_interleave(steps) * sd[1]  # rows: dimension 1, top = high
    if model.conditional:
        y = torch.full((steps * steps,), int(label))
    cap = "latent dimensions 0 (across) and 1 (down) over the prior's mean ± 2 SD"
    if model.conditional:
        cap += f", label {label}"
    return model.decode(z.to(model.device), y).cpu(), steps, cap


def loss_figure(series: list[tuple[str, list[dict]]]) -> go.Figure:
    """Train and validation loss per epoch of several runs on one chart (solid: train,
    dashed: validation; one colour per run)."""
    fig = go.Figure()
    for i, (name, rows) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        for part, dash in (("train_loss", "solid"), ("val_loss", "dash")):
            pts = [(r["epoch"], r[part]) for r in rows if r.get(part) is not None]
            if not pts:
                continue
            x, y = zip(*pts, strict=True)
            fig.add_trace(go.Scatter(
                x=x, y=y, mode="lines+markers", name=f"{name} · {part.split('_')[0]}",
                line=dict(color=color, dash=dash), marker=dict(size=5),
            ))  # fmt: skip
    fig.update_layout(
        height=360, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="epoch",
        yaxis_title="loss per image (nats)", legend=dict(orientation="h", y=-0.2),
        hovermode="x unified",
    )  # fmt: skip
    return fig


# metric cards: (label, getter, format, lower is better)
CARDS = [
    ("Loss (BCE + KL)", lambda e: e.get("loss", {}).get("bce_kl"), "{:.2f}", True),
    ("Reconstruction (BCE)", lambda e: e.get("loss", {}).get("bce"), "{:.2f}", True),
    ("KL", lambda e: e.get("loss", {}).get("kl"), "{:.2f}", True),
    ("SSIM", lambda e: e.get("ssim"), "{:.3f}", False),
    ("KNN accuracy (model)", lambda e: e.get("knn", {}).get("model"), "{:.3f}", False),
    ("KNN accuracy (PCA, same dims)", lambda e: e.get("knn", {}).get("pca"), "{:.3f}", False),
    ("Active units", lambda e: e.get("active_units"), "{}", False),
]


def metric_cards(ev: dict, other: dict | None = None) -> None:
    """Two columns of st.metric cards from an evaluation; with ``other``, each card shows
    the difference to it (green when better)."""
    cols = st.columns(2)
    for i, (label, get, fmt, lower_better) in enumerate(CARDS):
        v = get(ev)
        if v is None:
            continue
        delta = None
        if other is not None and get(other) is not None and label != "Active units":
            d = v - get(other)
            delta = f"{d:+.3f}"
        elif other is not None and get(other) is not None:
            delta = f"{v - get(other):+d}"
        if label == "Active units" and ev.get("latent_dim"):
            value = f"{v} / {ev['latent_dim']}"
        else:
            value = fmt.format(v)
        cols[i % 2].metric(label, value, delta=delta,
                           delta_color="inverse" if lower_better else "normal")  # fmt: skip
