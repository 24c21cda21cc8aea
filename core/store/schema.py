"""What a run's JSON files must hold, checked on every read.

Plain functions over the parsed JSON (no third-party schema library): each returns the
validated value or raises ``Damaged`` with one sentence naming the file and what is wrong
in it. ``core.runs.Run`` turns that into a *damaged* run with a remedy, so a broken file
in the runs folder can never take a page down.

Limits: a JSON file of a run is read only up to ``MAX_JSON_BYTES`` (config and status are
a few KB; metrics.jsonl up to ``MAX_METRICS_BYTES``), only when it is a plain file (never
through a link, which could lead outside the runs folder, nor from a pipe or a device),
and its times and counts only in ranges the pages can show (``MAX_TIME``, ``MAX_COUNT``).
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from dataclasses import MISSING, fields
from pathlib import Path

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
MAX_JSON_BYTES = 1 << 20
MAX_METRICS_BYTES = 16 << 20
# A time (seconds since 1970) is between 1970 and the end of year 9999 (a later one cannot
# be shown as a date: datetime raises). A count (epochs, steps, places in line, bytes) is
# at most 10**15: below 2**53, the largest whole number a browser's number keeps exactly
# (a page's number input refuses more), with room for the pages' arithmetic on it.
MAX_TIME = 253_402_128_000.0  # 9999-12-30 00:00 UTC: a date in every time zone
MAX_COUNT = 10**15


class Damaged(ValueError):
    """A run file is missing, unreadable or of the wrong shape; the message says which."""


def read_bytes(path: Path, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes of the plain file ``path``. A link is refused (it could
    lead outside the runs folder), and so is a pipe or a device (a read could block or
    never end): ``Damaged``, one phrase. A missing file raises ``FileNotFoundError``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Damaged(f"{path.name} is a link, which the lab does not follow") from None
        raise Damaged(f"{path.name} cannot be read ({e.strerror or e})") from None
    try:
        plain = stat.S_ISREG(os.fstat(fd).st_mode)
        if plain:
            with os.fdopen(os.dup(fd), "rb") as f:
                return f.read(limit + 1)
    except OSError as e:
        raise Damaged(f"{path.name} cannot be read ({e.strerror or e})") from None
    finally:
        os.close(fd)
    raise Damaged(f"{path.name} is not a file")


def read_json(path: Path, limit: int = MAX_JSON_BYTES):
    """Parse a JSON file (never following it past ``limit`` bytes, nor through a link)."""
    try:
        raw = read_bytes(path, limit)
    except FileNotFoundError:
        raise Damaged(f"{path.name} is missing") from None
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


def _is_time(v) -> bool:
    return _is_num(v) and 0 <= v <= MAX_TIME


def _is_count(v) -> bool:
    return _is_int(v) and 0 <= v <= MAX_COUNT


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
        if f.name != "seed" and _is_int(train[f.name]) and abs(train[f.name]) > MAX_COUNT:
            raise Damaged(f"{where}: train.{f.name} is larger than 10**15")
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
    if "created_at" in cfg and not _is_time(cfg["created_at"]):
        raise Damaged("config.json: created_at is not a time between 1970 and 9999")
    if "dataset" in cfg and not isinstance(cfg["dataset"], dict):
        raise Damaged("config.json: dataset is not an object")
    return cfg


_STATUS_INTS = ("epoch", "epochs", "step", "total", "pid", "queue_position", "slots",
                "memory_needed", "start_step")  # fmt: skip
_STATUS_TIMES = ("updated_at", "started_at", "queued_at", "expected_start")
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
        if k in st and not _is_count(st[k]):
            raise Damaged(f"status.json: {k} is not a whole number from 0 to 10**15")
    for k in _STATUS_TIMES:
        if k in st and not _is_time(st[k]):
            raise Damaged(f"status.json: {k} is not a number (a time between 1970 and 9999)")
    for k in _STATUS_STRS:
        if k in st and not isinstance(st[k], str):
            raise Damaged(f"status.json: {k} is not text")
    return st


def check_metrics_row(row, lineno: int) -> dict:
    """One line of metrics.jsonl: {epoch: int >= 1, <name>: number or null, ...}."""
    if not isinstance(row, dict):
        raise Damaged(f"metrics.jsonl line {lineno} is not an object")
    if not (_is_count(row.get("epoch")) and row["epoch"] >= 1):
        raise Damaged(f"metrics.jsonl line {lineno} has no epoch number")
    for k, v in row.items():
        if not (v is None or _is_int(v) or isinstance(v, float)):
            raise Damaged(f"metrics.jsonl line {lineno}: {k} is not a number")
    return row


def read_metrics(path: Path) -> tuple[list[dict], list[str]]:
    """(rows, problems): valid rows by epoch (a repeated epoch keeps its last row), and one
    sentence per bad line. A last line without its newline is being written: skipped."""
    try:
        raw = read_bytes(path, MAX_METRICS_BYTES)
    except FileNotFoundError:
        return [], []
    except Damaged as e:
        return [], [str(e)]
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


# ----------------------------------------------------------------------------- evaluation
# What the pages read of cache/evaluation.json (``core.evaluate``'s result), as a shape:
# NUM a finite number, OPT a number or null (a non-finite result is stored as null), INT a
# count, TEXT, BOOL, PER one number per class; [x] a list of x, {str: x} any keys of x, a
# tuple one of its shapes, a key ending in "?" one that may be absent. Keys not named here
# are kept unchecked (no page reads them).
NUM, OPT, INT, TEXT, BOOL, PER = "number", "number or null", "count", "text", "bool", "per class"
_ACCURACY = {"sample_accuracy": NUM, "per_class?": PER}
_SWAP = {"accuracy": NUM, "per_class?": PER, "kept_old?": OPT, "images_per_class?": INT}
_VARIETY = {"ratio?": OPT, "lowest?": OPT, "per_class": PER, "samples_per_class?": INT}
_JUDGED = {
    **_ACCURACY,
    "samples_per_class?": INT,
    "judge_test_accuracy": NUM,
    "judge_per_class?": PER,
    "recon_accuracy?": NUM,
    "judge?": TEXT,
    "swap?": _SWAP,
    "swap_moved?": _SWAP,
}
_TEMPERATURE_ROW = {
    "temperature": NUM,
    "accuracy": {str: OPT},
    "per_class": {str: PER},
    "variety?": OPT,
    "variety_lowest?": OPT,
    "variety_per_class": PER,
}
_MEAN_SD = {"mean?": OPT, "sd?": OPT}
_SNAKERS4 = {"model?": _MEAN_SD, "pca?": _MEAN_SD, "per_class?": INT, "k?": INT, "draws?": INT}
EVALUATION = {
    "target?": TEXT,
    "model?": TEXT,
    "dataset?": TEXT,
    "epoch?": (None, INT),
    "parameters?": INT,
    "latent_kind?": TEXT,
    "latent_dim?": INT,
    "has_kl?": BOOL,
    "test_images": INT,
    "loss_spec?": TEXT,
    "loss?": {str: OPT},
    "ssim?": OPT,
    "ssim_padded?": OPT,
    "likelihood?": {str: OPT},
    "kl_per_dim?": [OPT],
    "active_units?": INT,
    "latent_variance?": [OPT],
    "knn?": {
        "k?": INT,
        "train_images?": INT,
        "test_images?": INT,
        "model?": OPT,
        "model_dim?": INT,
        "pca?": OPT,
        "pca_dim?": INT,
        "snakers4?": (None, _SNAKERS4),
    },
    "conditional?": {
        **_JUDGED,
        "variety?": _VARIETY,
        "sharp?": _JUDGED,
        "temperature?": (None, [_TEMPERATURE_ROW]),
        "own_codes?": {
            "components?": [INT],
            "fit_seconds?": OPT,
            "shipped?": _ACCURACY,
            "sharp?": _ACCURACY,
            "variety": _VARIETY,
            "swap?": {str: _SWAP},
            "temperature?": (None, [_TEMPERATURE_ROW]),
        },
    },
    "seconds?": OPT,
}


def _fits(v, shape, classes: int | None) -> bool:
    """Does the JSON value ``v`` have ``shape`` (see ``EVALUATION``)? ``classes``: the
    length of a PER list (any length when None)."""
    if isinstance(shape, tuple):
        return any(_fits(v, s, classes) for s in shape)
    if shape is None:
        return v is None
    if isinstance(shape, list):
        return isinstance(v, list) and all(_fits(x, shape[0], classes) for x in v)
    if isinstance(shape, dict):
        if not isinstance(v, dict):
            return False
        if str in shape:
            return all(isinstance(k, str) and _fits(x, shape[str], classes) for k, x in v.items())
        for key, inner in shape.items():
            name = key.removesuffix("?")
            if name not in v:
                if name == key:
                    return False
            elif not _fits(v[name], inner, classes):
                return False
        return True
    if shape == PER:
        return (
            isinstance(v, list)
            and (classes is None or len(v) == classes)
            and all(_is_num(x) for x in v)
        )
    return {
        NUM: _is_num,
        OPT: lambda x: x is None or _is_num(x),
        INT: _is_count,
        TEXT: lambda x: isinstance(x, str),
        BOOL: lambda x: isinstance(x, bool),
    }[shape](v)


def check_evaluation(ev, classes: int | None = None) -> dict:
    """cache/evaluation.json: the shape ``EVALUATION`` of every part a page reads, with one
    number per class in each per-class list (``classes``, when the run says how many);
    a temperature table's rows have the same judges. ``Damaged`` when it does not fit: the
    whole file counts as absent (evaluate the run again)."""
    if not _fits(ev, EVALUATION, classes):
        raise Damaged("evaluation.json does not hold a result of core.evaluate")
    rows = (ev.get("conditional") or {}).get("temperature") or []
    if any(set(r["accuracy"]) != set(rows[0]["accuracy"]) for r in rows):
        raise Damaged("evaluation.json: the temperature rows do not name the same judges")
    return ev
