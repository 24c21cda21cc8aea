"""The memory a training run needs, estimated before anything is allocated (used by
``core.config.validate_run``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.models import ModelConfig, count_parameters

if TYPE_CHECKING:
    from core import data as datalib
    from core.config import TrainConfig


# The trainer process's own cost before any model or data: Python, torch, scikit-learn and
# the lab, and what the loop allocates beyond the terms below (torch's CPU allocator, the
# checkpoint and the evaluation at the end). Measured with `python -m bench.train_memory`
# (CPU, torch 2.14.1, 2026-12-03; set from these figures): private memory (USS) 360-407 MiB
# after importing torch and core.train, a digits run's peak 535-645 MiB over six runs
# (its model, data and batch: 35 MiB), a Fashion-MNIST MLP's 738-769 MiB (395 MiB); with
# this term each is estimated at or above its peak. A CUDA context adds more on a GPU.
PROCESS_BYTES = 640 * 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    """Rough bytes a training run needs (float32 throughout): the trainer process itself,
    the model with its gradients and optimizer state, the dataset's tensors, and one
    batch's activations."""

    parameters: int
    model_bytes: int
    data_bytes: int
    activation_bytes: int

    @property
    def total(self) -> int:
        return PROCESS_BYTES + self.model_bytes + self.data_bytes + self.activation_bytes


def estimate_memory(
    cfg: TrainConfig, model_config: ModelConfig, info: datalib.DatasetInfo
) -> MemoryEstimate:
    """A rough upper bound of the memory training ``model_config`` on ``info`` takes."""
    params = count_parameters(cfg.model, model_config)
    states = 1 if cfg.optimizer == "sgd" else 2  # momentum, or Adam's two moments
    model_bytes = params * 4 * (2 + states)  # weights, gradients, optimizer state
    c, h, w = info.image_shape
    d = c * h * w
    # both splits as float32 (kept in the loader's cache), the uint8 source while converting,
    # and the copy a --train-size subset makes
    data_bytes = (info.train_size + info.test_size) * d * 5
    if cfg.train_size and cfg.train_size < info.train_size:
        data_bytes += cfg.train_size * d * 4
    mc = model_config
    k = mc.num_classes
    if mc.arch == "mlp":
        widths = 2 * mc.hidden_dim + k
    elif mc.arch == "fcconv":
        widths = mc.enc_channels + mc.dec_channels + k * h * w
    else:
        conv = sum(ch * (h >> (i + 1)) * (w >> (i + 1)) for i, ch in enumerate(mc.channels))
        widths = 2 * conv + 2 * mc.hidden_dim + k * h * w
    z = mc.latent_dim * getattr(mc, "categories", 1)
    per_sample = 8 * d + 2 * widths + 6 * z  # input, logits, loss terms; both passes
    batch = max(cfg.batch_size, min(cfg.val_size, 2048))  # validation runs 2048 at a time
    activation_bytes = batch * per_sample * 4 * 2
    return MemoryEstimate(params, model_bytes, data_bytes, activation_bytes)


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"
