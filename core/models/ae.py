"""Plain (deterministic) autoencoder: the same backbones as the VAE, no KL term.

Its latent space has no prior, so ``sample`` draws from a Gaussian fitted to the codes of
the training images (``fit_prior``), which the trainer's ``after_training`` call does at the
end of training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.models.base import Decoder, Encoder, Head, LatentModel, ModelConfig, PointPosterior


@dataclass
class AEConfig(ModelConfig):
    """Deterministic code z = f(x)."""


class AE(LatentModel):
    latent_kind = "deterministic"
    family = "ae"
    has_kl = False
    has_regulariser = False

    def __init__(self, config: AEConfig):
        super().__init__(config)
        self.encoder = Encoder(config)
        self.head = Head(self.encoder.out_dim, config.latent_dim)
        self.decoder = Decoder(config, config.latent_dim)
        # Gaussian fitted to training codes, used by sample() and as the explorer's scale.
        self.register_buffer("code_mean", torch.zeros(config.latent_dim))
        self.register_buffer("code_std", torch.ones(config.latent_dim))

    def encode(self, x, y=None) -> PointPosterior:
        return PointPosterior.of(self.head(self.encoder(x, self._onehot(y, x.shape[0]))))

    @property
    def prior_description(self) -> str:
        return "Gaussian fitted to the training codes"

    @torch.no_grad()
    def fit_prior(self, z: torch.Tensor) -> None:
        self.code_mean.copy_(z.mean(0))
        self.code_std.copy_(z.std(0).clamp_min(1e-6))

    def after_training(self, images, labels=None) -> None:
        """Fit the sampling Gaussian to the codes of the training images."""
        self.fit_prior(self._codes(images, labels))

    def prior_z(self, n, generator=None, y=None, temperature=1.0):
        return self.code_mean + self.noise(n, generator, temperature) * self.code_std
