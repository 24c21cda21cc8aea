"""Checkpoints: one self-describing dict of plain types and tensors per file.

Written atomically (``core.store.atomic``), always read with
``torch.load(..., weights_only=True)`` and rebuilt through the model registry. Everything
in a checkpoint is untrusted input (it may be an upload), so reading one is a sequence of
refusals, each a ``CheckpointError`` with one sentence naming the file, what is wrong and
what to do:

1. ``check_archive``: the file is the uncompressed zip archive ``torch.save`` writes (no
   tar, no bare pickle, no deflated zip bomb, nothing cut short), before ``torch.load``.
2. ``torch.load(weights_only=True)``: tensors and plain containers only, no code.
3. ``check_checkpoint``: every field of the dict, and of its ``model_config``,
   ``train_config``, ``dataset`` and ``metrics``, has its type (the model config's types
   come from the family's dataclass, the train config's from ``core.config.TrainConfig``);
   every tensor is dense and no larger than the parameter cap.
4. ``load_model``: the declared network's size is counted on the ``meta`` device (nothing
   allocated) and refused above ``max_params()`` (``$LATENTLAB_MAX_PARAMS``, default 50M);
   every tensor's shape is compared with the declared network's, and only then is the
   real model built and its weights loaded.

Steps 1 and 3 live in ``core.store.checkpoint_checks`` (re-exported here).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
import torch.nn.init

from core.models import (
    LatentModel,
    build_model,
    config_class,
    count_parameters,
    state_shapes,
)
from core.store.atomic import write_with
from core.store.checkpoint_checks import (  # noqa: F401 - re-exported
    _REUPLOAD,
    CHECKPOINT_FORMAT,
    MAX_DEPTH,
    MAX_ENTRIES,
    MAX_LIST,
    MAX_NODES,
    MAX_PARAMS,
    MAX_PARAMS_ENV,
    MAX_PICKLE_BYTES,
    MAX_SEQ,
    MAX_TEXT,
    CheckpointError,
    _key,
    check_archive,
    check_checkpoint,
    max_params,
)


def save_checkpoint(path: str | Path, model: LatentModel, **extra) -> None:
    """Write a self-describing checkpoint atomically (temp file, then rename).

    ``extra`` holds plain types or tensors: train_config, dataset, epoch, optimizer,
    scheduler, metrics.
    """
    path = Path(path)
    ckpt = {
        "format": "latent-lab",
        "format_version": CHECKPOINT_FORMAT,
        "model_name": model.name,
        "model_config": model.config.to_dict(),
        "state_dict": model.state_dict(),
        **extra,
    }
    write_with(path, lambda tmp: torch.save(ckpt, tmp))


# ----------------------------------------------------------------------------- reading
def read_checkpoint(path: str | Path, name: str | None = None) -> dict:
    """Load and validate a checkpoint dict (weights_only=True, on the CPU). ``name`` is
    the file name messages use (default: the path's)."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}: train a run first or pick another file.")
    check_archive(path, name)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" not in str(e).lower():  # not a refused class or function: damaged
            raise CheckpointError(
                f"{name} is not a PyTorch file this lab can read (its object table is "
                f"damaged): {_REUPLOAD}."
            ) from None
        raise CheckpointError(  # what weights_only refuses: code, classes, modules
            f"{name} holds Python objects other than tensors and plain containers (a whole "
            f"pickled model, or code), which are not loaded for safety: {_REUPLOAD}."
        ) from None
    except Exception:  # a damaged archive, a record that does not fit its storage, ...
        raise CheckpointError(
            f"{name} is not a PyTorch file this lab can read (it is damaged or was not "
            f"written by torch.save): {_REUPLOAD}."
        ) from None
    return check_checkpoint(ckpt, name)


def model_config_of(ckpt: dict, name: str):
    """The checkpoint's validated model config (its types already checked)."""
    from core.models import ConfigError

    try:
        cfg = config_class(ckpt["model_name"]).from_dict(ckpt["model_config"])
        cfg.validate()
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(
            f"{name} could not be rebuilt: its model_config is refused "
            f"({_first_line(e)}); {_REUPLOAD}, unedited."
        ) from None
    return cfg


def _first_line(e: BaseException) -> str:
    text = (str(e).splitlines() or [type(e).__name__])[0].rstrip(".")
    return text[:160]


def check_size_and_shapes(ckpt: dict, cfg, name: str) -> None:
    """Refuse a network larger than ``max_params()`` and a state_dict that does not fit
    the declared network, without allocating it (``meta`` device)."""
    model_name = ckpt["model_name"]
    cap = max_params()
    try:
        n = count_parameters(model_name, cfg)
    except Exception as e:  # sizes that overflow, shapes a layer refuses
        raise CheckpointError(
            f"{name} declares a {model_name} that cannot be built ({_first_line(e)}); "
            f"{_REUPLOAD}, unedited."
        ) from None
    if n > cap:
        raise CheckpointError(
            f"{name} declares a {model_name} of {n:,} parameters, more than the {cap:,} this "
            f"server accepts: upload a smaller model, or raise {MAX_PARAMS_ENV} on the server."
        )
    want = state_shapes(model_name, cfg)
    sd = ckpt["state_dict"]
    missing = [k for k in want if k not in sd]
    extra = [k for k in sd if k not in want]
    if missing or extra:
        what = f"lacks {_key(missing[0])}" if missing else f"has an extra {_key(extra[0])}"
        raise CheckpointError(
            f"{name} could not be rebuilt: its state_dict {what}, so it does not match the "
            f"{model_name} its model_config declares; {_REUPLOAD}, unedited."
        )
    for k, shape in want.items():
        got = tuple(sd[k].shape)
        if got != shape:
            raise CheckpointError(
                f"{name} could not be rebuilt: state_dict[{_key(k)}] has shape {got} but the "
                f"declared {model_name} needs {shape}; {_REUPLOAD}, unedited."
            )


def load_model(
    path: str | Path, device: str | torch.device = "cpu", name: str | None = None
) -> tuple[LatentModel, dict]:
    """Rebuild a model from a checkpoint through the registry; returns (model in eval mode,
    checkpoint dict). Nothing is allocated for the network before its declared size and
    every weight's shape are checked."""
    name = name or Path(path).name
    ckpt = read_checkpoint(path, name)
    cfg = model_config_of(ckpt, name)
    check_size_and_shapes(ckpt, cfg, name)
    try:
        model = build_model(ckpt["model_name"], cfg)
        model.load_state_dict(ckpt["state_dict"])
    except Exception as e:
        raise CheckpointError(f"{name} could not be rebuilt ({_first_line(e)}).") from None
    return model.to(device).eval(), ckpt
