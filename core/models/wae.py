"""Wasserstein autoencoder with the MMD penalty, WAE-MMD (Tolstikhin, Bousquet, Gelly &
Schoelkopf 2018, "Wasserstein Auto-Encoders", Algorithm 2).

A deterministic encoder and a decoder, the same backbones as the VAE family. Instead of a
KL per image, the penalty is the maximum mean discrepancy between the batch's codes and as
many draws from the prior N(0, I). The kernel is the inverse multiquadratics
k(x, y) = C / (C + ||x - y||^2), summed over the paper's scales C = s * 2 * L * sigma^2 with
s in 0.1 ... 10 and sigma = 1. The estimate is the unbiased one: the within-codes and
within-prior sums skip the diagonal and are divided by n(n-1), the cross sum by n^2.

The MMD is a property of a *batch*, not of one image. The loss path takes a regulariser per
image and averages it (``core.losses.total_loss``: mean of recon + beta * kl), so every
image of a batch carries the whole batch's MMD: the batch mean is then exactly the MMD,
weighted by beta (the trainer's ``kl_weight``). A number reported per image ("kl" in the
metrics and in ``core.evaluate``) is the mean MMD of the batches it was scored in, and
depends on the batch size. In eval mode the prior draws come from a fixed seed, so the same
batch gets the same number every time; in training they come from the global generator,
which the trainer seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.models.base import Decoder, Encoder, Head, LatentModel, ModelConfig, PointPosterior

SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # the paper's kernel scales, times 2*L*sigma^2
EVAL_SEED = 0  # the prior draws of an eval-mode MMD


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, m) squared Euclidean distances, without an (n, m, L) intermediate."""
    d = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1)[None, :] - 2 * a @ b.T
    return d.clamp_min(0)


def imq_mmd(
    z: torch.Tensor, prior: torch.Tensor, sigma: float = 1.0, scales=SCALES
) -> torch.Tensor:
    """Unbiased MMD^2 estimate between codes ``z`` (n, L) and prior draws ``prior`` (n, L)
    under the inverse multiquadratics kernel summed over ``scales`` (a 0-d tensor; it can be
    slightly negative). Fewer than two codes have no estimate: 0."""
    n, dim = z.shape
    if n < 2:
        return z.sum() * 0.0
    d_zz, d_pp, d_zp = _sq_dists(z, z), _sq_dists(prior, prior), _sq_dists(z, prior)
    off = 1.0 - torch.eye(n, device=z.device, dtype=z.dtype)
    total = z.new_zeros(())
    for s in scales:
        c = 2.0 * dim * sigma**2 * s
        within = ((c / (c + d_zz) + c / (c + d_pp)) * off).sum() / (n * (n - 1))
        total = total + within - 2.0 * (c / (c + d_zp)).mean()
    return total


@dataclass(eq=False)
class MMDPosterior(PointPosterior):
    """A point code per image whose regulariser is the batch's MMD to N(0, I), carried by
    every image (see the module's docstring). ``seed``: draw the prior samples from this
    seed (eval mode), or None: from the global generator (training)."""

    seed: int | None = None

    def regulariser(self) -> torch.Tensor:
        z = self.code.float()
        if self.seed is None:
            prior = torch.randn(z.shape, device=z.device)
        else:
            g = torch.Generator().manual_seed(self.seed)
            prior = torch.randn(z.shape, generator=g).to(z.device)
        return imq_mmd(z, prior).expand(len(z)).clone()


@dataclass
class WAEConfig(ModelConfig):
    """Deterministic code z = f(x), pushed towards N(0, I) as a whole by the MMD."""


class WAE(LatentModel):
    latent_kind = "deterministic"
    family = "wae"
    has_kl = False  # its regulariser is the MMD, a batch quantity, not a KL per image
    has_regulariser = True

    def __init__(self, config: WAEConfig):
        super().__init__(config)
        self.encoder = Encoder(config)
        self.head = Head(self.encoder.out_dim, config.latent_dim)
        self.decoder = Decoder(config, config.latent_dim)

    def encode(self, x, y=None) -> MMDPosterior:
        z = self.head(self.encoder(x, self._onehot(y, x.shape[0])))
        return MMDPosterior(z, z, seed=None if self.training else EVAL_SEED)

    @property
    def latent_description(self) -> str:
        return f"{self.latent_dim}-D deterministic latent (MMD to N(0, I))"
