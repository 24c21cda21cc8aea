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
import re
import time
from datetime import datetime
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app.common import find_run, page_path, recon_image, runs_root, set_current_run
from app.evaluation_ui import evaluation_job, show_evaluation, start_evaluation
from app.text import md_escape, one_line
from core import jobs, queue
from core.runs import Run, RunError, list_runs

LIVE_STATES = ("queued", "running")


def plural(n: int, word: str) -> str:
    """ "1 epoch", "3 epochs"."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _number(value) -> float | None:
    """A finite number read from metrics.jsonl, else None (a row may hold null for a NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value) -> int | None:
    """A whole number >= 0 read from status.json, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# ----------------------------------------------------------------------------- progress
def progress(status: dict, metrics: list[dict], now: float | None = None) -> tuple[float, str]:
    """(fraction done, "Epoch 3/10 · 25% · ETA 0:21") of a run: the epoch in progress (the
    first while it trains), and the phase when it is not a pass over the training images
    (loading the data, scoring the test images)."""
    now = now or time.time()
    step, total = int(status.get("step") or 0), int(status.get("total") or 0)
    epoch, epochs = int(status.get("epoch") or 0), int(status.get("epochs") or 0)
    frac = min(step / total, 1.0) if total else 0.0
    state = status.get("state", "?")
    if state == "queued":
        waiting = queue.describe(status, now)
        if waiting:
            return 0.0, waiting
        if status.get("phase") == "loading":
            return 0.0, "Loading the dataset (it is downloaded first when it is not on disk)…"
        return 0.0, "Starting the training process…"
    current = min(epoch + 1, epochs) if epochs else epoch  # status.epoch: the committed ones
    text = f"Epoch {current}/{epochs} · {100 * frac:.0f}%"
    if state == "running" and status.get("phase") == "validating":
        n = _count(status.get("val_images"))
        text += f" · validating on {plural(n, 'test image')}" if n else " · validating"
    eta = None
    if total and step < total and epochs:
        per_epoch = [s for s in (_number(m.get("seconds")) for m in metrics[-5:]) if s is not None]
        if per_epoch:
            eta = sum(per_epoch) / len(per_epoch) * (total - step) / (total / epochs)
        else:  # no finished epoch yet: the rate since the run (re)started
            eta = queue.remaining_seconds(status, now)
    if eta is not None and math.isfinite(eta) and eta >= 0 and state == "running":
        h, rest = divmod(int(eta), 3600)
        text += (
            f" · ETA {h}:{rest // 60:02d}:{rest % 60:02d}"
            if h
            else (f" · ETA {rest // 60}:{rest % 60:02d}")
        )
    node = re.sub(r"[^A-Za-z0-9.-]", "", str(status.get("node") or ""))[:64]
    if state == "running" and status.get("engine") == "ray" and node:
        text += f" · on Ray node {node}"
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


def run_states(runs: list[Run]) -> dict[str, str]:
    """Each run's state (its process is checked), by id."""
    return {r.id: str(jobs.refresh(r).get("state")) for r in runs}


def choose_watched(runs: list[Run], states: dict[str, str], requested: str | None) -> str:
    """The run the page watches (kept in ``train.watch``): the one just started, else the
    one picked before, else a training one, else the newest."""
    ids = [r.id for r in runs]
    ss = st.session_state
    if requested in ids:
        ss["train.watch"] = requested
    if ss.get("train.watch") not in ids:
        live = [i for i in ids if states.get(i) in LIVE_STATES]
        ss["train.watch"] = live[0] if live else ids[0]
    return ss["train.watch"]


def watch_picker(runs: list[Run], states: dict[str, str]) -> Run:
    """The "Watching" heading and run picker; returns the picked run."""
    labels = {r.id: run_option_label(r) for r in runs}
    busy = sum(s in LIVE_STATES for s in states.values())
    st.subheader("Watching", anchor="watching")
    watched = st.selectbox(
        "Run",
        [r.id for r in runs],
        key="train.watch",
        format_func=lambda i: labels.get(i, i),
        persist_state="session",
        help=f"Your runs, newest first; {busy} training now." if busy else "Your runs.",
    )
    return next(r for r in runs if r.id == watched)


