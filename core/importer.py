"""Turn a checkpoint file from elsewhere (an upload, a colleague's run) into a run directory.

Everything in an upload is hostile until checked. ``core.store.checkpoint.load_model``
refuses anything that is not one of our checkpoints (archive shape,
``torch.load(..., weights_only=True)``, every field's type, the declared network's size on
the ``meta`` device, every weight's shape) before it allocates the network. Here, on top of that:
weights must be finite, the dataset must be one this lab knows by name, and the run's
``config.json`` is rebuilt from our own defaults with the upload's settings copied field by
field and validated, so no path of the uploader's machine (``data_dir``, an ``idx:<folder>``
dataset, the upload's own folder) survives into it: the server uses its own data folder.

The accepted file becomes ``<runs folder>/<timestamp>-<name>/`` with a ``config.json`` and a
``status.json`` (state ``done``) written around it, so every page can open it like a run
trained here, and ``core.jobs.resume`` can continue it. The folder is assembled under
``<runs folder>/_import-<random>/`` (a folder the run list skips) and renamed into place
when complete: a refusal or a crash never leaves a partial run. Typical use::

    from core.importer import import_checkpoint
    run = import_checkpoint(Path("checkpoint.pt").read_bytes(), "checkpoint.pt")
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
import time
import unicodedata
from dataclasses import asdict, fields
from pathlib import Path

import torch

from core.config import TrainConfig
from core.data import DATASET_NAMES, dataset_info
from core.models import ConfigError
from core.runs import CheckpointError, Run, load_model, runs_dir
from core.store import atomic
from core.store.repair import model_args_of

# model config fields that come from the data, not from the user's choice of settings
# train settings that name something on the uploader's machine: never taken from an upload
_SERVER_FIELDS = {"data_dir": None, "device": "auto"}
MAX_NAME = 80
STAGING_PREFIX = "_import-"


def plain_text(text, default: str = "", limit: int = MAX_NAME) -> str:
    """User text as one plain line: control and separator characters made spaces,
    whitespace collapsed, at most ``limit`` characters (``default`` when nothing is left)."""
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in str(text or ""))
    text = " ".join(text.split())[:limit].strip()
    return text or default


def plain_name(text, default: str = "imported") -> str:
    """A display name from a file name: its last path component (``/`` or ``\\``) as
    ``plain_text``; never a path."""
    return plain_text(re.split(r"[/\\]", str(text or ""))[-1], default)


def _dataset_name(ckpt: dict, name: str) -> str:
    """The dataset the checkpoint was trained on (``dataset.name`` and
    ``train_config.dataset`` where given), if this lab knows it by name."""
    given = [
        n
        for n in (
            (ckpt.get("dataset") or {}).get("name"),
            (ckpt.get("train_config") or {}).get("dataset"),
        )
        if n
    ]
    for dataset in given:
        if dataset in DATASET_NAMES:
            continue
        if dataset.startswith("idx:") or re.search(r"[/\\]", dataset):
            what = "was trained on a folder of the uploader's machine, which is not read here"
        else:
            shown = dataset if len(dataset) <= 40 else dataset[:37] + "..."
            what = f"was trained on a dataset this lab does not know ({shown!r})"
        raise CheckpointError(
            f"{name} {what}: upload a checkpoint trained on one of {', '.join(DATASET_NAMES)}."
        )
    if not given:
        raise CheckpointError(
            f"{name} does not say which dataset it was trained on: upload a checkpoint saved "
            "by this lab, unedited."
        )
    if len(set(given)) > 1:
        raise CheckpointError(
            f"{name} names two datasets ({given[0]} and {given[1]}): upload a checkpoint "
            "saved by this lab, unedited."
        )
    return given[0]


def _train_config(ckpt: dict, name: str) -> dict:
    """The run's train config: our defaults, the upload's known settings copied over (their
    types are already checked), the server's own paths and device, validated."""
    stored = ckpt.get("train_config") or {}
    values = {f.name: stored[f.name] for f in fields(TrainConfig) if f.name in stored}
    values.update(_SERVER_FIELDS)
    if "milestones" in values:
        values["milestones"] = list(values["milestones"])
    cfg = TrainConfig(**values)
    cfg.model = ckpt["model_name"]
    cfg.dataset = _dataset_name(ckpt, name)
    cfg.epochs = max(int(ckpt.get("epoch") or 0), 1)
    try:
        cfg.validate()
    except ConfigError as e:
        reason = str(e).rstrip(".")
        raise CheckpointError(
            f"{name} has training settings this lab refuses ({reason}); upload a checkpoint "
            "saved by this lab, unedited."
        ) from None
    return asdict(cfg)


def _dataset(ckpt: dict, dataset: str, model) -> dict:
    """The dataset description: known keys only, the name the train config uses."""
    stored = ckpt.get("dataset") or {}
    out = {"name": dataset, "image_shape": list(model.image_shape)}
    if stored.get("class_names"):
        out["class_names"] = [plain_text(s, str(k)) for k, s in enumerate(stored["class_names"])]
    return out


