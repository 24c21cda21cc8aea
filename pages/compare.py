"""Compare runs: two runs side by side, their reconstructions of the same test images,
decoded grids, loss curves on one chart and their metric cards.

URL: ``?run=<first run>&other=<second run>`` reopens the same comparison.
"""

from __future__ import annotations

import streamlit as st

from app import compare_page as ui
from app.common import explain, get_model, usable_runs
from app.text import md_escape

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
A, B = ui.pick_runs(runs)
ui.loss_section(A, B)
ui.metrics_section(A, B)

# ---- the models
missing = [r.name for r in (A, B) if not r.has_checkpoint()]
if missing:
    st.info(
        f"{md_escape(' and '.join(missing))} has no checkpoint yet, so there is nothing to decode."
    )
    st.stop()
model_a, _ = get_model(A)
model_b, _ = get_model(B)
ui.reconstructions_section(A, B, model_a, model_b)
ui.decoded_grids_section(A, B, model_a, model_b)
