"""Model settings: the config every family inherits (``ModelConfig``), its knobs (type,
range, help: what the CLI flags and the Train form are made from) and the range checks."""

from __future__ import annotations

import math
import typing
from dataclasses import MISSING, dataclass, field, fields

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