def _check_fits_dataset(model, train: dict, name: str) -> None:
    """The network must fit the data it names: image shape, labels, latent table rows."""
    info = dataset_info(train["dataset"])
    shape = tuple(model.image_shape)
    if shape != tuple(info.image_shape):
        raise CheckpointError(
            f"{name} is built for {'x'.join(map(str, shape))} images but names "
            f"{info.name}, whose images are {'x'.join(map(str, info.image_shape))}: upload a "
            "checkpoint saved by this lab, unedited."
        )
    if model.num_classes not in (0, info.num_classes):
        raise CheckpointError(
            f"{name} is conditional on {model.num_classes} labels but {info.name} has "
            f"{info.num_classes}: upload a checkpoint saved by this lab, unedited."
        )
    rows = getattr(model.config, "num_items", None)
    if rows is not None:
        want = min(train["train_size"] or info.train_size, info.train_size)
        if rows != want:
            raise CheckpointError(
                f"{name} has a latent table of {rows:,} rows but the {info.name} training "
                f"items it names are {want:,}: upload a checkpoint saved by this lab, unedited."
            )


def _check_finite(model, name: str) -> None:
    for key, t in model.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(
                f"{name} holds NaN or infinite weights ({key}), so it would only draw noise: "
                "upload a checkpoint of a run that trained without diverging."
            )


def _metrics_rows(ckpt: dict, epoch: int) -> list[dict]:
    """The metrics rows to write: the checkpoint's history up to its epoch (each row's
    epoch a whole number from 1), else its last row as the row of its epoch."""
    rows: dict[int, dict] = {}
    for r in ckpt.get("history") or []:
        e = r.get("epoch")
        if isinstance(e, int) and not isinstance(e, bool) and 1 <= e <= epoch:
            rows[e] = r
    if not rows and ckpt.get("metrics") and epoch >= 1:
        rows[epoch] = dict(ckpt["metrics"], epoch=epoch)
    return [
        {k: v for k, v in rows[e].items() if v is None or isinstance(v, int | float)}
        for e in sorted(rows)
    ]


def import_checkpoint(
    source: bytes | str | Path,
    filename: str = "checkpoint.pt",
    root: str | Path | None = None,
    name: str | None = None,
) -> Run:
    """Validate a checkpoint and make it a finished run in the runs folder.

    Args:
        source: the file's bytes (an upload) or a path to it.
        filename: the original file name, used in messages and as the default run name
            (only its last component; it is never used as a path).
        root: the runs folder (default ``core.runs.runs_dir()``).
        name: the run's name (default: the file name without its extension).

    Returns:
        The new ``Run`` (state ``done``), holding a copy of the checkpoint.

    Raises:
        CheckpointError: the file is not a latent-lab checkpoint, cannot be rebuilt, is too
            large, or the run cannot be written; the message says so in one sentence.
            Nothing is written to the runs folder then.
    """
    shown = plain_name(filename, "checkpoint.pt")
    with tempfile.TemporaryDirectory(prefix="latentlab-import-") as tmp:
        staged = Path(tmp) / "upload.pt"
        try:
            if isinstance(source, bytes | bytearray | memoryview):
                if not len(source):
                    raise CheckpointError(f"{shown} is empty: upload a checkpoint.pt file.")
                staged.write_bytes(source)
            else:
                src = Path(source)
                if not src.is_file():
                    raise CheckpointError(f"No file at {src}: pick a checkpoint.pt file.")
                shutil.copyfile(src, staged)
        except OSError as e:
            raise CheckpointError(
                f"{shown} could not be staged for checking ({e.strerror or e}): free space in "
                "the temporary folder, then upload it again."
            ) from None
        # refuses, in one sentence, anything that is not one of ours, before building it
        model, ckpt = load_model(staged, "cpu", name=shown)
        _check_finite(model, shown)
        train = _train_config(ckpt, shown)
        _check_fits_dataset(model, train, shown)
        model_config = model.config.to_dict()
        epoch = int(ckpt.get("epoch") or 0)
        stem = shown.rsplit(".", 1)[0] if "." in shown[1:] else shown
        run_name = plain_name(name or "", "") or plain_name(stem)
        config = {
            "name": run_name,
            "train": train,
            "model": {
                "name": ckpt["model_name"],
                "args": model_args_of(model_config),
                "config": model_config,
            },
            "dataset": _dataset(ckpt, train["dataset"], model),
            "imported_from": shown,
            "imported_at": time.time(),
        }
        del model
        return _write_run(config, staged, ckpt, epoch, shown, root)


def _write_run(config: dict, staged: Path, ckpt: dict, epoch: int, shown: str, root) -> Run:
    """Assemble the run under ``<root>/_import-*/`` and rename it into ``root`` complete."""
    root = runs_dir(root)
    staging = root / f"{STAGING_PREFIX}{secrets.token_hex(6)}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        run = Run.create(config, staging, config["name"])
        try:
            atomic.write_with(run.checkpoint_path, lambda tmp: shutil.copyfile(staged, tmp))
            rows = _metrics_rows(ckpt, epoch)
            if rows:
                run.write_metrics(rows)
            run.set_status("done", epoch=epoch, epochs=epoch, message=f"imported from {shown}")
        finally:
            run.release()
        final = root / run.path.name
        n = 1
        while final.exists():
            n += 1
            final = root / f"{run.path.name}-{n}"
        os.rename(run.path, final)
    except (OSError, ValueError) as e:  # a full disk, a read-only folder, a RunError
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).rstrip(".")
        raise CheckpointError(
            f"{shown} could not be saved as a run ({reason}): free disk space or check the "
            "runs folder's permissions, then upload it again."
        ) from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
    return Run(final)
