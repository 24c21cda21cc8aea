"""Rebuild every file in pretrained/ from scratch: ``python pretrained/build.py``.

Trains the zoo (one run per model family on Fashion-MNIST, plus two on the bundled
digits) with the recipes below, strips optimizer state, scores each with
``core.evaluate`` and writes a card (card.json: settings, command, measured metrics and
training time) beside the checkpoint, then writes the bundled Fashion-MNIST test sample
(samples/fashion-mnist-test-2000.npz) that lets the app run with no dataset download.

``--only NAME [NAME ...]`` rebuilds some entries (``--adopt RUN_DIR`` ships a finished run of
exactly one entry's recipe instead of training it again); ``--list`` prints the recipes;
``--judge`` retrains the shipped Fashion-MNIST judges (judges/), which a full rebuild also
does first. The UMAP views the entries ship for the Embeddings page come from
``pretrained/ship_projections.py`` (they depend on the dataset only, so rebuilding an
entry keeps them valid). On two CPU cores the whole zoo takes about half an hour (the
cards record each run's time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from core import data as datalib
from core import label_density
from core.evaluate import evaluate
from core.runs import Run, load_model, read_checkpoint
from core.store import atomic
from core.train import TrainConfig, train

HERE = Path(__file__).resolve().parent

F = "fashion-mnist"
# name -> (train config, model args, one line for the card)
RECIPES: dict[str, tuple[dict, dict, str]] = {
    "fmnist-mlp-vae-2d": (
        dict(dataset=F, model="mlp-vae", epochs=10, batch_size=128),
        {"latent_dim": 2, "hidden_dim": 400},
        "MLP VAE with a 2-D latent: the whole plane can be scrubbed",
    ),
    "fmnist-fcconv-vae-l10": (
        dict(dataset=F, model="fcconv-vae", epochs=30, batch_size=512, lr=1e-3, seed=42),
        {"latent_dim": 10},
        "snakers4's best: fc_conv VAE, L=10, 30 epochs, batch 512, BCE+KL",
    ),
    "fmnist-conv-vae-l10": (
        dict(dataset=F, model="conv-vae", epochs=10, batch_size=512, lr=1e-3, seed=42),
        {"latent_dim": 10},
        "deeper conv VAE (10 epochs here; the 30-epoch comparison is a slow test)",
    ),
    "fmnist-mlp-vae-l10": (
        dict(dataset=F, model="mlp-vae", epochs=60, batch_size=128, lr=1e-3, seed=42),
        {"latent_dim": 10, "hidden_dim": 500},
        "DLA_interview's VAE (784-500-10), the CVAE's unconditional twin",
    ),
    "fmnist-cvae-l10": (
        dict(dataset=F, model="cvae", epochs=60, batch_size=128, lr=1e-3, seed=42),
        {"latent_dim": 10, "hidden_dim": 500},
        "DLA_interview's CVAE (784+10-500-10): sample any class by label",
    ),
    "fmnist-conv-cvae-l10": (
        dict(
            dataset=F,
            model="conv-vae",
            epochs=30,
            batch_size=512,
            lr=1e-3,
            seed=42,
            kl_weight=6.0,
            loss="bce+ssim",
        ),
        {"latent_dim": 10, "conditional": True, "class_prior": False},
        "conv CVAE with a prior that ignores the label, so the label steers the decoder "
        "(class swap works), and an SSIM term that lets it draw a sandal's straps "
        "(REPRODUCTION.md says why, and how loss and beta = 6 were chosen)",
    ),  # fmt: skip
    "fmnist-ae-l10": (
        dict(dataset=F, model="ae", epochs=5, batch_size=128),
        {"latent_dim": 10, "hidden_dim": 400},
        "plain autoencoder, no KL: compare its latent with the VAE's",
    ),
    "fmnist-gumbel-vae": (
        dict(dataset=F, model="gumbel-vae", epochs=5, batch_size=128),
        {"latent_dim": 10, "categories": 10, "hidden_dim": 400, "anneal_rate": 0.15},
        "10 categorical variables x 10 categories, Gumbel-softmax annealed 1.0 -> 0.5",
    ),
    "fmnist-autodecoder-2d": (
        dict(dataset=F, model="autodecoder", epochs=5, batch_size=128),
        {"latent_dim": 2, "hidden_dim": 400},
        "decoder-only: a decoder and a learned 2-D latent per training image",
    ),
    "fmnist-wae-2d": (
        dict(dataset=F, model="wae", epochs=10, batch_size=128),
        {"latent_dim": 2, "hidden_dim": 400},
        "Wasserstein autoencoder (MMD to N(0, I)) with a 2-D latent: sharp codes, no KL",
    ),
    "digits-mlp-vae-2d": (
        dict(dataset="digits", model="mlp-vae", epochs=60, batch_size=64),
        {"latent_dim": 2, "hidden_dim": 256},
        "MLP VAE with a 2-D latent on scikit-learn's bundled 8x8 digits",
    ),
    "digits-cvae-l2": (
        dict(dataset="digits", model="cvae", epochs=60, batch_size=64),
        {"latent_dim": 2, "hidden_dim": 256},
        "conditional VAE on the bundled 8x8 digits",
    ),
    "digits-cvae-l8": (
        dict(dataset="digits", model="cvae", epochs=60, batch_size=64, kl_weight=0.25),
        {"latent_dim": 8, "hidden_dim": 256, "class_prior": False},
        "conditional VAE on the 8x8 digits whose samples vary as the real digits do: a prior "
        "that ignores the label, 8 dimensions, beta 0.25 (chosen after a sweep, REPRODUCTION.md)",
    ),
}
SAMPLE = HERE / "samples" / "fashion-mnist-test-2000.npz"


def command(cfg: dict, margs: dict) -> str:
    def flag(k: str, v) -> str:
        k = k.replace("_", "-")
        if isinstance(v, bool):  # the CLI's switches: --conditional / --no-class-prior
            return f"--{k}" if v else f"--no-{k}"
        return f"--{k} {v}"

    flags = " ".join(flag(k, v) for k, v in {**cfg, **margs}.items())
    return f"python -m core.train {flags}"


# the run's own cache (its evaluation, views) is made again for the entry; locks and
# log.txt are left out by the shipping step that follows, for trained and adopted runs alike
_NOT_SHIPPED = shutil.ignore_patterns("cache")


def _adoptable(name: str, run_dir: Path) -> float:
    """The training seconds of ``run_dir`` when it is a finished, never resumed run of
    exactly ``name``'s recipe; else SystemExit with what differs."""
    cfg_d, margs, _ = RECIPES[name]
    run = Run(run_dir)
    conf, status = run.config(), run.status()
    want = asdict(TrainConfig(**cfg_d))
    diff = {k: (conf["train"].get(k), v) for k, v in want.items() if conf["train"].get(k) != v}
    diff.pop("data_dir", None)  # where the dataset lies on the training machine
    args = conf["model"]["args"]
    diff.update({k: (args.get(k), v) for k, v in margs.items() if args.get(k) != v})
    diff.update({k: (v, None) for k, v in args.items() if k not in margs})
    if conf["model"]["name"] != cfg_d["model"]:
        diff["model"] = (conf["model"]["name"], cfg_d["model"])
    if diff:
        raise SystemExit(f"{name}: {run_dir} is not this recipe (run, recipe): {diff}")
    if status.get("state") != "done" or status.get("start_step") != 0:
        raise SystemExit(f"{name}: {run_dir} is not one finished run from epoch 1: {status}")
    return float(status["updated_at"]) - float(status["started_at"])


