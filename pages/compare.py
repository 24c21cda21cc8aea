"""Compare runs: two runs side by side, their reconstructions of the same test images,
decoded grids, loss curves on one chart and their metric cards.

URL: ``?run=<first run>&other=<second run>`` reopens the same comparison.
"""

from __future__ import annotations

import streamlit as st
import torch

from app import compare_ui as ui
from app.common import explain, get_model, run_dataset, run_label, usable_runs
from app.text import html_escape, md_escape
from core import projections as proj

st.title("Compare two runs")
explain("""
Pick two runs to put them side by side:

- **Reconstructions**: the same test images passed through both models (only when both
  were trained on the same dataset). Sharper and more faithful is better.
- **Decoded grids**: what each decoder draws from its prior (random samples) or across a
  plane of two latent dimensions. A good generative model draws plausible images
  everywhere.
- **Loss curves**: training (solid) and validation (dashed) loss per epoch, in nats per
  image. A validation curve that rises while training falls means over-fitting.
- **Metric cards**: the test-split evaluation of each run; the second run's cards show the
  difference to the first (green: better).
""")

runs = usable_runs()
if len(runs) < 2:
    st.info("Comparing needs two runs: train another on the **Train** page.")
    st.stop()
ids = [r.id for r in runs]
by_id = {r.id: r for r in runs}
labels = {r.id: run_label(r) for r in runs}

current = st.session_state.get("run_id")
if "cmp_other_kept" not in st.session_state:  # a fresh page: take ?other= from the URL
    wanted = st.query_params.get("other")
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
ui.set_query(other=b_id)
A, B = by_id[a_id], by_id[b_id]
if a_id == b_id:
    st.info("Both pickers name the same run: pick a different second run to compare.")

# ---- loss curves
st.subheader("Loss curves")
ma, mb = A.metrics(), B.metrics()
if not ma and not mb:
    st.info("Neither run has finished an epoch yet.")
else:
    curves = [(f"A: {html_escape(A.name)}", ma), (f"B: {html_escape(B.name)}", mb)]
    st.plotly_chart(ui.loss_figure(curves), key="cmp_loss")

# ---- metric cards
st.subheader("Test metrics")
evals = {}
cols = st.columns(2)
for col, tag, run in zip(cols, "AB", (A, B), strict=True):
    with col:
        st.markdown(f"**{tag}: {md_escape(run.name)}**")
        ev = run.evaluation()
        evals[tag] = ev
        if ev is not None:
            continue
        if not run.has_checkpoint():
            st.info("No checkpoint yet: wait for its first epoch.")
            continue
        st.caption("Not evaluated yet (loss parts, SSIM, KNN accuracy, active units on the "
                   "test split).")  # fmt: skip
        if st.button(f"Evaluate {tag}", key=f"cmp_eval_{tag}"):
            from core.evaluate import evaluate  # heavy import: only when asked

            with st.spinner(f"Evaluating {md_escape(run.name)} on its test split…"):
                evals[tag] = evaluate(run.path)
for col, tag in zip(cols, "AB", strict=True):
    if evals[tag] is not None:
        with col:
            ui.metric_cards(evals[tag], evals["A"] if tag == "B" else None)
            ev = evals[tag]
            st.caption(f"{ev.get('test_images', '?'):,} test images · epoch "
                       f"{ev.get('epoch', '?')} · {ev.get('parameters', 0):,} parameters · KNN "
                       f"k={ev.get('knn', {}).get('k', 5)} on {ev.get('knn', {}).get('model_dim')}"
                       "-D embeddings")  # fmt: skip

# ---- the models
missing = [r.name for r in (A, B) if not r.has_checkpoint()]
if missing:
    st.info(f"{' and '.join(missing)} has no checkpoint yet, so there is nothing to decode.")
    st.stop()
model_a, _ = get_model(A)
model_b, _ = get_model(B)

st.subheader("Reconstructions of the same test images")
data_a, data_b = proj.dataset_of(A)[0], proj.dataset_of(B)[0]
if data_a != data_b:
    st.info(f"The runs were trained on different datasets ({data_a} and {data_b}), so there "
            "are no common test images to reconstruct.")  # fmt: skip
else:
    test = run_dataset(A, "test")
    idx = torch.as_tensor(proj.sample_index(len(test), 12, seed=1))
    x, y = test.images[idx], test.labels[idx]
    scale = ui.thumb_scale(test.image_shape)
    with torch.no_grad():
        rec_a = model_a.reconstruct(x, y if model_a.conditional else None).cpu()
        rec_b = model_b.reconstruct(x, y if model_b.conditional else None).cpu()
    for name, imgs in (
        ("Originals", x),
        (f"A: {md_escape(A.name)}", rec_a),
        (f"B: {md_escape(B.name)}", rec_b),
    ):
        st.image(ui.grid_png(imgs, 12, scale), caption=name)

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
        imgs, nrow, cap = ui.decoded_grid(model, mode, 64, label)
        st.markdown(f"**{tag}: {md_escape(run.name)}**")
        if imgs is None:
            st.info(f"No plane for this run: {cap}.")
        else:
            st.image(ui.grid_png(imgs, nrow, ui.thumb_scale(model.image_shape)), caption=cap)
