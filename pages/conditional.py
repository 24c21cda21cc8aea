"""Conditional sampling: ask a conditional model for a class, see one z drawn as every
class, move a test image's style to other classes, and read the conditional-sample
accuracy."""

import streamlit as st

from app import conditional_controls as controls
from app import conditional_figures as figures
from app import conditional_page as ui
from app.common import explain, get_model, require_run, run_dataset
from app.explore_common import class_names, reset_on_run_change
from app.text import md_escape
from core.runs import CheckpointError

run = require_run()
reset_on_run_change(run, "cd_", ("class", "temperature", "draw"))
try:
    model, ckpt = get_model(run)
except CheckpointError as e:  # a damaged or foreign checkpoint: one sentence, no traceback
    st.error(str(e))
    st.stop()
st.title("Conditional sampling")
if not model.conditional:
    ui.not_conditional(run, model)
    st.stop()

test = run_dataset(run, "test")
names = class_names(ckpt, list(test.class_names), int(model.num_classes))
st.caption(f"**{md_escape(run.name)}** · conditional on {model.num_classes} labels")
explain(
    "A conditional model's decoder takes a label as well as a latent vector *z*. Fix the "
    "label and draw *z* from the prior: you get new images of that class. Fix *z* and change "
    "the label: the same *style* drawn as another class. The grid shows this: each column "
    "is one *z*, each row one class. A model with a *learned prior per label* (the cvae "
    "preset) draws each label's *z* from that label's own Gaussian; a column of the grid is "
    "then the same place in each label's Gaussian."
)
pick_class, pick_t = st.columns(2)
with pick_class:
    label = controls.class_picker(names)
with pick_t:
    temperature = controls.temperature_picker(model)
evaluation = run.evaluation()  # read once for the Samples and Sample accuracy tabs
samples, grid, swap, acc = st.tabs(["Samples", "Class × z grid", "Class swap", "Sample accuracy"])
with samples:
    draw = controls.z_source_picker(model)
    density = controls.label_density_for(run, model) if draw == "codes" else None
    ui.samples_section(model, names, label, temperature, evaluation, density)
with grid:
    ui.class_grid_section(model, names, temperature)
with swap:
    ui.class_swap_section(model, test, names, label, density)
with acc:
    figures.accuracy_section(run, names, test.image_shape, evaluation)
