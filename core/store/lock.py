"""Process ownership of a run: an OS file lock on ``<run>/.lock``.

A training process holds an exclusive ``fcntl.flock`` on its run's ``.lock`` for as long
as it lives; the kernel drops it when the process ends, however it ends (kill -9
included). So "is this run training" means "is its lock held", never "is some process
alive with the pid status.json names" (pids are reused).

The holder writes who it is into the lock file (pid, process start time, command), and
``trainer_process`` only returns a process that matches that record (pid and start time),
runs ``core.train`` and has this run's lock file open while the lock is held, so a cancel
can never signal an unrelated process, or pid 0 / 1 / -1.

``core.jobs`` takes the lock before spawning the trainer and hands the open file to the
child (``LATENTLAB_RUN_LOCK_FD``), so the run is owned from before the child exists; the
child adopts it.

On a Ray cluster (``core.ray_engine``) the trainer is a Ray worker, perhaps on another
machine: the launcher's process keeps the lock for the run's whole life and writes a random
``delegate`` token into ``<run>/.delegate`` (a file of its own: ``core.jobs`` rewrites the
lock's record with the launcher's pid after the spawn, at a moment the launcher cannot
know); the worker, given the same token
(``LATENTLAB_RUN_LOCK_DELEGATE``), trains under that lock without holding one itself
(``RunLock.delegate``). Only the launcher is ever signalled, and Ray ends the worker when
the launcher dies, so the lock still says whether the run is training.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import os
import time
from pathlib import Path

import psutil

from core.store import atomic

LOCK_NAME = ".lock"
DELEGATE_NAME = ".delegate"  # a Ray launcher's token (core.ray_engine)
FD_ENV = "LATENTLAB_RUN_LOCK_FD"
DELEGATE_ENV = "LATENTLAB_RUN_LOCK_DELEGATE"


class LockLost(BaseException):
    """A delegate's launcher no longer holds the run (it died, or the run has a new owner):
    the delegate stops at once and writes nothing more (a BaseException: no ``except
    Exception`` on the way swallows it)."""


class RunBusyError(ValueError):
    """The run is owned by a live process (training, or being set up)."""


def lock_path(run_path: str | Path) -> Path:
    return Path(run_path) / LOCK_NAME


def is_locked(run_path: str | Path) -> bool:
    """True while some process (this one included) holds the run's lock. Never writes."""
    return file_locked(lock_path(run_path))


def file_locked(path: str | Path) -> bool:
    """True while some process (this one included) holds an exclusive flock on ``path``.
    Never writes (a missing file is not locked)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # also releases the shared lock we may have taken
    return False


def delegate_token(run_path: str | Path) -> str | None:
    """The token a launcher granted its delegate, or None (no file, unreadable, a link)."""
    try:
        fd = os.open(Path(run_path) / DELEGATE_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        text = os.read(fd, 256).decode("ascii", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    return text or None


def owner(run_path: str | Path) -> dict:
    """The holder's record (pid, create_time, cmd), or {} when missing or unreadable."""
    try:
        rec = json.loads(lock_path(run_path).read_text()[:4096])
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def _record(pid: int) -> dict:
    try:
        p = psutil.Process(pid)
        return {"pid": pid, "create_time": p.create_time()}
    except psutil.Error:
        return {"pid": pid}


def trainer_process(run_path: str | Path) -> psutil.Process | None:
    """The live trainer of this run, verified, or None. Only this process may be signalled."""
    run_path = Path(run_path)
    if not is_locked(run_path):
        return None
    rec = owner(run_path)
    pid = rec.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1 or pid == os.getpid():
        return None
    try:
        p = psutil.Process(pid)
        if abs(p.create_time() - float(rec.get("create_time", -1))) > 0.05:
            return None  # the pid was reused by another process
        cmd = p.cmdline()
        held = {f.path for f in p.open_files()}
    except (psutil.Error, TypeError, ValueError):
        return None
    trainer = "core.train" in cmd or "core.queue" in cmd  # core.queue: waiting, then training
    if not trainer or str(lock_path(run_path).resolve()) not in held:
        return None  # not a trainer, or not this run's: never signalled
    return p


