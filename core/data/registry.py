"""The dataset registry and its shared types: names, shapes and sizes known without loading,
``DatasetError``, ``DatasetInfo``, ``ImageData`` and the helpers every loader uses to
name a dataset, a path or a failure in one sentence."""

from __future__ import annotations

import os
import sys
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where tensors are handled: `import core.data` is light
    import torch

DATASET_NAMES: list[str] = ["mnist", "fashion-mnist", "kmnist", "cifar10", "digits"]
"""Registry names accepted by :func:`load`; ``"idx:<folder>"`` is accepted as well."""

SPLITS = ("train", "test")
IDX_PREFIX = "idx:"

DOWNLOAD_TIMEOUT_S = 5.0
"""Seconds a download may wait on one connect or read before it counts as failed."""

FMNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR10_CLASSES = [  # the label_names of batches.meta; torchvision reads them from the file
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


class DatasetError(ValueError):
    """Raised with ONE clear sentence saying what is wrong and how to fix it."""


@dataclass(frozen=True)
class _Spec:
    """What the registry knows about a dataset before it is loaded."""

    title: str  # human name used in messages
    shape: tuple[int, int, int]  # (C, H, W)
    torchvision_class: str | None  # class name in torchvision.datasets, None if not torchvision
    sizes: tuple[int, int] = (0, 0)  # images in the (train, test) splits
    num_classes: int = 10
    download_mb: int = 0  # megabytes fetched when it is not on disk (0: nothing to fetch)


_SPECS: dict[str, _Spec] = {
    "mnist": _Spec("MNIST", (1, 28, 28), "MNIST", (60000, 10000), download_mb=12),
    "fashion-mnist": _Spec(
        "Fashion-MNIST", (1, 28, 28), "FashionMNIST", (60000, 10000), download_mb=30
    ),
    "kmnist": _Spec("KMNIST", (1, 28, 28), "KMNIST", (60000, 10000), download_mb=21),
    "cifar10": _Spec("CIFAR-10", (3, 32, 32), "CIFAR10", (50000, 10000), download_mb=163),
    "digits": _Spec("digits", (1, 8, 8), None, (1437, 360)),  # 1797 images, every 5th is test
}

IDX_MAX_BYTES = 2 << 30
"""Default cap on the data an IDX file may announce (2 GiB; ``$LATENTLAB_MAX_IDX_BYTES``)."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a training run needs to know about a dataset, found without loading it.

    Attributes:
        name: the dataset name as given.
        image_shape: (C, H, W) of one image.
        num_classes: number of labels.
        train_size / test_size: images in the train and test splits.
    """

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int
    train_size: int
    test_size: int


# ----------------------------------------------------------------------------- ImageData


@dataclass(eq=False, repr=False)
class ImageData:
    """One split of a dataset, held in memory.

    Objects returned by :func:`load` are shared through an in-process cache: treat
    ``images`` and ``labels`` as read-only and ``clone()`` them before changing them in
    place (a subset or an index slice is already a copy).

    Attributes:
        name: registry name, e.g. ``"fashion-mnist"`` or ``"idx:/path/to/folder"``.
        split: ``"train"`` or ``"test"``.
        images: (N, C, H, W) float32 in [0, 1], contiguous.
        labels: (N,) int64, indices into ``class_names``.
        class_names: one name per class.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]

    def __post_init__(self) -> None:
        import torch

        if self.images.ndim != 4 or self.images.dtype != torch.float32:
            raise ValueError(
                f"images must be a float32 tensor shaped (N, C, H, W), "
                f"got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.ndim != 1 or self.labels.dtype != torch.int64:
            raise ValueError(
                f"labels must be an int64 tensor shaped (N,), "
                f"got {self.labels.dtype} {tuple(self.labels.shape)}"
            )
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.images.shape[1:]
        return (int(c), int(h), int(w))

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(class_names)``)."""
        return len(self.class_names)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageData(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"image_shape={self.image_shape}, num_classes={self.num_classes})"
        )

    def describe(self) -> dict:
        """The dataset description a checkpoint stores: plain JSON-able types.

        Returns:
            ``{"name": str, "image_shape": [C, H, W], "class_names": [str, ...]}``.
        """
        return {
            "name": self.name,
            "image_shape": list(self.image_shape),
            "class_names": list(self.class_names),
        }

    def subset_index(self, n: int, seed: int = 0) -> torch.Tensor:
        """Positions (sorted) of the items ``subset(n, seed)`` picks."""
        import torch

        if n >= len(self):
            return torch.arange(len(self))
        generator = torch.Generator().manual_seed(seed)
        return torch.randperm(len(self), generator=generator)[:n].sort().values

    def subset(self, n: int, seed: int = 0) -> ImageData:
        """A random sample of ``n`` items, the same for the same seed.

        Args:
            n: how many items; ``n >= len(self)`` returns ``self`` (every item).
            seed: seed of the sample.

        Returns:
            An ImageData with copies of the chosen items, in their original order.
        """
        if n < 0:
            raise ValueError(f"subset size must be >= 0, got {n}")
        if n >= len(self):
            return self
        return self._take(self.subset_index(n, seed))

    def head(self, n: int) -> ImageData:
        """The first ``n`` items in file order (every item when ``n >= len(self)``)."""
        if n < 0:
            raise ValueError(f"head size must be >= 0, got {n}")
        import torch

        return self if n >= len(self) else self._take(torch.arange(n))

    def _take(self, index: torch.Tensor) -> ImageData:
        return ImageData(
            name=self.name,
            split=self.split,
            images=self.images[index].contiguous(),
            labels=self.labels[index],
            class_names=list(self.class_names),
        )


APP_ENV = "LATENTLAB_IN_APP"
"""Set to 1 in the environment of the trainers the app starts (``core.jobs``): their
messages are read in the browser, where only the server's environment can be changed."""


def in_app(app: bool | None = None) -> bool:
    """Whether a message is read in the app: ``app`` when given, else ``$LATENTLAB_IN_APP``
    (a trainer the app started), else whether this thread is running a Streamlit page
    (asked of an already loaded Streamlit only: core never imports it)."""
    if app is not None:
        return bool(app)
    if os.environ.get(APP_ENV) == "1":
        return True
    runner = sys.modules.get("streamlit.runtime.scriptrunner")
    get_ctx = getattr(runner, "get_script_run_ctx", None)
    try:
        return get_ctx is not None and get_ctx(suppress_warning=True) is not None
    except Exception:  # another Streamlit version: say it for the command line
        return False


def data_dir_fix(app: bool | None = None) -> str:
    """How to point the lab at another data folder, said for where the message is read:
    the command line has ``--data-dir``; the app takes it after a ``--`` (app/main.py sets
    ``$LATENTLAB_DATA_DIR`` from it for the trainers it starts). Followed by "a folder
    that ..."."""
    if in_app(app):
        return (
            "restart the lab with `streamlit run app/main.py -- --data-dir DIR`"
            " (or set LATENTLAB_DATA_DIR) to"
        )
    return "pass --data-dir (or LATENTLAB_DATA_DIR) to"


def default_data_dir() -> Path:
    """Folder the torchvision datasets live in: ``$LATENTLAB_DATA_DIR`` if set, else ``./data``."""
    return Path(os.environ.get("LATENTLAB_DATA_DIR") or "data").expanduser()


def _parse_name(name: str) -> tuple[str, Path | None]:
    """Return (kind, folder): kind is a registry name or "idx" (then folder is set)."""
    if isinstance(name, str) and name.startswith(IDX_PREFIX):
        folder = name[len(IDX_PREFIX) :].strip()
        if not folder:
            raise DatasetError("Dataset 'idx:' names no folder: write idx:<folder>.")
        return "idx", Path(folder)
    if name in _SPECS:
        return name, None
    raise DatasetError(
        f"Unknown dataset {name!r}: choose one of {', '.join(DATASET_NAMES)}, or idx:<folder>."
    )


def _show(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _reason(exc: BaseException) -> str:
    """One line describing why a download or a read failed."""
    if isinstance(exc, urllib.error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        text = _reason(reason) if isinstance(reason, BaseException) else str(reason)
    elif isinstance(exc, TimeoutError):
        text = f"no answer within {DOWNLOAD_TIMEOUT_S:g} s"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split()).rstrip(".")


def _torchvision_class(kind: str) -> Any:
    import torchvision.datasets  # lazy: keeps `import core.data` light

    return getattr(torchvision.datasets, _SPECS[kind].torchvision_class or "")
