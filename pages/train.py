"""Train: set up a model, launch it as its own process, watch it learn, cancel or resume it.

The run lives in the runs folder, not in this page: reloading, a second tab or a restarted
server finds it again there.
"""

import streamlit as st

from app.common import explain, runs_root
from app.text import md_escape
from app.train_form import check, train_form
from app.train_monitor import LIVE_STATES, finished_panel, live_panel, run_option_label, user_runs
from core import jobs

st.title("Train a model")
explain(
    """
**The form** sets up one training run. The *model* turns each image into a short code
*z* (its *latent size* L numbers) and back. *Epochs* are passes over the training set,
the *batch size* is how many images each optimiser step averages over, the *learning
rate* how big each step is.

**The loss** has two parts, drawn separately on the right:
- *Reconstruction*: how far the decoded image is from the input (BCE, MSE or 1 − SSIM),
  in nats per image. It falls as the model learns to copy images through the bottleneck.
- *KL*: how far the encoder's distribution over *z* is from the prior N(0, I) (with a
  *learned prior per label*, from that label's Gaussian). It keeps the codes packed
  where the prior puts them, so that any point you pick there decodes to a plausible
  image. β multiplies it; the *KL warm-up* ramps β up from 0 so the model first
  learns to reconstruct.

*Train* is measured on the training images, *validation* on held-out test images: when
validation rises while train keeps falling, the model is memorising.

**The strip** under the curves shows 8 fixed test images (top) and what the model makes
of them after the latest epoch (bottom).

Training runs in its own process: you can leave this page, reload it or open a second tab;
the run keeps going and this page finds it again.
"""
)

form_col, watch_col = st.columns([2, 3], gap="large")

with form_col:
    st.subheader("New run")
    cfg, model_args, name = train_form()
    if st.button("Start training", type="primary", icon=":material/play_arrow:"):
        problem = check(cfg, model_args)
        if problem:
            st.error(problem)
        else:
            try:
                run = jobs.start(cfg, model_args, name, root=runs_root())
            except (ValueError, OSError) as e:  # refused setting, full disk: one sentence
                st.error(md_escape(str(e)))
            else:
                st.session_state["train.requested"] = run.id
                st.toast(f"Started {md_escape(run.name)}.")

with watch_col:
    runs = user_runs()
    if not runs:
        st.subheader("Your runs")
        st.info("No runs yet: set up a model on the left and press **Start training**.")
        st.stop()
    ids = [r.id for r in runs]
    states = {r.id: jobs.refresh(r).get("state") for r in runs}
    ss = st.session_state
    requested = ss.pop("train.requested", None)
    if requested in ids:
        ss["train.watch"] = requested
    if ss.get("train.watch") not in ids:
        live = [i for i in ids if states[i] in LIVE_STATES]
        ss["train.watch"] = live[0] if live else ids[0]
    labels = {r.id: run_option_label(r) for r in runs}
    busy = sum(s in LIVE_STATES for s in states.values())
    st.subheader("Watching")
    watched = st.selectbox(
        "Run",
        ids,
        key="train.watch",
        format_func=lambda i: labels.get(i, i),
        persist_state="session",
        help=f"Your runs, newest first; {busy} training now." if busy else "Your runs.",
    )
    run = next(r for r in runs if r.id == watched)
    if states.get(watched) in LIVE_STATES:
        live_panel(watched)
    else:
        finished_panel(run)
