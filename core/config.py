"""Training settings (``TrainConfig``), their validation and the device choice.

One home for "is this setting allowed". ``TrainConfig`` itself is declared in the light
``core.train_config`` (no torch, so the run store can read configs cheaply) and re-exported
here. ``TrainConfig.validate`` (``check_train``) checks the training settings alone;
``validate_run`` checks everything a run needs before anything is created: the training
settings, the model settings against the dataset's real image shape, number of classes and
training-set size (looked up without loading the data), and a memory estimate. The command
line (``core.cli``), ``core.train.train``, ``core.jobs.start`` and the Train page call it;
a refusal is a ``ConfigError`` (or ``DatasetError``) of one sentence.
"""

from __future__ import annotations

import math
import re

import torch

from core import data as datalib
from core.losses import parse_loss
from core.memory import PROCESS_BYTES, MemoryEstimate, _gb, estimate_memory  # noqa: F401
from core.models import (
    CONDITIONAL,
    FAMILIES,
    MODELS,
    ConfigError,
    ModelConfig,
    resolve_config,
    spec,
)
from core.models.base import check_float, check_int, is_int
from core.store.checkpoint import MAX_PARAMS, max_params  # noqa: F401 - one cap
from core.train_config import (  # noqa: F401 - the settings, re-exported
    DATA,
    LOSS,
    OPTIMISATION,
    OPTIMIZERS,
    TrainConfig,
    _setting,
)

# Sanity caps: far above any useful value, low enough that a typo or an attack is refused
# with a sentence instead of an allocation failure.
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1_000_000
MAX_IMAGES = 1_000_000_000  # train_size / val_size
MAX_LR = 10.0
MAX_WEIGHT_DECAY = 1.0
MAX_LOSS_WEIGHT = 1e6  # recon_weight, kl_weight and the weights inside a loss spec
MAX_SSIM_WINDOW = 101
MAX_SEED = 2**63 - 1

DEVICES = "auto, cpu, cuda, cuda:N or mps"
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,4})?)$")


def check_train(cfg: TrainConfig) -> None:
    """``TrainConfig.validate``: every training setting on its own (types, finiteness,
    ranges, the device); raises ConfigError with one sentence. ``validate_run`` adds the
    checks that need the model and the dataset."""

    def bad(msg):
        raise ConfigError(msg)

    for name in ("dataset", "model", "optimizer", "loss", "device"):
        if not isinstance(getattr(cfg, name), str):
            bad(f"{name} must be a string, got {getattr(cfg, name)!r}.")
    if cfg.model not in MODELS:
        bad(f"Unknown model '{cfg.model}': choose one of {', '.join(MODELS)}.")
    if cfg.dataset not in datalib.DATASET_NAMES and not cfg.dataset.startswith("idx:"):
        bad(
            f"Unknown dataset '{cfg.dataset}': choose one of "
            f"{', '.join(datalib.DATASET_NAMES)}, or idx:<folder>."
        )
    if cfg.data_dir is not None and not isinstance(cfg.data_dir, str):
        bad(f"data_dir must be a folder name, got {cfg.data_dir!r}.")
    if is_int(cfg.epochs) and cfg.epochs < 1:
        bad(f"Epochs must be at least 1, got {cfg.epochs}.")
    check_int("Epochs", cfg.epochs, 1, MAX_EPOCHS)
    if is_int(cfg.batch_size) and cfg.batch_size < 1:
        bad(f"Batch size must be at least 1, got {cfg.batch_size}.")
    check_int("Batch size", cfg.batch_size, 1, MAX_BATCH_SIZE)
    lr_ok = isinstance(cfg.lr, int | float) and not isinstance(cfg.lr, bool)
    if not (lr_ok and cfg.lr > 0 and math.isfinite(cfg.lr)):
        bad(f"Learning rate must be a positive number, got {cfg.lr}.")
    check_float("Learning rate", cfg.lr, 0.0, MAX_LR, lo_open=True)
    if cfg.optimizer not in OPTIMIZERS:
        bad(f"Unknown optimizer '{cfg.optimizer}': choose one of {', '.join(OPTIMIZERS)}.")
    check_float("Weight decay", cfg.weight_decay, 0.0, MAX_WEIGHT_DECAY)
    if not isinstance(cfg.milestones, list | tuple):
        bad(f"milestones must be a list of epoch numbers, got {cfg.milestones!r}.")
    if any(is_int(m) and m < 1 for m in cfg.milestones):
        bad("Learning-rate milestones are epoch numbers of 1 or more.")
    for m in cfg.milestones:
        check_int("A learning-rate milestone", m, 1, MAX_EPOCHS)
    check_float("The learning-rate factor lr_gamma", cfg.lr_gamma, 0.0, 1.0, lo_open=True)
    for what, v in (("recon_weight", cfg.recon_weight), ("kl_weight", cfg.kl_weight)):
        if isinstance(v, int | float) and not isinstance(v, bool) and v < 0:
            bad("Loss weights and the KL warm-up must be zero or positive.")
        check_float(f"The loss weight {what}", v, 0.0, MAX_LOSS_WEIGHT)
    if isinstance(cfg.kl_warmup, int | float) and cfg.kl_warmup < 0:
        bad("Loss weights and the KL warm-up must be zero or positive.")
    check_float("The KL warm-up (epochs)", cfg.kl_warmup, 0.0, float(MAX_EPOCHS))
    if not is_int(cfg.ssim_window) or cfg.ssim_window < 1 or cfg.ssim_window % 2 == 0:
        bad(f"The SSIM window must be a positive odd number, got {cfg.ssim_window}.")
    check_int("The SSIM window", cfg.ssim_window, 1, MAX_SSIM_WINDOW)
    check_int("seed", cfg.seed, 0, MAX_SEED)
    if not isinstance(cfg.amp, bool):
        bad(f"amp must be true or false, got {cfg.amp!r}.")
    for name in ("train_size", "val_size"):
        v = getattr(cfg, name)
        if is_int(v) and v < 0:
            bad("train_size and val_size must be zero or positive.")
        check_int(name, v, 0, MAX_IMAGES)
    for term, weight in parse_loss(cfg.loss).items():
        check_float(f"The weight of {term} in the loss", weight, 0.0, MAX_LOSS_WEIGHT)
    pick_device(cfg.device)


