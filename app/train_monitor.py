"""The Train page's monitor of a run: progress and ETA, loss curves and the reconstruction
strip, the live panel (redrawn every second, with Cancel) and the finished-run panel (make
current, evaluate, resume, the log of a failed run).

Training itself runs in its own process (``core.jobs``); this module only reads the run
directory (status.json, metrics.jsonl, recon.png) and draws it. Evaluation is a background
job too (``core.jobs.start_evaluation``): ``evaluation_job`` shows its progress (a fragment
polling ``core.jobs.evaluation_state`` that reruns the page when it ends) or its failure,
here and on the Compare and Conditional pages.
"""

from __future__ import annotations

import math
import time
from datetime import datetime

import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from plotly.subplots import make_subplots

from app.common import find_run, page_path, runs_root, set_current_run
from app.evaluation_ui import evaluation_job, show_evaluation, start_evaluation
from app.text import md_escape, one_line
from core import jobs
from core.runs import Run, RunError, list_runs

LIVE_STATES = ("queued", "running")


# ----------------------------------------------------------------------------- progress
def progress(status: dict, metrics: list[dict], now: float | None = None) -> tuple[float, str]:
    """(fraction done, "Epoch 3/10 · 30% · ETA 0:21") of a run."""
    now = now or time.time()
    step, total = int(status.get("step") or 0), int(status.get("total") or 0)
    epoch, epochs = int(status.get("epoch") or 0), int(status.get("epochs") or 0)
    frac = min(step / total, 1.0) if total else 0.0
    state = status.get("state", "?")
    if state == "queued":
        return 0.0, "Starting the training process…"
    text = f"Epoch {epoch}/{epochs} · {100 * frac:.0f}%"
    eta = None
    if total and step < total and epochs:
        per_epoch = [m["seconds"] for m in metrics[-5:] if "seconds" in m]
        if per_epoch:
            eta = sum(per_epoch) / len(per_epoch) * (total - step) / (total / epochs)
        elif status.get("started_at") and step:
            eta = (now - status["started_at"]) / step * (total - step)
    if eta is not None and state == "running":
        h, rest = divmod(int(eta), 3600)
        text += (
            f" · ETA {h}:{rest // 60:02d}:{rest % 60:02d}"
            if h
            else (f" · ETA {rest // 60}:{rest % 60:02d}")
        )
    return frac, text


def loss_figure(metrics: list[dict]) -> go.Figure:
    """Reconstruction and KL per image, train and validation, against the epoch."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Reconstruction", "KL"))
    ep = [m["epoch"] for m in metrics]
    styles = {"train": dict(color="#1f77b4"), "val": dict(color="#ff7f0e", dash="dot")}
    for col, part in ((1, "recon"), (2, "kl")):
        for split in ("train", "val"):
            ys = [m.get(f"{split}_{part}") for m in metrics]
            if all(v is None for v in ys):
                continue
            fig.add_trace(
                go.Scatter(
                    x=ep,
                    y=ys,
                    name="train" if split == "train" else "validation",
                    mode="lines+markers",
                    line=styles[split],
                    legendgroup=split,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="epoch", dtick=max(1, math.ceil(len(ep) / 10)))
    if not metrics:
        fig.add_annotation(
            text="The curves appear after the first epoch.",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
        )
        fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(title_text="nats per image", row=1, col=1)
    fig.update_layout(
        height=300, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25)
    )
    return fig


def recon_image(run: Run, width: int = 640) -> Image.Image | None:
    """The trainer's reconstruction strip, upscaled (nearest) to about ``width`` pixels."""
    p = run.path / "recon.png"
    if not p.exists():
        return None
    try:
        img = Image.open(p)
        img.load()
    except OSError:  # being replaced right now
        return None
    scale = max(1, width // img.width)
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def _figure(run: Run, metrics: list[dict]) -> go.Figure:
    """``loss_figure``, rebuilt only when a new epoch arrives (building costs ~100 ms, more
    than the rest of a live-panel rerun; handing Streamlit a built figure costs ~2 ms)."""
    last = metrics[-1] if metrics else {}
    key = (run.id, len(metrics), last.get("epoch"), last.get("val_loss"))
    memo = st.session_state.get("train._figure")
    if memo is None or memo[0] != key:
        memo = (key, loss_figure(metrics))
        st.session_state["train._figure"] = memo
    return memo[1]


def show_curves(run: Run, metrics: list[dict]) -> None:
    # drawn empty before the first epoch too, so the browser has the chart library loaded
    # and laid out by the time the first numbers arrive
    fig = _figure(run, metrics)
    st.plotly_chart(fig, key=f"curves-{run.id}", config={"displaylogo": False})
    img = recon_image(run)
    if img is not None:
        ep = metrics[-1]["epoch"] if metrics else "?"
        st.image(img, caption=f"Top: test images. Bottom: their reconstructions (epoch {ep}).")


# ----------------------------------------------------------------------------- monitor
def user_runs() -> list[Run]:
    return list_runs(runs_root())


def live_runs() -> list[Run]:
    """User runs still queued or training (their process is checked)."""
    return [r for r in user_runs() if jobs.refresh(r).get("state") in LIVE_STATES]


def run_option_label(run: Run) -> str:
    """ "name · model on dataset · started 14:05" (the state is shown below the picker: a
    fragment rerun does not redraw the picker). Plain text."""
    cfg = run.config_or_none()
    if cfg is None:
        return f"{one_line(run.id, 80)} · damaged"
    t = cfg["train"]
    when = datetime.fromtimestamp(cfg.get("created_at") or 0).strftime("%b %d %H:%M")
    return one_line(f"{run.name} · {t.get('model', '?')} on {t.get('dataset', '?')} · {when}", 160)


@st.fragment(run_every="1s")
def live_panel(run_id: str) -> None:
    """Progress, curves and the reconstruction strip of a training run, redrawn every second.
    When the run ends, the whole page reruns to show the finished view."""
    run = find_run(run_id)
    if run is None:
        st.warning("This run was deleted.")
        return
    status = jobs.refresh(run)
    if status.get("state") not in LIVE_STATES:
        st.rerun()
    metrics = run.metrics()
    frac, text = progress(status, metrics)
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    c1.progress(frac, text=text)
    if c2.button(
        "Cancel",
        width="stretch",
        key=f"cancel-{run_id}",
        icon=":material/stop:",
        disabled=status.get("state") != "running",
        help="Stop after the current batch; the last finished epoch is kept. (Possible once "
        "the training process has started.)",
    ):
        jobs.cancel(run)
        st.toast("Cancelling: the run stops after the current batch.")
    if status.get("message") and status.get("state") == "running":
        st.caption(status["message"])
    show_curves(run, metrics)


def _log_tail(run: Run, lines: int = 30) -> str:
    """The last lines of the run's log.txt (at most 64 KB read; undecodable bytes shown as
    replacement characters)."""
    try:
        with open(run.log_path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 65536))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def damaged_panel(run: Run, status: dict) -> None:
    """A run whose files cannot be read: which file, and what to do (delete or repair)."""
    st.error(f"Run {md_escape(run.id)} is damaged: {md_escape(status.get('message', ''))}.")
    for p in status.get("problems", [])[1:]:
        st.caption(md_escape(p))
    st.page_link(page_path("runs.py"), label="Delete or repair it on the Runs page",
                 icon=":material/folder_open:")  # fmt: skip


