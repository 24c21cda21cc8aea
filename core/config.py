"""Training settings (``TrainConfig``), their validation and the device choice.

One home for "is this setting allowed": the command line (``core.cli``), ``core.train.train``,
``core.jobs.start`` and the Train page all call ``TrainConfig.validate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from core import data as datalib
from core.losses import parse_loss
from core.models import MODELS, ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass
class TrainConfig:
    """Everything about a training run except the model's own settings.

    The defaults are the snakers4 study's best run: fcconv-vae on Fashion-MNIST, L=10,
    batch 512, Adam at 1e-3, BCE + KL.
    """

    dataset: str = "fashion-mnist"
    model: str = "fcconv-vae"
    epochs: int = 30
    batch_size: int = 512
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    milestones: list[int] = field(default_factory=list)  # epochs where lr *= lr_gamma
    lr_gamma: float = 0.1
    loss: str = "bce"  # bce | mse | ssim | weighted mix such as "bce+0.5*ssim"
    recon_weight: float = 1.0
    kl_weight: float = 1.0  # beta
    kl_warmup: float = 0.0  # epochs over which beta ramps up from 0
    ssim_window: int = 11
    seed: int = 42
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    amp: bool = True  # mixed precision on cuda (ignored elsewhere)
    train_size: int = 0  # use only this many training images (0 = all)
    val_size: int = 10000  # test images scored after each epoch (0 = none)
    data_dir: str | None = None

    def validate(self) -> None:
        def bad(msg):
            raise ConfigError(msg)

        if self.model not in MODELS:
            bad(f"Unknown model '{self.model}': choose one of {', '.join(MODELS)}.")
        if self.dataset not in datalib.DATASET_NAMES and not self.dataset.startswith("idx:"):
            bad(
                f"Unknown dataset '{self.dataset}': choose one of "
                f"{', '.join(datalib.DATASET_NAMES)}, or idx:<folder>."
            )
        if self.epochs < 1:
            bad(f"Epochs must be at least 1, got {self.epochs}.")
        if self.batch_size < 1:
            bad(f"Batch size must be at least 1, got {self.batch_size}.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            bad(f"Learning rate must be a positive number, got {self.lr}.")
        if self.optimizer not in OPTIMIZERS:
            bad(f"Unknown optimizer '{self.optimizer}': choose one of {', '.join(OPTIMIZERS)}.")
        if self.recon_weight < 0 or self.kl_weight < 0 or self.kl_warmup < 0:
            bad("Loss weights and the KL warm-up must be zero or positive.")
        if self.ssim_window < 1 or self.ssim_window % 2 == 0:
            bad(f"The SSIM window must be a positive odd number, got {self.ssim_window}.")
        if any(m < 1 for m in self.milestones):
            bad("Learning-rate milestones are epoch numbers of 1 or more.")
        if self.train_size < 0 or self.val_size < 0:
            bad("train_size and val_size must be zero or positive.")
        parse_loss(self.loss)
        pick_device(self.device)


def pick_device(name: str = "auto") -> torch.device:
    """cuda > mps > cpu for "auto"; an explicit name must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"Unknown device '{name}': use auto, cpu, cuda or mps.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("No CUDA GPU is visible here: use --device auto or --device cpu.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("Apple's MPS backend is not available here: use --device cpu.")
    return dev