def pick_device(name: str = "auto") -> torch.device:
    """cuda > mps > cpu for "auto"; an explicit name (cpu, cuda, cuda:N, mps) must be
    available here. Anything else is a ConfigError of one sentence."""
    if not isinstance(name, str) or not _DEVICE.match(name.strip()):
        raise ConfigError(f"Unknown device {name!r}: use {DEVICES}.")
    name = name.strip()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("No CUDA GPU is visible here: use --device auto or --device cpu.")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ConfigError(
                f"There is no GPU {dev.index} here ({count} visible): use cuda:0 to "
                f"cuda:{count - 1}, or auto."
            )
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError("Apple's MPS backend is not available here: use --device cpu.")
    return dev


# ----------------------------------------------------------------------------- model settings
def _flag(key: str, flags: bool) -> str:
    return f"--{key.replace('_', '-')}" if flags else key


def fixed_settings(model: str) -> dict:
    """The settings ``model``'s preset fixes, read from the registry: a choice (the
    backbone) that sibling families of the same config class preset differently (they are
    named after it: mlp-vae, fcconv-vae, conv-vae), and ``conditional=True`` (a family that
    is conditional by definition, cvae)."""
    fam = spec(model)
    siblings = [s for s in FAMILIES.values() if s.config is fam.config and s.name != model]
    out = {CONDITIONAL.name: True} if fam.preset.get(CONDITIONAL.name) is True else {}
    for knob in fam.knobs:
        value = fam.preset.get(knob.name)
        if (
            knob.choices
            and value is not None
            and any(s.preset.get(knob.name, value) != value for s in siblings)
        ):
            out[knob.name] = value
    return out


def _family_with(model: str, key: str, value) -> str | None:
    """The sibling of ``model`` (same config class) to use for ``key`` = ``value``: one
    that keeps the rest of what ``model`` fixes, else any whose preset gives that value."""
    fam = spec(model)
    siblings = [s for s in FAMILIES.values() if s.config is fam.config and s.name != model]
    for want in ({**fixed_settings(model), key: value}, {key: value}):
        for s in siblings:
            d = s.defaults()
            if all(d.get(k) == v for k, v in want.items()):
                return s.name
    return None


