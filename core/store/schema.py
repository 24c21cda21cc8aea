"""What a run's JSON files must hold, checked on every read.

Plain functions over the parsed JSON (no third-party schema library): each returns the
validated value or raises ``Damaged`` with one sentence naming the file and what is wrong
in it. ``core.runs.Run`` turns that into a *damaged* run with a remedy, so a broken file
in the runs folder can never take a page down.

Limits: a JSON file of a run is read only up to ``MAX_JSON_BYTES`` (config and status are
a few KB; metrics.jsonl up to ``MAX_METRICS_BYTES``).
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, fields
from pathlib import Path

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
MAX_JSON_BYTES = 1 << 20
MAX_METRICS_BYTES = 16 << 20


class Damaged(ValueError):
    """A run file is missing, unreadable or of the wrong shape; the message says which."""


def read_json(path: Path, limit: int = MAX_JSON_BYTES):
    """Parse a JSON file (never following it past ``limit`` bytes)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise Damaged(f"{path.name} is missing") from None
    except OSError as e:
        raise Damaged(f"{path.name} cannot be read ({e.strerror or e})") from None
    if len(raw) > limit:
        raise Damaged(f"{path.name} is larger than {limit // 1024} KB")
    if not raw.strip():
        raise Damaged(f"{path.name} is empty")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError):
        raise Damaged(f"{path.name} is not valid JSON (truncated or edited by hand?)") from None


def _null(name: str) -> None:
    return None  # NaN / Infinity in a metrics row: no value


def _no_constants(name: str):
    raise ValueError(f"{name} is not a number")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _type_ok(v, default) -> bool:
    """Is ``v`` of the JSON type of a dataclass field whose default is ``default``?"""
    if default is None:
        return v is None or isinstance(v, str)
    if isinstance(default, bool):
        return isinstance(v, bool)
    if isinstance(default, int):
        return _is_int(v)
    if isinstance(default, float):
        return _is_num(v)
    if isinstance(default, str):
        return isinstance(v, str)
    if isinstance(default, list | tuple):
        return isinstance(v, list) and all(_is_int(x) for x in v)
    return True


def check_train_section(train, where: str = "config.json") -> dict:
    """The ``train`` section: every known TrainConfig field of the right JSON type."""
    from core.train_config import TrainConfig  # light: no torch, no model registry

    if not isinstance(train, dict):
        raise Damaged(f"{where} has no 'train' section (or it is not an object)")
    for f in fields(TrainConfig):
        if f.name not in train:
            continue
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        if not _type_ok(train[f.name], default):
            raise Damaged(f"{where}: train.{f.name} has the wrong type ({train[f.name]!r:.40})")
    for key in ("model", "dataset"):
        if not isinstance(train.get(key), str) or not train[key]:
            raise Damaged(f"{where}: train.{key} is missing or not a name")
    return train


def check_config(cfg) -> dict:
    """config.json: {name?, created_at?, train: {...}, model: {name, args?, config?}, ...}."""
    if not isinstance(cfg, dict):
        raise Damaged("config.json does not hold an object")
    check_train_section(cfg.get("train"))
    model = cfg.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise Damaged("config.json has no 'model' section with a model name")
    for key in ("args", "config"):
        if model.get(key) is not None and not isinstance(model[key], dict):
            raise Damaged(f"config.json: model.{key} is not an object")
    if "name" in cfg and not isinstance(cfg["name"], str):
        raise Damaged("config.json: name is not text")
    if "created_at" in cfg and not _is_num(cfg["created_at"]):
        raise Damaged("config.json: created_at is not a time")
    if "dataset" in cfg and not isinstance(cfg["dataset"], dict):
        raise Damaged("config.json: dataset is not an object")
    return cfg


_STATUS_INTS = ("epoch", "epochs", "step", "total", "pid", "queue_position", "slots",
                "memory_needed", "start_step")  # fmt: skip
_STATUS_NUMS = ("updated_at", "started_at", "queued_at", "expected_start")
_STATUS_STRS = ("message", "device", "phase")


def check_status(st) -> dict:
    """status.json: {state, epoch?, epochs?, step?, total?, pid?, message?, ...}."""
    if not isinstance(st, dict):
        raise Damaged("status.json does not hold an object")
    if st.get("state") not in STATES:
        raise Damaged(
            f"status.json: state {st.get('state')!r:.30} is not one of {', '.join(STATES)}"
        )
    for k in _STATUS_INTS:
        if k in st and not (_is_int(st[k]) and st[k] >= 0):
            raise Damaged(f"status.json: {k} is not a whole number >= 0")
    for k in _STATUS_NUMS:
        if k in st and not _is_num(st[k]):
            raise Damaged(f"status.json: {k} is not a number")
    for k in _STATUS_STRS:
        if k in st and not isinstance(st[k], str):
            raise Damaged(f"status.json: {k} is not text")
    return st


def check_metrics_row(row, lineno: int) -> dict:
    """One line of metrics.jsonl: {epoch: int >= 1, <name>: number or null, ...}."""
    if not isinstance(row, dict):
        raise Damaged(f"metrics.jsonl line {lineno} is not an object")
    if not (_is_int(row.get("epoch")) and row["epoch"] >= 1):
        raise Damaged(f"metrics.jsonl line {lineno} has no epoch number")
    for k, v in row.items():
        if not (v is None or _is_int(v) or isinstance(v, float)):
            raise Damaged(f"metrics.jsonl line {lineno}: {k} is not a number")
    return row


def read_metrics(path: Path) -> tuple[list[dict], list[str]]:
    """(rows, problems): valid rows by epoch (a repeated epoch keeps its last row), and one
    sentence per bad line. A last line without its newline is being written: skipped."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_METRICS_BYTES + 1)
    except FileNotFoundError:
        return [], []
    except OSError as e:
        return [], [f"metrics.jsonl cannot be read ({e.strerror or e})"]
    problems = []
    if len(raw) > MAX_METRICS_BYTES:
        problems.append(f"metrics.jsonl is larger than {MAX_METRICS_BYTES >> 20} MB")
        raw = raw[:MAX_METRICS_BYTES]
    lines = raw.split(b"\n")
    if lines and lines[-1]:
        lines = lines[:-1]  # an unfinished line of a writer still at work (or killed)
    by_epoch: dict[int, dict] = {}
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = check_metrics_row(json.loads(line.decode("utf-8"), parse_constant=_null), i)
        except (UnicodeDecodeError, ValueError) as e:
            msg = str(e) if isinstance(e, Damaged) else f"metrics.jsonl line {i} is not valid JSON"
            problems.append(msg)
            continue
        by_epoch[row["epoch"]] = row
    return [by_epoch[k] for k in sorted(by_epoch)], problems
