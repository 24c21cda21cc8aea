"""The Train page's form: the dataset's and model family's defaults, the form itself (returns
a ``TrainConfig`` and the model's settings; a link such as ``?model=cvae`` presets it, and
the run just started, from here or from Home, fills it), what the chosen dataset needs
before a run (a download, an IDX folder's check), its validation and the start.

What a dataset needs before a run (the IDX folder's check, a download) is
``app.train_data``'s."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import torch

from app import url_state
from app.text import md_escape, os_error_sentence
from app.train_data import IDX, dataset_note, prepare
from core import data as datalib
from core import jobs
from core.config import OPTIMIZERS, TrainConfig, validate_run
from core.data.availability import MAX_FOLDER_TEXT, idx_roots_text
from core.models import FAMILIES, MODELS, ConfigError, Knob, model_class, spec
from core.runs import Run

# Datasets offered in the form: digits is bundled and instant; Fashion-MNIST is the seeds'.
DATASETS = ["fashion-mnist", "digits", "mnist", "kmnist", "cifar10", IDX]
DATASET_LABELS = {IDX: "IDX folder"}
DATASET_DEFAULTS = {
    "digits": {"batch_size": 64, "epochs": 20},
    "_": {"batch_size": 512, "epochs": 10},
}
LOSSES = ["bce", "mse", "ssim", "bce+0.5*ssim"]
CUSTOM = "custom mix…"
MAX_LOSS_CHARS = 100  # a mix of every term with its weight is about 30


# ----------------------------------------------------------------------------- the form
def model_defaults(model: str) -> dict:
    """The family's preset settings (the registry's preset over its config's defaults, with
    the form's latent size: 2-D where the latent plane is the point, else the seeds' L)."""
    return spec(model).defaults()


def model_knobs(model: str) -> list[str]:
    """Which model settings the form shows for a family (the registry's form knobs for its
    preset's backbone)."""
    return [k.name for k in spec(model).form_knobs()]


def _all_knobs() -> dict[str, Knob]:
    """Every form knob of every family, by name (their session-state keys)."""
    return {k.name: k for s in FAMILIES.values() for k in s.knobs if k.form}


def _tip(k: Knob) -> str:
    """The form's tooltip of a knob: its tip (or help), and its range."""
    text = k.tip or (k.help[:1].upper() + k.help[1:] + ".")
    if k.lo is not None and k.hi is not None and k.kind in ("int", "float"):
        lo, hi = (f"{int(v):,}" if float(v).is_integer() else f"{v:g}" for v in (k.lo, k.hi))
        text += f" Between {lo} and {hi}."
    return text


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
    for name, knob in _all_knobs().items():  # reset the knobs this family has
        if name in m:
            cast = {"int": int, "float": float, "bool": bool}.get(knob.kind)
            ss[_k(name)] = cast(m[name]) if cast else m[name]
    ss[_k("conditional")] = m["conditional"]
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
    ss[_k("idx_folder")] = ""
    apply_defaults()


def load_run_settings(run: Run) -> None:
    """Fill the form with the settings of ``run`` (the run just started, here or by Home's
    quick start), so the form shows what is training. Values of the wrong type are left at
    the family's defaults; the run name is cleared."""
    conf = run.config_or_none() or {}
    t, m = conf.get("train") or {}, conf.get("model") or {}
    dataset, model = t.get("dataset"), t.get("model")
    if model not in MODELS or not isinstance(dataset, str):
        return
    init_form()
    ss = st.session_state
    if dataset.startswith(datalib.IDX_PREFIX):
        ss[_k("dataset")], ss[_k("idx_folder")] = IDX, dataset[len(datalib.IDX_PREFIX) :]
    elif dataset in DATASETS:
        ss[_k("dataset")] = dataset
    else:
        return
    ss[_k("model")] = model
    apply_defaults()
    shown = {"epochs", "batch_size", "seed", "train_size", "val_size", "lr", "recon_weight",
             "kl_weight", "kl_warmup", "conditional", *model_knobs(model)}  # fmt: skip
    for key, value in {**t, **(m.get("args") or {})}.items():
        old = ss.get(_k(key))  # the default just set: a value of its type replaces it
        same = type(value) is type(old) or (type(old) is float and type(value) is int)
        if key in shown and old is not None and same:
            ss[_k(key)] = type(old)(value)
    if t.get("optimizer") in OPTIMIZERS:
        ss[_k("optimizer")] = t["optimizer"]
    if t.get("device") in device_options():
        ss[_k("device")] = t["device"]
    loss = t.get("loss")
    if isinstance(loss, str):
        custom = loss not in LOSSES
        ss[_k("loss")], ss[_k("loss_custom")] = (CUSTOM, loss) if custom else (loss, "")
    ss[_k("name")] = ""


def apply_link() -> None:
    """Honour a link such as ``?model=cvae`` or ``?model=mlp-vae&conditional=1`` (the
    conditional page sends one): set the form once, then drop the parameters."""
    model = url_state.text("model")
    if model not in MODELS:
        return
    ss = st.session_state
    ss[_k("model")] = model
    apply_defaults()
    conditional = url_state.raw("conditional")
    if conditional is not None:
        ss[_k("conditional")] = conditional in ("1", "true", "yes")
    url_state.forget("model", "conditional")


def train_form() -> tuple[TrainConfig, dict, str | None]:
    """Draw the training form; returns (train config, model settings, run name or None).

    Changing the dataset or the model resets the knobs to that choice's defaults. The
    settings a newcomer changes come first (dataset, model, its size, epochs); the loss and
    the optimiser sit in an expander, so Start stays close. Nothing is validated here: see
    ``check`` and ``start``.
    """
    init_form()
    apply_link()
    keep = {"persist_state": "session"}
    ss = st.session_state
    c1, c2 = st.columns(2)
    c1.selectbox(
        "Dataset",
        DATASETS,
        key=_k("dataset"),
        format_func=lambda d: DATASET_LABELS.get(d, d),
        on_change=apply_defaults,
        **keep,
        help="digits: 8x8 scikit-learn digits, bundled and instant. Fashion-MNIST: "
        "the seeds' benchmark (28x28 clothes). MNIST, KMNIST and CIFAR-10 are downloaded "
        "on first use. IDX folder: your own MNIST-style files on the server.",
    )
    model = c2.selectbox(
        "Model",
        list(MODELS),
        key=_k("model"),
        on_change=apply_defaults,
        **keep,
        help="The model family; see the explanation above.",
    )
    st.caption(spec(model).description)
    choice = ss[_k("dataset")]
    if choice == IDX:
        st.text_input(
            "Folder of IDX files (on the server)",
            key=_k("idx_folder"),
            max_chars=MAX_FOLDER_TEXT,
            placeholder="e.g. my-digits (a folder in the data folder)",
            **keep,
            help="A folder on the server with the four MNIST-style IDX files; relative to "
            f"{idx_roots_text()}.",
        )
    dataset_note(choice, ss[_k("idx_folder")])
    dataset = f"{datalib.IDX_PREFIX}{ss[_k('idx_folder')].strip()}" if choice == IDX else choice
    name = st.text_input(
        "Run name (optional)",
        key=_k("name"),
        **keep,
        placeholder=f"{model}-{'idx' if choice == IDX else choice}",
    )

    st.markdown("**Model**")
    fam = spec(model)
    knobs = fam.form_knobs()
    numbers = [k for k in knobs if k.kind in ("int", "float")]
    cols = st.columns(2)
    args: dict = {}
    for i, k in enumerate(numbers):
        args[k.name] = cols[i % 2].number_input(
            k.label or k.name,
            key=_k(k.name),
            step=0.1 if k.kind == "float" else 1,
            format="%g" if k.kind == "float" else None,
            help=_tip(k),
            **keep,
        )
    args["conditional"] = st.checkbox(
        "Conditional on the label",
        key=_k("conditional"),
        **keep,
        help="The one-hot label joins the encoder and decoder inputs (a CVAE): you can then "
        "ask the decoder for a chosen class.",
    )
    for k in knobs:
        if k.kind == "bool":
            args[k.name] = st.checkbox(
                k.label or k.name,
                key=_k(k.name),
                **keep,
                disabled=k.needs_labels and not args["conditional"],
                help=_tip(k),
            )

    st.markdown("**Training**")
    c1, c2 = st.columns(2)
    epochs = c1.number_input(
        "Epochs", key=_k("epochs"), step=1, **keep, help="Passes over the training images."
    )
    batch = c2.number_input(
        "Batch size", key=_k("batch_size"), step=32, **keep, help="Images per optimiser step."
    )
    has_kl = model_class(model).has_regulariser
    with st.expander("Loss and optimiser (β, learning rate)"):
        c1, c2 = st.columns(2)
        loss = c1.selectbox(
            "Reconstruction loss",
            [*LOSSES, CUSTOM],
            key=_k("loss"),
            **keep,
            help="BCE treats pixels as coin flips, MSE as Gaussians; SSIM compares local "
            "structure. A mix adds weighted terms.",
        )
        recon_w = c2.number_input(
            "Reconstruction weight", key=_k("recon_weight"), step=0.1, format="%g", **keep
        )
        if loss == CUSTOM:
            loss = st.text_input(
                "Loss mix",
                key=_k("loss_custom"),
                placeholder="e.g. bce+0.3*ssim",
                max_chars=MAX_LOSS_CHARS,
                **keep,
                help="Terms bce, mse, ssim, each with an optional weight, joined by +.",
            )
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
        dataset=dataset,
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
    model_args: dict = {"conditional": bool(args["conditional"])}
    for k in knobs:
        v = args[k.name]
        if k.kind == "bool":  # a setting that needs the labels is off without them
            model_args[k.name] = bool(v) and (model_args["conditional"] or not k.needs_labels)
        else:
            model_args[k.name] = float(v) if k.kind == "float" else int(v)
    return cfg, model_args, (name.strip() or None)


def check(cfg: TrainConfig, model_args: dict) -> str | None:
    """The one-sentence reason a configuration cannot train, or None when it can (the IDX
    folder's place, then the same ``validate_run`` the command line and
    ``core.jobs.start`` use: the dataset's real image shape, every setting's range, the
    memory estimate)."""
    try:
        validate_run(prepare(cfg), model_args)
    except (ConfigError, datalib.DatasetError, ValueError) as e:
        return str(e)
    return None


def start(
    cfg: TrainConfig, model_args: dict, name: str | None, root: Path
) -> tuple[Run | None, str | None]:
    """Start a run from the form: (the run, None), or (None, one sentence) when it cannot
    train, including a dataset that is not on disk and whose mirror does not answer (found
    before the run is created, so no run fails for it)."""
    problem = check(cfg, model_args)
    if problem:
        return None, problem
    try:
        cfg = prepare(cfg)
        datalib.check_download(cfg.dataset, app=True)  # a dataset to download: a mirror answers
        return jobs.start(cfg, model_args, name, root=root), None
    except ValueError as e:  # a refused setting, no mirror: one sentence
        return None, str(e)
    except OSError as e:  # a full disk, an unwritable runs folder
        return None, os_error_sentence(e, "The run could not be started")


def new_run(root: Path) -> None:
    """The form and its Start button, with the one sentence that stops a start right under
    it; a started run is watched (``train.requested``) after a rerun."""
    cfg, model_args, name = train_form()
    if st.button("Start training", type="primary", icon=":material/play_arrow:"):
        run, problem = start(cfg, model_args, name, root)
        if problem or run is None:
            st.error(md_escape(problem or "The run could not be started."))
        else:
            ss = st.session_state
            ss["train.requested"], ss["train.toast"] = run.id, f"Started {md_escape(run.name)}."
            st.rerun()  # the run's progress takes the top of the page
