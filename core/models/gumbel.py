"""Discrete VAE with categorical latents and the Gumbel-softmax relaxation
(Jang, Gu & Poole 2017, "Categorical Reparameterization with Gumbel-Softmax").

The latent is N categorical variables with K categories each (``latent_dim`` = N,
``categories`` = K); z handed to the decoder is the flattened (N * K) relaxed one-hot.
The temperature anneals from ``temperature`` towards ``min_temperature`` as
tau = max(min_tau, tau0 * exp(-anneal_rate * epoch)); anneal_rate 0 keeps it fixed.
The KL term is KL(q || uniform) = sum_k q log q + log K per variable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from core.models.base import (
    MAX_WIDTH,
    CategoricalPosterior,
    ConfigError,
    Decoder,
    Encoder,
    Head,
    LatentModel,
    ModelConfig,
    check_float,
    check_int,
    check_temperature,
    setting,
)

MAX_TEMPERATURE = 1000.0
MAX_ANNEAL_RATE = 100.0


@dataclass
class GumbelConfig(ModelConfig):
    latent_dim: int = setting(
        10, note="number of categorical variables", label="Categorical variables N"
    )
    categories: int = setting(
        10,
        help="categories per variable",
        lo=2,
        hi=MAX_WIDTH,
        form=True,
        label="Categories per variable K",
    )
    temperature: float = setting(
        1.0,
        help="initial Gumbel-softmax temperature",
        lo=0.0,
        hi=MAX_TEMPERATURE,
        form=True,
        label="Temperature τ (start)",
        tip="Gumbel-softmax temperature; it anneals towards 0.5 during training.",
    )
    min_temperature: float = setting(
        0.5,
        help="temperature floor of the annealing (at most --temperature)",
        lo=0.0,
        hi=MAX_TEMPERATURE,
    )
    anneal_rate: float = setting(
        0.1,
        help="tau = max(min, tau0*exp(-rate*epoch)); 0 keeps it fixed",
        lo=0.0,
        hi=MAX_ANNEAL_RATE,
    )
    hard: bool = setting(
        False, help="straight-through one-hot in the forward pass (a hard Gumbel-softmax)"
    )

    def validate(self) -> None:
        super().validate()
        if isinstance(self.categories, int) and self.categories < 2:
            raise ConfigError("A categorical latent needs at least 2 categories per variable.")
        check_int("categories", self.categories, 2, MAX_WIDTH)
        if self.latent_dim * self.categories > MAX_WIDTH:
            raise ConfigError(
                f"{self.latent_dim:,} variables of {self.categories:,} categories make a code of "
                f"{self.latent_dim * self.categories:,} numbers: keep it at most {MAX_WIDTH:,}."
            )
        for what, v in (
            ("temperature", self.temperature),
            ("min_temperature", self.min_temperature),
        ):
            if isinstance(v, int | float) and not isinstance(v, bool) and v <= 0:
                raise ConfigError("The Gumbel-softmax temperature must be positive.")
            check_float(f"The Gumbel-softmax {what}", v, 0.0, MAX_TEMPERATURE, lo_open=True)
        if self.min_temperature > self.temperature:
            raise ConfigError(
                f"The temperature floor min_temperature={self.min_temperature:g} is above the "
                f"initial temperature={self.temperature:g}: give a floor at or below it."
            )
        check_float("The Gumbel-softmax anneal_rate", self.anneal_rate, 0.0, MAX_ANNEAL_RATE)
        if not isinstance(self.hard, bool):
            raise ConfigError(f"hard must be true or false, got {self.hard!r}.")


class GumbelVAE(LatentModel):
    latent_kind = "categorical"
    family = "gumbel-vae"
    continuous_latent = False

    def __init__(self, config: GumbelConfig):
        super().__init__(config)
        n, k = config.latent_dim, config.categories
        self.encoder = Encoder(config)
        self.head = Head(self.encoder.out_dim, n * k)
        self.decoder = Decoder(config, n * k)
        self.register_buffer("tau", torch.tensor(float(config.temperature)))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim * self.config.categories

    @property
    def latent_shape(self) -> tuple[int, int]:
        return (self.config.latent_dim, self.config.categories)

    @property
    def latent_description(self) -> str:
        v, k = self.latent_shape
        return f"{v} categorical variables × {k} categories"

    @property
    def prior_description(self) -> str:
        return "uniform prior over the categories"

    def encode(self, x, y=None) -> CategoricalPosterior:
        """Logits (B, N, K); point: the category probabilities flattened (B, N*K); code: the
        hard one-hot of the most probable category of each variable (B, N*K)."""
        logits = self.head(self.encoder(x, self._onehot(y, x.shape[0])))
        logits = logits.view(x.shape[0], *self.latent_shape)  # (B, N, K)
        return CategoricalPosterior.of(logits, float(self.tau), self.config.hard)

    def prior_z(self, n, generator=None, y=None, temperature=1.0):
        """Uniform categories. ``temperature`` is the sampling temperature of every prior
        (only 1 here: one-hots have no spread to scale), not the Gumbel-softmax
        relaxation's ``tau`` that training anneals."""
        check_temperature(temperature, self)
        nv, k = self.latent_shape
        cats = torch.randint(0, k, (n, nv), generator=generator)
        return F.one_hot(cats, k).float().flatten(1).to(self.device)

    def on_progress(self, epoch: float) -> None:
        c = self.config
        self.tau.fill_(max(c.min_temperature, c.temperature * math.exp(-c.anneal_rate * epoch)))
