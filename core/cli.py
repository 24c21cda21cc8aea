"""``python -m core.train``: the command line of the trainer.

The flags are generated: one per ``TrainConfig`` field (type from its annotation, help
from its metadata, default from the dataclass), one per model setting of the registry
(``core.models.setting_knobs``), then the run's own (``--runs-dir``, ``--name``,
``--resume``, ``--run-dir``, ``--quiet``).

Flags are validated before any run folder exists (``core.config.validate_run``, then the
dataset is loaded into the in-process cache the trainer reads); a bad value, a conflicting
pair of flags or missing data exits with status 2 and one sentence on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import typing
from dataclasses import Field, fields
from pathlib import Path

import torch

from core import data as datalib
from core.config import (
    DATA,
    LOSS,
    OPTIMISATION,
    TrainConfig,
    model_args_problem,
    validate_run,
)
from core.losses import parse_loss
from core.models import ConfigError, Knob, model_class, setting_knobs
from core.runs import Run, read_checkpoint, runs_dir
from core.store.repair import applicable_args
from core.train import run_in_dir, train

_DEFAULTS = TrainConfig()


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (no usage block)."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        self.exit(2, f"error: {message} (see --help).\n")


def _add_model_flag(group, knob: Knob) -> None:
    """One model setting's flag, generated from its knob: a whole number, a number, a
    choice, an on/off pair (``--hard`` / ``--no-hard``) or a list (``--channels 16 32``)."""
    kw: dict = {"default": None, "help": knob.help}
    if knob.kind == "bool":
        kw["action"] = argparse.BooleanOptionalAction
    elif knob.kind == "ints":
        kw.update(type=int, nargs="+", metavar="N")
    elif knob.kind in ("int", "float"):
        kw["type"] = int if knob.kind == "int" else float
    if knob.choices:
        kw["choices"] = list(knob.choices)
    group.add_argument(knob.flag, **kw)


def _shown(f: Field) -> str:
    """A training setting's default as ``--help`` shows it."""
    if f.metadata.get("shown") is not None:
        return f.metadata["shown"]
    value = getattr(_DEFAULTS, f.name)
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _add_train_flag(group, f: Field, tp) -> None:
    """One training setting's flag, generated from its ``TrainConfig`` field: the type
    from the annotation (``--amp`` / ``--no-amp`` for a bool, ``nargs`` for a list), the
    help and choices from its metadata, and the field's default in the help."""
    kw: dict = {"default": None, "help": f"{f.metadata['help']} (default: {_shown(f)})"}
    if tp is bool:
        kw["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(tp) is list:
        kw.update(type=typing.get_args(tp)[0], nargs="*")
    elif tp in (int, float):
        kw["type"] = tp
    if f.metadata.get("choices"):
        kw["choices"] = list(f.metadata["choices"])
    group.add_argument(_flag(f.name), **kw)


def build_parser() -> argparse.ArgumentParser:
    """The trainer's flags: one per ``TrainConfig`` field and one per model setting (both
    generated), then the run's own. Every default is None, so ``main`` can tell a flag that
    was given from one that was not; the help shows the value an omitted flag takes (the
    field's default, the one default)."""
    p = _Parser(
        prog="python -m core.train",
        description="Train an autoencoder into a run directory (runs/<id>/: config.json, "
        "status.json, metrics.jsonl, checkpoint.pt).",
    )
    groups = {name: p.add_argument_group(name) for name in (DATA, OPTIMISATION, LOSS)}
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):  # every training setting, from the dataclass
        _add_train_flag(groups[f.metadata["group"]], f, hints[f.name])
        if f.name == "model":  # then every model setting, from the registry
            for knob in setting_knobs().values():
                _add_model_flag(groups[DATA], knob)
    r = p.add_argument_group("runs")
    r.add_argument(
        "--runs-dir", default=None, help="runs folder (default $LATENTLAB_RUNS_DIR or ./runs)"
    )
    r.add_argument("--name", default=None, help="run name (default <model>-<dataset>)")
    r.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue this run up to --epochs, with its optimizer state (takes no other settings)",
    )
    r.add_argument(
        "--run-dir",
        default=None,
        help="train a run directory whose config.json is already written (used by the app)",
    )
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


MODEL_FLAGS = tuple(setting_knobs())  # the model settings' flags (dest names)
EXISTING_RUN_FLAGS = ("resume", "run_dir", "epochs", "quiet")  # all a resume may be given
_TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


def _flag(key: str) -> str:
    return f"--{key.replace('_', '-')}"


def _given(args: argparse.Namespace) -> list[str]:
    """Names of the flags given on the command line (every default is None)."""
    return [k for k, v in vars(args).items() if v is not None and k != "quiet"]


def _new_run_settings(args: argparse.Namespace) -> tuple[TrainConfig, dict]:
    """TrainConfig and model settings of a new run, refusing flags that do not apply."""
    cfg = TrainConfig(
        **{k: v for k, v in vars(args).items() if k in _TRAIN_FIELDS and v is not None}
    )
    cfg.validate()
    margs = {k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k) is not None}
    problem = model_args_problem(cfg.model, margs, flags=True)
    if problem:
        raise ConfigError(problem)
    if not model_class(cfg.model).has_regulariser:
        for k in ("kl_weight", "kl_warmup"):
            if getattr(args, k) is not None:
                raise ConfigError(
                    f"{_flag(k)} does not apply to {cfg.model}, which has no KL term."
                )
    if args.lr_gamma is not None and not args.milestones:
        raise ConfigError("--lr-gamma does not apply without --milestones: give both or neither.")
    if args.ssim_window is not None and "ssim" not in parse_loss(cfg.loss):
        raise ConfigError(
            f"--ssim-window does not apply to --loss {cfg.loss}, which has no ssim term."
        )
    if args.amp and cfg.device.strip() in ("cpu", "mps"):
        raise ConfigError(f"--amp works on CUDA only, not with --device {cfg.device}.")
    if args.data_dir is not None and (cfg.dataset == "digits" or cfg.dataset.startswith("idx:")):
        where = "bundled with scikit-learn" if cfg.dataset == "digits" else "named by idx:<folder>"
        raise ConfigError(f"--data-dir does not apply to {cfg.dataset}, which is {where}.")
    return cfg, margs


