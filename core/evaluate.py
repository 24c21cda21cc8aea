"""Test-split metrics of a trained run: ``python -m core.evaluate RUN_DIR --json``.

Protocol (all on the test split, z = the posterior mean):
- loss parts per image: the run's own reconstruction terms, its KL term, and always
  ``bce`` and ``bce_kl`` (BCE + KL, nats per image, the seeds' headline number) and
  ``mse_per_pixel`` (mean squared error on the [0, 1] scale, the decoder-only study's unit);
- SSIM, two named variants: ``ssim`` = pytorch-msssim (valid convolution, 5-pixel Gaussian
  window, sigma 1.5, data range 1) and ``ssim_padded`` = the same window with zero-padded
  borders (the pytorch-ssim variant that snakers4 logged);
- KNN accuracy (k=5, Euclidean) of the model's embedding and of PCA with the same number of
  dimensions, both fitted on the first 10,000 training images
  (``core.metrics.knn_reference``) and scored on the whole test split; beside it
  snakers4's own protocol (``knn.snakers4``: 500 random training images a class, k=10,
  mean and sd over 10 draws), so a difference within the draws' spread reads as a tie;
- likelihood the seeds' way, beside the z = mean figures (``core.likelihood``): the
  negative ELBO with z drawn from the posterior (DLA_interview's test protocol), mean and
  sd over ``ELBO_DRAWS`` passes, and the importance-weighted bound on -log p(x) with
  ``iwae_k`` draws (Burda et al. 2016), for models with a Gaussian posterior;
- KL per latent dimension to the model's own prior (the KL in its loss; absent for a model
  without a KL term, ``has_kl`` False), and active units (Var_x E_q[z_u] > 0.01) of a
  continuous latent;
- for conditional models: the share of label-conditioned prior samples (1,000 per class) that
  an independent CNN judge, trained on the real training images (about half of them
  blurred: ``core.metrics.train_judge`` says why), assigns to the asked label, beside the
  judge's own accuracy on the real test images (overall and per class) and on the model's
  reconstructions of them (``recon_accuracy``); the same read by the second ("sharp")
  judge, fixed before any sample was scored with it (``core.conditional_eval``); class swap
  (an image's code decoded with every other label, judged by the new label) by both
  judges; sample variety per class (pairwise distance of samples over real images); and
  both judges' sample accuracy and the variety again at sampling temperatures 1, 0.9, 0.8
  and 0.7 (``temperature``: z drawn nearer the prior's centre; what that buys and costs);
  and both judges' sample accuracy and the variety with z drawn from each label's own
  codes instead of the prior (``own_codes``: ``core.label_density``, a mixture per label
  fitted to the training images' codes), with the same draws' seeds, at the same
  temperatures (``own_codes.temperature``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from core import data as datalib
from core import label_density, likelihood
from core.conditional_eval import (
    SHARP_DESCRIPTION,
    TRADEOFF_TEMPERATURES,
    class_swap_accuracy,
    get_sharp_judge,
    sample_variety,
    temperature_tradeoff,
)
from core.config import pick_device
from core.embed import fit_pca, flatten, model_embedding
from core.losses import parse_loss, reconstruction_terms, ssim_padded_per_image, ssim_per_image
from core.metrics import (
    JUDGE_DESCRIPTION,
    KNN_DRAWS,
    KNN_K,
    KNN_TRAIN,
    SNAKERS4_KNN,
    active_units,
    conditional_sample_accuracy,
    get_judge,
    knn_accuracy,
    knn_per_class_draws,
)
from core.models import ConfigError
from core.runs import CheckpointError, Run, load_model
from core.store import atomic

ELBO_DRAWS = 5  # passes over the test split of the sampled-z -ELBO (its sd is reported)
IWAE_K = 50


def _checkpoint_path(target: str | Path) -> Path:
    p = Path(target)
    return p / "checkpoint.pt" if p.is_dir() else p


@torch.no_grad()
def evaluate(
    target: str | Path,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    test_size: int = 0,
    knn_train: int = KNN_TRAIN,
    judge: bool = True,
    per_class: int = 1000,
    save: bool = True,
    iwae_k: int = IWAE_K,
    knn_draws: int = KNN_DRAWS,
    temperatures=TRADEOFF_TEMPERATURES,
    own_codes: bool = True,
) -> dict:
    """Score a run directory or checkpoint file on its dataset's test split.

    Args:
        test_size: score only this many test images (0 = all), e.g. for quick checks.
        judge: compute the conditional-sample accuracy for conditional models.
        save: write the result to the run's cache/evaluation.json (run directories only).
        iwae_k: draws per image of the importance-weighted bound (0: skip the likelihood).
        knn_draws: draws of snakers4's KNN protocol (0: skip it).
        temperatures: the sampling temperatures of a conditional model's trade-off
            (``conditional.temperature``; empty: skip it).
        own_codes: also draw z from each label's own codes (``conditional.own_codes``;
            the density is read from, or fitted into, a run directory's cache).
    """
    t0 = time.perf_counter()
    device = pick_device(str(device))  # refuses "tpu", "meta" or a GPU that is not here
    ckpt_path = _checkpoint_path(target)
    model, ckpt = load_model(ckpt_path, device)
    tc = ckpt.get("train_config", {})
    name = ckpt.get("dataset", {}).get("name") or tc.get("dataset")
    data_dir = data_dir or tc.get("data_dir")
    test = datalib.load(name, "test", data_dir)
    _check_data_fits(model, test)
    train = datalib.load(name, "train", data_dir)
    if test_size:
        test = test.subset(test_size, seed=0)
    terms = parse_loss(tc.get("loss", "bce"))
    terms.setdefault("bce", 0.0)
    x_all, y_all = test.images, test.labels
    cond = model.conditional

    # ---- loss parts and SSIM with z = posterior mean
    sums: dict[str, float] = defaultdict(float)
    mus, kl_dims, recons = [], [], []
    for i in range(0, len(x_all), 1000):
        x = x_all[i : i + 1000].to(device)
        y = y_all[i : i + 1000].to(device) if cond else None
        model.eval()
        out = model(x, y)
        parts = reconstruction_terms(out.logits, x, terms, tc.get("ssim_window", 11))
        xhat = torch.sigmoid(out.logits.float())
        parts["kl"] = out.kl
        parts["bce_kl"] = parts["bce"] + out.kl
        parts["mse_per_pixel"] = (xhat - x).pow(2).flatten(1).mean(1)  # [0, 1] scale
        parts["ssim"] = ssim_per_image(xhat, x, 5)
        parts["ssim_padded"] = ssim_padded_per_image(xhat, x, 5, 1.5)
        for k, v in parts.items():
            sums[k] += float(v.sum())
        mus.append(out.z.float().cpu())
        if cond:
            recons.append(xhat.float().cpu())
        kd = out.posterior.kl_per_dim()  # to the model's own prior; None without a KL
        if kd is not None:
            kl_dims.append(kd.float().cpu())
    n = len(x_all)
    res: dict = {
        "target": str(ckpt_path),
        "model": ckpt["model_name"],
        "dataset": name,
        "epoch": ckpt.get("epoch"),
        "parameters": model.num_parameters(),
        "latent_kind": model.latent_kind,
        "latent_dim": model.latent_dim,
        "has_kl": model.has_kl,  # False: loss "kl" is the model's penalty (or 0), not a KL
        "test_images": n,
        "loss_spec": tc.get("loss", "bce"),
    }
    res["loss"] = {k: round(v / n, 5) for k, v in sums.items() if k not in ("ssim", "ssim_padded")}
    res["ssim"] = round(sums["ssim"] / n, 4)
    res["ssim_padded"] = round(sums["ssim_padded"] / n, 4)

    # ---- likelihood with z sampled, as the seeds measured it
    if iwae_k and likelihood.supports(model):
        labels = y_all if cond else None
        elbo = likelihood.sampled_neg_elbo(model, x_all, labels, ELBO_DRAWS)
        res["likelihood"] = {
            "neg_elbo_sampled": round(elbo["mean"], 3),
            "neg_elbo_sampled_sd": round(elbo["sd"], 3),
            "draws": ELBO_DRAWS,
            "iwae_nll": round(likelihood.iwae_nll(model, x_all, labels, iwae_k)["mean"], 3),
            "iwae_k": iwae_k,
        }

    # ---- KL per latent dimension, active units
    mu = torch.cat(mus)
    if kl_dims:
        kd = torch.cat(kl_dims).mean(0)
        res["kl_per_dim"] = [round(float(v), 4) for v in kd.flatten()]
    if model.continuous_latent:
        res["active_units"], res["latent_variance"] = active_units(mu)

    # ---- KNN of the model's embedding vs PCA of the same dimension
    tr = train.head(knn_train)  # the first 10,000: core.metrics.knn_reference
    stored = model.stored_codes()
    if stored is not None:
        # the model learned the codes of the training images (when it was trained on the
        # whole split); unseen test images were placed by optimisation above
        emb_te = mu.numpy()
        if len(stored) == len(train):
            emb_tr = stored[: len(tr)].float().cpu().numpy()
        else:
            emb_tr = model_embedding(model, tr.images, tr.labels)
    else:
        emb_tr = model_embedding(model, tr.images, tr.labels)
        emb_te = model_embedding(model, x_all, y_all)
    dim = emb_tr.shape[1]
    pca = fit_pca(flatten(tr.images), dim)
    res["knn"] = {
        "k": KNN_K,
        "train_images": len(tr),
        "test_images": n,
        "model": round(knn_accuracy(emb_tr, tr.labels, emb_te, y_all), 4),
        "model_dim": dim,
        "pca": round(
            knn_accuracy(pca.transform(flatten(tr.images)), tr.labels,
                         pca.transform(flatten(x_all)), y_all), 4),
        "pca_dim": int(pca.n_components_),
    }  # fmt: skip
    if knn_draws:
        res["knn"]["snakers4"] = _knn_snakers4(
            model, train, stored, x_all, y_all, emb_te, dim, knn_draws
        )

    # ---- conditional-sample accuracy, read by two judges; class swap; sample variety
    if cond and judge:
        cache = Path(data_dir or datalib.default_data_dir()) / "judges"
        recon_all = torch.cat(recons)
        j = get_judge(train, cache)
        res["conditional"] = {
            **judge_reading(model, j, test, recon_all, per_class),
            "judge": JUDGE_DESCRIPTION,
            "swap": class_swap_accuracy(model, test, j),
            "swap_moved": class_swap_accuracy(model, test, j, move=True),
            "variety": sample_variety(model, test),
        }
        sharp = get_sharp_judge(train, cache)
        res["conditional"]["sharp"] = {
            **judge_reading(model, sharp, test, recon_all, per_class),
            "judge": SHARP_DESCRIPTION,
            "swap": class_swap_accuracy(model, test, sharp),
            "swap_moved": class_swap_accuracy(model, test, sharp, move=True),
        }
        if temperatures:
            c = res["conditional"]
            res["conditional"]["temperature"] = temperature_tradeoff(
                model, test, {"shipped": j, "sharp": sharp}, temperatures, per_class,
                at_one={"shipped": c, "sharp": c["sharp"], "variety": c["variety"]},
            )  # fmt: skip
        if own_codes and label_density.supports(model):
            res["conditional"]["own_codes"] = own_codes_reading(
                model, target, train, test, {"shipped": j, "sharp": sharp}, per_class, temperatures
            )
    res["seconds"] = round(time.perf_counter() - t0, 2)
    if save and Path(target).is_dir():
        out = Run(Path(target)).cache_dir / "evaluation.json"
        atomic.write_json(out, res)
    return res


def own_codes_reading(
    model, target, train, test, judges: dict, per_class: int, temperatures=()
) -> dict:
    """Each judge's sample accuracy (overall, per class) and the variety with z drawn from
    each label's own codes (``core.label_density``), with the seeds of the prior's figures,
    the class swap with each code carried to the new label's own codes (``swap``), and
    again at ``temperatures`` (``temperature``: the rows of ``temperature_tradeoff``).
    The density comes from a run directory's cache (fitted and written there when missing)."""
    if Path(target).is_dir():
        density = label_density.get(Run(Path(target)), model, train)
    else:
        density = label_density.fit(model, train.images, train.labels)
    out: dict = {"components": density.components, "fit_seconds": round(density.fit_seconds, 1)}
    for name, judge in judges.items():
        acc = conditional_sample_accuracy(
            model, judge, model.num_classes, per_class, density=density
        )
        out[name] = {
            "sample_accuracy": round(acc["accuracy"], 4),
            "per_class": [round(v, 3) for v in acc["per_class"]],
        }
    out["variety"] = sample_variety(model, test, density=density)
    out["swap"] = {  # each code moved from its label's own codes to the new label's
        name: class_swap_accuracy(model, test, judge, density=density)
        for name, judge in judges.items()
    }
    if temperatures:
        at_one = {**{n: out[n] for n in judges}, "variety": out["variety"]}  # the t = 1 row
        out["temperature"] = temperature_tradeoff(
            model, test, judges, temperatures, per_class, at_one=at_one, density=density
        )
    return out


