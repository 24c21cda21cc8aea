"""Shared base of every model family: the config every family inherits, the backbones
(MLP, the snakers4 "fc_conv" pair, a deeper conv stack) and the verbs the app relies on.

Every model maps images in [0, 1], shaped (B, C, H, W), to a latent code and back. The
UI asks a model what it can do (``latent_kind``, ``conditional``, ``latent_dim``) rather
than switching on its name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

ARCHS = ("mlp", "fcconv", "conv")

MAX_WIDTH = 1 << 20
"""Largest latent size, hidden width or category count a config accepts (a sanity cap; the
trainer's memory estimate refuses most sizes well below it)."""
MAX_CHANNELS = 4096  # widest convolution
MAX_CONV_LAYERS = 8  # strided layers of the conv backbone (each halves H and W)
MAX_SIDE = 4096  # image height or width in pixels
MAX_IMAGE_CHANNELS = 64


class ConfigError(ValueError):
    """A model or training setting is out of range; the message says which and how to fix it."""


def is_int(value) -> bool:
    """A real integer (not a bool, not a float that happens to be whole)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(what: str, value, lo: int, hi: int) -> int:
    """``value`` if it is an integer in [lo, hi]; else ConfigError naming ``what``."""
    if not is_int(value):
        raise ConfigError(f"{what} must be a whole number, got {value!r}.")
    if not lo <= value <= hi:
        raise ConfigError(f"{what} must lie between {lo:,} and {hi:,}, got {value:,}.")
    return value


def check_float(
    what: str, value, lo: float, hi: float = math.inf, *, lo_open: bool = False
) -> float:
    """``value`` if it is a finite number in [lo, hi] (``lo_open``: (lo, hi]); else a
    ConfigError naming ``what``. NaN and infinities are always refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{what} must be a number, got {value!r}.")
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, got {value}.")
    if (value <= lo if lo_open else value < lo) or value > hi:
        low = f"above {lo:g}" if lo_open else f"at least {lo:g}"
        high = f" and at most {hi:g}" if math.isfinite(hi) else ""
        raise ConfigError(f"{what} must be {low}{high}, got {value:g}.")
    return float(value)


@dataclass
class ModelConfig:
    """Settings every family shares.

    Attributes:
        image_shape: (C, H, W) of the data the model is built for.
        latent_dim: size of the latent code (for gumbel-vae: number of categorical variables).
        num_classes: 0 for an unconditional model; > 0 makes it conditional: a one-hot label
            joins the encoder input (as extra channels / features) and the decoder input.
        arch: backbone, "mlp" (D-H-L / L-H-D), "fcconv" (snakers4's compact model: a full-image
            convolution to ``enc_channels``, 1x1 convolutions to L; L -> ``dec_channels`` ->
            full-image transposed convolution) or "conv" (strided conv stack, ``channels``).
        hidden_dim: hidden width of the MLP backbone and of the conv backbone's dense layer.
        enc_channels / dec_channels: widths of the fcconv backbone (snakers4: 32 and 118).
        channels: widths of the conv backbone's strided convolutions (each halves H and W).
    """

    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 10
    num_classes: int = 0
    arch: str = "mlp"
    hidden_dim: int = 400
    enc_channels: int = 32
    dec_channels: int = 118
    channels: tuple[int, ...] = field(default=(32, 64))

    def validate(self) -> None:
        shape = self.image_shape
        if (
            not isinstance(shape, tuple | list)
            or len(shape) != 3
            or not all(is_int(v) for v in shape)
        ):
            raise ConfigError(f"Image shape {shape!r} is invalid: give (C, H, W) as 3 integers.")
        c, h, w = shape
        if min(c, h, w) < 1:
            raise ConfigError(f"Image shape {tuple(shape)} is invalid: give (C, H, W) > 0.")
        if c > MAX_IMAGE_CHANNELS or max(h, w) > MAX_SIDE:
            raise ConfigError(
                f"Image shape {tuple(shape)} is too large: at most {MAX_IMAGE_CHANNELS} "
                f"channels and {MAX_SIDE} pixels a side."
            )
        if not is_int(self.latent_dim):
            raise ConfigError(f"Latent size must be a whole number, got {self.latent_dim!r}.")
        if self.latent_dim < 1:
            raise ConfigError(
                f"Latent size {self.latent_dim} is too small: use a latent size of 1 or more."
            )
        if self.latent_dim > MAX_WIDTH:
            raise ConfigError(
                f"Latent size {self.latent_dim:,} is too large: use at most {MAX_WIDTH:,}."
            )
        check_int("num_classes", self.num_classes, 0, MAX_WIDTH)
        if self.arch not in ARCHS:
            raise ConfigError(f"Unknown backbone '{self.arch}': choose one of {', '.join(ARCHS)}.")
        for what, v in (
            ("hidden_dim", self.hidden_dim),
            ("enc_channels", self.enc_channels),
            ("dec_channels", self.dec_channels),
        ):
            if not is_int(v) or v < 1:
                raise ConfigError(f"Hidden sizes must be positive integers, got {what}={v!r}.")
            if v > MAX_WIDTH:
                raise ConfigError(f"{what} {v:,} is too large: use at most {MAX_WIDTH:,}.")
        chans = self.channels
        if not isinstance(chans, tuple | list) or not all(is_int(v) for v in chans):
            raise ConfigError(f"channels must be a list of whole numbers, got {chans!r}.")
        if self.arch == "conv":
            if not 1 <= len(chans) <= MAX_CONV_LAYERS:
                raise ConfigError(
                    f"The conv backbone needs 1 to {MAX_CONV_LAYERS} channels entries, got "
                    f"{len(chans)}."
                )
            if not all(1 <= v <= MAX_CHANNELS for v in chans):
                raise ConfigError(
                    f"Conv channels must lie between 1 and {MAX_CHANNELS}, got {list(chans)}."
                )
            k = 2 ** len(chans)
            if h % k or w % k:
                raise ConfigError(
                    f"The conv backbone with {len(chans)} strided layers needs H and W "
                    f"divisible by {k}, got {h}x{w}: use fewer channels entries or arch=mlp."
                )

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        from dataclasses import fields

        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"Unknown model settings {sorted(unknown)} for {cls.__name__}.")
        d = dict(d)
        if "image_shape" in d:
            d["image_shape"] = tuple(d["image_shape"])
        if "channels" in d:
            d["channels"] = tuple(d["channels"])
        return cls(**d)


