"""Streamlit glue of the Train and Runs pages: the training form (returns a ``TrainConfig``
and the model's settings), its validation, the live monitor of a run (progress, loss curves,
reconstruction strip, cancel), the finished-run actions (make current, evaluate, resume),
and the run card and runs table that Home and Runs show.

Training itself runs in its own process (``core.jobs``); this module only reads the run
directory (status.json, metrics.jsonl, recon.png) and draws it.
"""

from __future__ import annotations

import math
import time
from dataclasses import fields
from datetime import datetime
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image
from plotly.subplots import make_subplots

from app.common import find_run, is_pretrained, runs_root
from app.text import md_escape, one_line
from core import data as datalib
from core import jobs
from core.config import OPTIMIZERS, TrainConfig, validate_run
from core.models import MODELS, ConfigError, config_class
from core.runs import Run, RunError, list_runs

ROOT = Path(__file__).resolve().parent.parent
PAGES_DIR = ROOT / "pages"
LIVE_STATES = ("queued", "running")

# Datasets offered in the form: digits is bundled and instant; Fashion-MNIST is the seeds'.
DATASETS = ["fashion-mnist", "digits", "mnist", "kmnist", "cifar10"]
DATASET_DEFAULTS = {
    "digits": {"batch_size": 64, "epochs": 20},
    "_": {"batch_size": 512, "epochs": 10},
}
# Latent sizes per family: 2-D for the families whose latent plane is the point of the lab,
# the seeds' best L=10 for the others (gumbel-vae: 10 variables of 10 categories).
LATENT_DEFAULTS = {
    "mlp-vae": 2,
    "fcconv-vae": 10,
    "conv-vae": 10,
    "cvae": 2,
    "ae": 10,
    "gumbel-vae": 10,
    "autodecoder": 2,
}
LOSSES = ["bce", "mse", "ssim", "bce+0.5*ssim"]
CUSTOM = "custom mix…"


def page_path(name: str) -> str:
    """Absolute path of a page file, as ``st.page_link`` / ``st.switch_page`` accept it."""
    return str(PAGES_DIR / name)


def set_current_run(run_id: str) -> None:
    """Callback: make ``run_id`` the sidebar's current run (before the sidebar is drawn)."""
    st.session_state["run_id"] = run_id
    st.query_params["run"] = run_id


# ----------------------------------------------------------------------------- the form
def model_defaults(model: str) -> dict:
    """The family's preset settings (the registry's preset over its config's defaults)."""
    cfg_cls, _, preset, _ = MODELS[model]
    base = {f.name: getattr(cfg_cls(), f.name) for f in fields(cfg_cls)}
    base.update(preset)
    base["latent_dim"] = LATENT_DEFAULTS.get(model, base["latent_dim"])
    base["conditional"] = bool(preset.get("conditional", False))
    return base


def model_knobs(model: str) -> list[str]:
    """Which model settings the form shows for a family."""
    arch = model_defaults(model)["arch"]
    knobs = ["latent_dim"]
    knobs += ["enc_channels", "dec_channels"] if arch == "fcconv" else ["hidden_dim"]
    names = {f.name for f in fields(config_class(model))}
    knobs += [k for k in ("categories", "temperature") if k in names]
    return knobs


