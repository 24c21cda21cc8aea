"""The runs folder: where it is, what in it counts as a run, run names, and the run
store's errors. ``core.runs`` re-exports all of this."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from core.store import lock as locks

MAX_NAME = 80


class RunError(ValueError):
    """A run directory is missing or malformed, or an action on it is not allowed."""


class RunDamaged(RunError):
    """A run's files cannot be read; the message says which file and what to do."""


def runs_dir(override: str | Path | None = None) -> Path:
    """The runs folder: ``override``, else $LATENTLAB_RUNS_DIR, else ./runs."""
    return Path(override or os.environ.get("LATENTLAB_RUNS_DIR") or "runs")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or "run"


def clean_name(text) -> str:
    """A run name as plain text: control characters removed, whitespace collapsed, at most
    ``MAX_NAME`` characters. Shown as text on every page, never as Markdown or HTML."""
    if not isinstance(text, str):
        raise RunError("A run name must be text: type a name.")
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    text = " ".join(text.split())
    if not text:
        raise RunError("A run name cannot be empty: type a name.")
    if len(text) > MAX_NAME:
        raise RunError(f"A run name can have at most {MAX_NAME} characters: shorten it.")
    return text


def inside(path: Path, root: Path) -> bool:
    """Is ``path`` (there or not) inside the folder ``root`` with no symbolic link on the
    way: no part of it below ``root`` is a link, and it does not climb out with ``..``?

    Run folders are hostile: a ``checkpoint.pt`` or ``cache/`` planted as a link would
    lead the lab to read, write or delete files outside the runs folder. The run store
    uses a file of a run only through a path that passes (``core.runs.Run``); one that
    does not reads as absent."""
    try:
        rel = Path(path).relative_to(root)
    except ValueError:
        return False
    here = Path(root)
    for part in rel.parts:
        if part == "..":
            return False
        here = here / part
        try:
            if here.is_symlink():
                return False
        except OSError:  # cannot be looked at: not a place to read or write
            return False
    return True


def is_run_dir(p: Path, root: Path) -> bool:
    if p.name[0] in "_." or p.is_symlink() or not p.is_dir():
        return False  # links could point out of the runs folder: never listed or written
    try:
        if not p.resolve().is_relative_to(root):
            return False
    except OSError:
        return False
    return any((p / f).exists() for f in ("config.json", "status.json", locks.LOCK_NAME))
