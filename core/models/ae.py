"""Plain (deterministic) autoencoder: the same backbones as the VAE, no KL term.

Its latent space has no prior, so ``sample`` draws from a Gaussian fitted to the codes of
the training images (``fit_prior``), which the trainer calls at the end of training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.models.base import Decoder, Encoder, Head, LatentModel, ModelConfig, Output


@dataclass
class AEConfig(ModelConfig):
    """Deterministic code z = f(x)."""


class AE(LatentModel):
    latent_kind = "deterministic"
    family = "ae"

    def __init__(self, config: AEConfig):
        super().__init__(config)
        self.encoder = Encoder(config)
        self.head = Head(self.encoder.out_dim, config.latent_dim)
        self.decoder = Decoder(config, config.latent_dim)
        # Gaussian fitted to training codes, used by sample() and as the explorer's scale.
        self.register_buffer("code_mean", torch.zeros(config.latent_dim))
        self.register_buffer("code_std", torch.ones(config.latent_dim))

    def encode(self, x, y=None) -> dict:
        return {"z": self.head(self.encoder(x, self._onehot(y, x.shape[0])))}

    def posterior_mean(self, x, y=None):
        return self.encode(x, y)["z"]

    def forward(self, x, y=None, idx=None) -> Output:
        z = self.encode(x, y)["z"].float()
        return Output(self.decode_logits(z, y), z, torch.zeros(x.shape[0], device=x.device))

    @torch.no_grad()
    def fit_prior(self, z: torch.Tensor) -> None:
        self.code_mean.copy_(z.mean(0))
        self.code_std.copy_(z.std(0).clamp_min(1e-6))

    def prior_z(self, n, generator=None, y=None):
        eps = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        return self.code_mean + eps * self.code_std