def device_options() -> list[str]:
    opts = ["auto", "cpu"]
    if torch.cuda.is_available():
        opts.append("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        opts.append("mps")
    return opts


def _k(name: str) -> str:
    return f"train.{name}"


def apply_defaults() -> None:
    """Reset the form's knobs to the defaults of the chosen dataset and model."""
    ss = st.session_state
    dataset, model = ss[_k("dataset")], ss[_k("model")]
    d = DATASET_DEFAULTS.get(dataset, DATASET_DEFAULTS["_"])
    m = model_defaults(model)
    t = TrainConfig()
    for k in ("latent_dim", "hidden_dim", "enc_channels", "dec_channels", "categories"):
        if k in m:
            ss[_k(k)] = int(m[k])
    ss[_k("temperature")] = float(m.get("temperature", 1.0))
    ss[_k("conditional")] = m["conditional"]
    ss[_k("class_prior")] = bool(m.get("class_prior", False))
    ss[_k("epochs")] = d["epochs"]
    ss[_k("batch_size")] = d["batch_size"]
    ss[_k("val_size")] = t.val_size
    ss[_k("lr")] = t.lr
    ss[_k("optimizer")] = t.optimizer
    ss[_k("loss")] = t.loss
    ss[_k("recon_weight")] = t.recon_weight
    ss[_k("kl_weight")] = t.kl_weight
    ss[_k("kl_warmup")] = t.kl_warmup


def init_form(dataset: str = "fashion-mnist", model: str = "fcconv-vae") -> None:
    """Fill the form's session state once per session (the seeds' best by default)."""
    ss = st.session_state
    if _k("model") in ss:
        return
    ss[_k("dataset")], ss[_k("model")] = dataset, model
    ss[_k("device")] = "auto"
    ss[_k("seed")] = TrainConfig().seed
    ss[_k("train_size")] = 0
    ss[_k("name")] = ""
    ss[_k("loss_custom")] = ""
    apply_defaults()


def apply_link() -> None:
    """Honour a link such as ``?model=cvae`` or ``?model=mlp-vae&conditional=1`` (the
    conditional page sends one): set the form once, then drop the parameters."""
    qp = st.query_params
    model = qp.get("model")
    if model not in MODELS:
        return
    ss = st.session_state
    ss[_k("model")] = model
    apply_defaults()
    if "conditional" in qp:
        ss[_k("conditional")] = qp.get("conditional") in ("1", "true", "yes")
    for k in ("model", "conditional"):
        if k in qp:
            del qp[k]


def train_form() -> tuple[TrainConfig, dict, str | None]:
    """Draw the training form; returns (train config, model settings, run name or None).

    Changing the dataset or the model resets the knobs to that choice's defaults.
    Nothing is validated here: see ``check``.
    """
    init_form()
    apply_link()
    keep = {"persist_state": "session"}
    c1, c2 = st.columns(2)
    c1.selectbox(
        "Dataset",
        DATASETS,
        key=_k("dataset"),
        on_change=apply_defaults,
        **keep,
        help="digits: 8x8 scikit-learn digits, bundled and instant. Fashion-MNIST: "
        "the seeds' benchmark (28x28 clothes).",
    )
    model = c2.selectbox(
        "Model",
        list(MODELS),
        key=_k("model"),
        on_change=apply_defaults,
        **keep,
        help="The model family; see the explanation above.",
    )
    st.caption(MODELS[model][3])
    name = st.text_input(
        "Run name (optional)",
        key=_k("name"),
        **keep,
        placeholder=f"{model}-{st.session_state[_k('dataset')]}",
    )

    st.markdown("**Model**")
    knobs = model_knobs(model)
    gumbel = "categories" in knobs
    labels = {
        "latent_dim": "Categorical variables N" if gumbel else "Latent size L",
        "hidden_dim": "Hidden size",
        "enc_channels": "Encoder channels",
        "dec_channels": "Decoder channels",
        "categories": "Categories per variable K",
        "temperature": "Temperature τ (start)",
    }
    helps = {
        "latent_dim": "Length of the code z. 2 gives a latent plane you can scrub directly.",
        "hidden_dim": "Width of the hidden layer between the image and the code.",
        "temperature": "Gumbel-softmax temperature; it anneals towards 0.5 during training.",
    }
    cols = st.columns(2)
    args: dict = {}
    for i, k in enumerate(knobs):
        fmt = "%g" if k == "temperature" else None
        step = 0.1 if k == "temperature" else 1
        args[k] = cols[i % 2].number_input(
            labels[k], key=_k(k), step=step, format=fmt, help=helps.get(k), **keep
        )
    args["conditional"] = st.checkbox(
        "Conditional on the label",
        key=_k("conditional"),
        **keep,
        help="The one-hot label joins the encoder and decoder inputs (a CVAE): you can then "
        "ask the decoder for a chosen class.",
    )
    if "class_prior" in {f.name for f in fields(config_class(model))}:
        args["class_prior"] = st.checkbox(
            "Learned prior per label",
            key=_k("class_prior"),
            **keep,
            disabled=not args["conditional"],
            help="Each label gets its own Gaussian over z, learned with the model; samples "
            "of a label are drawn from it. On Fashion-MNIST it lifts the share of samples "
            "a classifier reads as the asked class (REPRODUCTION.md).",
        )

    st.markdown("**Loss**")
    c1, c2 = st.columns(2)
    loss = c1.selectbox(
        "Reconstruction loss",
        [*LOSSES, CUSTOM],
        key=_k("loss"),
        **keep,
        help="BCE treats pixels as coin flips, MSE as Gaussians; SSIM compares local "
        "structure. A mix adds weighted terms.",
    )
    if loss == CUSTOM:
        loss = st.text_input(
            "Loss mix",
            key=_k("loss_custom"),
            placeholder="e.g. bce+0.3*ssim",
            **keep,
            help="Terms bce, mse, ssim, each with an optional weight, joined by +.",
        )
    recon_w = c2.number_input(
        "Reconstruction weight", key=_k("recon_weight"), step=0.1, format="%g", **keep
    )
    has_kl = model != "ae"
    c1, c2 = st.columns(2)
    kl_w = c1.number_input(
        "β (KL weight)",
        key=_k("kl_weight"),
        step=0.1,
        format="%g",
        disabled=not has_kl,
        **keep,
        help="β = 1 is the plain VAE; larger β trades reconstruction for a "
        "smoother, more disentangled latent space.",
    )
    warm = c2.number_input(
        "KL warm-up (epochs)",
        key=_k("kl_warmup"),
        step=1.0,
        format="%g",
        disabled=not has_kl,
        **keep,
        help="β ramps up from 0 over this many epochs (0 = off).",
    )

    st.markdown("**Optimisation**")
    c1, c2 = st.columns(2)
    epochs = c1.number_input("Epochs", key=_k("epochs"), step=1, **keep)
    batch = c2.number_input("Batch size", key=_k("batch_size"), step=32, **keep)
    c1, c2 = st.columns(2)
    lr = c1.number_input("Learning rate", key=_k("lr"), step=1e-4, format="%g", **keep)
    opt = c2.selectbox("Optimizer", OPTIMIZERS, key=_k("optimizer"), **keep)
    with st.expander("More settings"):
        dev = st.selectbox(
            "Device",
            device_options(),
            key=_k("device"),
            **keep,
            help="auto picks a CUDA GPU when there is one.",
        )
        c1, c2 = st.columns(2)
        seed = c1.number_input("Seed", key=_k("seed"), step=1, **keep)
        val = c2.number_input(
            "Validation images",
            key=_k("val_size"),
            step=100,
            **keep,
            help="Test images scored after each epoch.",
        )
        train_size = st.number_input(
            "Training images (0 = all)", key=_k("train_size"), step=1000, **keep
        )

    cfg = TrainConfig(
        dataset=st.session_state[_k("dataset")],
        model=model,
        epochs=int(epochs),
        batch_size=int(batch),
        lr=float(lr),
        optimizer=opt,
        loss=str(loss).strip(),
        recon_weight=float(recon_w),
        kl_weight=float(kl_w) if has_kl else 1.0,
        kl_warmup=float(warm) if has_kl else 0.0,
        seed=int(seed),
        device=dev,
        train_size=int(train_size),
        val_size=int(val),
    )
    model_args = {
        k: (float(v) if k == "temperature" else int(v))
        for k, v in args.items()
        if k not in ("conditional", "class_prior")
    }
    model_args["conditional"] = bool(args["conditional"])
    if "class_prior" in args:  # a prior per label needs the labels
        model_args["class_prior"] = bool(args["class_prior"]) and model_args["conditional"]
    return cfg, model_args, (name.strip() or None)


def check(cfg: TrainConfig, model_args: dict) -> str | None:
    """The one-sentence reason a configuration cannot train, or None when it can (the same
    ``validate_run`` the command line and ``core.jobs.start`` use: the dataset's real image
    shape, every setting's range, the memory estimate)."""
    try:
        validate_run(cfg, model_args)
    except (ConfigError, datalib.DatasetError, ValueError) as e:
        return str(e)
    return None


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
    evaluate_clicked = bar.button(
        "Evaluate",
        key=f"evaluate-{run.id}",
        icon=":material/analytics:",
        help="Test-split loss, SSIM and KNN accuracy of the latent code (cached in the run).",
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
        from core.evaluate import evaluate

        with st.spinner("Evaluating on the test split…"):
            try:
                evaluate(run.path)
            except (ValueError, datalib.DatasetError) as e:
                st.error(f"Evaluation failed: {e}")
    ev = run.evaluation()
    if ev:
        show_evaluation(ev)


def show_evaluation(ev: dict) -> None:
    """The key numbers of a ``core.evaluate`` result (short labels; details in the help)."""
    loss = ev.get("loss", {})
    knn = ev.get("knn", {})
    nan = float("nan")
    cols = st.columns(5)
    cols[0].metric(
        "BCE + KL",
        f"{loss.get('bce_kl', nan):.2f}",
        help="Test-split reconstruction BCE plus KL in nats per image, z = posterior mean "
        "(lower is better).",
    )
    cols[1].metric(
        "SSIM",
        f"{ev.get('ssim', nan):.3f}",
        help="Structural similarity of reconstructions and originals (1 = identical).",
    )
    cols[2].metric(
        "KNN, latent",
        f"{100 * knn.get('model', nan):.1f}%",
        help=f"5-nearest-neighbour label accuracy of the {knn.get('model_dim', '?')}-D latent "
        "code (test images against training images).",
    )
    cols[3].metric(
        "KNN, PCA",
        f"{100 * knn.get('pca', nan):.1f}%",
        help=f"The same protocol on a {knn.get('pca_dim', '?')}-D PCA of the pixels: the "
        "baseline the latent code should beat.",
    )
    if "conditional" in ev:
        cols[4].metric(
            "Samples right",
            f"{100 * ev['conditional']['sample_accuracy']:.1f}%",
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


# ----------------------------------------------------------------------------- run card
def run_summary(run: Run) -> dict:
    """One row of the runs table (plain values; a damaged run gets a row too)."""
    status = run.state()
    cfg = run.config_or_none() or {}
    t = cfg.get("train", {})
    m = cfg.get("model", {})
    metrics = run.metrics()
    last = metrics[-1] if metrics else {}
    ev = run.evaluation() or {}
    latent = (m.get("config") or {}).get("latent_dim", (m.get("args") or {}).get("latent_dim"))
    final = last.get("val_loss", last.get("train_loss"))
    ssim = ev.get("ssim", last.get("val_ssim"))
    knn = (ev.get("knn") or {}).get("model")
    created = cfg.get("created_at")
    return {
        "name": one_line(run.name, 80),
        "dataset": t.get("dataset"),
        "model": t.get("model") or m.get("name"),
        "latent": latent if isinstance(latent, int) else None,
        "epochs": status.get("epoch", last.get("epoch")),
        "state": status.get("state", "unknown"),
        "final loss": _num(final, 3),
        "SSIM": _num(ssim, 3),
        "KNN acc": _num(knn, 4),
        "created": datetime.fromtimestamp(created) if created else None,
        "source": "pretrained"
        if is_pretrained(run)
        else ("imported" if cfg.get("imported_from") else "trained"),
        "id": run.id,
    }


def _num(v, digits: int) -> float | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    return round(float(v), digits) if ok else None


def runs_table(runs: list[Run]) -> pd.DataFrame:
    rows = [run_summary(r) for r in runs]
    cols = [
        "name",
        "dataset",
        "model",
        "latent",
        "epochs",
        "state",
        "final loss",
        "SSIM",
        "KNN acc",
        "created",
        "source",
        "id",
    ]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("latent", "epochs", "final loss", "SSIM", "KNN acc"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def _epochs(n) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "no epochs yet"
    return f"{int(n)} epoch{'s' if int(n) != 1 else ''}"


def run_card(run: Run) -> None:
    """A bordered summary of a run: what it is, how far it got, its reconstructions."""
    s = run_summary(run)
    with st.container(border=True):
        left, right = st.columns([3, 2])
        left.markdown(f"#### {md_escape(s['name'])}")
        left.caption(
            md_escape(
                f"{s['model']} on {s['dataset']} · latent size {s['latent']} · "
                f"{_epochs(s['epochs'])} · {s['state']} · {s['source']}"
            )
        )
        c = left.columns(3)
        c[0].metric("Final loss", "–" if s["final loss"] is None else f"{s['final loss']:.2f}")
        c[1].metric("SSIM", "–" if s["SSIM"] is None else f"{s['SSIM']:.3f}")
        c[2].metric("KNN accuracy", "–" if s["KNN acc"] is None else f"{100 * s['KNN acc']:.1f}%")
        img = recon_image(run, width=420)
        if img is not None:
            right.image(img, caption="Test images (top) and reconstructions (bottom).")


def find_user_run(run_id: str | None) -> Run | None:
    return find_run(run_id)