# ----------------------------------------------------------------------------- backbones
class Encoder(nn.Module):
    """Image (+ one-hot label) -> feature vector of size ``out_dim``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c, h, w = cfg.image_shape
        k = cfg.num_classes
        self.arch = cfg.arch
        if cfg.arch == "mlp":
            self.net = nn.Sequential(nn.Linear(c * h * w + k, cfg.hidden_dim), nn.ReLU())
            self.out_dim = cfg.hidden_dim
        elif cfg.arch == "fcconv":
            # snakers4 fc_conv: Conv2d(1, 32, kernel_size=28) -> ReLU, i.e. one dense layer
            # written as a full-image convolution. The label enters as constant channels.
            self.net = nn.Sequential(nn.Conv2d(c + k, cfg.enc_channels, (h, w)), nn.ReLU())
            self.out_dim = cfg.enc_channels
        else:
            layers, cin = [], c + k
            for cout in cfg.channels:
                layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.ReLU()]
                cin = cout
            s = 2 ** len(cfg.channels)
            layers += [nn.Flatten(), nn.Linear(cin * (h // s) * (w // s), cfg.hidden_dim)]
            layers += [nn.ReLU()]
            self.net = nn.Sequential(*layers)
            self.out_dim = cfg.hidden_dim

    def forward(self, x: torch.Tensor, onehot: torch.Tensor | None) -> torch.Tensor:
        if self.arch == "mlp":
            x = x.flatten(1)  # (B, D)
            if onehot is not None:
                x = torch.cat([x, onehot], 1)
            return self.net(x)
        if onehot is not None:  # (B, K) -> (B, K, H, W) constant planes
            planes = onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, planes], 1)
        return self.net(x).flatten(1)  # (B, out_dim)


class Head(nn.Module):
    """Features -> latent parameters. For fcconv these are snakers4's two 1x1 convolutions
    (a 1x1 convolution on a 1x1 map is exactly this linear layer)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)


def torch04_init(module: nn.Module) -> None:
    """Initialise the transposed convolutions in ``module`` as PyTorch 0.4 did: weights and
    biases uniform in +-1/sqrt(in_channels * kernel area).

    snakers4 trained fc_conv under PyTorch 0.4. PyTorch 1.0 and later scale a transposed
    convolution by its *output* channels instead. For fc_conv that makes the last layer
    10x larger at the start (118->1, 28x28 kernel) and the first 3.4x smaller. With today's
    init, our seed-42 run ended at 248.2 nats with 4 of its 10 latent units collapsed. With
    this init it ends at 244.2 nats with 9 active (REPRODUCTION.md has the seed study)."""
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d):
            fan = m.in_channels * math.prod(m.kernel_size)
            bound = 1.0 / math.sqrt(fan)
            with torch.no_grad():
                m.weight.uniform_(-bound, bound)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound)