def judge_reading(model, judge, test, recon_all, per_class: int) -> dict:
    """One judge's reading: the share of label-conditioned samples it gives the asked
    label (overall, per class), its own accuracy on the real test images (the bar a sample
    is held to) and on the model's reconstructions of them (what the decoder can draw)."""
    acc = conditional_sample_accuracy(model, judge, model.num_classes, per_class)
    hit = (judge.predict(test.images) == test.labels).float()
    real = [float(hit[test.labels == c].mean()) for c in range(model.num_classes)]
    return {
        "sample_accuracy": round(acc["accuracy"], 4),
        "per_class": [round(v, 3) for v in acc["per_class"]],
        "samples_per_class": per_class,
        "judge_test_accuracy": round(float(hit.mean()), 4),
        "judge_per_class": [round(v, 3) for v in real],
        "recon_accuracy": round(float((judge.predict(recon_all) == test.labels).float().mean()), 4),
    }


def _knn_snakers4(model, train, stored, x_test, y_test, emb_test, dim, draws) -> dict | None:
    """snakers4's own KNN protocol beside ours: 500 random training images a class, k=10,
    every test image, repeated over ``draws`` draws (mean and sd) for the model's
    embedding and for PCA of the same dimension fitted on each draw. None when a class has
    fewer than 500 training images (the 8x8 digits)."""
    per_class, k = SNAKERS4_KNN["per_class"], SNAKERS4_KNN["k"]
    counts = torch.bincount(train.labels.long())
    if int(counts.min()) < per_class:
        return None
    if stored is not None and len(stored) == len(train):
        emb_train = stored.float().cpu().numpy()
    else:
        emb_train = model_embedding(model, train.images, train.labels)
    flat_train, flat_test = flatten(train.images), flatten(x_test)

    def pca_of(rows_train, _):
        p = fit_pca(rows_train, dim)
        return p.transform(rows_train), p.transform(flat_test)

    out = {}
    for name, (a, b, t) in {"model": (emb_train, emb_test, None),
                            "pca": (flat_train, flat_test, pca_of)}.items():  # fmt: skip
        r = knn_per_class_draws(a, train.labels, b, y_test, per_class, k, draws, transform=t)
        out[name] = {"mean": round(r["mean"], 4), "sd": round(r["sd"], 4)}
    return {**out, "per_class": per_class, "k": k, "draws": draws}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help).\n")


