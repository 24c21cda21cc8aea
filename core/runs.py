"""The run directory: the contract between a training process and the app.

```
runs/<run-id>/config.json     everything needed to rebuild and resume (train + model config)
runs/<run-id>/status.json     state (queued|running|done|failed|cancelled), epoch, step,
                              total, pid, message, updated_at
runs/<run-id>/metrics.jsonl   one line per epoch (loss parts, SSIM, seconds)
runs/<run-id>/checkpoint.pt   written to a temp file, then renamed
runs/<run-id>/cache/          embeddings and other derived arrays
runs/<run-id>/log.txt         the training process's output (when started by core.jobs)
```
The runs folder is ``--runs-dir`` / ``$LATENTLAB_RUNS_DIR`` / ``./runs``.

Checkpoints are one dict of plain types and tensors, rebuilt through the model registry
and always loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from core.models import LatentModel, build_model, config_class

CHECKPOINT_FORMAT = 1
STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")


class CheckpointError(ValueError):
    """A file is not a checkpoint of this lab; the message says what is wrong."""


class RunError(ValueError):
    """A run directory is missing or malformed."""


def runs_dir(override: str | Path | None = None) -> Path:
    """The runs folder: ``override``, else $LATENTLAB_RUNS_DIR, else ./runs."""
    return Path(override or os.environ.get("LATENTLAB_RUNS_DIR") or "runs")


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))
    os.replace(tmp, path)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "run"


@dataclass
class Run:
    """A handle on one run directory (cheap: reads files on demand)."""

    path: Path

    def __post_init__(self):
        self.path = Path(self.path)

    # ---- creation and listing
    @classmethod
    def create(cls, config: dict, root: str | Path | None = None, name: str | None = None) -> Run:
        """Make ``<root>/<timestamp>-<name>/`` with config.json and a queued status."""
        root = runs_dir(root)
        root.mkdir(parents=True, exist_ok=True)
        base = slug(name or f"{config['train']['model']}-{config['train']['dataset']}")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = root / f"{stamp}-{base}"
        n = 1
        while path.exists():
            n += 1
            path = root / f"{stamp}-{base}-{n}"
        path.mkdir()
        (path / "cache").mkdir()
        run = cls(path)
        cfg = dict(config)
        cfg.setdefault("name", name or base)
        cfg.setdefault("created_at", time.time())
        _write_json_atomic(path / "config.json", cfg)
        run.set_status("queued", message="waiting to start")
        return run

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def exists(self) -> bool:
        return (self.path / "config.json").is_file()

    # ---- files
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def readonly(self) -> bool:
        """Pretrained runs carry a READONLY marker: never written, renamed or deleted."""
        return (self.path / "READONLY").exists()

    @property
    def cache_dir(self) -> Path:
        """Derived arrays: <run>/cache/, or <runs folder>/_cache/<id>/ for read-only runs."""
        d = runs_dir() / "_cache" / self.id if self.readonly else self.path / "cache"
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def log_path(self) -> Path:
        return self.path / "log.txt"

    @property
    def cancel_flag(self) -> Path:
        return self.path / "CANCEL"

    def config(self) -> dict:
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a run directory (no config.json).") from None

    def update_config(self, **changes) -> None:
        cfg = self.config()
        cfg.update(changes)
        _write_json_atomic(self.config_path, cfg)

    @property
    def name(self) -> str:
        try:
            return self.config().get("name", self.id)
        except (RunError, json.JSONDecodeError):
            return self.id

    def status(self) -> dict:
        try:
            return json.loads((self.path / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"state": "unknown"}

    def set_status(self, state: str, **fields) -> dict:
        assert state in STATES, state
        st = {k: v for k, v in self.status().items() if k != "state"}
        st.update(fields, state=state, updated_at=time.time())
        _write_json_atomic(self.path / "status.json", st)
        return st

    def append_metrics(self, row: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def metrics(self) -> list[dict]:
        p = self.path / "metrics.jsonl"
        if not p.exists():
            return []
        rows = []
        for line in p.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line being written right now
        return rows

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def evaluation(self) -> dict | None:
        """The cached ``core.evaluate`` result (cache/evaluation.json), if any."""
        for p in (self.path / "cache" / "evaluation.json", self.cache_dir / "evaluation.json"):
            if p.exists():
                return json.loads(p.read_text())
        return None

    def _writable(self) -> None:
        if self.readonly:
            raise RunError(f"{self.name} is a pretrained run and read-only: train your own copy.")

    def delete(self) -> None:
        self._writable()
        shutil.rmtree(self.path)

    def rename(self, new_name: str) -> None:
        self._writable()
        if not new_name.strip():
            raise RunError("A run name cannot be empty: type a name.")
        self.update_config(name=new_name.strip())


def list_runs(root: str | Path | None = None) -> list[Run]:
    """Every run directory under the runs folder, newest first."""
    root = runs_dir(root)
    if not root.is_dir():
        return []
    runs = [Run(p) for p in root.iterdir() if (p / "config.json").is_file() and p.name[0] != "_"]
    return sorted(runs, key=lambda r: r.path.name, reverse=True)


# ----------------------------------------------------------------------------- checkpoints
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
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


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
