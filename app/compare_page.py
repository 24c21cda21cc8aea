"""The Compare page's pieces: the two run pickers (``?other=`` in the URL), decoded grids
and reconstructions side by side, loss curves of both runs on one chart, and metric cards
with the difference to the first run (an unevaluated run is evaluated in the background on
request: ``core.jobs.start_evaluation``)."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
import torch

from app import url_state
from app.common import run_dataset, run_label
from app.compare_common import PALETTE, grid_png, thumb_scale
from app.evaluation_ui import evaluation_job, start_evaluation_clicked
from app.text import html_escape, md_escape
from core import jobs
from core import projections as proj
from core.runs import Run


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
    if not model.continuous_latent:
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


# ----------------------------------------------------------------------------- page sections
def pick_runs(runs: list) -> tuple:
    """The two run pickers (the first defaults to the sidebar's run, the second to
    ``?other=``); returns the two runs."""
    ids = [r.id for r in runs]
    by_id = {r.id: r for r in runs}
    labels = {r.id: run_label(r) for r in runs}

    current = st.session_state.get("run_id")
    if "cmp_other_kept" not in st.session_state:  # a fresh page: take ?other= from the URL
        wanted = url_state.raw("other")
        if wanted and wanted not in ids:
            st.warning(
                f"There is no run {md_escape(repr(wanted)[:80])} (from ?other=): pick the second "
                "run below."
            )
        st.session_state["cmp_other_kept"] = wanted if wanted in ids else None

    left, right = st.columns(2)
    a_id = left.selectbox(
        "First run", ids, index=ids.index(current) if current in ids else 0,
        format_func=lambda i: labels[i], help="Defaults to the run picked in the sidebar.",
    )  # fmt: skip
    b_default = st.session_state["cmp_other_kept"]
    if b_default not in ids:
        b_default = next(i for i in ids if i != a_id)
    if "cmp_other" not in st.session_state:  # widget state is dropped while another page shows
        st.session_state["cmp_other"] = b_default
    b_id = right.selectbox("Second run", ids, key="cmp_other", format_func=lambda i: labels[i])
    st.session_state["cmp_other_kept"] = b_id
    url_state.write({"other": b_id})
    A, B = by_id[a_id], by_id[b_id]
    if a_id == b_id:
        st.info("Both pickers name the same run: pick a different second run to compare.")
    return A, B


def loss_section(A: Run, B: Run) -> None:
    st.subheader("Loss curves")
    ma, mb = A.metrics(), B.metrics()
    if not ma and not mb:
        st.info("Neither run has finished an epoch yet.")
    else:
        curves = [(f"A: {html_escape(A.name)}", ma), (f"B: {html_escape(B.name)}", mb)]
        st.plotly_chart(loss_figure(curves), key="cmp_loss")


def metrics_section(A: Run, B: Run) -> None:
    st.subheader("Test metrics")
    cols = st.columns(2)
    shown = {}
    for col, tag, run in zip(cols, "AB", (A, B), strict=True):
        with col:
            st.markdown(f"**{tag}: {md_escape(run.name)}**")
            refused = st.session_state.pop(f"cmp_eval_error_{tag}", None)
            if refused:  # set by the button's callback: why the evaluation did not start
                st.error(refused)
            # one slot under the name: the offer to evaluate, the job's progress or the
            # metrics, each replacing the one before (never one above another)
            slot = st.empty()
            shown[tag] = (slot, evaluation_or_offer(slot, tag, run))
    for tag in "AB":
        slot, ev = shown[tag]
        if ev is None:
            continue
        with slot.container():
            metric_cards(ev, shown["A"][1] if tag == "B" else None)
            st.caption(f"{ev.get('test_images', '?'):,} test images · epoch "
                       f"{ev.get('epoch', '?')} · {ev.get('parameters', 0):,} parameters · "
                       f"KNN k={ev.get('knn', {}).get('k', 5)} on "
                       f"{ev.get('knn', {}).get('model_dim')}-D embeddings")  # fmt: skip


def evaluation_or_offer(slot, tag: str, run: Run) -> dict | None:
    """The run's evaluation; else, drawn in ``slot``, why there is none: no checkpoint, the
    job's progress (the page reruns when it ends), or "Not evaluated yet" with a button
    whose click starts the job before the page is drawn again."""
    ev = run.evaluation()
    if ev is not None:
        return ev
    if not run.has_checkpoint():
        slot.info("No checkpoint yet: wait for its first epoch.")
        return None
    state = jobs.evaluation_state(run)
    ev = run.evaluation()  # a job that ended between the two reads wrote its result first
    if ev is not None:
        return ev
    with slot.container():
        if evaluation_job(run, state)["state"] in jobs.EVAL_LIVE:
            return None
        st.caption("Not evaluated yet (loss parts, SSIM, KNN accuracy, active units on the "
                   "test split).")  # fmt: skip
        st.button(f"Evaluate {tag}", key=f"cmp_eval_{tag}", on_click=start_evaluation_clicked,
                  args=(run, f"cmp_eval_error_{tag}"))  # fmt: skip
    return None


def reconstructions_section(A: Run, B: Run, model_a, model_b) -> None:
    st.subheader("Reconstructions of the same test images")
    data_a, data_b = proj.dataset_of(A)[0], proj.dataset_of(B)[0]
    if data_a != data_b:
        st.info(f"The runs were trained on different datasets ({data_a} and {data_b}), so "
                "there are no common test images to reconstruct.")  # fmt: skip
    else:
        test = run_dataset(A, "test")
        idx = torch.as_tensor(proj.sample_index(len(test), 12, seed=1))
        x, y = test.images[idx], test.labels[idx]
        scale = thumb_scale(test.image_shape)
        with torch.no_grad():
            rec_a = model_a.reconstruct(x, y if model_a.conditional else None).cpu()
            rec_b = model_b.reconstruct(x, y if model_b.conditional else None).cpu()
        for name, imgs in (
            ("Originals", x),
            (f"A: {md_escape(A.name)}", rec_a),
            (f"B: {md_escape(B.name)}", rec_b),
        ):
            st.image(grid_png(imgs, 12, scale), caption=name)


def decoded_grids_section(A: Run, B: Run, model_a, model_b) -> None:
    st.subheader("Decoded grids")
    g1, g2 = st.columns([2, 1])
    kind = g1.radio("Show", ["Prior samples", "Latent plane"], horizontal=True,
                    help="A plane varies latent dimensions 0 and 1; the others stay at the "
                    "prior's mean.")  # fmt: skip
    label = 0
    if model_a.conditional or model_b.conditional:
        names = run_dataset(A if model_a.conditional else B, "test").class_names
        label = g2.selectbox("Label (conditional models)", range(len(names)),
                             format_func=lambda i: names[i])  # fmt: skip
    cols = st.columns(2)
    for col, tag, run, model in zip(cols, "AB", (A, B), (model_a, model_b), strict=True):
        with col:
            mode = "samples" if kind == "Prior samples" else "plane"
            imgs, nrow, cap = decoded_grid(model, mode, 64, label)
            st.markdown(f"**{tag}: {md_escape(run.name)}**")
            if imgs is None:
                st.info(f"No plane for this run: {cap}.")
            else:
                st.image(grid_png(imgs, nrow, thumb_scale(model.image_shape)), caption=cap)
