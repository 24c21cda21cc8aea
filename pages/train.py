"""Train: set up a model, launch it as its own process, watch it learn, cancel or resume it.

The run lives in the runs folder, not in this page: reloading, a second tab or a restarted
server finds it again there.
"""

import streamlit as st

from app.common import explain, find_run, runs_root
from app.train_form import load_run_settings, new_run
from app.train_monitor import (
    LIVE_STATES,
    choose_watched,
    finished_panel,
    live_panel,
    run_states,
    scroll_to_watching,
    user_runs,
    watch_picker,
)

st.title("Train a model")
explain(
    """
**The form** sets up one training run. The *model* turns each image into a short code
*z* (its *latent size* L numbers) and back. *Epochs* are passes over the training set,
the *batch size* is how many images each optimiser step averages over, the *learning
rate* how big each step is.

**The loss** has two parts, drawn separately under the run's progress:
- *Reconstruction*: how far the decoded image is from the input (BCE, MSE or 1 − SSIM),
  in nats per image. It falls as the model learns to copy images through the bottleneck.
- *KL*: how far the encoder's distribution over *z* is from the prior N(0, I) (with a
  *learned prior per label*, from that label's Gaussian). It keeps the codes packed
  where the prior puts them, so that any point you pick there decodes to a plausible
  image. β multiplies it; the *KL warm-up* ramps β up from 0 so the model first
  learns to reconstruct.

*Train* is measured on the training images, *validation* on held-out test images: when
validation rises while train keeps falling, the model is memorising.

**The strip** under the curves shows fixed test images, the first of each class (top),
and what the model makes of them after the latest epoch (bottom).

Training runs in its own process: you can leave this page, reload it or open a second tab;
the run keeps going and this page finds it again.
"""
)

ss = st.session_state
if "train.toast" in ss:  # said after the rerun that shows the run just started
    st.toast(ss.pop("train.toast"))
requested = ss.pop("train.requested", None)  # a run just started, here or on Home
if requested and (started := find_run(requested)) is not None:
    load_run_settings(started)  # the form shows what is training
linked = ss.pop("linked_run", None)  # the run a link opened the session on (app/main.py)
if not requested and linked:
    requested = linked


runs = user_runs()
states = run_states(runs)
watched = choose_watched(runs, states, requested) if runs else None
if watched is not None and states[watched] in LIVE_STATES:
    # a run is training: its progress and curves first, the form folded away below
    run = watch_picker(runs, states)
    live_panel(run.id)
    if requested == run.id:
        scroll_to_watching()
    with st.expander("New run", icon=":material/add:"):
        new_run(runs_root())
else:
    form_col, watch_col = st.columns(2, gap="large")
    with form_col:
        st.subheader("New run")
        new_run(runs_root())
    with watch_col:
        if not runs:
            st.subheader("Your runs")
            st.info("No runs yet: set up a model on the left and press **Start training**.")
        else:
            finished_panel(watch_picker(runs, states))
