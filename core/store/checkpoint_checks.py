"""The untrusted read of a checkpoint, before anything is built: the archive's structure
(``check_archive``, before ``torch.load``) and every field's type (``check_checkpoint``,
after ``torch.load(weights_only=True)``). Each refusal is a ``CheckpointError`` with one
sentence naming the file, what is wrong and what to do. ``core.store.checkpoint`` says the
whole sequence and re-exports all of this.
"""

from __future__ import annotations

import math
import os
import re
import types
import typing
import zipfile
from dataclasses import fields
from pathlib import Path

import torch

from core.models import MODELS, config_class

CHECKPOINT_FORMAT = 1
MAX_PARAMS = 50_000_000  # default cap on a checkpoint's declared network
MAX_PARAMS_ENV = "LATENTLAB_MAX_PARAMS"
MAX_PICKLE_BYTES = 4 << 20  # a checkpoint's data.pkl (structure only) is a few KB
MAX_ENTRIES = 100_000  # files inside the archive
MAX_NODES = 1_000_000  # containers and values in the loaded dict
MAX_DEPTH = 32
MAX_TEXT = 4096  # characters of a text field (a path, a loss formula, a class name)
MAX_SEQ = 16  # entries of a tuple setting (channels)
MAX_LIST = 10_000  # entries of a list (milestones, class names)
_INT_MAX = 2**63 - 1
_SIZE_MAX = 2**31 - 1  # model settings are sizes and counts
_REUPLOAD = "upload a checkpoint.pt saved by this lab"


class CheckpointError(ValueError):
    """A file is not a checkpoint of this lab; the message says what is wrong."""


def max_params() -> int:
    """The largest network (parameters and buffers) a checkpoint may declare:
    ``$LATENTLAB_MAX_PARAMS`` (read at each call), else ``MAX_PARAMS``."""
    raw = os.environ.get(MAX_PARAMS_ENV, "").strip().replace("_", "")
    if re.fullmatch(r"[0-9]{1,15}", raw) and int(raw) > 0:
        return int(raw)
    return MAX_PARAMS


# ----------------------------------------------------------------------------- the archive
def check_archive(path: Path, name: str | None = None) -> None:
    """Refuse, before ``torch.load`` reads a byte of it, a file that is not the
    uncompressed zip archive ``torch.save`` writes."""
    name = name or path.name
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{name} is empty: {_REUPLOAD}.")
    not_zip = CheckpointError(
        f"{name} is not a latent-lab checkpoint (it is not the zip archive torch.save "
        f"writes, or it was cut short): {_REUPLOAD}, complete."
    )
    try:
        if not zipfile.is_zipfile(path):
            raise not_zip
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except CheckpointError:
        raise
    except Exception:  # BadZipFile, a lying directory, an unreadable file
        raise not_zip from None
    if len(infos) > MAX_ENTRIES:
        raise CheckpointError(
            f"{name} holds {len(infos):,} files, far more than a checkpoint has: {_REUPLOAD}."
        )
    tops = {i.filename.split("/", 1)[0] for i in infos}
    top = next(iter(tops)) if len(tops) == 1 else None
    pkl = next((i for i in infos if top is not None and i.filename == f"{top}/data.pkl"), None)
    if pkl is None:
        raise CheckpointError(
            f"{name} is a zip archive but not a PyTorch checkpoint (no data.pkl inside): "
            f"{_REUPLOAD}."
        )
    if any(i.compress_type != zipfile.ZIP_STORED or i.file_size != i.compress_size for i in infos):
        raise CheckpointError(
            f"{name} is a compressed zip archive, which torch.save never writes (it could "
            "unpack to gigabytes): upload the checkpoint.pt as saved, not re-zipped."
        )
    if sum(i.compress_size for i in infos) > size:
        raise CheckpointError(
            f"{name} is cut short (its archive lists more bytes than the file has): "
            f"{_REUPLOAD}, complete."
        )
    if pkl.file_size > MAX_PICKLE_BYTES:
        raise CheckpointError(
            f"{name} has a {pkl.file_size >> 20} MB object table, far more than a checkpoint "
            f"needs (at most {MAX_PICKLE_BYTES >> 20} MB): {_REUPLOAD}."
        )


# ----------------------------------------------------------------------------- field types
def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _show(v) -> str:
    """A short description of a value for a message (never its whole repr)."""
    if isinstance(v, torch.Tensor):
        return f"a tensor of shape {tuple(v.shape)}"
    if isinstance(v, dict):
        return f"a dict of {len(v)} entries"
    if isinstance(v, list | tuple) and len(v) > 6:
        return f"a list of {len(v)} entries"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, str | bytes | int | float | bool | list | tuple) or v is None:
        text = repr(v)
        return text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(v).__name__}"


