"""Decoder-only autoencoder ("auto-decoder"): a decoder and a learned latent table with one
row per training image, trained jointly (Saurabh Pathak's decoder-only study; the same
idea as DeepSDF, Park et al. 2019). There is no encoder: the latent of an unseen image
is found by optimisation with the decoder frozen (``place``, ``infer``).

The regulariser reported as "kl" is the Gaussian prior's negative log-density
0.5 * ||z||^2 / sigma^2 per image (``prior_sigma``), so the table stays near N(0, sigma^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from core.models.base import (
    ConfigError,
    Decoder,
    LatentModel,
    ModelConfig,
    PointPosterior,
    check_float,
    check_int,
    setting,
)

MAX_ITEMS = 100_000_000  # rows of the latent table
GRID = 48  # a 2-D placement first tries a GRID x GRID grid of codes (best_start)
MAX_CANDIDATES = 1024  # ... a higher-dimensional one this many rows of the table


@dataclass
class AutoDecoderConfig(ModelConfig):
    latent_dim: int = setting(2)
    num_items: int = setting(0, from_data=True)  # rows of the table = training images
    prior_sigma: float = setting(
        1.0,
        help="sigma of the Gaussian prior on the table's codes (penalty 0.5*||z||^2/sigma^2)",
        lo=0.0,
        hi=1e6,
    )
    infer_steps: int = setting(
        100, help="Adam steps that place an unseen image's code", lo=1, hi=100_000
    )
    infer_lr: float = setting(
        0.05, help="learning rate of the placement of an unseen image", lo=0.0, hi=10.0
    )
    table_lr: float = setting(
        0.03,
        help="learning rate of the latent table (each row moves once an epoch, so it needs a "
        "larger rate than the decoder's)",
        lo=0.0,
        hi=10.0,
    )

    def validate(self) -> None:
        super().validate()
        if isinstance(self.num_items, int) and self.num_items < 1:
            raise ConfigError("An autodecoder needs num_items (the training set size) >= 1.")
        check_int("num_items (rows of the latent table)", self.num_items, 1, MAX_ITEMS)
        check_int("infer_steps", self.infer_steps, 1, 100_000)
        check_float("infer_lr", self.infer_lr, 0.0, 10.0, lo_open=True)
        check_float("table_lr", self.table_lr, 0.0, 10.0, lo_open=True)
        check_float("prior_sigma", self.prior_sigma, 0.0, 1e6, lo_open=True)


class AutoDecoder(LatentModel):
    latent_kind = "table"
    family = "autodecoder"
    has_kl = False  # its regulariser is the prior's penalty on the code, not a KL
    encodes = False  # a new image is placed by optimisation
    validation_limit = 1000  # placing images costs an optimisation each

    def __init__(self, config: AutoDecoderConfig):
        super().__init__(config)
        self.table = nn.Embedding(config.num_items, config.latent_dim)
        nn.init.normal_(self.table.weight, std=0.01)
        self.decoder = Decoder(config, config.latent_dim)

    def param_groups(self, lr: float) -> list[dict]:
        return [
            {"params": list(self.decoder.parameters()), "lr": lr},
            {"params": [self.table.weight], "lr": self.config.table_lr},
        ]

    def _prior(self, z):
        """0.5 * ||z||^2 / sigma^2 per code (B,): the penalty the loss adds."""
        return PointPosterior.of(z, self.config.prior_sigma).regulariser()

    def posterior(self, x, y=None, idx=None) -> PointPosterior:
        """The table rows of training items ``idx``; without them, ``x`` placed first."""
        if idx is None:  # not a training image: place it by optimisation first
            return self.place(x, y)
        return PointPosterior.of(self.table(idx.to(self.device)), self.config.prior_sigma)

    def stored_codes(self) -> torch.Tensor:
        return self.table.weight.detach()

    @property
    def prior_description(self) -> str:
        return "Gaussian fitted to the latent table"

    def candidates(self) -> torch.Tensor:
        """(M, L) starting codes a placement tries: for a 2-D latent a ``GRID`` x ``GRID``
        grid over the table's extent (10% margin), else ``MAX_CANDIDATES`` evenly spaced
        table rows; the table's mean among them."""
        w = self.table.weight.detach().float()
        if self.latent_dim == 2:
            lo, hi = w.min(0).values, w.max(0).values
            pad = 0.1 * (hi - lo)
            ends = zip((lo - pad).tolist(), (hi + pad).tolist(), strict=True)
            axes = [torch.linspace(a, b, GRID) for a, b in ends]
            grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
            cand = grid.to(w.device)
        else:
            step = max(1, len(w) // MAX_CANDIDATES)
            cand = w[::step][:MAX_CANDIDATES]
        return torch.cat([w.mean(0, keepdim=True), cand])

    @torch.no_grad()
    def best_start(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) the candidate code with the lowest objective (BCE + prior) for each image,
        the start of the Adam refinement. The BCE of every (image, candidate) pair comes from
        one matrix product: sum softplus(l) - x . l over the pixels."""
        cand = self.candidates()
        if self.conditional:  # the decoder also takes a label: start at the mean instead
            return cand[:1].expand(len(x), -1)
        best_loss = torch.full((len(x),), float("inf"), device=x.device)
        best = torch.zeros(len(x), cand.shape[1], device=x.device)
        xf = x.flatten(1).float()
        for i in range(0, len(cand), 1024):
            c = cand[i : i + 1024]
            logits = self.decode_logits(c).float().flatten(1)  # (M, P)
            loss = F.softplus(logits).sum(1)[None, :] - xf @ logits.T + self._prior(c)[None, :]
            v, j = loss.min(1)
            better = v < best_loss
            best_loss = torch.where(better, v, best_loss)
            best[better] = c[j[better]]
        return best

    def infer(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        steps: int | None = None,
        lr: float | None = None,
        init: torch.Tensor | None = None,
    ) -> dict:
        """Latents of unseen images by Adam on (BCE + prior) with the decoder frozen,
        started from each image's best candidate code (``best_start``) unless ``init``.

        Returns:
            {"z": (B, L) latents, "trace": list of the mean loss per step}.
        """
        steps = steps or self.config.infer_steps
        lr = lr or self.config.infer_lr
        was_training = self.training
        self.eval()
        start = init if init is not None else self.best_start(x, y)
        z = start.detach().clone().float().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        for p in self.decoder.parameters():
            p.requires_grad_(False)
        trace = []
        try:
            with torch.enable_grad():
                for _ in range(steps):
                    logits = self.decode_logits(z, y)
                    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
                    loss = rec.flatten(1).sum(1) + self._prior(z)
                    opt.zero_grad()
                    loss.sum().backward()
                    opt.step()
                    trace.append(float(loss.detach().mean()))
        finally:
            for p in self.decoder.parameters():
                p.requires_grad_(True)
            self.train(was_training)
        return {"z": z.detach(), "trace": trace}

    def place(self, x, y=None, steps=None, lr=None) -> PointPosterior:
        """New images placed by optimisation (``infer``); the loss per step is in
        ``trace``."""
        res = self.infer(x, y, steps=steps, lr=lr)
        return PointPosterior.of(res["z"], self.config.prior_sigma, res["trace"])

    def encode(self, x, y=None) -> PointPosterior:
        """There is no encoder: ``place`` with the configured steps and rate."""
        return self.place(x, y)

    def prior_z(self, n, generator=None, y=None, temperature=1.0):
        w = self.table.weight.detach()
        return w.mean(0) + self.noise(n, generator, temperature) * w.std(0)