def _check_inputs(target: str, device: str, test_size: int, iwae_k: int = IWAE_K) -> None:
    """Refuse, before anything is loaded, a target that is no checkpoint, a device that is
    not auto/cpu/cuda[:N]/mps or not here, and a negative test size (ConfigError or
    CheckpointError, one sentence)."""
    pick_device(device)
    if test_size < 0:
        raise ConfigError(f"--test-size must be 0 (all) or a positive number, got {test_size}.")
    if not 0 <= iwae_k <= 100_000:
        raise ConfigError(f"--iwae-k must be 0 (skip) to 100000 draws per image, got {iwae_k}.")
    path = Path(target)
    if not path.exists():
        raise CheckpointError(f"{target} does not exist: give a run directory or a checkpoint.pt.")
    if path.is_dir() and not (path / "checkpoint.pt").is_file():
        raise CheckpointError(
            f"{target} has no checkpoint.pt: give a run that finished at least one epoch."
        )


def _check_data_fits(model, test: datalib.ImageData) -> None:
    """The checkpoint's network must take the images of its dataset (a checkpoint can name
    a dataset it was not trained on)."""
    if tuple(model.image_shape) != test.image_shape:
        raise ValueError(
            f"The model takes images shaped {tuple(model.image_shape)} but {test.name} has "
            f"{test.image_shape}: evaluate it on the dataset it was trained on."
        )
    if model.conditional and model.num_classes < test.num_classes:
        raise ValueError(
            f"The model knows {model.num_classes} labels but {test.name} has "
            f"{test.num_classes}: evaluate it on the dataset it was trained on."
        )


