"""The model zoo: one registry of family specs, from which everything else is derived.

``build_model("fcconv-vae", image_shape=(1, 28, 28), latent_dim=10)`` builds a model;
``FAMILIES`` holds one ``FamilySpec`` per name (config class, model class, preset,
description, the Train form's latent size, the tests' tiny settings); its ``knobs`` come
from the config dataclass's fields (``core.models.base.setting``). The command line's model
flags (``core.cli``), the Train form's defaults and knobs (``app.train_form``) and the
tests' family lists are all generated from it. ``MODELS`` is the older view
(name -> (config class, model class, preset, description)).

Presets set a family's defaults (the seeds' best settings); explicit keyword arguments
override them. ``conditional=True`` makes any family conditional on ``num_classes`` labels
(``cvae`` is the conditional ``mlp-vae``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
import torch.nn.init
from torch.overrides import TorchFunctionMode

from core.models.ae import AE, AEConfig
from core.models.autodecoder import AutoDecoder, AutoDecoderConfig
from core.models.base import (
    MAX_SAMPLING_TEMPERATURE,
    CategoricalPosterior,
    ConfigError,
    GaussianPosterior,
    Knob,
    LatentModel,
    ModelConfig,
    Output,
    PointPosterior,
    Posterior,
    check_temperature,
)
from core.models.gumbel import GumbelConfig, GumbelVAE
from core.models.vae import VAE, VAEConfig
from core.models.wae import WAE, WAEConfig


@dataclass(frozen=True)
class FamilySpec:
    """One model family: everything the lab needs to offer it.

    Attributes:
        name: the registry name (``--model``, config.json, checkpoints).
        config: its ``ModelConfig`` subclass; each field's ``setting`` metadata makes a knob.
        model: its ``LatentModel`` subclass (capabilities as class attributes).
        preset: settings over the config's defaults (the seeds' best).
        description: one line for ``--help``-like lists and the Train form.
        latent: the Train form's latent size (None: the preset's or the config's).
        tiny: small settings that train on digits in a second or two (tests, fixtures).
    """

    name: str
    config: type[ModelConfig]
    model: type[LatentModel]
    preset: dict = field(default_factory=dict)
    description: str = ""
    latent: int | None = None
    tiny: dict = field(default_factory=dict)

    @property
    def knobs(self) -> tuple[Knob, ...]:
        """Every setting a person may give this family (the dataset's are left out)."""
        return self.config.knobs()

    def knob(self, name: str) -> Knob | None:
        return next((k for k in self.knobs if k.name == name), None)

    def defaults(self) -> dict:
        """The config's defaults under the preset, with the form's latent size and
        ``conditional`` (the preset's, else False)."""
        base = {f.name: getattr(self.config(), f.name) for f in fields(self.config)}
        base.update(self.preset)
        if self.latent is not None:
            base["latent_dim"] = self.latent
        base["conditional"] = bool(self.preset.get("conditional", False))
        return base

    def form_knobs(self, arch: str | None = None) -> list[Knob]:
        """The knobs the Train form shows, for backbone ``arch`` (default: the preset's)."""
        arch = arch or self.defaults()["arch"]
        return [k for k in self.knobs if k.form and k.applies_to(arch)]

    @property
    def entry(self) -> tuple[type[ModelConfig], type[LatentModel], dict, str]:
        return (self.config, self.model, self.preset, self.description)


CONDITIONAL = Knob(
    "conditional",
    "bool",
    help="condition encoder and decoder on the label (one-hot); cvae always is",
)
"""Not a config field: ``resolve_config`` turns it into ``num_classes``."""

_MLP = {"arch": "mlp", "hidden_dim": 400}
_SMALL = {"latent_dim": 2, "hidden_dim": 32}
_FCCONV = {"arch": "fcconv", "enc_channels": 32, "dec_channels": 118}
_CONV = {"arch": "conv", "channels": (16, 32), "hidden_dim": 256}
_CVAE = {"arch": "mlp", "hidden_dim": 500, "conditional": True, "class_prior": True}

# THE registry: one entry per family (name, config, model, preset, description, the form's
# latent size, tiny settings). Adding a family is one file in core/models/ and one line here.
SPECS: tuple[FamilySpec, ...] = (
    FamilySpec("mlp-vae", VAEConfig, VAE, _MLP, "MLP VAE, D-H-L / L-H-D", 2, _SMALL),
    FamilySpec(
        "fcconv-vae",
        VAEConfig,
        VAE,
        _FCCONV,
        "snakers4's compact fc_conv VAE (about 120k parameters at L=10)",
        10,
        {"latent_dim": 4},
    ),
    FamilySpec(
        "conv-vae",
        VAEConfig,
        VAE,
        _CONV,
        "deeper strided-conv VAE",
        10,
        {**_SMALL, "latent_dim": 4},
    ),
    FamilySpec(
        "cvae",
        VAEConfig,
        VAE,
        _CVAE,
        "conditional MLP VAE (label one-hot into encoder and decoder, a learned prior per label)",
        2,
        _SMALL,
    ),
    FamilySpec(
        "ae", AEConfig, AE, _MLP, "plain autoencoder (no KL)", 10, {**_SMALL, "latent_dim": 3}
    ),
    FamilySpec(
        "gumbel-vae",
        GumbelConfig,
        GumbelVAE,
        _MLP,
        "categorical latents with the Gumbel-softmax relaxation",
        10,
        {"latent_dim": 4, "categories": 5, "hidden_dim": 32},
    ),
    FamilySpec(
        "autodecoder",
        AutoDecoderConfig,
        AutoDecoder,
        {**_MLP, "latent_dim": 2},
        "decoder plus a learned latent table (decoder-only)",
        2,
        _SMALL,
    ),
    FamilySpec("wae", WAEConfig, WAE, _MLP, "Wasserstein autoencoder (WAE-MMD)", 10, _SMALL),
)
FAMILIES: dict[str, FamilySpec] = {s.name: s for s in SPECS}

# name -> (config class, model class, preset, one-line description): the older view.
MODELS: dict[str, tuple[type[ModelConfig], type[LatentModel], dict, str]] = {
    name: spec.entry for name, spec in FAMILIES.items()
}


def spec(name: str) -> FamilySpec:
    """The registry entry of family ``name`` (ConfigError naming the choices if unknown)."""
    if name not in FAMILIES:
        raise ConfigError(f"Unknown model '{name}': choose one of {', '.join(FAMILIES)}.")
    return FAMILIES[name]


def setting_knobs() -> dict[str, Knob]:
    """Every model setting of every family, once each, in a stable order (the shared ones,
    ``conditional``, then each family's own): the command line's model flags. A shared
    setting keeps the shared help, with each family's ``note`` added."""
    out: dict[str, Knob] = {k.name: k for k in ModelConfig.knobs()}
    out["conditional"] = CONDITIONAL
    owners: dict[str, list[str]] = {}
    notes: dict[str, list[str]] = {}
    for s in FAMILIES.values():
        for k in s.knobs:
            owners.setdefault(k.name, []).append(s.name)
            if k.note and f"{s.name}: {k.note}" not in notes.get(k.name, []):
                notes.setdefault(k.name, []).append(f"{s.name}: {k.note}")
            out.setdefault(k.name, k)
    for name, k in out.items():
        help_ = k.help
        fams = owners.get(name, [])
        if fams and len(fams) < len(FAMILIES) and name not in ModelConfig.__dataclass_fields__:
            help_ = f"{', '.join(fams)}: {help_}"
        if notes.get(name):
            help_ = f"{help_} ({'; '.join(notes[name])})"
        out[name] = Knob(**{**k.__dict__, "help": help_})
    return out


def model_names() -> list[str]:
    return list(FAMILIES)


def _lookup(name: str):
    return spec(name).entry


def config_class(name: str) -> type[ModelConfig]:
    return _lookup(name)[0]


def model_class(name: str) -> type[LatentModel]:
    """The class of model ``name``, whose class attributes declare what it can do before one
    is built (``has_kl``, ``has_regulariser``, ``can_sample``, ``encodes``, ...)."""
    return _lookup(name)[1]


def resolve_config(
    name: str,
    image_shape: tuple[int, int, int],
    num_classes: int = 0,
    num_items: int = 0,
    **overrides,
) -> ModelConfig:
    """The full config of model ``name`` for data of ``image_shape`` with ``num_classes``
    labels and ``num_items`` training images (used by the autodecoder's table).

    ``overrides`` are config fields; ``conditional`` (bool) switches labels on or off.
    None values are ignored so CLI defaults can pass through.
    """
    cfg_cls, _, preset, _ = _lookup(name)
    values = {**preset, **{k: v for k, v in overrides.items() if v is not None}}
    conditional = bool(values.pop("conditional", False))
    if not conditional and overrides.get("class_prior") is None:
        values.pop("class_prior", None)  # a preset's class prior needs labels
    if conditional and num_classes < 1:
        raise ConfigError("A conditional model needs labelled data (num_classes >= 1).")
    values["num_classes"] = num_classes if conditional else 0
    values["image_shape"] = tuple(image_shape)
    names = {f.name for f in fields(cfg_cls)}
    if "num_items" in names:
        values.setdefault("num_items", num_items)
    unknown = set(values) - names
    if unknown:
        raise ConfigError(
            f"Model '{name}' has no setting {', '.join(sorted(unknown))}: "
            f"its settings are {', '.join(sorted(names))}."
        )
    cfg = cfg_cls.from_dict(values)
    cfg.validate()
    return cfg


def build_model(name: str, config: ModelConfig | None = None, **kwargs) -> LatentModel:
    """Build model ``name`` from a resolved ``config``, or resolve one from ``kwargs``
    (see ``resolve_config``)."""
    _, model_cls, _, _ = _lookup(name)
    if config is None:
        config = resolve_config(name, **kwargs)
    model = model_cls(config)
    model.name = name
    return model


class _SkipMetaInit(TorchFunctionMode):
    """Initialising a ``meta`` tensor does nothing (it has no values), but the first
    random initialisation on the meta device makes PyTorch import its Python meta kernels
    (sympy and 900 modules, about 150 MB, once per process). Skipped, so sizing a model
    (or refusing a size bomb) costs next to nothing."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RANDOM_INIT:
            t = args[0] if args else kwargs.get("tensor")
            if isinstance(t, torch.Tensor) and t.is_meta:
                return t
        return func(*args, **kwargs)


_RANDOM_INIT = {
    getattr(torch.Tensor, n)
    for n in ("normal_", "uniform_", "bernoulli_", "cauchy_", "exponential_", "geometric_")
    + ("log_normal_", "random_", "erfinv_")
} | {
    getattr(torch.nn.init, n)
    for n in dir(torch.nn.init)
    if n.endswith("_") and not n.startswith("_") and callable(getattr(torch.nn.init, n))
}


def _meta_model(name: str, config: ModelConfig) -> LatentModel:
    """Model ``name`` built on PyTorch's ``meta`` device: shapes only, no memory."""
    with _SkipMetaInit(), torch.device("meta"):
        return build_model(name, config)


def count_parameters(name: str, config: ModelConfig) -> int:
    """How many parameters (and buffer values) model ``name`` with ``config`` would have,
    without allocating them. Use it to refuse a size bomb (an upload or a setting that asks
    for gigabytes) before building."""
    model = _meta_model(name, config)
    return sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())


def state_shapes(name: str, config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The state_dict keys and shapes model ``name`` with ``config`` would have."""
    return {k: tuple(v.shape) for k, v in _meta_model(name, config).state_dict().items()}


__all__ = [
    "CONDITIONAL",
    "FAMILIES",
    "MAX_SAMPLING_TEMPERATURE",
    "MODELS",
    "FamilySpec",
    "Knob",
    "CategoricalPosterior",
    "ConfigError",
    "GaussianPosterior",
    "LatentModel",
    "ModelConfig",
    "Output",
    "PointPosterior",
    "Posterior",
    "build_model",
    "check_temperature",
    "config_class",
    "model_class",
    "count_parameters",
    "state_shapes",
    "model_names",
    "resolve_config",
    "setting_knobs",
    "spec",
]
