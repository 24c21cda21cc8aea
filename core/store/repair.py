"""Repairing a run from its checkpoint: config.json, status.json and metrics.jsonl
rewritten from the commit point of its last finished epoch (``Run.repair``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from core.models import FAMILIES
from core.store import atomic, schema
from core.store.checkpoint import read_checkpoint
from core.store.folder import RunDamaged
from core.store.lock import RunLock
from core.store.schema import Damaged

if TYPE_CHECKING:
    from core.runs import Run

DATA_FIELDS = ("image_shape", "num_classes", "num_items")  # model settings the data fixes


def applicable_args(model_args: dict, model: str | None = None) -> dict:
    """``model_args`` without the settings its backbone does not use (``channels`` of an
    mlp): they do not change the network, and ``validate_run`` refuses them. The backbone
    is ``arch`` in the settings, else ``model``'s preset; settings are looked up in
    ``model``'s knobs, or any family's when ``model`` is not given (a knob's backbones are
    the same in every family that has it)."""
    if not isinstance(model_args, dict):
        return model_args
    fams = [FAMILIES[model]] if model in FAMILIES else list(FAMILIES.values())
    arch = model_args.get("arch")
    if arch is None and model in FAMILIES:
        arch = FAMILIES[model].defaults().get("arch")
    if not isinstance(arch, str):
        return dict(model_args)
    knobs = {k.name: k for f in fams for k in f.knobs}
    return {k: v for k, v in model_args.items() if k not in knobs or knobs[k].applies_to(arch)}


def model_args_of(model_config: dict) -> dict:
    """Model settings that rebuild the same network through ``resolve_config``: those that
    apply to its backbone (a checkpoint's config holds every field, used or not)."""
    args = {k: v for k, v in model_config.items() if k not in DATA_FIELDS}
    args["conditional"] = bool(model_config.get("num_classes"))
    return applicable_args(args)


def repair(run: Run) -> None:
    """Rewrite config.json, status.json and metrics.jsonl of ``run`` from its checkpoint
    (the commit point of the last finished epoch), under its lock; the caller has checked
    that the run is writable."""
    with RunLock(run.path):
        ck = read_checkpoint(run.checkpoint_path)  # CheckpointError: one sentence
        train, mcfg = ck.get("train_config"), ck.get("model_config")
        try:
            schema.check_train_section(train, "the checkpoint")
        except Damaged as e:
            raise RunDamaged(f"{e}: the run cannot be repaired; delete it") from None
        if not isinstance(mcfg, dict):
            raise RunDamaged("The checkpoint has no model config: delete the run.")
        epoch = int(ck.get("epoch") or 0)
        old = run.config_or_none() or {}
        dataset = ck.get("dataset") if isinstance(ck.get("dataset"), dict) else {}
        atomic.write_json(
            run.config_path,
            {
                "name": old.get("name", run.id),
                "created_at": old.get("created_at", time.time()),
                "train": {**train, "data_dir": None},
                "model": {
                    "name": ck["model_name"],
                    "args": model_args_of(mcfg),
                    "config": mcfg,
                },
                "dataset": dataset,
                "repaired_at": time.time(),
            },
        )
        run.reconcile(epoch, ck.get("history"))
        run.clean_temp()
        done = epoch >= int(train.get("epochs") or 0)
        atomic.write_json(
            run.path / "status.json",
            {
                "state": "done" if done else "interrupted",
                "epoch": epoch,
                "epochs": int(train.get("epochs") or epoch),
                "message": f"repaired from the checkpoint of epoch {epoch}",
                "updated_at": time.time(),
            },
        )
