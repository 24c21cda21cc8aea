"""The model contract: ``LatentModel``, the verbs the app relies on, and ``Output``. The
settings live in ``core.models.settings``, the backbones in ``core.models.backbones`` and
the posteriors in ``core.models.posteriors`` (all importable from here too).

Every model maps images in [0, 1], shaped (B, C, H, W), to a latent code and back.
``encode`` returns one typed ``Posterior`` for every family, which carries the family's
maths (its point, its code, its KL to the model's own prior), and the model class declares
what it can do (``has_kl``, ``can_sample``, ``encodes``, ...: see ``LatentModel``), so the
rest of the lab never switches on a family's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from core.models.backbones import Decoder, Encoder, Head, torch04_init  # noqa: F401
from core.models.posteriors import (  # noqa: F401
    CategoricalPosterior,
    GaussianPosterior,
    PointPosterior,
    Posterior,
)
from core.models.settings import (  # noqa: F401
    ARCHS,
    FROM_DATA,
    MAX_CHANNELS,
    MAX_CONV_LAYERS,
    MAX_IMAGE_CHANNELS,
    MAX_SIDE,
    MAX_WIDTH,
    ConfigError,
    Knob,
    ModelConfig,
    check_float,
    check_int,
    is_int,
    setting,
)


# ----------------------------------------------------------------------------- outputs
@dataclass
class Output:
    """What ``forward`` returns: decoder logits, the latent used, and the per-sample
    regulariser (KL to the prior, or the latent table's prior term), plus named extras
    (``stats["kl_dims"]``: the KL per latent dimension where there is one) and the
    posterior it came from."""

    logits: torch.Tensor  # (B, C, H, W), pre-sigmoid
    z: torch.Tensor  # (B, latent_dim)
    kl: torch.Tensor  # (B,)
    stats: dict = field(default_factory=dict)
    posterior: Posterior | None = None


MAX_SAMPLING_TEMPERATURE = 2.0


def check_temperature(temperature, model=None) -> float:
    """A sampling temperature as a float in [0, ``MAX_SAMPLING_TEMPERATURE``], or one
    sentence that says what is wrong. A model whose latent is not a real vector
    (categorical one-hots) has no spread to scale, so only 1 is accepted for it."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(
            f"The sampling temperature must be a number, not {str(temperature)[:40]!r}."
        ) from None
    if not (0.0 <= t <= MAX_SAMPLING_TEMPERATURE):  # also refuses NaN
        raise ValueError(
            "The sampling temperature must lie between 0 and "
            f"{MAX_SAMPLING_TEMPERATURE:g} (1 draws from the prior itself); got {t:g}."
        )
    if t != 1.0 and model is not None and not model.continuous_latent:
        raise ValueError(
            f"A {model.family} model's latent is categorical, so there is no spread to "
            "scale: sample it at temperature 1."
        )
    return t


