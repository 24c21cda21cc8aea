"""``python -m core.train``: the command line of the trainer.

Flags are validated before any run folder exists; a bad value or a conflicting pair of
flags exits with status 2 and one sentence on stderr.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from core import data as datalib
from core.config import OPTIMIZERS, TrainConfig
from core.models import MODELS, ConfigError, config_class
from core.runs import Run
from core.train import run_in_dir, train


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m core.train",
        description="Train an autoencoder into a run directory (runs/<id>/: config.json, "
        "status.json, metrics.jsonl, checkpoint.pt).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("data and model")
    g.add_argument(
        "--dataset",
        default=d.dataset,
        help=f"one of {', '.join(datalib.DATASET_NAMES)}, or idx:<folder>",
    )
    g.add_argument(
        "--data-dir", default=None, help="dataset folder (default $LATENTLAB_DATA_DIR or ./data)"
    )
    g.add_argument("--model", default=d.model, help=f"one of {', '.join(MODELS)}")
    g.add_argument(
        "--latent-dim",
        type=int,
        default=None,
        help="latent size (gumbel-vae: number of categorical variables); "
        "default: the model's preset",
    )
    g.add_argument("--hidden-dim", type=int, default=None, help="hidden width of MLP/conv layers")
    g.add_argument(
        "--arch",
        choices=["mlp", "fcconv", "conv"],
        default=None,
        help="backbone for ae, gumbel-vae and autodecoder",
    )
    g.add_argument(
        "--conditional",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="condition encoder and decoder on the label (one-hot)",
    )
    g.add_argument(
        "--class-prior",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="conditional VAEs: learn a Gaussian prior per label, p(z|y), and sample from it "
        "(cvae: on)",
    )
    g.add_argument(
        "--categories", type=int, default=None, help="gumbel-vae: categories per variable"
    )
    g.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="gumbel-vae: initial Gumbel-softmax temperature",
    )
    g.add_argument(
        "--min-temperature",
        type=float,
        default=None,
        help="gumbel-vae: temperature floor of the annealing",
    )
    g.add_argument(
        "--anneal-rate",
        type=float,
        default=None,
        help="gumbel-vae: tau = max(min, tau0*exp(-rate*epoch)); 0 keeps it fixed",
    )
    g.add_argument(
        "--train-size",
        type=int,
        default=d.train_size,
        help="train on this many images only (0 = all)",
    )
    g.add_argument(
        "--val-size",
        type=int,
        default=d.val_size,
        help="test images scored after each epoch (0 = none)",
    )
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=d.epochs, help="total epochs (also when resuming)")
    o.add_argument("--batch-size", type=int, default=d.batch_size)
    o.add_argument("--lr", type=float, default=d.lr, help="learning rate")
    o.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    o.add_argument("--weight-decay", type=float, default=d.weight_decay)
    o.add_argument(
        "--milestones",
        type=int,
        nargs="*",
        default=[],
        help="epochs at which the learning rate is multiplied by --lr-gamma",
    )
    o.add_argument("--lr-gamma", type=float, default=d.lr_gamma)
    o.add_argument("--seed", type=int, default=d.seed)
    o.add_argument("--device", default=d.device, help="auto (cuda > mps > cpu), cpu, cuda, mps")
    o.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=d.amp,
        help="mixed precision on cuda",
    )
    lo = p.add_argument_group("loss")
    lo.add_argument(
        "--loss",
        default=d.loss,
        help="reconstruction term: bce, mse, ssim or a mix like 'bce+0.5*ssim'",
    )
    lo.add_argument(
        "--ssim-window",
        type=int,
        default=d.ssim_window,
        help="SSIM Gaussian window in pixels (odd)",
    )
    lo.add_argument(
        "--recon-weight",
        type=float,
        default=d.recon_weight,
        help="weight of the reconstruction term",
    )
    lo.add_argument("--kl-weight", type=float, default=d.kl_weight, help="beta, weight of the KL")
    lo.add_argument(
        "--kl-warmup",
        type=float,
        default=d.kl_warmup,
        help="epochs over which beta ramps up from 0",
    )
    r = p.add_argument_group("runs")
    r.add_argument(
        "--runs-dir", default=None, help="runs folder (default $LATENTLAB_RUNS_DIR or ./runs)"
    )
    r.add_argument("--name", default=None, help="run name (default <model>-<dataset>)")
    r.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue this run up to --epochs, with its optimizer state",
    )
    r.add_argument(
        "--run-dir",
        default=None,
        help="train a run directory whose config.json is already written (used by the app)",
    )
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


MODEL_FLAGS = (
    "latent_dim",
    "hidden_dim",
    "arch",
    "conditional",
    "class_prior",
    "categories",
    "temperature",
    "min_temperature",
    "anneal_rate",
)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.run_dir or args.resume:
            run = Run(Path(args.run_dir or args.resume))
            if not run.exists:
                raise ConfigError(f"{run.path} is not a run directory (no config.json).")
            given = "--epochs" in (argv if argv is not None else sys.argv)
            run_in_dir(
                run,
                resume=bool(args.resume),
                epochs=args.epochs if given else None,
                progress=not args.quiet,
            )
        else:
            names = {f.name for f in fields(TrainConfig)}
            cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
            margs = {k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k) is not None}
            known = (
                {f.name for f in fields(config_class(cfg.model))} if cfg.model in MODELS else set()
            )
            for k in list(margs):
                if k not in known and k != "conditional":
                    raise ConfigError(f"--{k.replace('_', '-')} does not apply to {cfg.model}.")
            run = train(cfg, margs, name=args.name, root=args.runs_dir, progress=not args.quiet)
    except (ConfigError, datalib.DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    st = run.status()
    print(f"{st['state']}: {run.path}")
    return 0 if st["state"] in ("done", "cancelled") else 1
