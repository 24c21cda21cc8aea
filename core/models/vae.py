"""Gaussian VAE (Kingma & Welling 2014, "Auto-Encoding Variational Bayes") on any backbone.

Presets in the registry: ``mlp-vae`` (the classic D-H-L, as in the PyTorch examples and
DLA_interview), ``fcconv-vae`` (the compact model that won the snakers4 study),
``conv-vae`` (a deeper strided-conv encoder/decoder) and ``cvae`` (conditional MLP VAE,
Sohn et al. 2015).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.models.base import (
    ConfigError,
    Decoder,
    Encoder,
    GaussianPosterior,
    Head,
    LatentModel,
    ModelConfig,
    setting,
)


@dataclass
class VAEConfig(ModelConfig):
    """Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))), prior N(0, I).

    Attributes:
        class_prior: for a conditional model, learn a Gaussian prior per label,
            p(z|y) = N(m_y, diag(s_y^2)), trained with the rest of the model (Sohn et al.
            2015's CVAE has a prior conditioned on the input; this is that prior for a
            label). It starts at N(0, I). The KL is taken to it, and label-conditioned
            samples are drawn from it, so a sample lands where that label's codes lie.
    """

    class_prior: bool = setting(
        False,
        help="learn a Gaussian prior per label, p(z|y), and sample from it; needs "
        "--conditional (cvae: on)",
        form=True,
        label="Learned prior per label",
        tip="Each label gets its own Gaussian over z, learned with the model; samples of a "
        "label are drawn from it. On Fashion-MNIST it lifts the share of samples a classifier "
        "reads as the asked class (REPRODUCTION.md).",
        needs_labels=True,
    )

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.class_prior, bool):
            raise ConfigError(f"class_prior must be true or false, got {self.class_prior!r}.")
        if self.class_prior and self.num_classes < 1:
            raise ConfigError(
                "A class prior needs labels: make the model conditional (--conditional) "
                "or leave the class prior off."
            )


class VAE(LatentModel):
    latent_kind = "gaussian"
    family = "vae"

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        self.encoder = Encoder(config)
        self.mu = Head(self.encoder.out_dim, config.latent_dim)
        self.logvar = Head(self.encoder.out_dim, config.latent_dim)
        self.decoder = Decoder(config, config.latent_dim)
        if config.class_prior:  # (K, L) mean and log-variance of p(z|y), starting at N(0, I)
            self.prior_mu = torch.nn.Parameter(torch.zeros(config.num_classes, config.latent_dim))
            self.prior_logvar = torch.nn.Parameter(
                torch.zeros(config.num_classes, config.latent_dim)
            )

    def _prior(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of p(z|y) for labels y (B,), each (B, L)."""
        y = torch.as_tensor(y, device=self.prior_mu.device).long().reshape(-1)
        return self.prior_mu[y].float(), self.prior_logvar[y].float()

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> GaussianPosterior:
        """q(z|x[, y]) with the model's prior for these images: N(0, I), or under a class
        prior the Gaussian of each image's label."""
        h = self.encoder(x, self._onehot(y, x.shape[0]))  # (B, F)
        mu, logvar = self.mu(h), self.logvar(h)  # (B, L) each
        if self.config.class_prior:
            return GaussianPosterior.of(mu, logvar, *self._prior(y))
        return GaussianPosterior.of(mu, logvar)

    @property
    def prior_description(self) -> str:
        return "label's learned prior" if self.config.class_prior else "prior N(0, I)"

    def prior_z(self, n, generator=None, y=None, temperature=1.0):
        """n draws from the prior: N(0, I), or with a class prior p(z|y) for labels y (one
        label or n of them), or without labels the mixture of the class priors; at
        ``temperature`` t each draw's distance from its Gaussian's mean is scaled by t."""
        eps = self.noise(n, generator, temperature)  # N(0, t^2 I)
        if not self.config.class_prior:
            return eps
        if y is None:  # the marginal: a uniformly drawn label, then its Gaussian
            y = torch.randint(self.num_classes, (n,), generator=generator)
        y = torch.as_tensor(y).long().reshape(-1).cpu()
        if y.numel() == 1:
            y = y.expand(n)
        with torch.no_grad():
            pm, plv = self._prior(y)
        return pm + eps * torch.exp(0.5 * plv)

    @torch.no_grad()
    def carry_z(self, z: torch.Tensor, y_from, y_to) -> torch.Tensor:
        """Under a class prior, keep z's place relative to its label's Gaussian: standardise
        by p(z|y_from), then express under p(z|y_to). Without one, z itself."""
        if not self.config.class_prior:
            return z
        z = torch.as_tensor(z, dtype=torch.float32, device=self.prior_mu.device)
        n = z.shape[0]
        f_mu, f_lv = self._prior(torch.as_tensor(y_from).reshape(-1).expand(n))
        t_mu, t_lv = self._prior(torch.as_tensor(y_to).reshape(-1).expand(n))
        return t_mu + (z - f_mu) * torch.exp(0.5 * (t_lv - f_lv))
