"""The model zoo: one registry mapping a name to (config class, model class, preset).

``build_model("fcconv-vae", image_shape=(1, 28, 28), latent_dim=10)`` builds a model;
``MODELS`` lists the names. Presets set a family's defaults (the seeds' best settings);
explicit keyword arguments override them. ``conditional=True`` makes any family
conditional on ``num_classes`` labels (``cvae`` is the conditional ``mlp-vae``).
"""

from __future__ import annotations

from dataclasses import fields

import torch
import torch.nn.init
from torch.overrides import TorchFunctionMode

from core.models.ae import AE, AEConfig
from core.models.autodecoder import AutoDecoder, AutoDecoderConfig
from core.models.base import (
    CategoricalPosterior,
    ConfigError,
    GaussianPosterior,
    LatentModel,
    ModelConfig,
    Output,
    PointPosterior,
    Posterior,
)
from core.models.gumbel import GumbelConfig, GumbelVAE
from core.models.vae import VAE, VAEConfig

# name -> (config class, model class, preset, one-line description)
MODELS: dict[str, tuple[type[ModelConfig], type[LatentModel], dict, str]] = {
    "mlp-vae": (VAEConfig, VAE, {"arch": "mlp", "hidden_dim": 400}, "MLP VAE, D-H-L / L-H-D"),
    "fcconv-vae": (
        VAEConfig,
        VAE,
        {"arch": "fcconv", "enc_channels": 32, "dec_channels": 118},
        "snakers4's compact fc_conv VAE (about 120k parameters at L=10)",
    ),
    "conv-vae": (
        VAEConfig,
        VAE,
        {"arch": "conv", "channels": (16, 32), "hidden_dim": 256},
        "deeper strided-conv VAE",
    ),
    "cvae": (
        VAEConfig,
        VAE,
        {"arch": "mlp", "hidden_dim": 500, "conditional": True, "class_prior": True},
        "conditional MLP VAE (label one-hot into encoder and decoder, a learned prior per label)",
    ),
    "ae": (AEConfig, AE, {"arch": "mlp", "hidden_dim": 400}, "plain autoencoder (no KL)"),
    "gumbel-vae": (
        GumbelConfig,
        GumbelVAE,
        {"arch": "mlp", "hidden_dim": 400},
        "categorical latents with the Gumbel-softmax relaxation",
    ),
    "autodecoder": (
        AutoDecoderConfig,
        AutoDecoder,
        {"arch": "mlp", "hidden_dim": 400, "latent_dim": 2},
        "decoder plus a learned latent table (decoder-only)",
    ),
}


def model_names() -> list[str]:
    return list(MODELS)


def _lookup(name: str):
    if name not in MODELS:
        raise ConfigError(f"Unknown model '{name}': choose one of {', '.join(MODELS)}.")
    return MODELS[name]


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
    "MODELS",
    "CategoricalPosterior",
    "ConfigError",
    "GaussianPosterior",
    "LatentModel",
    "ModelConfig",
    "Output",
    "PointPosterior",
    "Posterior",
    "build_model",
    "config_class",
    "model_class",
    "count_parameters",
    "state_shapes",
    "model_names",
    "resolve_config",
]
