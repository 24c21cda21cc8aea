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

from core.store.checkpoint import (  # noqa: F401 - re-exported for callers of core.runs
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_model,
    read_checkpoint,
    save_checkpoint,
)

STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")


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
