"""The run store: the one owner of every run directory's files.

Every read and write of a run's files goes through ``Run``: reads are validated
(``core.store.schema``) and never raise into a page (a broken run is reported as
*damaged*, with one sentence saying which file is wrong and what to do); writes are atomic
(``core.store.atomic``); a process that trains a run holds the run's lock
(``core.store.lock``), so "is it running" is "is its lock held". ARCHITECTURE.md lists what
a run directory holds. The runs folder, run names and the errors are
``core.store.folder``'s, the repair from a checkpoint ``core.store.repair``'s (both
re-exported here).

```
runs/<run-id>/config.json     everything needed to rebuild and resume (train + model config)
runs/<run-id>/status.json     state (queued|running|done|failed|cancelled|interrupted), epoch,
                              epochs, step, total, pid, message, updated_at
runs/<run-id>/metrics.jsonl   one line per finished epoch (loss parts, SSIM, seconds)
runs/<run-id>/checkpoint.pt   the commit point of an epoch (also holds the metrics history)
runs/<run-id>/.lock           flock held by the run's trainer; the holder's pid inside
runs/<run-id>/CANCEL          asks the trainer to stop after the current batch
runs/<run-id>/recon.png       test images over their reconstructions, last epoch
runs/<run-id>/log.txt         the training process's output (when started by core.jobs)
runs/<run-id>/cache/          derived arrays (embeddings, projections, evaluation.json,
                              label-density.pt)
runs/_cache/<id>/             the same for read-only (pretrained) runs, which carry READONLY
```
The runs folder is ``--runs-dir`` / ``$LATENTLAB_RUNS_DIR`` / ``./runs``.

Crash consistency: an epoch is committed by the checkpoint's atomic rename; metrics.jsonl
and status.json follow it and are rebuilt from the checkpoint (which carries the metrics
history) when a run is resumed, so a kill -9 at any instruction never repeats or loses an
epoch row.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.lazy import lazy_exports
from core.store import atomic, schema
from core.store import lock as locks
from core.store.folder import (  # noqa: F401 - re-exported
    MAX_NAME,
    RunDamaged,
    RunError,
    clean_name,
    inside,
    is_run_dir,
    runs_dir,
    slug,
)
from core.store.lock import RunBusyError, RunLock  # noqa: F401 - re-exported
from core.store.schema import STATES, Damaged

if TYPE_CHECKING:  # re-exported too, but imported on first use (see __getattr__)
    from core.store.checkpoint import (  # noqa: F401
        CHECKPOINT_FORMAT,
        CheckpointError,
        load_model,
        read_checkpoint,
        save_checkpoint,
    )
    from core.store.repair import DATA_FIELDS, model_args_of  # noqa: F401

# Names re-exported for callers of core.runs whose modules import torch: loaded on first
# use, so listing and reading runs (the sidebar, Home) never imports torch.
_LAZY = {
    "CHECKPOINT_FORMAT": "core.store.checkpoint",
    "CheckpointError": "core.store.checkpoint",
    "load_model": "core.store.checkpoint",
    "read_checkpoint": "core.store.checkpoint",
    "save_checkpoint": "core.store.checkpoint",
    "DATA_FIELDS": "core.store.repair",
    "model_args_of": "core.store.repair",
}


__getattr__ = lazy_exports(globals(), _LAZY)


FINISHED = ("done", "failed", "cancelled", "interrupted")
LIVE = ("queued", "running")
# Where a run's derived files go when neither its own cache/ nor the runs folder's
# _cache/<id>/ can be used without following a link: nothing can be made, read or written
# under it (its parent is not a folder), as on a read-only disk.
NOWHERE = Path(os.devnull) / "latentlab-cache"


@dataclass
class Run:
    """A handle on one run directory (cheap: reads files on demand). ``lock`` is set when
    this process owns the run (it created it, or is training it)."""

    path: Path
    lock: RunLock | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.path = Path(self.path)

    # ---- creation
    @classmethod
    def create(cls, config: dict, root: str | Path | None = None, name: str | None = None) -> Run:
        """Make ``<root>/<timestamp>-<name>/`` owned by this process (its lock held), with
        config.json and a queued status. Nothing is left behind when it fails."""
        root = runs_dir(root)
        root.mkdir(parents=True, exist_ok=True)
        display = clean_name(name) if name else None
        base = slug(display or f"{config['train']['model']}-{config['train']['dataset']}")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        n = 1
        while True:
            path = root / (f"{stamp}-{base}" if n == 1 else f"{stamp}-{base}-{n}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                n += 1
        run = cls(path)
        try:
            # the cache first: the folder is listed once its lock file exists, and a page
            # that lists it meanwhile must find it whole (a classroom's presses overlap)
            (path / "cache").mkdir(exist_ok=True)
            run.lock = RunLock(path)
            run.lock.acquire()
            run.lock.write_owner()
            cfg = dict(config)
            cfg.setdefault("name", display or base)
            cfg.setdefault("created_at", time.time())
            atomic.write_json(path / "config.json", cfg)
            run.set_status("queued", message="waiting to start")
        except BaseException:
            run.release()
            shutil.rmtree(path, ignore_errors=True)
            raise
        return run

    def release(self) -> None:
        """Give up this process's ownership of the run (if it has it)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def acquire(self) -> Run:
        """Own the run (adopting a lock the launcher passed down); refuse if another process
        does, with one sentence."""
        if self.lock is None or not self.lock.held:
            lk = RunLock(self.path)
            if not lk.acquire_or_adopt():
                raise RunBusyError(locks.busy_message(self.path))
            lk.write_owner()
            self.lock = lk
        return self

    # ---- identity and files
    @property
    def id(self) -> str:
        return self.path.name

    @property
    def exists(self) -> bool:
        return (self.path / "config.json").is_file()

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def log_path(self) -> Path:
        return self.path / "log.txt"

    @property
    def cancel_flag(self) -> Path:
        return self.path / "CANCEL"

    @property
    def readonly(self) -> bool:
        """Pretrained runs carry a READONLY marker: never written, renamed or deleted."""
        return (self.path / "READONLY").exists()

    @property
    def cache_dir(self) -> Path:
        """Derived arrays: <run>/cache/, or <runs folder>/_cache/<id>/ for read-only runs
        and for a run whose cache/ is a link (created when possible; a full or read-only
        disk leaves it missing)."""
        d = self._cache_path()
        with contextlib.suppress(OSError):
            d.mkdir(parents=True, exist_ok=True)
        return d

    def _cache_path(self) -> Path:
        """Where ``cache_dir`` is, without creating it (for readers). Never through a link:
        a cache/ planted as a link to a folder elsewhere is not followed (``inside``)."""
        own = self.own_cache
        if not self.readonly and own is not None:
            return own
        root = runs_dir()
        shared = root / "_cache" / self.id
        return shared if inside(shared, root) else NOWHERE

    @property
    def own_cache(self) -> Path | None:
        """``<run>/cache/`` itself (where a pretrained entry ships derived files), or None
        when it is a link: read a shipped file from here, never from ``path / "cache"``."""
        own = self.path / "cache"
        return own if inside(own, self.path) else None

    def cached(self, name: str) -> list[Path]:
        """Where a derived file ``name`` may be found, in order: the copy shipped in the
        run's own ``cache/`` (pretrained entries carry some), then ``cache_dir``'s. Never
        through a link (``own_cache``). Readers try them in order; writers use
        ``cache_dir``."""
        places = [self._cache_path() / name]
        if self.own_cache is not None and self.own_cache != self._cache_path():
            places.insert(0, self.own_cache / name)
        return places

    def own_file(self, name: str) -> Path | None:
        """``<run>/<name>`` when it is a plain file of the run itself (not a link, which
        could lead outside the runs folder), else None."""
        p = self.path / name
        return p if inside(p, self.path) and p.is_file() else None

    @property
    def busy(self) -> bool:
        """True while a process owns the run (training it, or setting it up)."""
        return locks.is_locked(self.path)

    # ---- validated reads (never raise into a page except through config())
    def config(self) -> dict:
        """The validated config.json; ``RunDamaged`` (one sentence) when it is unusable."""
        try:
            return schema.check_config(schema.read_json(self.config_path))
        except Damaged as e:
            raise RunDamaged(f"{e}: {self._remedy()}") from None

    def config_or_none(self) -> dict | None:
        try:
            return self.config()
        except RunDamaged:
            return None

    def _remedy(self) -> str:
        if self.readonly:
            return "this pretrained entry is damaged; restore it from the repository"
        if self.has_checkpoint():
            return "delete the run, or repair it from its checkpoint on the Runs page"
        return "delete the run on the Runs page"

    @property
    def name(self) -> str:
        cfg = self.config_or_none() or {}
        name = cfg.get("name")
        return name if isinstance(name, str) and name.strip() else self.id

    def _status_file(self) -> tuple[dict | None, str | None]:
        try:
            return schema.check_status(schema.read_json(self.path / "status.json")), None
        except Damaged as e:
            return None, str(e)

    def status(self) -> dict:
        """status.json as written ({"state": "unknown"} when missing or damaged). Pages
        want ``state()``, which also says whether the run is really still training."""
        st, _ = self._status_file()
        return dict(st) if st is not None else {"state": "unknown"}

    def metrics(self) -> list[dict]:
        """Valid metrics rows, one per epoch, in epoch order."""
        return schema.read_metrics(self.path / "metrics.jsonl")[0]

    def problems(self) -> list[str]:
        """One sentence per damaged file (empty for a healthy run)."""
        return self._read()[3]

    def _read(self) -> tuple[dict | None, dict | None, list[dict], list[str]]:
        """(config or None, status or None, metrics rows, problems): each file read once."""
        out = []
        try:
            cfg = self.config()
        except RunDamaged as e:
            cfg = None
            out.append(str(e))
        raw, bad = self._status_file()
        if bad and self.config_path.is_file():
            out.append(f"{bad}; the state shown is worked out from the other files")
        rows, bad_rows = schema.read_metrics(self.path / "metrics.jsonl")
        links = [
            f"{name} is a link, which the lab does not follow: put the {what} itself there"
            for name, what in (("checkpoint.pt", "file"), ("cache", "folder"))
            if (self.path / name).is_symlink()
        ]
        return cfg, raw, rows, out + bad_rows + links

    def state(self) -> dict:
        """What the run is doing, worked out from its files and its lock; never writes.

        Keys: ``state`` (queued, running, done, failed, cancelled, interrupted or damaged),
        ``message``, ``epoch``, ``epochs``, ``step``, ``total``, ``problems``, ``busy``,
        ``resumable`` (a checkpoint to continue from) and ``restartable``.
        """
        cfg, raw, rows, problems = self._read()
        st = dict(raw or {})
        if "epoch" not in st:
            st["epoch"] = rows[-1]["epoch"] if rows else 0
        busy = self.busy
        has_ckpt = self.has_checkpoint()
        st.update(busy=busy, problems=problems, resumable=False, restartable=False)
        if cfg is None:
            st.update(state="damaged", message=problems[0] if problems else "damaged")
            return st
        written = (raw or {}).get("state")
        if busy:
            st["state"] = written if written in LIVE else "queued"
            return st
        if written in ("done", "failed", "cancelled"):
            st["state"] = written
        elif self.cancel_flag.exists() and written in LIVE:
            st.update(state="cancelled", message="cancelled before training finished")
        else:  # queued / running / interrupted / unreadable with no owner: it stopped
            where = (
                f"resume from its last checkpoint (epoch {st['epoch']})"
                if has_ckpt
                else "it had no checkpoint yet: restart it"
            )
            st.update(
                state="interrupted",
                message=f"The training process stopped before finishing; {where} or delete it",
            )
        st["resumable"] = has_ckpt and not self.readonly
        st["restartable"] = not has_ckpt and not self.readonly
        return st

    def evaluation(self) -> dict | None:
        """The cached ``core.evaluate`` result (cache/evaluation.json), if readable and of
        the shape the pages read (``schema.check_evaluation``); else None, as if the run
        had not been evaluated (evaluating it again writes a good one)."""
        cfg = (self.config_or_none() or {}).get("model") or {}
        classes = (cfg.get("config") or {}).get("num_classes")
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
            classes = None  # not conditional: per-class lists of any length
        for p in self.cached("evaluation.json"):
            with contextlib.suppress(Damaged):
                return schema.check_evaluation(schema.read_json(p), classes)
        return None

    def has_checkpoint(self) -> bool:
        """Is there a checkpoint to read: ``checkpoint.pt`` a plain file of the run (a link
        counts as none, and ``problems`` says so)? Every reader of the checkpoint asks
        this first (``app.common.require_run``, the Runs page's download, ``core.jobs``)."""
        return self.own_file("checkpoint.pt") is not None

    # ---- writes (by the owner of the run)
    def _writable(self) -> None:
        if self.readonly:
            raise RunError(f"{self.name} is a pretrained run and read-only: train your own copy.")

    def set_status(self, state: str, drop: tuple[str, ...] = (), **fields) -> dict:
        """Write status.json: the fields given over the ones already there, less ``drop``."""
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}")
        st, _ = self._status_file()
        st = {k: v for k, v in (st or {}).items() if k != "state" and k not in drop}
        st.update(fields, state=state, updated_at=time.time())
        atomic.write_json(self.path / "status.json", st)
        return st

    def update_config(self, **changes) -> None:
        """Read-modify-write config.json under a short lock, so a rename and the trainer's
        own update cannot lose each other's change."""
        with locks.short_lock(self.path / ".config.lock"):
            cfg = self.config()
            cfg.update(changes)
            atomic.write_json(self.config_path, cfg)

    def append_metrics(self, row: dict) -> None:
        """One row, one write() call: a kill mid-line leaves a line without its newline,
        which readers skip and a resume rewrites. Never through a link (ELOOP)."""
        line = (json.dumps(atomic.finite(row)) + "\n").encode()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
        fd = os.open(self.path / "metrics.jsonl", flags, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def write_metrics(self, rows: list[dict]) -> None:
        text = "".join(json.dumps(atomic.finite(r)) + "\n" for r in rows)
        atomic.write_text(self.path / "metrics.jsonl", text)

    def reconcile(self, epoch: int, history: list[dict] | None) -> None:
        """Make metrics.jsonl agree with a checkpoint of ``epoch`` epochs (owner only):
        rows after it are dropped, and rows it carries in ``history`` are restored."""
        rows = {r["epoch"]: r for r in self.metrics() if r["epoch"] <= epoch}
        for r in history or []:
            if isinstance(r, dict) and isinstance(r.get("epoch"), int) and r["epoch"] <= epoch:
                rows[r["epoch"]] = r
        self.write_metrics([rows[k] for k in sorted(rows)])

    def clean_temp(self) -> int:
        """Remove temp files left by a killed writer (owner only)."""
        return atomic.clean_temp_files(self.path) + atomic.clean_temp_files(self.path / "cache")

    def repair(self) -> None:
        """Rewrite config.json, status.json and metrics.jsonl from the checkpoint (the
        commit point of the last finished epoch). Refused while a process owns the run."""
        self._writable()
        if self.checkpoint_path.is_symlink():
            raise RunError("Its checkpoint.pt is a link, which the lab does not follow: put "
                           "the file itself there to repair the run from it.")  # fmt: skip
        from core.store.repair import repair  # reads the checkpoint: torch

        repair(self)

    def delete(self) -> None:
        """Delete the run folder; refused while a process owns it."""
        self._writable()
        if self.path.is_symlink():
            raise RunError("This run folder is a link to somewhere else: remove the link by hand.")
        with RunLock(self.path):
            shutil.rmtree(self.path)

    def rename(self, new_name: str) -> str:
        """Set the display name (plain text); returns the cleaned name."""
        self._writable()
        name = clean_name(new_name)
        self.update_config(name=name)
        return name


def list_runs(root: str | Path | None = None) -> list[Run]:
    """Every run directory under the runs folder, newest first (damaged ones included:
    ``Run.state()`` says so)."""
    root = runs_dir(root)
    try:
        base = root.resolve()
        entries = list(root.iterdir())
    except OSError:
        return []
    runs = [Run(p) for p in entries if is_run_dir(p, base)]
    return sorted(runs, key=lambda r: r.path.name, reverse=True)
