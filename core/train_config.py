"""The training settings: ``TrainConfig``, each field declared with ``_setting`` (its one
default, its command-line flag's help and ``--help`` group).

Light on purpose: neither torch nor the model registry is imported here, so the run store
can check a config.json's ``train`` section (``core.store.schema``) and the pages that only
list runs (Home, the sidebar) start fast. The checks that need the registry or torch live
in ``core.config`` (``check_train``, called by ``TrainConfig.validate``; ``validate_run``),
which re-exports everything here.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field

from core import data as datalib

OPTIMIZERS = ("adam", "adamw", "sgd")

DATA, OPTIMISATION, LOSS = "data and model", "optimisation", "loss"  # --help's groups


def _setting(default=MISSING, *, help: str, group: str, shown=None, choices=None, **kw):
    """A training setting: its one default, and what its command-line flag says (``help``,
    the ``--help`` group, the default as shown when it is not the value itself, the
    choices). ``core.cli`` makes one flag per field from this."""
    meta = {"help": help, "group": group, "shown": shown, "choices": choices}
    return field(default=default, metadata=meta, **kw)


class _ModelNames:
    """The model flag's help, "one of <the registry's family names>", read when shown
    (``core.models`` imports torch)."""

    def __str__(self) -> str:
        from core.models import MODELS

        return f"one of {', '.join(MODELS)}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


@dataclass
class TrainConfig:
    """Everything about a training run except the model's own settings.

    The defaults are the snakers4 study's best run: fcconv-vae on Fashion-MNIST, L=10,
    batch 512, Adam at 1e-3, BCE + KL. Each field carries its flag's help (``_setting``):
    ``python -m core.train`` has one flag per field, whose default is the field's.
    """

    dataset: str = _setting(
        "fashion-mnist",
        help=f"one of {', '.join(datalib.DATASET_NAMES)}, or idx:<folder>",
        group=DATA,
    )
    model: str = _setting("fcconv-vae", help=_ModelNames(), group=DATA)
    epochs: int = _setting(30, help="total epochs, also when resuming", group=OPTIMISATION)
    batch_size: int = _setting(512, help="training images per step", group=OPTIMISATION)
    lr: float = _setting(1e-3, help="learning rate", group=OPTIMISATION)
    optimizer: str = _setting("adam", help="the optimizer", group=OPTIMISATION, choices=OPTIMIZERS)
    weight_decay: float = _setting(0.0, help="the optimizer's weight decay", group=OPTIMISATION)
    milestones: list[int] = _setting(
        help="epochs at which the learning rate is multiplied by --lr-gamma",
        group=OPTIMISATION,
        shown="none",
        default_factory=list,
    )
    lr_gamma: float = _setting(
        0.1, help="learning-rate factor at each milestone, in (0, 1]", group=OPTIMISATION
    )
    loss: str = _setting(
        "bce",
        help="reconstruction term: bce, mse, ssim or a mix like 'bce+0.5*ssim'",
        group=LOSS,
    )
    recon_weight: float = _setting(1.0, help="weight of the reconstruction term", group=LOSS)
    kl_weight: float = _setting(
        1.0,
        help="beta, weight of the KL (or of the family's own regulariser, e.g. wae's MMD)",
        group=LOSS,
    )
    kl_warmup: float = _setting(0.0, help="epochs over which beta ramps up from 0", group=LOSS)
    ssim_window: int = _setting(
        11, help="SSIM Gaussian window in pixels (odd), for an ssim loss", group=LOSS
    )
    seed: int = _setting(
        42, help="seed of the weights, the data order and the noise", group=OPTIMISATION
    )
    device: str = _setting(
        "auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps", group=OPTIMISATION
    )
    amp: bool = _setting(True, help="mixed precision on cuda", group=OPTIMISATION)
    train_size: int = _setting(
        0, help="train on this many images only", group=DATA, shown="0 = all"
    )
    val_size: int = _setting(
        10000, help="test images scored after each epoch, 0 for none", group=DATA
    )
    data_dir: str | None = _setting(
        None,
        help="folder of the downloaded datasets",
        group=DATA,
        shown="$LATENTLAB_DATA_DIR or ./data",
    )

    def validate(self) -> None:
        """Check every training setting on its own (types, finiteness, ranges, the device);
        raises ConfigError with one sentence. ``validate_run`` adds the checks that need
        the model and the dataset (``core.config``, which imports the registry: torch)."""
        from core.config import check_train

        check_train(self)
