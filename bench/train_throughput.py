"""Training throughput: our trainer vs a plain DataLoader-over-TensorDataset loop.

Both train the same mlp-vae (784-400-20, BCE + KL, Adam 1e-3) on Fashion-MNIST at the same
batch size in this process, with the same loss function; only the loop differs (ours: the
training set in one device tensor, index-slice batches, fused Adam, loss parts summed on
the device). The two loops take turns for --rounds rounds. Prints the median samples/second
of each and their ratio; exits non-zero when the ratio is under --target.

    python -m bench.train_throughput [--batch-size 512] [--epochs 2] [--rounds 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from core import data as datalib
from core.losses import total_loss
from core.models import build_model
from core.train import TrainConfig, Trainer


def plain_loop(images, labels, epochs, batch_size, device, seed=0):
    torch.manual_seed(seed)
    model = build_model("mlp-vae", image_shape=(1, 28, 28), latent_dim=20, hidden_dim=400)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True)
    rates = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        n = 0
        for x, _y in loader:
            x = x.to(device)
            loss, _ = total_loss(model(x), x, {"bce": 1.0})
            opt.zero_grad()
            loss.backward()
            opt.step()
            n += len(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(n / (time.perf_counter() - t0))
    return rates


def bare_loop(images, epochs, batch_size, device, seed=0):
    """The ceiling: the same steps on batches sliced from a tensor, with nothing else (no
    loader, no loss parts kept, no callbacks)."""
    torch.manual_seed(seed)
    model = build_model("mlp-vae", image_shape=(1, 28, 28), latent_dim=20, hidden_dim=400)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=device.type in ("cpu", "cuda"))
    x_all = images.to(device)
    rates = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x_all), device=device)
        for i in range(0, len(x_all), batch_size):
            x = x_all[perm[i : i + batch_size]]
            loss, _ = total_loss(model(x), x, {"bce": 1.0})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(len(x_all) / (time.perf_counter() - t0))
    return rates


def ours(epochs, batch_size, device):
    cfg = TrainConfig(dataset="fashion-mnist", model="mlp-vae", epochs=epochs,
                      batch_size=batch_size, val_size=0, device=str(device), seed=0)  # fmt: skip
    t = Trainer(cfg, {"latent_dim": 20, "hidden_dim": 400})
    rates = []
    t.add_callback("on_epoch_end", lambda tr: rates.append(tr.last_row["samples_per_s"]))
    t.fit()
    return rates


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--epochs", type=int, default=2, help="epochs per loop per round")
    p.add_argument("--rounds", type=int, default=3, help="plain, ours, plain, ours, ...")
    p.add_argument("--device", default="cpu")
    p.add_argument("--target", type=float, default=1.3)
    a = p.parse_args()
    dev = torch.device(a.device)
    train = datalib.load("fashion-mnist", "train")
    print(f"torch {torch.__version__}, device {dev}, threads {torch.get_num_threads()}, "
          f"batch {a.batch_size}, {len(train)} images, mlp-vae 784-400-20 BCE+KL")  # fmt: skip
    # The loops take turns, so that slow drifts in the machine's load reach both; each
    # figure is the median of their epochs.
    r_plain, r_ours, r_bare = [], [], []
    for _ in range(a.rounds):
        r_plain += plain_loop(train.images, train.labels, a.epochs, a.batch_size, dev)
        r_ours += ours(a.epochs, a.batch_size, dev)
        r_bare += bare_loop(train.images, a.epochs, a.batch_size, dev)
    plain, mine = statistics.median(r_plain), statistics.median(r_ours)
    bare = statistics.median(r_bare)
    print(f"plain DataLoader loop: {plain:10.0f} samples/s  (per epoch: "
          f"{', '.join(f'{r:.0f}' for r in r_plain)})")  # fmt: skip
    print(f"our trainer:           {mine:10.0f} samples/s  (per epoch: "
          f"{', '.join(f'{r:.0f}' for r in r_ours)})")  # fmt: skip
    print(f"bare step loop (ceiling): {bare:7.0f} samples/s  (per epoch: "
          f"{', '.join(f'{r:.0f}' for r in r_bare)})")  # fmt: skip
    print(f"ours / ceiling: {mine / bare:.2f}   plain / ceiling: {plain / bare:.2f}")
    ratio = mine / plain
    ok = ratio >= a.target
    print(f"ratio ours/plain: {ratio:.2f}x (target >= {a.target}x): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
