"""Evaluation as a background job on the pages: start it (``core.jobs.start_evaluation``),
show its progress in a fragment that reruns the page when it ends, and draw its key
numbers."""

from __future__ import annotations

import math
import time
from pathlib import Path

import streamlit as st

from app.text import md_escape, os_error_sentence
from core import jobs
from core.runs import Run, RunError


def _start(run: Run, judge: bool) -> str | None:
    """Start the run's evaluation (or find the one running); the refusal's sentence, else
    None."""
    try:
        jobs.start_evaluation(run, judge=judge)
    except RunError as e:
        return f"The evaluation could not start: {md_escape(' '.join(str(e).split()))}"
    except OSError as e:  # a full disk, an unwritable run folder
        return md_escape(os_error_sentence(e, "The evaluation could not start"))
    return None


def start_evaluation(run: Run, judge: bool = True) -> None:
    """Start the run's evaluation in the background (or find the one running) and rerun the
    page so that its progress shows; a refusal is one sentence."""
    problem = _start(run, judge)
    if problem:
        st.error(problem)
        return
    st.rerun()


def start_evaluation_clicked(run: Run, error_key: str, judge: bool = True) -> None:
    """A button's callback: start the run's evaluation (or find the one running) before the
    page is drawn again, so the page's next run already shows its progress in the button's
    place. A refusal is one sentence kept in ``st.session_state[error_key]`` for the page
    to show."""
    problem = _start(run, judge)
    if problem:
        st.session_state[error_key] = problem


def evaluation_job(run: Run, state: dict | None = None) -> dict:
    """The run's evaluation job where the caller draws it: its progress while it is queued
    or running (redrawn every second; the page reruns when it ends), or why it failed, in
    one sentence. Returns ``core.jobs.evaluation_state``."""
    state = state or jobs.evaluation_state(run)
    if state["state"] in jobs.EVAL_LIVE:
        evaluation_progress(str(run.path))
    elif state["state"] == "failed":
        st.error(f"Evaluation failed: {md_escape(state.get('message') or 'see the log')}")
    return state


def evaluation_text(state: dict, now: float | None = None) -> str:
    """ "Evaluating on the test split… 0:42" (plain text). The clock runs from the press,
    also while the new process is still loading PyTorch (about 10 s on a busy machine), so
    a wait never looks stuck."""
    started = state.get("started_at")
    if state.get("state") == "queued":
        text = "Starting the evaluation process (loading PyTorch)…"
    else:
        text = "Evaluating on the test split…"
    if isinstance(started, int | float) and not isinstance(started, bool):
        secs = max(0, int((now or time.time()) - started))
        text += f" {secs // 60}:{secs % 60:02d}"
    if state.get("judge"):
        text += " (a conditional model's judge may be trained first: minutes)"
    return text


@st.fragment(run_every="1s")
def evaluation_progress(run_path: str) -> None:
    """An evaluation job's progress, redrawn every second; the page reruns when it ends."""
    run = Run(Path(run_path))
    state = jobs.evaluation_state(run)
    if state["state"] not in jobs.EVAL_LIVE:
        st.rerun()  # the whole page: it shows the metrics, or the failure
    st.info(evaluation_text(state), icon=":material/hourglass_top:")


def _num(v) -> float:
    """A number of an evaluation (a non-finite one is stored as null): NaN when missing."""
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def show_evaluation(ev: dict) -> None:
    """The key numbers of a ``core.evaluate`` result (short labels; details in the help)."""
    loss = ev.get("loss") or {}
    knn = ev.get("knn") or {}
    cols = st.columns(5)
    cols[0].metric(
        "BCE + KL",
        f"{_num(loss.get('bce_kl')):.2f}",
        help="Test-split reconstruction BCE plus KL in nats per image, z = posterior mean "
        "(lower is better).",
    )
    cols[1].metric(
        "SSIM",
        f"{_num(ev.get('ssim')):.3f}",
        help="Structural similarity of reconstructions and originals (1 = identical).",
    )
    cols[2].metric(
        "KNN, latent",
        f"{100 * _num(knn.get('model')):.1f}%",
        help=f"5-nearest-neighbour label accuracy of the {knn.get('model_dim', '?')}-D latent "
        "code (test images against training images).",
    )
    cols[3].metric(
        "KNN, PCA",
        f"{100 * _num(knn.get('pca')):.1f}%",
        help=f"The same protocol on a {knn.get('pca_dim', '?')}-D PCA of the pixels: the "
        "baseline the latent code should beat.",
    )
    if "conditional" in ev:
        cols[4].metric(
            "Samples right",
            f"{100 * _num(ev['conditional'].get('sample_accuracy')):.1f}%",
            help="Share of class-conditioned samples that an independent classifier assigns "
            "to the asked class.",
        )
    elif "active_units" in ev:
        cols[4].metric(
            "Active units",
            f"{ev['active_units']} / {ev.get('latent_dim', '?')}",
            help="Latent dimensions whose mean varies across images (the others are unused).",
        )
    st.caption(
        f"Evaluated on {ev.get('test_images', '?')} test images in {ev.get('seconds', '?')} s."
    )
