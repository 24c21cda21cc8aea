"""The memory a training run takes, against the estimate the queue and the Train page check.

Trains a few short recipes, each as its own ``python -m core.train`` process (one thread,
as the queue starts them), samples the process every 50 ms and prints, per recipe: the
estimate (``core.config.run_memory``: the trainer process's own cost plus the model, data
and one batch), the peak of the process's private memory (USS: what another process could
not share, so what a second run on the same server adds) and its peak resident size (RSS:
shared libraries included, counted once per process). The first line is the process's
cost before any data: Python, torch and the lab imported (``core.memory.PROCESS_BYTES``
is set from it).

    python -m bench.train_memory [--epochs 1] [--only digits-mlp ...]

Needs Fashion-MNIST on disk for the Fashion-MNIST recipes (they are skipped otherwise).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import psutil

# name: (train settings, model settings), as the zoo's recipes of the same names
RECIPES = {
    "digits-mlp-vae-l2": (
        dict(dataset="digits", model="mlp-vae", batch_size=128), {"latent_dim": 2}),
    "fmnist-mlp-vae-l10": (
        dict(dataset="fashion-mnist", model="mlp-vae", batch_size=128), {"latent_dim": 10}),
    "fmnist-conv-cvae-l10": (
        dict(dataset="fashion-mnist", model="conv-vae", batch_size=512),
        {"latent_dim": 10, "conditional": True, "class_prior": False}),
}  # fmt: skip


def flags(settings: dict) -> list[str]:
    out = []
    for k, v in settings.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            out.append(flag)
        elif v is False:
            out.append(f"--no-{flag[2:]}")
        else:
            out += [flag, str(v)]
    return out


def sample_peak(cmd: list[str], env: dict) -> tuple[int, int, float, int]:
    """Run ``cmd``; returns (peak USS, peak RSS, seconds, exit code)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    uss = rss = 0
    while proc.poll() is None:
        try:
            m = ps.memory_full_info()
        except psutil.Error:
            break
        uss, rss = max(uss, m.uss), max(rss, m.rss)
        time.sleep(0.05)
    code = proc.wait()
    if code:
        sys.stderr.write(proc.stderr.read().decode(errors="replace")[-2000:])
    return uss, rss, time.perf_counter() - t0, code


def estimate(train: dict, model: dict) -> int:
    from core.config import TrainConfig, run_memory, validate_run

    cfg = TrainConfig(**train)
    return run_memory(cfg, validate_run(cfg, model))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--only", nargs="*", choices=sorted(RECIPES))
    a = ap.parse_args(argv)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               LATENTLAB_PRECOMPUTE_VIEWS="0")  # fmt: skip
    from core import data as datalib
    from core.memory import PROCESS_BYTES

    mb = 2**20
    uss, rss, secs, _ = sample_peak(
        [sys.executable, "-c", "import time, torch, core.train; time.sleep(1)"], env
    )
    print(f"process before data (python, torch, core.train): USS {uss / mb:.0f} MiB, "
          f"RSS {rss / mb:.0f} MiB; PROCESS_BYTES = {PROCESS_BYTES / mb:.0f} MiB")  # fmt: skip
    cols = ("estimate", "peak USS", "peak RSS", "est/USS", "secs")
    print(f"{'recipe':22} " + " ".join(f"{c:>9}" for c in cols))
    with tempfile.TemporaryDirectory() as runs:
        for name in a.only or RECIPES:
            train, model = RECIPES[name]
            dataset = train["dataset"]
            if datalib.availability(dataset).state != "ready":
                print(f"{name:22} skipped: {dataset} is not on disk")
                continue
            need = estimate(train, model)
            cmd = [sys.executable, "-m", "core.train", *flags(train), *flags(model), "--epochs",
                   str(a.epochs), "--runs-dir", runs, "--name", name]  # fmt: skip
            uss, rss, secs, code = sample_peak(cmd, env)
            if code:
                print(f"{name:22} failed with exit code {code}")
                continue
            print(f"{name:22} {need / mb:8.0f}M {uss / mb:8.0f}M {rss / mb:8.0f}M "
                  f"{need / uss:9.2f} {secs:9.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
