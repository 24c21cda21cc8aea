"""Turn a checkpoint file from elsewhere (an upload, a colleague's run) into a run directory.

A checkpoint is accepted only if it is one of ours: ``core.runs.read_checkpoint`` checks the
format tag and version (``torch.load(..., weights_only=True)``), and ``core.runs.load_model``
must rebuild the network through the registry and load its weights. The accepted file
becomes ``<runs folder>/<timestamp>-<name>/`` with a ``config.json`` and a ``status.json``
(state ``done``) written around it, so every page can open it like a run trained here, and
``core.jobs.resume`` can continue it. Typical use::

    from core.importer import import_checkpoint
    run = import_checkpoint(Path("checkpoint.pt").read_bytes(), "checkpoint.pt")
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import asdict, fields
from pathlib import Path

import torch

from core.runs import CheckpointError, Run, load_model, runs_dir
from core.train import TrainConfig

# model config fields that come from the data, not from the user's choice of settings
_DATA_FIELDS = ("image_shape", "num_classes", "num_items")


def _train_config(ckpt: dict) -> dict:
    """The checkpoint's train config as a full ``TrainConfig`` dict (unknown keys dropped,
    missing ones filled with the defaults)."""
    stored = ckpt.get("train_config") or {}
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in stored.items() if k in known})
    cfg.model = ckpt["model_name"]
    dataset = (ckpt.get("dataset") or {}).get("name")
    if dataset:
        cfg.dataset = dataset
    cfg.epochs = max(int(ckpt.get("epoch") or 0), 1)
    return asdict(cfg)


def _model_args(model_config: dict) -> dict:
    """Settings that rebuild the same network through ``core.models.resolve_config``."""
    args = {k: v for k, v in model_config.items() if k not in _DATA_FIELDS}
    args["conditional"] = int(model_config.get("num_classes") or 0) > 0
    return args


def _check_loadable(path: Path) -> None:
    """Refuse, in plain words, files that ``torch.load(weights_only=True)`` cannot read."""
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path.name} is not a PyTorch checkpoint (it is not the zip archive torch.save "
            "writes): upload a checkpoint.pt saved by this lab."
        )
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise CheckpointError(
            f"{path.name} holds Python objects other than tensors and plain containers (a "
            "whole pickled model?), which are not loaded for safety: upload a checkpoint.pt "
            "saved by this lab."
        ) from None


def import_checkpoint(
    source: bytes | str | Path,
    filename: str = "checkpoint.pt",
    root: str | Path | None = None,
    name: str | None = None,
) -> Run:
    """Validate a checkpoint and make it a finished run in the runs folder.

    Args:
        source: the file's bytes (an upload) or a path to it.
        filename: the original file name, used in messages and as the default run name.
        root: the runs folder (default ``core.runs.runs_dir()``).
        name: the run's name (default: the file name without its extension).

    Returns:
        The new ``Run`` (state ``done``), holding a copy of the checkpoint.

    Raises:
        CheckpointError: the file is not a latent-lab checkpoint or cannot be rebuilt; the
            message says so in one sentence. Nothing is written to the runs folder then.
    """
    with tempfile.TemporaryDirectory(prefix="latentlab-import-") as tmp:
        staged = Path(tmp) / (Path(filename).name or "checkpoint.pt")
        if isinstance(source, bytes | bytearray):
            if not source:
                raise CheckpointError(f"{staged.name} is empty: upload a checkpoint.pt file.")
            staged.write_bytes(source)
        else:
            src = Path(source)
            if not src.is_file():
                raise CheckpointError(f"No file at {src}: pick a checkpoint.pt file.")
            shutil.copyfile(src, staged)
        _check_loadable(staged)
        model, ckpt = load_model(staged, "cpu")  # raises CheckpointError with the reason

        model_config = model.config.to_dict()
        dataset = dict(ckpt.get("dataset") or {})
        dataset.setdefault("name", (ckpt.get("train_config") or {}).get("dataset", "unknown"))
        dataset.setdefault("image_shape", list(model.image_shape))
        run_name = (name or "").strip() or Path(filename).stem or "imported"
        config = {
            "name": run_name,
            "train": _train_config(ckpt),
            "model": {
                "name": ckpt["model_name"],
                "args": _model_args(model_config),
                "config": model_config,
            },
            "dataset": dataset,
            "imported_from": Path(filename).name,
            "imported_at": time.time(),
        }
        run = Run.create(config, root or runs_dir(), run_name)
        try:
            tmp_ckpt = run.path / f".checkpoint.{os.getpid()}.tmp"
            shutil.copyfile(staged, tmp_ckpt)
            os.replace(tmp_ckpt, run.checkpoint_path)
            if ckpt.get("metrics"):
                run.append_metrics(dict(ckpt["metrics"]))
            epoch = int(ckpt.get("epoch") or 0)
            run.set_status(
                "done",
                epoch=epoch,
                epochs=epoch,
                message=f"imported from {Path(filename).name}",
            )
        except BaseException:
            shutil.rmtree(run.path, ignore_errors=True)
            raise
    return run
