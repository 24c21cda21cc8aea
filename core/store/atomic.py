"""Atomic file writes: the one helper every writer of the lab uses.

A write goes to a temp file beside the target (``.<name>.<pid>.<random>.tmp``), is
flushed and fsynced, then renamed over the target, so a reader sees the old file or the
new one, never half of one, and a kill at any instruction leaves the old file intact. A
failed write (disk full, say) removes its temp file before the error propagates; temp
files left by a killed writer are removed by ``clean_temp_files``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from core.store import faults

TEMP_SUFFIX = ".tmp"


class NoSpaceError(OSError):
    """The disk is full; the message says to free space (and resume, for a run)."""


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _no_space(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)


def write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp)`` to fill a temp file, then rename it over ``path`` atomically."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        writer(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        faults.point(f"write:{path.name}")
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as e:
        # torch.save reports a full disk as a RuntimeError from its zip writer: look
        # at the disk (before the temp file's blocks are given back) to tell
        full = isinstance(e, OSError) and _no_space(e)
        if isinstance(e, RuntimeError):
            with contextlib.suppress(OSError):
                full = shutil.disk_usage(path.parent).free < (1 << 20)
        with contextlib.suppress(OSError):
            tmp.unlink()
        if full:
            raise NoSpaceError(
                errno.ENOSPC, f"no space left on device while writing {path.name}: free space"
            ) from None
        raise


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a power cut after it keeps the new file)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(path: str | Path, data: bytes) -> None:
    write_with(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def finite(obj):
    """JSON has no NaN or infinity: store them as null (a strict reader would refuse them)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def write_json(path: str | Path, obj) -> None:
    write_text(path, json.dumps(finite(obj), indent=2, sort_keys=True, allow_nan=False))


def overwrite_in_place(path: str | Path, data: bytes) -> None:
    """Last resort on a full disk: overwrite a small existing file without allocating (no
    temp file; the bytes go into the blocks the file already has, when it is not shorter).
    Not atomic: only for a status that would otherwise not be written at all."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def clean_temp_files(folder: str | Path, keep_pid: int | None = None) -> int:
    """Remove temp files a killed writer left in ``folder`` (not recursive); returns how
    many. Only call it while no other process writes the folder (its run lock is free or
    held by the caller); ``keep_pid``'s own temp files are kept."""
    n = 0
    folder = Path(folder)
    with contextlib.suppress(OSError):
        for p in folder.iterdir():
            if not (p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX)):
                continue
            if keep_pid is not None and f".{keep_pid}." in p.name:
                continue
            with contextlib.suppress(OSError):
                p.unlink()
                n += 1
    return n