def model_args_problem(model: str, model_args: dict, flags: bool = False) -> str | None:
    """The one-sentence reason ``model_args`` do not fit ``model``, or None.

    Everything is read from the registry (``core.models.FAMILIES``, each family's knobs):
    refused are settings the family's config does not have, settings the data decides
    (image shape, classes, table size), a value other than the preset's of a setting the
    preset fixes (``fixed_settings``: a VAE preset's backbone, cvae's ``conditional``),
    settings whose knob's ``archs`` leave out the chosen backbone, and a ``needs_labels``
    setting switched on without a conditional model. ``flags`` names settings as
    command-line flags (``--hidden-dim``) instead of config keys (``hidden_dim``).
    """
    if model not in FAMILIES:
        return f"Unknown model '{model}': choose one of {', '.join(FAMILIES)}."
    if not isinstance(model_args, dict):
        return f"Model settings must be a mapping of names to values, got {model_args!r}."
    model_args = {k: v for k, v in model_args.items() if v is not None}  # None: the preset
    fam = spec(model)
    from_data = {k for s in FAMILIES.values() for k in s.config.from_data()}  # any family's
    knobs = {k.name: k for k in fam.knobs}
    for key in model_args:
        if key in from_data:
            return f"{key} is set from the dataset, not by hand: drop it from the model settings."
        if key != CONDITIONAL.name and key not in knobs:
            return f"{_flag(key, flags)} does not apply to {model}."
    cond = model_args.get(CONDITIONAL.name)
    if cond is not None and not isinstance(cond, bool):
        return f"conditional must be true or false, got {cond!r}."
    defaults = fam.defaults()
    for key, value in fixed_settings(model).items():
        if model_args.get(key, value) == value:
            continue
        other = _family_with(model, key, model_args[key])
        if key == CONDITIONAL.name:
            drop = "--no-conditional" if flags else "conditional=False"
            what = spec(other).description.split(",")[0] if other else "model"
            alt = f", or use {other} for an unconditional {what}" if other else ""
            return f"{model} is conditional by definition: drop {drop}{alt}."
        hint = f": use {other} for that backbone" if other else ""
        return f"{_flag(key, flags)} does not apply to {model}, whose backbone is {value}{hint}."
    arch = model_args.get("arch", defaults["arch"])
    conditional = model_args.get(CONDITIONAL.name, defaults[CONDITIONAL.name])
    for key, value in model_args.items():
        knob = knobs.get(key)
        if knob is None:
            continue
        if not knob.applies_to(arch):
            return f"{_flag(key, flags)} does not apply to {model} with the {arch} backbone."
        if knob.needs_labels and value is True and not conditional:
            cond_flag = "--conditional" if flags else "conditional=True"
            return (
                f"{_flag(key, flags)} needs labels: make the model conditional ({cond_flag}) "
                f"or leave {_flag(key, flags)} off."
            )
    return None


# ----------------------------------------------------------------------------- memory
def available_memory() -> int:
    """Bytes of memory free for a new run (psutil's ``available``)."""
    import psutil

    return int(psutil.virtual_memory().available)


# ----------------------------------------------------------------------------- the one check
def validate_run(
    cfg: TrainConfig, model_args: dict | None = None, memory_limit: int | None = None
) -> ModelConfig:
    """Every check a training run can pass or fail before anything is created.

    ``memory_limit``: the bytes the estimate must fit in (default: what is free now; the
    training queue passes the machine's total, and waits for free memory itself).

    Checks the training settings (``TrainConfig.validate``), the model settings against the
    model (``model_args_problem``) and against the dataset's real image shape, number of
    classes and training-set size (``core.data.dataset_info``: constants for the registry
    datasets, the IDX headers of an ``idx:`` folder; the images are not loaded), the batch
    size against the training images, and the memory estimate against the parameter cap
    (``$LATENTLAB_MAX_PARAMS``) and the memory free here.

    Returns:
        The resolved model config the run will build.

    Raises:
        ConfigError or core.data.DatasetError (both ValueError), with one sentence.
    """
    cfg.validate()
    args = dict(model_args or {})
    problem = model_args_problem(cfg.model, args)
    if problem:
        raise ConfigError(problem)
    info = datalib.dataset_info(cfg.dataset)
    if cfg.train_size > info.train_size:
        raise ConfigError(
            f"train_size {cfg.train_size:,} is more than the {info.train_size:,} training images "
            f"of {cfg.dataset}: use 0 for all of them, or a smaller number."
        )
    n_train = cfg.train_size or info.train_size
    if cfg.batch_size > n_train:
        raise ConfigError(
            f"Batch size {cfg.batch_size} is larger than the {n_train} training images: "
            f"use --batch-size {n_train} or less."
        )
    model_config = resolve_config(
        cfg.model,
        image_shape=info.image_shape,
        num_classes=info.num_classes,
        num_items=n_train,
        **args,
    )
    est = estimate_memory(cfg, model_config, info)
    cap = max_params()
    if est.parameters > cap:
        raise ConfigError(
            f"{cfg.model} with these settings has {est.parameters:,} parameters, more than the "
            f"limit of {cap:,} (LATENTLAB_MAX_PARAMS): use a smaller latent size or width."
        )
    free = available_memory() if memory_limit is None else memory_limit
    if est.total > free:
        raise ConfigError(
            f"Training this needs about {_gb(est.total)} of memory (the process "
            f"{_gb(PROCESS_BYTES)}, model and optimizer "
            f"{_gb(est.model_bytes)}, data {_gb(est.data_bytes)}, one batch "
            f"{_gb(est.activation_bytes)}) but {_gb(free)} is "
            f"{'free' if memory_limit is None else 'all this machine has'}: use a smaller "
            f"model, batch size or train_size."
        )
    return model_config


def run_memory(cfg: TrainConfig, model_config: ModelConfig) -> int:
    """Bytes the run is estimated to need (``core.memory``), for the training queue."""
    return int(estimate_memory(cfg, model_config, datalib.dataset_info(cfg.dataset)).total)