class LatentModel(nn.Module):
    """Base of every family: the contract the rest of the lab relies on.

    A family implements ``encode`` (images -> a ``Posterior`` that carries the family's
    maths: its point, its code, its KL to the model's own prior) and ``prior_z``; the rest
    follows from those. It declares what it can do in class attributes, so that no caller
    switches on a family's name:

    - ``has_kl``: its posterior has a KL divergence to a prior (``Posterior.kl``);
    - ``has_regulariser``: ``forward``'s ``Output.kl`` is a loss term that beta weighs (a
      KL, or a family's own penalty such as the latent table's prior term);
    - ``can_sample``: ``sample`` draws new images;
    - ``encodes``: an encoder maps an image to its posterior in one pass; when False,
      ``place`` (and so ``encode``) finds the code by optimisation, which costs far more;
    - ``continuous_latent``: the code is a real vector (False: categorical one-hots);
    - ``validation_limit``: at most this many images are scored each epoch (None: all).
    """

    latent_kind: ClassVar[str] = "gaussian"  # gaussian | deterministic | categorical | table
    family: ClassVar[str] = ""
    has_kl: ClassVar[bool] = True
    has_regulariser: ClassVar[bool] = True
    can_sample: ClassVar[bool] = True
    encodes: ClassVar[bool] = True
    continuous_latent: ClassVar[bool] = True
    validation_limit: ClassVar[int | None] = None

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
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one code before flattening: (latent_dim,), or (N, K) for N categorical
        variables of K categories."""
        return (self.latent_dim,)

    @property
    def latent_description(self) -> str:
        """The latent in a few words, e.g. "2-D gaussian latent"."""
        return f"{self.latent_dim}-D {self.latent_kind} latent"

    @property
    def prior_description(self) -> str:
        """Where ``sample`` draws its codes from, in a few words."""
        return "prior N(0, I)"

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

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        """Images (B, C, H, W) [with labels (B,)] -> their ``Posterior``."""
        raise NotImplementedError

    def place(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        steps: int | None = None,
        lr: float | None = None,
    ) -> Posterior:
        """Put new images in latent space: ``encode`` for a model with an encoder (``steps``
        and ``lr`` unused); a model without one optimises the code (``steps`` Adam steps at
        rate ``lr``, None: its defaults) and reports the loss per step in ``trace``."""
        return self.encode(x, y)

    def posterior(
        self, x: torch.Tensor, y: torch.Tensor | None = None, idx: torch.Tensor | None = None
    ) -> Posterior:
        """The posterior ``forward`` uses: ``encode``, or for a model that stores a code per
        training item (``stored_codes``) those of items ``idx`` when given."""
        return self.encode(x, y)

    def forward(self, x, y=None, idx=None) -> Output:
        """Images (B, C, H, W) [labels (B,), training-item indices (B,)] -> ``Output``: in
        training mode the code is a draw from the posterior, in eval mode its code."""
        q = self.posterior(x, y, idx)
        z = (q.rsample() if self.training else q.code).float()
        kd = q.kl_per_dim()
        stats = {} if kd is None else {"kl_dims": kd}
        return Output(self.decode_logits(z, y), z, q.regulariser(), stats, q)

    def posterior_mean(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The latent point of each image used for reconstructions and plots (B, latent_dim)."""
        return self.encode(x, y).code

    def embed(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The vector shown in scatter plots and scored by KNN (B, embed_dim)."""
        return self.encode(x, y).point

    def stored_codes(self) -> torch.Tensor | None:
        """(num_items, latent_dim) the codes the model learned for its training items, in
        training order (a latent table), or None for a model that encodes images."""
        return None

    def after_training(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Called by the trainer once training ends, with the training images [and labels
        of a conditional model]; a family that fits something to them does it here."""

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.posterior_mean(x, y), y)

    def prior_z(
        self,
        n: int,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """n draws from the prior over z, (n, latent_dim), on the model's device. ``y`` (one
        label or n) matters only to a model whose prior depends on the label.
        ``temperature`` t scales each draw's distance from the prior's centre (here N(0,
        t^2 I)); t = 0 draws the centre itself. See ``noise``."""
        return self.noise(n, generator, temperature)

    def noise(
        self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """t * N(0, I) draws (n, latent_dim) on the model's device: what a family with a
        Gaussian prior scales and shifts. Sampling at t < 1 (the "temperature" of Kingma
        and Dhariwal's Glow, 2018) trades variety for typical images;
        ``core.conditional_eval.temperature_tradeoff`` measures both."""
        t = check_temperature(temperature, self)
        eps = torch.randn(n, self.latent_dim, generator=generator).to(self.device)
        return eps * t

    def carry_z(self, z: torch.Tensor, y_from, y_to) -> torch.Tensor:
        """The code under label ``y_to`` that stands where ``z`` stands under ``y_from``
        (the same for a prior that ignores labels, so z itself)."""
        return z

    @torch.no_grad()
    def sample(
        self,
        n: int,
        y: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """n images from the prior [conditioned on labels y (n,) or one label], drawn at
        ``temperature`` (1: the prior itself)."""
        if not self.can_sample:
            raise ValueError(f"A {self.family} model cannot draw new images.")
        return self.decode(self.prior_z(n, generator, y, temperature), y)

    @torch.no_grad()
    def _codes(self, images: torch.Tensor, labels=None, batch: int = 4096) -> torch.Tensor:
        """``posterior_mean`` of many images in batches, in eval mode."""
        self.eval()
        out = []
        for i in range(0, len(images), batch):
            y = None if labels is None else labels[i : i + batch]
            out.append(self.posterior_mean(images[i : i + batch], y))
        return torch.cat(out)

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer parameter groups (a family may give some parameters their own rate)."""
        return [{"params": list(self.parameters()), "lr": lr}]

    def on_progress(self, epoch: float) -> None:
        """Called by the trainer as training advances (epoch may be fractional)."""

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