def scroll_to_watching() -> None:
    """Bring the "Watching" heading (the progress under it) to the top of the window: the
    Start button that started the run may sit far down the page (``app/js/watching.js``)."""
    st.html(f"<script>{_WATCHING_JS}</script>", unsafe_allow_javascript=True)


_WATCHING_JS = (Path(__file__).parent / "js" / "watching.js").read_text(encoding="utf-8")


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
        disabled=not (status.get("state") == "running" or queue.describe(status)),
        help="Stop after the current batch; the last finished epoch is kept. A run waiting "
        "in the queue leaves it. (Not while the training process sets up.)",
    ):
        jobs.cancel(run)
        st.toast("Cancelling: the run stops after the current batch, or leaves the queue.")
    if status.get("message") and status.get("state") == "running":
        st.caption(md_escape(one_line(str(status["message"]), 300)))  # run folders are hostile
    show_curves(run, metrics)


def _log_tail(run: Run, lines: int = 30) -> str:
    """The last lines of the run's log.txt (at most 64 KB read; undecodable bytes shown as
    replacement characters)."""
    if run.own_file("log.txt") is None:  # none yet, or a link: never followed
        return ""
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


_ERROR_TYPES = re.compile(r"^(DatasetError|ConfigError|RunError|ValueError): ")


def failure_reason(status: dict) -> str:
    """Why a run failed, as its status says (without the exception's class name when the
    sentence is ours)."""
    message = status.get("message")
    if not isinstance(message, str) or not message.strip():
        return "the training process stopped with an error: see the log below."
    return _ERROR_TYPES.sub("", message.strip())


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
    planned = _count(((run.config_or_none() or {}).get("train") or {}).get("epochs")) or n
    val_loss = _number(last.get("val_loss"))
    loss = f", validation loss {val_loss:.2f}" if val_loss is not None else ""
    summary = plural(n, "epoch") + loss
    if state == "done":
        st.success(f"Finished: {summary}.")
    elif state == "cancelled" and n:
        done = f"{n} of {plural(planned, 'epoch')}" if planned > n else plural(n, "epoch")
        st.warning(f"Cancelled after {done}{loss}: the last finished epoch's checkpoint is kept.")
    elif state == "cancelled":
        st.warning("Cancelled before its first epoch finished: there is nothing to keep.")
    elif state == "interrupted":
        st.warning(f"Interrupted after {summary}: {md_escape(status.get('message', ''))}.")
        interrupted_actions(run, status)
    elif state == "failed":
        st.error(f"Failed: {md_escape(failure_reason(status))}")
    else:
        st.info(f"State: {md_escape(str(state))}.")
    if state in ("failed", "interrupted") and run.own_file("log.txt") is not None:
        with st.expander("Training log (last lines)"):
            st.code(_log_tail(run) or "(empty)")
    for p in status.get("problems", []):
        st.caption(md_escape(p))
    if metrics or state == "done":
        show_curves(run, metrics)
    elif state != "failed":  # a failed run's panel says why above
        st.caption("No epoch finished, so there are no curves to show.")
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
        unfinished = state != "done" and planned > done_epochs  # finish what was asked
        if unfinished:
            st.caption(f"It was asked for {plural(planned, 'epoch')} and has {done_epochs}.")
        target = st.number_input(
            "Train up to epoch",
            key=f"resume-to-{run.id}",
            value=planned if unfinished else done_epochs + 10,
            step=1,
        )
        if st.button("Resume", key=f"resume-{run.id}", type="primary"):
            if target <= done_epochs:
                st.error(
                    f"This run already has {plural(done_epochs, 'epoch')}: ask for more than that."
                )
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
