"""The backbones every family builds on: the MLP, snakers4's compact "fc_conv" pair and a
deeper strided conv stack, as an ``Encoder`` (image + one-hot label -> features), a
``Head`` and a ``Decoder``."""

from __future__ import annotations

import math

import torch
from torch import nn

from core.models.settings import ARCHS, ModelConfig  # noqa: F401


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