class Decoder(nn.Module):
    """Latent vector (+ one-hot label) -> image logits (B, C, H, W)."""

    def __init__(self, cfg: ModelConfig, z_dim: int):
        super().__init__()
        c, h, w = cfg.image_shape
        self.shape = (c, h, w)
        zin = z_dim + cfg.num_classes
        self.arch = cfg.arch
        if cfg.arch == "mlp":
            self.net = nn.Sequential(
                nn.Linear(zin, cfg.hidden_dim), nn.ReLU(), nn.Linear(cfg.hidden_dim, c * h * w)
            )
        elif cfg.arch == "fcconv":
            # snakers4: ConvTranspose2d(L, 118, 1) -> ReLU -> ConvTranspose2d(118, 1, 28).
            self.net = nn.Sequential(
                nn.ConvTranspose2d(zin, cfg.dec_channels, 1),
                nn.ReLU(),
                nn.ConvTranspose2d(cfg.dec_channels, c, (h, w)),
            )
            torch04_init(self.net)
        else:
            s = 2 ** len(cfg.channels)
            chans = list(cfg.channels)[::-1]
            self.start = (chans[0], h // s, w // s)
            layers: list[nn.Module] = [
                nn.Linear(zin, cfg.hidden_dim),
                nn.ReLU(),
                nn.Linear(cfg.hidden_dim, chans[0] * (h // s) * (w // s)),
                nn.ReLU(),
                nn.Unflatten(1, self.start),
            ]
            pairs = list(zip(chans, chans[1:] + [c], strict=True))
            for i, (cin, cout) in enumerate(pairs):
                layers.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1))
                if i < len(pairs) - 1:
                    layers.append(nn.ReLU())
            self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, onehot: torch.Tensor | None) -> torch.Tensor:
        if onehot is not None:
            z = torch.cat([z, onehot.to(z.dtype)], 1)
        if self.arch == "fcconv":
            # ConvTranspose2d(118, C, (H, W)) on a 1x1 map is one matrix product; computing it
            # as such gives the same numbers about 2-6x faster on the CPU.
            h = self.net[1](self.net[0](z[:, :, None, None])).flatten(1)  # (B, 118)
            last = self.net[2]
            out = h @ last.weight.flatten(1)  # (B, C*H*W)
            return (out.view(-1, *self.shape) + last.bias[:, None, None]).contiguous()
        return self.net(z).view(z.shape[0], *self.shape)


# ----------------------------------------------------------------------------- outputs
@dataclass
class Output:
    """What ``forward`` returns: decoder logits, the latent used, and the per-sample
    regulariser (KL to the prior, or the latent table's prior term), plus named extras."""

    logits: torch.Tensor  # (B, C, H, W), pre-sigmoid
    z: torch.Tensor  # (B, latent_dim)
    kl: torch.Tensor  # (B,)
    stats: dict = field(default_factory=dict)


class LatentModel(nn.Module):
    """Base of every family. Subclasses set ``latent_kind`` and implement ``encode``,
    ``posterior_mean`` (the point used for reconstructions and plots), ``forward`` and
    ``prior_z``."""

    latent_kind: ClassVar[str] = "gaussian"  # gaussian | deterministic | categorical | table
    family: ClassVar[str] = ""

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config

    # ---- what the model can do
    @property
    def latent_dim(self) -> int:
        """Length of the latent vector z that ``decode`` takes."""
        return self.config.latent_dim

    @property
    def conditional(self) -> bool:
        return self.config.num_classes > 0

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.config.image_shape)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ---- helpers
    def _onehot(self, y: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if y is None:
            raise ValueError("This model is conditional: pass the labels y with the images.")
        y = torch.as_tensor(y, device=self.device).long().reshape(-1)
        if y.numel() == 1 and batch > 1:
            y = y.expand(batch)
        if y.numel() != batch:
            raise ValueError(f"Got {y.numel()} labels for {batch} latent vectors.")
        if int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise ValueError(f"Labels must lie in 0..{self.num_classes - 1}.")
        return F.one_hot(y, self.num_classes).float()

    # ---- verbs
    def decode_logits(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z, self._onehot(y, z.shape[0]))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, latent_dim) [, labels (B,)] -> images (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z, y).float())

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict:
        raise NotImplementedError

    def posterior_mean(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The latent point of each image used for reconstructions and plots (B, latent_dim)."""
        raise NotImplementedError

    def embed(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The vector shown in scatter plots and scored by KNN (B, embed_dim)."""
        return self.posterior_mean(x, y)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.posterior_mean(x, y), y)

    def prior_z(
        self,
        n: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """n draws from the prior over z, (n, latent_dim), on the model's device. ``y`` (one
        label or n) matters only to a model whose prior depends on the label."""
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    def carry_z(self, z: torch.Tensor, y_from, y_to) -> torch.Tensor:
        """The code under label ``y_to`` that stands where ``z`` stands under ``y_from``
        (the same for a prior that ignores labels, so z itself)."""
        return z

    @torch.no_grad()
    def sample(
        self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """n images from the prior [conditioned on labels y (n,) or one label]."""
        return self.decode(self.prior_z(n, generator, y), y)

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer parameter groups (a family may give some parameters their own rate)."""
        return [{"params": list(self.parameters()), "lr": lr}]

    def on_progress(self, epoch: float) -> None:
        """Called by the trainer as training advances (epoch may be fractional)."""

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
