"""The CUDA path (issue 14, part 4): runs pick the GPU, train with mixed precision where it
helps, save checkpoints that load on a CPU-only machine, and the queue counts GPUs. Skipped
where no CUDA GPU is visible (CI has none); run them on a machine with one."""

from __future__ import annotations

import os

import pytest
import torch

from core.config import pick_device
from core.queue import gpu_count, settings
from core.runs import load_model
from core.train import TrainConfig, train
from core.trainer import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")


def cfg(**kw) -> TrainConfig:
    base = dict(dataset="digits", model="mlp-vae", epochs=4, batch_size=64, val_size=200)
    return TrainConfig(**{**base, **kw})


def test_auto_picks_the_gpu_and_the_queue_counts_it(tmp_path):
    assert pick_device("auto").type == "cuda"
    n = torch.cuda.device_count()
    assert gpu_count() == n
    bare = {"LATENTLAB_CONFIG": str(tmp_path / "none.toml")}
    if "CUDA_VISIBLE_DEVICES" in os.environ:  # what torch counted under
        bare["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    assert settings(bare).slots == n and settings(bare).gpus == n  # one run per GPU


@pytest.mark.parametrize("model", ["mlp-vae", "conv-vae", "cvae"])
def test_a_run_trains_on_the_gpu_with_mixed_precision(tmp_path, model):
    run = train(cfg(model=model, device="auto", amp=True), {"latent_dim": 2}, root=tmp_path)
    st = run.status()
    assert st["state"] == "done" and st["device"].startswith("cuda"), st
    losses = [r["train_loss"] for r in run.metrics()]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], losses
    net, ck = load_model(run.checkpoint_path, "cpu")  # loads on a machine without a GPU
    assert next(net.parameters()).device.type == "cpu"
    x = torch.rand(4, 1, 8, 8)
    labels = torch.arange(4) if net.conditional else None
    assert torch.isfinite(net.reconstruct(x, labels)).all()


def ready(c: TrainConfig) -> Trainer:
    t = Trainer(c, {"latent_dim": 2})
    t.setup()  # data, model, optimiser and the AMP settings
    return t


def test_amp_is_used_on_cuda_only():
    on_gpu = ready(cfg(device="cuda", amp=True))
    assert on_gpu.use_amp and on_gpu.amp_dtype in (torch.bfloat16, torch.float16)
    assert next(on_gpu.model.parameters()).device.type == "cuda"
    assert not ready(cfg(device="cuda", amp=False)).use_amp
    assert not ready(cfg(device="cpu", amp=True)).use_amp