def _check_runs_dir(root: str | None) -> None:
    """Refuse a runs folder that cannot hold a new run, before anything is created."""
    path = runs_dir(root)
    probe = path
    while not probe.exists():
        if probe.is_symlink():  # a dangling link
            raise ConfigError(f"The runs folder {path} is a broken link: pass another --runs-dir.")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(
            f"The runs folder {path} is not a folder ({probe} is a file): pass another --runs-dir."
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"Cannot write to {probe}: pass a --runs-dir you can write to.")


def _load_data(cfg: TrainConfig) -> None:
    """Load both splits now (downloading if needed) so missing or damaged data is reported
    before a run folder exists; the trainer then reads them from the in-process cache."""
    for split in ("train", "test"):
        datalib.load(cfg.dataset, split, cfg.data_dir)


def _existing_run_flags(args: argparse.Namespace) -> None:
    """A --resume / --run-dir invocation takes no settings but --epochs and --quiet."""
    extra = [k for k in _given(args) if k not in EXISTING_RUN_FLAGS]
    mode = "--resume" if args.resume is not None else "--run-dir"
    if args.resume is not None and args.run_dir is not None:
        raise ConfigError("Give --resume or --run-dir, not both.")
    if extra:
        raise ConfigError(
            f"{_flag(extra[0])} cannot be given with {mode}: the run keeps the settings in its "
            f"config.json (only --epochs and --quiet apply)."
        )


def _existing_run(args: argparse.Namespace) -> tuple[Run, int | None]:
    """Check a --resume / --run-dir invocation completely, changing nothing."""
    run = Run(Path(args.resume if args.resume is not None else args.run_dir))
    if not run.exists:
        raise ConfigError(f"{run.path} is not a run directory (no config.json).")
    conf = run.config()
    try:
        train_conf, model_conf = conf["train"], conf["model"]
        cfg = TrainConfig(**train_conf)
        # settings its backbone does not use (an imported or repaired run's config may
        # hold them): they do not change the network, so they are dropped, not refused
        model_args = applicable_args(model_conf.get("args") or {}, cfg.model)
    except (KeyError, TypeError, AttributeError) as e:
        raise ConfigError(
            f"{run.path / 'config.json'} is damaged ({type(e).__name__}: {e}): it cannot be "
            f"trained or resumed."
        ) from None
    if args.epochs is not None:
        cfg.epochs = args.epochs
    validate_run(cfg, model_args)
    if args.resume is not None:
        ck = read_checkpoint(run.checkpoint_path)
        done = ck.get("epoch")
        if not isinstance(done, int) or isinstance(done, bool) or done < 0:
            raise ConfigError(f"{run.checkpoint_path} does not say how many epochs it holds.")
        finished = run.status().get("state") == "done"  # else the last epoch may need closing
        if cfg.epochs < done or (cfg.epochs == done and finished):
            raise ConfigError(
                f"This run already has {done} epochs: pass --epochs larger than that."
            )
    _load_data(cfg)
    return run, args.epochs


def _refuse_queued(path: Path, message: str) -> None:
    """A run that ``core.jobs.start`` queued for this process but that cannot train is
    marked failed with the reason; a run in any other state is left as it is."""
    run = Run(path)
    with contextlib.suppress(Exception):
        if not (run.exists and run.status().get("state") == "queued"):
            return  # nothing to mark: a refused command leaves the folder as it was
        run.acquire()  # the lock core.jobs handed down, or a free one; never another's run
        try:
            if run.exists and run.status().get("state") == "queued":
                run.set_status("failed", message=message)
        finally:
            run.release()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a command line argparse could not read
        return e.code if isinstance(e.code, int) else 2
    run: Run | None = None
    fresh = args.resume is None and args.run_dir is None
    try:
        if not fresh:
            _existing_run_flags(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        if not fresh:
            run, epochs = _existing_run(args)
        else:
            cfg, margs = _new_run_settings(args)
            validate_run(cfg, margs)
            _check_runs_dir(args.runs_dir)
            _load_data(cfg)
    except (ConfigError, datalib.DatasetError, ValueError) as e:
        if args.run_dir is not None or args.resume is not None:  # not left "queued"
            _refuse_queued(Path(args.run_dir or args.resume), str(e))
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        if fresh:
            run = train(cfg, margs, name=args.name, root=args.runs_dir, progress=not args.quiet)
        else:
            assert run is not None
            run_in_dir(run, resume=args.resume is not None, epochs=epochs, progress=not args.quiet)
    except (ConfigError, datalib.DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (FloatingPointError, MemoryError, OSError, torch.OutOfMemoryError) as e:
        text = " ".join(str(e).split()) or type(e).__name__
        print(f"error: training failed ({type(e).__name__}: {text}).", file=sys.stderr)
        return 1
    st = run.status()
    print(f"{st['state']}: {run.path}")
    return 0 if st["state"] in ("done", "cancelled") else 1
