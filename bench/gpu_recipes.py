"""The seed recipes end to end on a GPU (issue 14, part 4):
``python -m bench.gpu_recipes [--device cuda] [--epochs N] [--only NAME ...]``.

Trains snakers4's 30-epoch fc_conv recipe (``fmnist-fcconv-vae-l10``) and the conv VAE
(``fmnist-conv-vae-l10``) with the zoo's own recipes (``pretrained/build.py``), each with
mixed precision on and off, through the real trainer into a temporary runs folder, and
prints per run: wall seconds (data loading and validation included), training samples per
second (median over epochs), the last validation loss, the device and the GPU's peak
memory. On a CPU (``--device cpu --epochs 1``) it checks that the script runs.

On a lent GPU machine with no network, carry the four Fashion-MNIST ``.gz`` files (Debian's
``dataset-fashion-mnist``, 30 MB) and point ``LATENTLAB_FMNIST_SYSTEM_DIR`` at them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from core.train import TrainConfig, train
from pretrained.build import RECIPES

DEFAULT = ("fmnist-fcconv-vae-l10", "fmnist-conv-vae-l10")


def one(name: str, device: str, amp: bool, epochs: int | None, root: Path) -> dict:
    cfg_d, margs, _ = RECIPES[name]
    cfg = TrainConfig(**{**cfg_d, "device": device, "amp": amp})
    if epochs:
        cfg.epochs = epochs
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    run = train(cfg, margs, name=f"{name}-{'amp' if amp else 'fp32'}", root=root)
    wall = time.perf_counter() - t0
    rows = run.metrics()
    rates = [r["samples_per_s"] for r in rows if "samples_per_s" in r]
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return {
        "recipe": name,
        "amp": amp,
        "epochs": cfg.epochs,
        "state": run.status().get("state"),
        "device": run.status().get("device"),
        "wall_s": round(wall, 1),
        "samples_per_s": round(statistics.median(rates)) if rates else None,
        "val_loss": round(rows[-1]["val_loss"], 2) if rows else None,
        "gpu_peak_mb": round(peak) if peak is not None else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs")
    p.add_argument("--only", nargs="*", default=list(DEFAULT), choices=sorted(RECIPES))
    a = p.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA GPU here: pass --device cpu to check the script.", file=sys.stderr)
        return 2
    os.environ.setdefault("LATENTLAB_PRECOMPUTE_VIEWS", "0")  # no UMAP worker at run end
    gpu = torch.cuda.get_device_name() if a.device.startswith("cuda") else "none"
    print(f"torch {torch.__version__}, device {a.device}, GPU {gpu}, {os.cpu_count()} cores")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only:
            for amp in (True, False):
                res = one(name, a.device, amp, a.epochs, Path(tmp))
                failed += res["state"] != "done"
                print("  ".join(f"{k}={v}" for k, v in res.items()), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
