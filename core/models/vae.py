"""Gaussian VAE (Kingma & Welling 2014, "Auto-Encoding Variational Bayes") on any backbone.

Presets in the registry: ``mlp-vae`` (the classic D-H-L, as in the PyTorch examples and
DLA_interview), ``fcconv-vae`` (the compact model that won the snakers4 study),
``conv-vae`` (a deeper strided-conv encoder/decoder) and ``cvae`` (conditional MLP VAE,
Sohn et al. 2015).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.models.base import Decoder, Encoder, Head, LatentModel, ModelConfig, Output


@dataclass
class VAEConfig(ModelConfig):
    """Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))), prior N(0, I)."""


class VAE(LatentModel):
    latent_kind = "gaussian"
    family = "vae"

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        self.encoder = Encoder(config)
        self.mu = Head(self.encoder.out_dim, config.latent_dim)
        self.logvar = Head(self.encoder.out_dim, config.latent_dim)
        self.decoder = Decoder(config, config.latent_dim)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict:
        h = self.encoder(x, self._onehot(y, x.shape[0]))  # (B, F)
        return {"mu": self.mu(h), "logvar": self.logvar(h)}  # (B, L) each

    def posterior_mean(self, x, y=None):
        return self.encode(x, y)["mu"]

    def forward(self, x, y=None, idx=None) -> Output:
        q = self.encode(x, y)
        mu, logvar = q["mu"].float(), q["logvar"].float()
        if self.training:  # reparameterisation: z = mu + sigma * eps
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        # KL(q || N(0, I)) per latent dimension, (B, L)
        kl_dims = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
        return Output(self.decode_logits(z, y), z, kl_dims.sum(1), {"kl_dims": kl_dims})
