"""The Conditional page's controls, each mirrored in the link: the class (?class=), the
sampling temperature (?temperature=), and where the Samples and Class swap tabs draw z from
(?draw=codes: each label's own codes, ``core.label_density``, with the density they need,
fitted once per model). The tabs' sections are in ``app.conditional_page``."""

from __future__ import annotations

import streamlit as st

from app import url_state
from app.common import get_dataset
from app.conditional_page import class_label
from app.text import md_escape
from core import label_density
from core.conditional_eval import TRADEOFF_TEMPERATURES
from core.models import MAX_SAMPLING_TEMPERATURE
from core.runs import Run


def class_picker(names: list[str]) -> int:
    """The class to sample, mirrored in the URL as ?class=<index>."""
    if not st.session_state.get("cd_url_done"):
        st.session_state["cd_url_done"] = True
        wanted = url_state.read_int("class", None, 0, len(names) - 1, warn=False)
        if wanted is not None:
            st.session_state["cd_class"] = wanted
    label = st.selectbox(
        "Class",
        list(range(len(names))),
        key="cd_class",
        format_func=lambda c: class_label(c, names),
    )
    url_state.write({"class": label})
    return int(label)


def _parse_temperature(v: str) -> float | None:
    t = url_state.parse_float(v, MAX_SAMPLING_TEMPERATURE)
    return t if t is not None and t >= 0 else None


def temperature_picker(model) -> float:
    """The sampling temperature for the Samples and Class × z tabs (1: the prior itself),
    mirrored in the URL as ?temperature=<t> when it is not 1. A categorical latent has no
    spread to scale: 1, and no slider."""
    if not model.continuous_latent:
        url_state.forget("temperature")
        return 1.0
    if not st.session_state.get("cd_temp_url_done"):
        st.session_state["cd_temp_url_done"] = True
        wanted = url_state.read("temperature", _parse_temperature)  # refused: ignored
        if wanted is not None:
            st.session_state["cd_temp"] = round(round(wanted / 0.05) * 0.05, 2)
    st.session_state.setdefault("cd_temp", 1.0)
    t = st.slider(
        "Temperature",
        min_value=0.0,
        max_value=MAX_SAMPLING_TEMPERATURE,
        step=0.05,
        key="cd_temp",
        help="Draw z at t times its distance from the prior's centre. Below 1 the samples "
        "are more typical of their class and less varied; 0 draws the centre itself, one "
        "image per label. The Sample accuracy tab measures both at "
        + ", ".join(f"{t:g}" for t in TRADEOFF_TEMPERATURES)
        + ".",
    )
    url_state.write({"temperature": None if t == 1.0 else f"{t:g}"})
    return float(t)


DRAW_CHOICES = {"prior": "the prior", "codes": "each label's own codes"}


def z_source_picker(model) -> str:
    """Where the Samples tab draws z from: the model's prior, or (a conditional model with
    a continuous latent and an encoder) each label's own codes (``core.label_density``),
    mirrored in the URL as ?draw=codes."""
    if not label_density.supports(model):
        url_state.forget("draw")
        return "prior"
    if not st.session_state.get("cd_draw_url_done"):
        st.session_state["cd_draw_url_done"] = True
        wanted = url_state.read("draw", lambda v: v if v in DRAW_CHOICES else None)
        if wanted is not None:
            st.session_state["cd_draw"] = wanted
    choice = st.radio(
        "Draw z from",
        list(DRAW_CHOICES),
        key="cd_draw",
        horizontal=True,
        format_func=DRAW_CHOICES.get,
        help="The prior is what the model was trained with. Each label's own codes: a "
        "mixture of Gaussians fitted, after training, to where the encoder puts that label's "
        "training images, so a draw lands where real images of the label do (fitted once "
        "per model and kept in the run's cache).",
    )
    url_state.write({"draw": None if choice == "prior" else choice})
    return str(choice)


@st.cache_resource(max_entries=4, show_spinner=False)
def _density(path: str, mtime: float, _run: Run, _model):
    from core import data as datalib

    try:
        return label_density.get(_run, _model, get_dataset(*_train_split(_run)))
    except (datalib.DatasetError, ValueError) as e:  # no training images; a label without
        return str(e)  # two of them: one sentence each


def _train_split(run: Run) -> tuple[str, str, str | None]:
    t = (run.config_or_none() or {}).get("train") or {}
    return str(t.get("dataset", "digits")), "train", t.get("data_dir")


def label_density_for(run: Run, model):
    """The run's ``core.label_density`` density (read from its cache, or fitted to its
    training split once, with a spinner), or None after one sentence saying why not."""
    p = run.checkpoint_path
    try:
        mtime = p.stat().st_mtime
    except OSError:
        st.warning("The run's checkpoint cannot be read, so z is drawn from the prior.")
        return None
    with st.spinner("Fitting where each label's training images lie in z (once per model)…"):
        got = _density(str(p), mtime, run, model)
    if isinstance(got, str):
        st.warning(
            f"{md_escape(got.rstrip('.'))}; without the training images z is drawn from the prior."
        )
        return None
    return got