def interrupted_actions(run: Run, status: dict) -> None:
    """Resume (from the last checkpoint) or restart (no checkpoint) an interrupted run."""
    planned = int((run.config_or_none() or {}).get("train", {}).get("epochs") or 1)
    done = int(status.get("epoch") or 0)
    try:
        if status.get("resumable") and st.button(
            f"Resume to epoch {max(planned, done)}",
            key=f"resume-int-{run.id}",
            type="primary",
            icon=":material/replay:",
            help="Continue from the last finished epoch's checkpoint.",
        ):
            jobs.resume(run, max(planned, done))
            st.rerun()
        if status.get("restartable") and st.button(
            "Restart from the beginning",
            key=f"restart-{run.id}",
            type="primary",
            icon=":material/restart_alt:",
            help="It stopped before its first checkpoint: train it again with the same settings.",
        ):
            jobs.restart(run)
            st.rerun()
    except (RunError, ValueError, OSError) as e:
        st.error(md_escape(str(e)))


def finished_panel(run: Run) -> None:
    """A finished, failed, cancelled, interrupted or damaged run: its result and what to do
    next."""
    status = run.state()
    state = status.get("state")
    if state == "damaged":
        damaged_panel(run, status)
        return
    metrics = run.metrics()
    last = metrics[-1] if metrics else {}
    n = int(status.get("epoch") or 0)
    summary = f"{n} epoch{'s' if n != 1 else ''}"
    if "val_loss" in last:
        summary += f", validation loss {last['val_loss']:.2f}"
    if state == "done":
        st.success(f"Finished: {summary}.")
    elif state == "cancelled":
        st.warning(f"Cancelled: {md_escape(status.get('message', summary))}.")
    elif state == "interrupted":
        st.warning(f"Interrupted after {summary}: {md_escape(status.get('message', ''))}.")
        interrupted_actions(run, status)
    elif state == "failed":
        st.error(f"Failed: {md_escape(status.get('message', 'see log.txt in the run folder'))}")
    else:
        st.info(f"State: {md_escape(str(state))}.")
    if state in ("failed", "interrupted") and run.log_path.exists():
        with st.expander("Training log (last lines)"):
            st.code(_log_tail(run) or "(empty)")
    for p in status.get("problems", []):
        st.caption(md_escape(p))
    show_curves(run, metrics)
    if not run.has_checkpoint():
        return

    bar = st.container(horizontal=True, vertical_alignment="center")
    is_current = st.session_state.get("run_id") == run.id
    bar.button(
        "Current run" if is_current else "Make it the current run",
        key=f"current-{run.id}",
        disabled=is_current,
        on_click=set_current_run,
        args=(run.id,),
        icon=":material/check_circle:",
        help="Every page then works on this run.",
    )
    job = jobs.evaluation_state(run)
    evaluate_clicked = bar.button(
        "Evaluate",
        key=f"evaluate-{run.id}",
        icon=":material/analytics:",
        disabled=job["state"] in jobs.EVAL_LIVE,
        help="Test-split loss, SSIM and KNN accuracy of the latent code (cached in the run; "
        "it runs in the background).",
    )
    with bar.popover("Train more epochs", icon=":material/replay:"):
        done_epochs = int(status.get("epoch") or 0)
        target = st.number_input(
            "Train up to epoch", key=f"resume-to-{run.id}", value=done_epochs + 10, step=1
        )
        if st.button("Resume", key=f"resume-{run.id}", type="primary"):
            if target <= done_epochs:
                st.error(f"This run already has {done_epochs} epochs: ask for more than that.")
            else:
                try:
                    jobs.resume(run, int(target))
                except (ValueError, OSError) as e:
                    st.error(md_escape(str(e)))
                else:
                    st.rerun()
    if evaluate_clicked:
        start_evaluation(run)
    if evaluation_job(run, job)["state"] not in jobs.EVAL_LIVE:
        ev = run.evaluation()
        if ev:
            show_evaluation(ev)