def build(name: str, adopt: Path | None = None) -> dict:
    """Train the entry's recipe (or take ``adopt``, a finished run of exactly that recipe,
    e.g. one trained on a free machine while this one did other work), strip it to a
    read-only entry, score it and write its card."""
    cfg_d, margs, about = RECIPES[name]
    dest = HERE / name
    # no UMAP worker at run end: it would write into the temporary run folder (copied
    # half-done below); the shipped views come from ship_projections.py
    os.environ["LATENTLAB_PRECOMPUTE_VIEWS"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        if adopt is None:
            t0 = time.perf_counter()
            run = train(TrainConfig(**cfg_d), margs, name=name, root=tmp, progress=True)
            seconds = time.perf_counter() - t0
        else:
            seconds = _adoptable(name, Path(adopt))
            run = Run(Path(shutil.copytree(adopt, Path(tmp) / name, ignore=_NOT_SHIPPED)))
        if run.status()["state"] != "done":
            raise SystemExit(f"{name}: training ended {run.status()['state']}; nothing written")
        ckpt = read_checkpoint(run.checkpoint_path)
        for k in ("optimizer", "scheduler", "rng", "torch_rng"):  # read-only: no resume
            ckpt.pop(k, None)
        torch.save(ckpt, run.checkpoint_path)
        for f in run.path.glob("log.txt"):
            f.unlink()
        shipped = {}  # the UMAP views (dataset-only, see ship_projections.py) stay
        if dest.exists():
            shipped = {f.name: f.read_bytes() for f in (dest / "cache").glob("proj-umap-*")}
            shutil.rmtree(dest)
        shutil.copytree(run.path, dest, ignore=shutil.ignore_patterns(".*lock"))  # no locks
        (dest / "cache").mkdir(exist_ok=True)
        for fname, data in shipped.items():
            (dest / "cache" / fname).write_bytes(data)
    run = Run(dest)
    run.update_config(name=name)
    for lock in dest.glob(".*lock"):  # the update's short lock: nothing to ship
        lock.unlink()
    ship_label_density(dest)
    res = evaluate(dest)  # written to <dest>/cache/evaluation.json
    card = {
        "name": name,
        "about": about,
        "model": cfg_d["model"],
        "dataset": cfg_d["dataset"],
        "train_config": run.config()["train"],
        "model_args": margs,
        "command": command(cfg_d, margs),
        "train_seconds": round(seconds, 1),
        "device": run.status().get("device"),
        "torch": torch.__version__,
        "built_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "metrics": res,
    }
    (dest / "card.json").write_text(json.dumps(card, indent=2))
    (dest / "READONLY").write_text("pretrained run: the app never writes, renames or deletes it\n")
    return card


def ship_label_density(dest: Path) -> None:
    """Fit a conditional entry's ``core.label_density`` (each label's own codes) and ship it
    in <entry>/cache/, where the app and ``core.evaluate`` read it first: no fitting on a
    user's first visit, and every machine draws from the same mixtures."""
    model, ckpt = load_model(dest / "checkpoint.pt")
    if not label_density.supports(model):
        return
    train = datalib.load(ckpt.get("dataset", {}).get("name") or RECIPES[dest.name][0]["dataset"])
    density = label_density.fit(model, train.images, train.labels)
    (dest / "cache").mkdir(exist_ok=True)
    label_density.save(density, dest / "cache" / label_density.FILE_NAME)
    print(f"{dest.name}: label density, components {density.components}")


def rescore(name: str) -> None:
    """Score an entry again with the current core.evaluate and update its card."""
    dest = HERE / name
    ship_label_density(dest)
    card = json.loads((dest / "card.json").read_text())
    card["metrics"] = evaluate(dest, save=False)
    (dest / "cache").mkdir(exist_ok=True)
    (dest / "cache" / "evaluation.json").write_text(json.dumps(card["metrics"], indent=2))
    (dest / "card.json").write_text(json.dumps(card, indent=2))
    print(f"{name}: rescored")


def build_sample(n: int = 2000) -> None:
    test = datalib.load(F, "test").subset(n, seed=0)
    SAMPLE.parent.mkdir(exist_ok=True)
    np.savez_compressed(
        SAMPLE,
        images=(test.images * 255).round().to(torch.uint8).numpy(),
        labels=test.labels.numpy().astype(np.int64),
        class_names=np.array(test.class_names),
    )


def build_judge(which: str = "judge") -> Path:
    """Train a Fashion-MNIST judge and ship it in judges/, where the evaluation looks
    first: "judge" (core.metrics.train_judge, ~8 minutes on two CPU cores) or "sharp"
    (core.conditional_eval.train_sharp_judge, ~2 minutes)."""
    from core.conditional_eval import sharp_judge_file_name, train_sharp_judge
    from core.metrics import SHIPPED_JUDGES, judge_file_name, train_judge

    name_of, trainer = {
        "judge": (judge_file_name, train_judge),
        "sharp": (sharp_judge_file_name, train_sharp_judge),
    }[which]
    train_split = datalib.load(F, "train")
    dest = SHIPPED_JUDGES / name_of(train_split)
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    state = trainer(train_split).state_dict()
    atomic.write_with(dest, lambda tmp: torch.save(state, tmp))
    for old in dest.parent.glob(f"{which}-{F}-*.pt"):  # an older recipe's judge, once replaced
        if old != dest:
            old.unlink()
    print(f"{which}: {time.perf_counter() - t0:.0f} s -> {dest.relative_to(HERE)}")
    return dest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", default=None, help="rebuild these entries")
    p.add_argument("--list", action="store_true")
    p.add_argument("--no-sample", action="store_true", help="keep the bundled test sample")
    p.add_argument(
        "--adopt",
        metavar="RUN_DIR",
        default=None,
        help="with --only NAME: ship this finished run of exactly NAME's recipe instead of "
        "training it again",
    )
    p.add_argument(
        "--judge",
        action="store_true",
        help="(re)train the shipped Fashion-MNIST judges of conditional samples, then stop",
    )
    p.add_argument(
        "--rescore",
        action="store_true",
        help="re-run core.evaluate on the built entries and update their cards",
    )
    a = p.parse_args()
    if a.judge:
        build_judge("judge")
        build_judge("sharp")
        return 0
    if a.rescore:
        for n in a.only or list(RECIPES):
            if (HERE / n / "card.json").exists():
                rescore(n)
        return 0
    if a.list:
        for k, (c, m, about) in RECIPES.items():
            print(f"{k:24s} {about}\n{'':24s} {command(c, m)}")
        return 0
    names = a.only or list(RECIPES)
    if a.adopt and len(a.only or []) != 1:
        print("error: --adopt ships one run: name its entry with --only NAME", file=sys.stderr)
        return 2
    for n in names:
        if n not in RECIPES:
            print(f"error: unknown entry '{n}': see --list", file=sys.stderr)
            return 2
    if not a.no_sample and a.only is None:
        build_sample()
    if a.only is None:  # the conditional entries are scored with them
        build_judge("judge")
        build_judge("sharp")
    for n in names:
        card = build(n, Path(a.adopt) if a.adopt else None)
        m = card["metrics"]
        print(f"{n}: {card['train_seconds']} s, bce_kl {m['loss'].get('bce_kl')}, "
              f"ssim {m['ssim']}, knn {m['knn']['model']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
