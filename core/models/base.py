"""Shared base of every model family: the config every family inherits, the backbones
(MLP, the snakers4 "fc_conv" pair, a deeper conv stack) and the verbs the app relies on.

Every model maps images in [0, 1], shaped (B, C, H, W), to a latent code and back.
``encode`` returns one typed ``Posterior`` for every family, which carries the family's
maths (its point, its code, its KL to the model's own prior), and the model class declares
what it can do (``has_kl``, ``can_sample``, ``encodes``, ...: see ``LatentModel``), so the
rest of the lab never switches on a family's name.
"""

from __future__ import annotations

import math
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

ARCHS = ("mlp", "fcconv", "conv")

MAX_WIDTH = 1 << 20
"""Largest latent size, hidden width or category count a config accepts (a sanity cap; the
trainer's memory estimate refuses most sizes well below it)."""
MAX_CHANNELS = 4096  # widest convolution
MAX_CONV_LAYERS = 8  # strided layers of the conv backbone (each halves H and W)
MAX_SIDE = 4096  # image height or width in pixels
MAX_IMAGE_CHANNELS = 64


class ConfigError(ValueError):
    """A model or training setting is out of range; the message says which and how to fix it."""


def is_int(value) -> bool:
    """A real integer (not a bool, not a float that happens to be whole)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(what: str, value, lo: int, hi: int) -> int:
    """``value`` if it is an integer in [lo, hi]; else ConfigError naming ``what``."""
    if not is_int(value):
        raise ConfigError(f"{what} must be a whole number, got {value!r}.")
    if not lo <= value <= hi:
        raise ConfigError(f"{what} must lie between {lo:,} and {hi:,}, got {value:,}.")
    return value


def check_float(
    what: str, value, lo: float, hi: float = math.inf, *, lo_open: bool = False
) -> float:
    """``value`` if it is a finite number in [lo, hi] (``lo_open``: (lo, hi]); else a
    ConfigError naming ``what``. NaN and infinities are always refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{what} must be a number, got {value!r}.")
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, got {value}.")
    if (value <= lo if lo_open else value < lo) or value > hi:
        low = f"above {lo:g}" if lo_open else f"at least {lo:g}"
        high = f" and at most {hi:g}" if math.isfinite(hi) else ""
        raise ConfigError(f"{what} must be {low}{high}, got {value:g}.")
    return float(value)


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Knob:
    """One model setting as the command line and the Train form offer it.

    Built from a config dataclass field (``ModelConfig.knobs``) and the metadata ``setting``
    puts on it, so a family declares each setting once, next to its default.

    Attributes:
        name: the config key (the flag is ``--name-with-dashes``).
        kind: "int", "float", "bool", "str" or "ints" (a tuple of whole numbers).
        help: one line for ``--help`` and the form's tooltip.
        lo / hi: the range the config's ``validate`` accepts (None: unbounded); shown as a
            hint, the config's own validation stays the judge.
        choices: the allowed values of a "str" setting, else None.
        form: shown in the Train form.
        label: the form's label (default: the name).
        tip: the form's tooltip when it differs from ``help``.
        archs: the backbones that use the setting (None: every one); the form hides it and
            the command line refuses it for the others.
        needs_labels: a "bool" setting that only a conditional model may switch on.
        note: the family's own reading of a shared setting (e.g. gumbel-vae's latent_dim is
            its number of categorical variables), added to the shared help.
    """

    name: str
    kind: str
    help: str = ""
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None
    form: bool = False
    label: str = ""
    tip: str = ""
    archs: tuple[str, ...] | None = None
    needs_labels: bool = False
    note: str = ""

    @property
    def flag(self) -> str:
        return f"--{self.name.replace('_', '-')}"

    def applies_to(self, arch: str) -> bool:
        return self.archs is None or arch in self.archs


_KNOB_KEYS = {f for f in Knob.__dataclass_fields__} - {"name", "kind"}
FROM_DATA = "from_data"  # metadata key of a setting the dataset decides (shape, classes, rows)