class RunLock:
    """The exclusive lock on one run. ``acquire`` never blocks: it returns False when the
    run is owned by another process."""

    def __init__(self, run_path: str | Path):
        self.path = lock_path(run_path)
        self.fd: int | None = None
        self.adopted = False
        self.delegated = False  # trains under the lock another process holds for it
        self._token = ""
        self._checked = 0.0
        self._granted = False  # this holder wrote <run>/.delegate

    @property
    def held(self) -> bool:
        return self.fd is not None or self.delegated

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        self._revoke_delegate()
        return True

    def _revoke_delegate(self) -> None:
        """A new owner: a token a killed launcher left behind (``.delegate``) no longer
        lets its task train here."""
        with contextlib.suppress(OSError):
            (self.path.parent / DELEGATE_NAME).unlink(missing_ok=True)

    def adopt(self, fd: int) -> bool:
        """Take over a lock a parent acquired and passed down (same file, still locked)."""
        try:
            st, cur = os.fstat(fd), os.stat(self.path, follow_symlinks=False)
        except OSError:
            return False
        if (st.st_dev, st.st_ino) != (cur.st_dev, cur.st_ino):
            return False
        try:  # re-locking our own open file description succeeds; anything else is not ours
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        self.fd = fd
        self.adopted = True
        self._revoke_delegate()
        return True

    def _granted_to(self, token: str) -> bool:
        """The lock is held and its holder granted ``token`` (``<run>/.delegate``)."""
        theirs = delegate_token(self.path.parent)
        if not (theirs and len(token) >= 16 and is_locked(self.path.parent)):
            return False
        return hmac.compare_digest(theirs.encode(), token.encode())

    def delegate(self, token: str) -> bool:
        """Train under the lock another process holds for this one (a Ray worker under its
        launcher): True when the lock is held and its holder granted ``token``."""
        if not self._granted_to(token):
            return False
        self.delegated = self.adopted = True
        self._token, self._checked = token, time.monotonic()
        return True

    def check_delegate(self, every: float = 0.0) -> None:
        """For a delegate: raise LockLost unless its launcher still holds the lock with the
        same token (asked at most once per ``every`` seconds). No-op for a real holder."""
        if not self.delegated or time.monotonic() - self._checked < every:
            return
        self._checked = time.monotonic()
        if not self._granted_to(self._token):
            self.delegated = False
            raise LockLost("the process that launched this run no longer holds it")

    def acquire_or_adopt(self) -> bool:
        """In a trainer: adopt the lock its launcher passed down (or train under the one it
        holds, on a Ray worker), else take it."""
        fd = os.environ.pop(FD_ENV, None)
        if fd is not None and fd.isdigit() and self.adopt(int(fd)):
            return True
        token = os.environ.pop(DELEGATE_ENV, None)
        if token:  # a delegate never takes the lock itself: it is someone else's run
            return self.delegate(token)
        return self.acquire()

    def write_owner(self, pid: int | None = None, **extra) -> None:
        """Record who holds the lock (best effort: a full disk leaves the old record). A
        delegate writes nothing: the record stays its launcher's."""
        if self.delegated:
            return
        assert self.fd is not None
        rec = {**_record(pid or os.getpid()), **extra}
        data = json.dumps(rec).encode()
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)

    def grant_delegate(self, token: str) -> None:
        """As the holder: let a process given ``token`` train under this lock (a Ray
        worker), until this lock is released. Written whole (temp file, rename)."""
        assert self.fd is not None
        atomic.write_bytes(self.path.parent / DELEGATE_NAME, token.encode("ascii"))
        self._granted = True

    def hand_over(self) -> None:
        """Close this process's handle without unlocking: a child that inherited the same
        open file (``pass_fds``) keeps the lock (unlocking would release it for both)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def release(self) -> None:
        self.delegated = False
        if self.fd is not None and self._granted:  # a late delegate finds no token
            with contextlib.suppress(OSError):
                (self.path.parent / DELEGATE_NAME).unlink(missing_ok=True)
            self._granted = False
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        if not self.acquire():
            raise RunBusyError(busy_message(self.path.parent))
        return self

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def short_lock(path: Path):
    """A blocking exclusive lock for a quick read-modify-write (best effort: where the lock
    file cannot be made, on a full disk say, the block runs unlocked)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def busy_message(run_path: str | Path) -> str:
    pid = owner(run_path).get("pid")
    who = f" (pid {pid})" if isinstance(pid, int) else ""
    return f"This run is in use by another process{who}: wait for it to finish or cancel it first."
