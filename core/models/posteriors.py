"""Posteriors: what ``encode`` returns for every family (a point, a code, and the KL to the
model's own prior), Gaussian, categorical or a point."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.nn import functional as F


@dataclass(eq=False)
class Posterior:
    """What ``encode`` returns for every family: the model's belief about each image's code.

    The model that builds it fills in its own prior, so every number below is the one its
    ``forward`` puts in the loss. Subclasses: ``GaussianPosterior``,
    ``CategoricalPosterior``, ``PointPosterior``.

    Attributes:
        point: (B, D) the point estimate used as the image's embedding (Gaussian mean,
            autoencoder code, category probabilities flattened, placed table code).
        code: (B, latent_dim) the vector ``decode`` takes for the image (Gaussian mean,
            autoencoder code, hard one-hot of the likeliest categories, placed code).
        logits: (B, N, K) category logits of a categorical latent, else None.
        trace: the mean loss per optimisation step when the code was placed by
            optimisation (``LatentModel.place`` of a model that does not encode), else None.
    """

    point: torch.Tensor
    code: torch.Tensor
    logits: torch.Tensor | None = None
    trace: list[float] | None = None

    has_kl: ClassVar[bool] = False
    has_density: ClassVar[bool] = False  # log_prior_ratio is defined (likelihood bounds)
    _OLD_KEYS: ClassVar[dict[str, str]] = {"z": "code"}  # the dicts encode used to return

    def kl_per_dim(self) -> torch.Tensor | None:
        """(B, L) KL to the model's prior per latent dimension (per categorical variable),
        float32; None when the model has no KL term."""
        return None

    def kl(self) -> torch.Tensor | None:
        """(B,) KL to the model's prior per image, float32; None without a KL term."""
        kd = self.kl_per_dim()
        return None if kd is None else kd.sum(1)

    def regulariser(self) -> torch.Tensor:
        """(B,) the term ``forward`` adds to the loss (weighted by beta): the KL where there
        is one, else the family's own penalty (zeros when it has none)."""
        kl = self.kl()
        return kl if kl is not None else torch.zeros(len(self.code), device=self.code.device)

    def rsample(self) -> torch.Tensor:
        """(B, latent_dim) a differentiable draw of the code, as training uses."""
        return self.code

    def sample(self, k: int) -> torch.Tensor:
        """(k, B, latent_dim) ``k`` independent draws of each image's code."""
        return torch.stack([self.rsample() for _ in range(k)])

    def log_prior_ratio(self, z: torch.Tensor) -> torch.Tensor | None:
        """log p(z) - log q(z|x) summed over the latent, for codes z shaped (..., B, L)
        (the importance weight of a draw, without the decoder's term); None where the
        posterior has no density (``has_density`` False)."""
        return None

    def __getitem__(self, key: str):
        """The old dictionary access (``encode(x)["mu"]``) for callers not yet moved over."""
        name = self._OLD_KEYS.get(key, key)
        value = getattr(self, name, None) if not name.startswith("_") else None
        if value is None or callable(value):
            raise KeyError(key)
        return value


@dataclass(eq=False)
class GaussianPosterior(Posterior):
    """q(z|x) = N(mu, diag(exp(logvar))) and the model's Gaussian prior N(prior_mu,
    diag(exp(prior_logvar))) per image; prior None means N(0, I)."""

    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None
    prior_mu: torch.Tensor | None = None
    prior_logvar: torch.Tensor | None = None

    has_kl: ClassVar[bool] = True

    @classmethod
    def of(cls, mu, logvar, prior_mu=None, prior_logvar=None) -> GaussianPosterior:
        return cls(mu, mu, mu=mu, logvar=logvar, prior_mu=prior_mu, prior_logvar=prior_logvar)

    def kl_per_dim(self) -> torch.Tensor:
        mu, logvar = self.mu.float(), self.logvar.float()
        if self.prior_mu is not None:  # KL(q || N(m_y, s_y^2)) per latent dimension, (B, L)
            pm, plv = self.prior_mu.float(), self.prior_logvar.float()
            return 0.5 * (plv - logvar + (logvar.exp() + (mu - pm).pow(2)) / plv.exp() - 1)
        return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())  # KL(q || N(0, I)), (B, L)

    has_density: ClassVar[bool] = True

    def rsample(self) -> torch.Tensor:
        """Reparameterisation: z = mu + sigma * eps."""
        mu, logvar = self.mu.float(), self.logvar.float()
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def sample(self, k: int) -> torch.Tensor:
        mu, logvar = self.mu.float(), self.logvar.float()
        eps = torch.randn((k, *mu.shape), device=mu.device)
        return mu + eps * torch.exp(0.5 * logvar)

    def log_prior_ratio(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; prior) - log N(z; mu, sigma^2), summed over L; the log(2 pi) terms cancel."""
        mu, logvar = self.mu.float(), self.logvar.float()
        pm = torch.zeros_like(mu) if self.prior_mu is None else self.prior_mu.float()
        plv = torch.zeros_like(mu) if self.prior_logvar is None else self.prior_logvar.float()
        z = z.float()
        log_q = -0.5 * (logvar + (z - mu).pow(2) / logvar.exp())
        log_p = -0.5 * (plv + (z - pm).pow(2) / plv.exp())
        return (log_p - log_q).sum(-1)


@dataclass(eq=False)
class CategoricalPosterior(Posterior):
    """N categorical variables of K categories, q = softmax(logits), against the uniform
    prior; training draws relaxed one-hots (Gumbel-softmax at temperature ``tau``)."""

    tau: float = 1.0
    hard: bool = False

    has_kl: ClassVar[bool] = True

    @classmethod
    def of(cls, logits: torch.Tensor, tau: float = 1.0, hard: bool = False):
        """From logits (B, N, K)."""
        k = logits.shape[-1]
        probs = logits.float().softmax(-1).flatten(1)
        code = F.one_hot(logits.argmax(-1), k).float().flatten(1)
        return cls(probs, code, logits=logits, tau=tau, hard=hard)

    def kl_per_dim(self) -> torch.Tensor:
        """KL(q || uniform) = sum_k q log q + log K per variable, (B, N)."""
        logq = self.logits.float().log_softmax(-1)
        return (logq.exp() * logq).sum(-1) + math.log(self.logits.shape[-1])

    def rsample(self) -> torch.Tensor:
        z = F.gumbel_softmax(self.logits.float(), tau=self.tau, hard=self.hard, dim=-1)
        return z.flatten(1)


@dataclass(eq=False)
class PointPosterior(Posterior):
    """A single code per image and no KL: an autoencoder's code, or a code from a latent
    table or placed by optimisation. ``prior_sigma``: the penalty 0.5 * ||z||^2 / sigma^2
    (the negative log-density of a N(0, sigma^2 I) prior) that the loss adds; None: none."""

    prior_sigma: float | None = None

    @classmethod
    def of(cls, z: torch.Tensor, prior_sigma: float | None = None, trace=None):
        return cls(z, z, trace=trace, prior_sigma=prior_sigma)

    def regulariser(self) -> torch.Tensor:
        if self.prior_sigma is None:
            return torch.zeros(len(self.code), device=self.code.device)
        return 0.5 * self.code.float().pow(2).sum(1) / self.prior_sigma**2