def _key(k) -> str:
    text = repr(k)
    return text if len(text) <= 60 else text[:57] + "..."


def _need(v, tp, bound: int) -> str | None:
    """None when ``v`` has the type ``tp`` (a dataclass annotation), else what it needs."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        needs = [_need(v, a, bound) for a in args if a is not type(None)]
        if any(n is None for n in needs):
            return None
        return " or ".join(n for n in needs if n) + (" or null" if type(None) in args else "")
    if tp is bool:
        return None if isinstance(v, bool) else "true or false"
    if tp is int:
        return None if _is_int(v) and 0 <= v <= bound else f"a whole number from 0 to {bound}"
    if tp is float:
        return None if _is_num(v) else "a finite number"
    if tp is str:
        ok = isinstance(v, str) and len(v) <= MAX_TEXT
        return None if ok else f"text of at most {MAX_TEXT} characters"
    if origin in (tuple, list):
        if origin is tuple and args and args[-1] is not Ellipsis:
            n = len(args)
            ok = isinstance(v, list | tuple) and len(v) == n
            ok = ok and all(_is_int(x) and 1 <= x <= bound for x in v)
            return None if ok else f"{n} whole numbers of 1 or more"
        most = MAX_SEQ if origin is tuple else MAX_LIST
        ok = isinstance(v, list | tuple) and len(v) <= most
        ok = ok and all(_is_int(x) and 1 <= x <= bound for x in v)
        return None if ok else f"a list of at most {most} whole numbers of 1 or more"
    return None  # a type the checks do not know: left to the config's own validation


def _refuse_field(name: str, where: str, v, need: str):
    raise CheckpointError(
        f"{name} is not a usable checkpoint: {where} is {_show(v)} but must be {need}; "
        f"{_REUPLOAD}, unedited."
    )


def _check_fields(name: str, section: str, d, cls, bound: int, strict: bool) -> None:
    """Every field of dataclass ``cls`` present in ``d`` has its annotated type; unknown
    keys are refused when ``strict`` (a model config), ignored otherwise."""
    if not isinstance(d, dict):
        _refuse_field(name, section, d, "a dict of settings")
    hints = typing.get_type_hints(cls)
    known = {f.name: hints.get(f.name) for f in fields(cls)}
    for k, v in d.items():
        if not isinstance(k, str) or k not in known:
            if strict:
                raise CheckpointError(
                    f"{name} is not a usable checkpoint: {section} has the setting {_key(k)}, "
                    f"which its model does not have (it has {', '.join(known)}); "
                    f"{_REUPLOAD}, unedited."
                )
            continue
        need = _need(v, known[k], bound)
        if need:
            _refuse_field(name, f"{section}.{k}", v, need)


def _check_dataset(name: str, d) -> None:
    if not isinstance(d, dict):
        _refuse_field(name, "dataset", d, "a dict (name, image_shape, class_names)")
    if "name" in d and _need(d["name"], str, 0):
        _refuse_field(name, "dataset.name", d["name"], f"text of at most {MAX_TEXT} characters")
    if "image_shape" in d and _need(d["image_shape"], tuple[int, int, int], _SIZE_MAX):
        _refuse_field(name, "dataset.image_shape", d["image_shape"], "3 whole numbers of 1 or more")
    names = d.get("class_names")
    if names is not None and not (
        isinstance(names, list | tuple)
        and len(names) <= MAX_LIST
        and all(isinstance(s, str) and len(s) <= MAX_TEXT for s in names)
    ):
        _refuse_field(
            name, "dataset.class_names", names, f"a list of texts of at most {MAX_TEXT} characters"
        )


def _check_metrics(name: str, m, where: str = "metrics") -> None:
    if not isinstance(m, dict) or len(m) > 1000:
        _refuse_field(name, where, m, "a dict of numbers")
    for k, v in m.items():
        if not isinstance(k, str) or len(k) > MAX_TEXT:
            _refuse_field(name, f"a key of {where}", k, "text")
        if not (v is None or _is_int(v) or isinstance(v, float)):
            _refuse_field(name, f"{where}[{_key(k)}]", v, "a number")
    if "epoch" in m and not (_is_int(m["epoch"]) and 0 <= m["epoch"] <= _INT_MAX):
        _refuse_field(name, f"{where}['epoch']", m["epoch"], "a whole number of 0 or more")


def _check_tensors(name: str, ckpt: dict, cap: int) -> None:
    """Walk the whole dict (iteratively, bounded): every tensor dense and at most ``cap``
    numbers, every container not absurdly deep or large."""
    stack = [(ckpt, "the checkpoint", 0)]
    seen = 0
    while stack:
        obj, where, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES or depth > MAX_DEPTH:
            raise CheckpointError(
                f"{name} is not a usable checkpoint: it nests containers too deeply or holds "
                f"too many values (at {where[:80]}); {_REUPLOAD}."
            )
        if isinstance(obj, torch.Tensor):
            if obj.layout != torch.strided or obj.is_quantized:
                _refuse_field(name, where, obj, "a dense tensor")
            if obj.numel() > cap:
                raise CheckpointError(
                    f"{name} is not a usable checkpoint: {where} declares {obj.numel():,} "
                    f"numbers, more than the {cap:,} this server accepts; {_REUPLOAD}, or "
                    f"raise {MAX_PARAMS_ENV} on the server."
                )
        elif isinstance(obj, dict):
            stack.extend((v, f"{where}[{_key(k)}]", depth + 1) for k, v in obj.items())
        elif isinstance(obj, list | tuple):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj))


def check_checkpoint(ckpt, name: str) -> dict:
    """Type-check a loaded checkpoint dict field by field; returns it, or raises
    ``CheckpointError`` naming the first bad field."""
    if (
        not isinstance(ckpt, dict)
        or not isinstance(ckpt.get("format"), str)
        or (ckpt["format"] != "latent-lab")
    ):
        raise CheckpointError(
            f"{name} is a PyTorch file but not a latent-lab checkpoint (no model name and "
            f"config inside); {_REUPLOAD}."
        )
    version = ckpt.get("format_version", 0)
    if not _is_int(version) or version < 0:
        _refuse_field(name, "format_version", version, "a whole number")
    if version > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{name} was written by a newer version of the lab (format {version}); update "
            "the lab to open it."
        )
    model_name = ckpt.get("model_name")
    if not isinstance(model_name, str) or model_name not in MODELS:
        raise CheckpointError(
            f"{name} could not be rebuilt: its model_name {_show(model_name)} is not a model "
            f"of this lab; upload a checkpoint of one of {', '.join(MODELS)}."
        )
    _check_fields(
        name, "model_config", ckpt.get("model_config"), config_class(model_name), _SIZE_MAX, True
    )
    sd = ckpt.get("state_dict")
    if not isinstance(sd, dict) or not sd:
        _refuse_field(name, "state_dict", sd, "a dict of the model's tensors")
    for k, v in sd.items():
        if not isinstance(k, str):
            _refuse_field(name, "a state_dict key", k, "text")
        if not isinstance(v, torch.Tensor) or not v.is_floating_point():
            _refuse_field(name, f"state_dict[{_key(k)}]", v, "a tensor of floating-point numbers")
    if ckpt.get("train_config") is not None:
        from core.config import TrainConfig  # not at import time: core.config imports models

        _check_fields(name, "train_config", ckpt["train_config"], TrainConfig, _INT_MAX, False)
    if ckpt.get("dataset") is not None:
        _check_dataset(name, ckpt["dataset"])
    if "epoch" in ckpt and not (_is_int(ckpt["epoch"]) and 0 <= ckpt["epoch"] <= _INT_MAX):
        _refuse_field(name, "epoch", ckpt["epoch"], "a whole number of 0 or more")
    if ckpt.get("metrics") is not None:
        _check_metrics(name, ckpt["metrics"])
    history = ckpt.get("history")
    if history is not None:
        if not isinstance(history, list | tuple) or len(history) > MAX_LIST:
            _refuse_field(name, "history", history, "a list of metrics rows")
        for i, row in enumerate(history):
            _check_metrics(name, row, f"history[{i}]")
    for key in ("optimizer", "scheduler"):
        if ckpt.get(key) is not None and not isinstance(ckpt[key], dict):
            _refuse_field(name, key, ckpt[key], "a dict (a state_dict)")
    for key in ("rng", "torch_rng"):
        v = ckpt.get(key)
        if v is not None and not (
            isinstance(v, torch.Tensor) and v.dtype == torch.uint8 and v.dim() == 1
        ):
            _refuse_field(name, key, v, "a random generator state (a 1-D uint8 tensor)")
    _check_tensors(name, ckpt, max_params())
    return ckpt