EXPECTED_ERRORS = (CheckpointError, datalib.DatasetError, ValueError)


def error_sentence(e: Exception, target: str) -> str:
    """Why ``target`` could not be evaluated, in one sentence (for stderr and the job's
    status)."""
    if isinstance(e, EXPECTED_ERRORS):
        return " ".join(str(e).split())
    # a checkpoint that loads but cannot be scored: still one sentence
    text = " ".join(str(e).split())[:300] or "no details"
    return f"{target} could not be evaluated ({type(e).__name__}: {text})."


def main(argv: list[str] | None = None) -> int:
    """The command line; every bad input exits with status 2 and one sentence on stderr."""
    p = _Parser(
        prog="python -m core.evaluate", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1],
    )  # fmt: skip
    p.add_argument("target", help="run directory or checkpoint.pt")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--test-size", type=int, default=0, help="score only N test images (0 = all)")
    p.add_argument("--no-judge", action="store_true", help="skip the conditional-sample judge")
    p.add_argument("--iwae-k", type=int, default=IWAE_K, help="draws per image of the IWAE bound")
    p.add_argument("--job", action="store_true", help=argparse.SUPPRESS)  # core.jobs' worker
    try:
        args = p.parse_args(argv)
    except SystemExit as e:  # --help, or a command line argparse could not read
        return e.code if isinstance(e.code, int) else 2
    if args.job:  # the background job of core.jobs.start_evaluation
        from core.jobs import evaluation_worker

        return evaluation_worker(args.target, judge=not args.no_judge, device=args.device)
    try:
        _check_inputs(args.target, args.device, args.test_size, args.iwae_k)
        res = evaluate(args.target, args.data_dir, args.device, args.test_size,
                       judge=not args.no_judge, iwae_k=args.iwae_k)  # fmt: skip
    except Exception as e:
        print(f"error: {error_sentence(e, args.target)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            if isinstance(v, list) and len(v) > 12:
                v = f"[{', '.join(str(x) for x in v[:12])}, ...]"
            print(f"{k:>16}: {v}")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    sys.exit(main())
