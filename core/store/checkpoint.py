"""Checkpoints: one self-describing dict of plain types and tensors per file.

Written atomically (``core.store.atomic``), always read with
``torch.load(..., weights_only=True)`` and rebuilt through the model registry. Everything
in a checkpoint is untrusted input (it may be an upload): ``read_checkpoint`` checks the
format, ``load_model`` rebuilds the network.
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.models import LatentModel, build_model, config_class
from core.store.atomic import write_with

CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A file is not a checkpoint of this lab; the message says what is wrong."""


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


def read_checkpoint(path: str | Path) -> dict:
    """Load and validate a checkpoint dict (weights_only=True, on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}: train a run first or pick another file.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, zip errors, refusals of unsafe globals
        kind = (
            "holds Python objects that are not plain tensors"
            if "weights_only" in str(e)
            else "is not a PyTorch file"
        )
        raise CheckpointError(
            f"{path.name} is not a latent-lab checkpoint (it {kind}); upload a checkpoint.pt "
            "saved by this lab."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != "latent-lab":
        raise CheckpointError(
            f"{path.name} is a PyTorch file but not a latent-lab checkpoint (no model name and "
            "config inside); upload a checkpoint.pt saved by this lab."
        )
    if ckpt.get("format_version", 0) > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path.name} was written by a newer version of the lab (format "
            f"{ckpt['format_version']}); update the lab to open it."
        )
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[LatentModel, dict]:
    """Rebuild a model from a checkpoint through the registry; returns (model in eval mode,
    checkpoint dict)."""
    ckpt = read_checkpoint(path)
    try:
        cfg = config_class(ckpt["model_name"]).from_dict(ckpt["model_config"])
        model = build_model(ckpt["model_name"], cfg)
        model.load_state_dict(ckpt["state_dict"])
    except Exception as e:
        raise CheckpointError(
            f"{Path(path).name} could not be rebuilt ({str(e).splitlines()[0][:160]})."
        ) from None
    return model.to(device).eval(), ckpt
