"""The memory a training run needs, estimated before anything is allocated (used by
``core.config.validate_run``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.models import ModelConfig, count_parameters

if TYPE_CHECKING:
    from core import data as datalib
    from core.config import TrainConfig


@dataclass(frozen=True)
class MemoryEstimate:
    """Rough bytes a training run needs (float32 throughout): the model with its gradients
    and optimizer state, the dataset's tensors, and one batch's activations."""

    parameters: int
    model_bytes: int
    data_bytes: int
    activation_bytes: int

    @property
    def total(self) -> int:
        return self.model_bytes + self.data_bytes + self.activation_bytes


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