def setting(default=MISSING, *, default_factory=MISSING, **meta):
    """A config field with its knob metadata (see ``Knob``: help, lo, hi, choices, form,
    label, tip, archs, needs_labels, note; ``from_data=True``: set from the dataset, never
    by hand)."""
    unknown = set(meta) - _KNOB_KEYS - {FROM_DATA}
    if unknown:
        raise TypeError(f"setting() got unknown metadata {sorted(unknown)}")
    return field(default=default, default_factory=default_factory, metadata=meta)


def _kind(tp) -> str:
    if tp is bool or tp is int or tp is float or tp is str:
        return tp.__name__
    if typing.get_origin(tp) is tuple:
        return "ints"
    raise TypeError(f"A model setting of type {tp!r} has no command-line form.")


@dataclass
class ModelConfig:
    """Settings every family shares.

    Every field is declared with ``setting`` (its help, range and whether the Train form
    shows it): the command line's model flags and the form's knobs are generated from them
    (``knobs``), so a family adds a setting in one place.

    Attributes:
        image_shape: (C, H, W) of the data the model is built for.
        latent_dim: size of the latent code (for gumbel-vae: number of categorical variables).
        num_classes: 0 for an unconditional model; > 0 makes it conditional: a one-hot label
            joins the encoder input (as extra channels / features) and the decoder input.
        arch: backbone, "mlp" (D-H-L / L-H-D), "fcconv" (snakers4's compact model: a full-image
            convolution to ``enc_channels``, 1x1 convolutions to L; L -> ``dec_channels`` ->
            full-image transposed convolution) or "conv" (strided conv stack, ``channels``).
        hidden_dim: hidden width of the MLP backbone and of the conv backbone's dense layer.
        enc_channels / dec_channels: widths of the fcconv backbone (snakers4: 32 and 118).
        channels: widths of the conv backbone's strided convolutions (each halves H and W).
    """

    image_shape: tuple[int, int, int] = setting((1, 28, 28), from_data=True)
    latent_dim: int = setting(
        10,
        help="latent size; default: the model's preset",
        lo=1,
        hi=MAX_WIDTH,
        form=True,
        label="Latent size L",
        tip="Length of the code z. 2 gives a latent plane you can scrub directly.",
    )
    num_classes: int = setting(0, from_data=True)
    arch: str = setting(
        "mlp",
        help="backbone: mlp, fcconv or conv (the VAE presets fix their own)",
        choices=ARCHS,
    )
    hidden_dim: int = setting(
        400,
        help="hidden width of the MLP and conv backbones (not fcconv)",
        lo=1,
        hi=MAX_WIDTH,
        form=True,
        label="Hidden size",
        tip="Width of the hidden layer between the image and the code.",
        archs=("mlp", "conv"),
    )
    enc_channels: int = setting(
        32,
        help="fcconv backbone: width of the encoder's full-image convolution",
        lo=1,
        hi=MAX_WIDTH,
        form=True,
        label="Encoder channels",
        archs=("fcconv",),
    )
    dec_channels: int = setting(
        118,
        help="fcconv backbone: width of the decoder's 1x1 transposed convolution",
        lo=1,
        hi=MAX_WIDTH,
        form=True,
        label="Decoder channels",
        archs=("fcconv",),
    )
    channels: tuple[int, ...] = setting(
        default=(32, 64),
        help="conv backbone: widths of the strided convolutions, one per layer (each halves "
        "H and W)",
        lo=1,
        hi=MAX_CHANNELS,
        archs=("conv",),
    )

    @classmethod
    def knobs(cls) -> tuple[Knob, ...]:
        """The settings a person may give, in field order (the dataset's are left out). A
        family that redeclares a field keeps the shared metadata and overrides what it
        names (e.g. its own default, label or ``note``)."""
        hints = typing.get_type_hints(cls)
        out = []
        for f in fields(cls):
            meta: dict = {}
            for klass in reversed(cls.__mro__):
                own = getattr(klass, "__dataclass_fields__", {}).get(f.name)
                if own is not None:
                    meta.update(own.metadata)
            if meta.pop(FROM_DATA, False):
                continue
            out.append(Knob(f.name, _kind(hints[f.name]), **meta))
        return tuple(out)

    @classmethod
    def from_data(cls) -> tuple[str, ...]:
        """The fields the dataset sets (image shape, classes, table rows), never a person."""
        return tuple(f.name for f in fields(cls) if f.metadata.get(FROM_DATA))

    def validate(self) -> None:
        shape = self.image_shape
        if (
            not isinstance(shape, tuple | list)
            or len(shape) != 3
            or not all(is_int(v) for v in shape)
        ):
            raise ConfigError(f"Image shape {shape!r} is invalid: give (C, H, W) as 3 integers.")
        c, h, w = shape
        if min(c, h, w) < 1:
            raise ConfigError(f"Image shape {tuple(shape)} is invalid: give (C, H, W) > 0.")
        if c > MAX_IMAGE_CHANNELS or max(h, w) > MAX_SIDE:
            raise ConfigError(
                f"Image shape {tuple(shape)} is too large: at most {MAX_IMAGE_CHANNELS} "
                f"channels and {MAX_SIDE} pixels a side."
            )
        if not is_int(self.latent_dim):
            raise ConfigError(f"Latent size must be a whole number, got {self.latent_dim!r}.")
        if self.latent_dim < 1:
            raise ConfigError(
                f"Latent size {self.latent_dim} is too small: use a latent size of 1 or more."
            )
        if self.latent_dim > MAX_WIDTH:
            raise ConfigError(
                f"Latent size {self.latent_dim:,} is too large: use at most {MAX_WIDTH:,}."
            )
        check_int("num_classes", self.num_classes, 0, MAX_WIDTH)
        if self.arch not in ARCHS:
            raise ConfigError(f"Unknown backbone '{self.arch}': choose one of {', '.join(ARCHS)}.")
        for what, v in (
            ("hidden_dim", self.hidden_dim),
            ("enc_channels", self.enc_channels),
            ("dec_channels", self.dec_channels),
        ):
            if not is_int(v) or v < 1:
                raise ConfigError(f"Hidden sizes must be positive integers, got {what}={v!r}.")
            if v > MAX_WIDTH:
                raise ConfigError(f"{what} {v:,} is too large: use at most {MAX_WIDTH:,}.")
        chans = self.channels
        if not isinstance(chans, tuple | list) or not all(is_int(v) for v in chans):
            raise ConfigError(f"channels must be a list of whole numbers, got {chans!r}.")
        if self.arch == "conv":
            if not 1 <= len(chans) <= MAX_CONV_LAYERS:
                raise ConfigError(
                    f"The conv backbone needs 1 to {MAX_CONV_LAYERS} channels entries, got "
                    f"{len(chans)}."
                )
            if not all(1 <= v <= MAX_CHANNELS for v in chans):
                raise ConfigError(
                    f"Conv channels must lie between 1 and {MAX_CHANNELS}, got {list(chans)}."
                )
            k = 2 ** len(chans)
            if h % k or w % k:
                raise ConfigError(
                    f"The conv backbone with {len(chans)} strided layers needs H and W "
                    f"divisible by {k}, got {h}x{w}: use fewer channels entries or arch=mlp."
                )

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"Unknown model settings {sorted(unknown)} for {cls.__name__}.")
        d = dict(d)
        hints = typing.get_type_hints(cls)
        for k, v in d.items():  # JSON and the command line give lists for tuple settings
            if isinstance(v, list) and typing.get_origin(hints[k]) is tuple:
                d[k] = tuple(v)
        return cls(**d)


# ----------------------------------------------------------------------------- backbones
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


# ----------------------------------------------------------------------------- posteriors
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

    def rsample(self) -> torch.Tensor:
        """Reparameterisation: z = mu + sigma * eps."""
        mu, logvar = self.mu.float(), self.logvar.float()
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


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
    ) -> torch.Tensor:
        """n draws from the prior over z, (n, latent_dim), on the model's device. ``y`` (one
        label or n) matters only to a model whose prior depends on the label."""
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    def carry_z(self, z: torch.Tensor, y_from, y_to) -> torch.Tensor:
        """The code under label ``y_to`` that stands where ``z`` stands under ``y_from``
        (the same for a prior that ignores labels, so z itself)."""
        return z

    @torch.no_grad()
    def sample(
        self, n: int, y: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """n images from the prior [conditioned on labels y (n,) or one label]."""
        if not self.can_sample:
            raise ValueError(f"A {self.family} model cannot draw new images.")
        return self.decode(self.prior_z(n, generator, y), y)

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
