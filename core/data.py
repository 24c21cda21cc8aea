"""Datasets of the lab: one registry, one loader, one tensor per split.

``load(name, split)`` returns an :class:`ImageData`: every image of the split in one
float32 tensor in [0, 1] shaped (N, C, H, W), int64 labels and the class names. The
registry holds

- ``mnist``, ``fashion-mnist``, ``kmnist`` and ``cifar10``: parsed by torchvision's dataset
  classes, downloaded on first use with md5 verification (torchvision's official table,
  which ``checksums`` can override; ``mirror`` or ``$LATENTLAB_MIRROR`` replaces the
  official server). Fashion-MNIST is taken from Debian's ``dataset-fashion-mnist``
  package (``/usr/share/datasets/fashion-mnist``, or ``$LATENTLAB_FMNIST_SYSTEM_DIR``)
  before the network is tried;
- ``digits``: scikit-learn's bundled 8x8 digits (1797 images, no network), split
  deterministically: every 5th image is test;
- ``idx:<folder>``: any folder of the four MNIST-style IDX files (optionally gzipped).

When the data is neither on disk nor downloadable, :class:`DatasetError` says in one
sentence what is missing and how to fix it. Loaded splits are kept in a small in-process
cache keyed by (name, split, data folder), so treat their tensors as read-only.

Example:
    >>> from core import data
    >>> train = data.load("digits", "train")
    >>> train.images.shape, train.class_names[:3]
    (torch.Size([1437, 1, 8, 8]), ['0', '1', '2'])
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import pickle
import shutil
import threading
import urllib.error
import urllib.request
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "DATASET_NAMES",
    "DOWNLOAD_TIMEOUT_S",
    "DatasetError",
    "DatasetInfo",
    "ImageData",
    "class_names",
    "clear_cache",
    "dataset_info",
    "default_data_dir",
    "idx_max_bytes",
    "image_shape",
    "load",
]

log = logging.getLogger(__name__)

DATASET_NAMES: list[str] = ["mnist", "fashion-mnist", "kmnist", "cifar10", "digits"]
"""Registry names accepted by :func:`load`; ``"idx:<folder>"`` is accepted as well."""

SPLITS = ("train", "test")
IDX_PREFIX = "idx:"

DOWNLOAD_TIMEOUT_S = 5.0
"""Seconds a download may wait on one connect or read before it counts as failed."""

FMNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
_USER_AGENT = "latent-lab"
_CACHE_SIZE = 6  # splits kept in memory (CIFAR-10 train is ~600 MB as float32)
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


_SPECS: dict[str, _Spec] = {
    "mnist": _Spec("MNIST", (1, 28, 28), "MNIST", (60000, 10000)),
    "fashion-mnist": _Spec("Fashion-MNIST", (1, 28, 28), "FashionMNIST", (60000, 10000)),
    "kmnist": _Spec("KMNIST", (1, 28, 28), "KMNIST", (60000, 10000)),
    "cifar10": _Spec("CIFAR-10", (3, 32, 32), "CIFAR10", (50000, 10000)),
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
        return self if n >= len(self) else self._take(torch.arange(n))

    def _take(self, index: torch.Tensor) -> ImageData:
        return ImageData(
            name=self.name,
            split=self.split,
            images=self.images[index].contiguous(),
            labels=self.labels[index],
            class_names=list(self.class_names),
        )


# ----------------------------------------------------------------------------- public API


def default_data_dir() -> Path:
    """Folder the torchvision datasets live in: ``$LATENTLAB_DATA_DIR`` if set, else ``./data``."""
    return Path(os.environ.get("LATENTLAB_DATA_DIR") or "data").expanduser()


def image_shape(name: str) -> tuple[int, int, int]:
    """(C, H, W) of a dataset's images, without loading it.

    Args:
        name: a registry name or ``"idx:<folder>"`` (whose image file header is read).

    Raises:
        DatasetError: unknown name, or an ``idx:`` folder without a readable image file.
    """
    kind, folder = _parse_name(name)
    if kind != "idx":
        return _SPECS[kind].shape
    assert folder is not None
    path = _idx_path(folder, _IDX_FILES["train"][0]) or _idx_path(folder, _IDX_FILES["test"][0])
    if path is None:
        raise _idx_missing_error(folder, _IDX_FILES["train"][0])
    dims = _idx_dims(path, 2051)
    return (1, dims[1], dims[2])


def idx_max_bytes() -> int:
    """The most data bytes an IDX file may announce: ``$LATENTLAB_MAX_IDX_BYTES`` or 2 GiB."""
    raw = os.environ.get("LATENTLAB_MAX_IDX_BYTES", "").strip()
    if not raw:
        return IDX_MAX_BYTES
    try:
        value = int(float(raw))
    except (ValueError, OverflowError):
        value = 0
    if value < 1:
        raise DatasetError(
            f"LATENTLAB_MAX_IDX_BYTES is {raw!r}: set it to a positive number of bytes, or "
            f"unset it for the default of {IDX_MAX_BYTES}."
        )
    return value


def dataset_info(name: str) -> DatasetInfo:
    """Image shape, number of classes and split sizes of a dataset, without loading it.

    The registry datasets are described by constants; an ``idx:<folder>`` has its four IDX
    headers read (a few bytes each) and its label files, which are checked against their
    headers first, so a file that announces more than :func:`idx_max_bytes` is refused
    before anything is inflated.

    Raises:
        DatasetError: unknown name, or an ``idx:`` folder whose files are missing,
            malformed, too large or inconsistent with each other.
    """
    kind, folder = _parse_name(name)
    if kind != "idx":
        spec = _SPECS[kind]
        return DatasetInfo(name, spec.shape, spec.num_classes, *spec.sizes)
    assert folder is not None
    counts: dict[str, int] = {}
    shape: tuple[int, int] | None = None
    for split in SPLITS:
        image_stem, label_stem = _IDX_FILES[split]
        image_path = _idx_path(folder, image_stem)
        if image_path is None:
            raise _idx_missing_error(folder, image_stem)
        label_path = _idx_path(folder, label_stem)
        if label_path is None:
            raise _idx_missing_error(folder, label_stem)
        n, h, w = _idx_dims(image_path, 2051)
        (m,) = _idx_dims(label_path, 2049)
        if n != m:
            raise DatasetError(
                f"{_show(image_path)} announces {n} images but {_show(label_path)} announces "
                f"{m} labels: use files of the same split."
            )
        if min(h, w) < 1:
            raise DatasetError(
                f"{_show(image_path)} announces images of {h}x{w} pixels: replace it with an "
                f"IDX image file of non-empty images."
            )
        if shape is not None and shape != (h, w):
            raise DatasetError(
                f"The train images in {_show(folder)} are {shape[0]}x{shape[1]} but the test "
                f"images are {h}x{w}: use train and test files of the same dataset."
            )
        shape = (h, w)
        counts[split] = n
    assert shape is not None
    if counts["train"] < 1:
        raise DatasetError(
            f"The training split in {_show(folder)} holds no images: put a non-empty "
            f"train-images-idx3-ubyte in it."
        )
    classes = len(_idx_label_values(folder))
    return DatasetInfo(name, (1, *shape), classes, counts["train"], counts["test"])


def class_names(name: str) -> list[str]:
    """Class names of a dataset, without loading its images.

    Args:
        name: a registry name or ``"idx:<folder>"`` (whose label files are read).

    Raises:
        DatasetError: unknown name, or an ``idx:`` folder without readable label files.
    """
    kind, folder = _parse_name(name)
    if kind == "idx":
        assert folder is not None
        return [str(v) for v in _idx_label_values(folder)]
    if kind == "digits":
        return [str(d) for d in range(10)]
    if kind == "cifar10":
        return list(_CIFAR10_CLASSES)
    return list(_torchvision_class(kind).classes)


def load(
    name: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    mirror: str | None = None,
    checksums: Mapping[str, str] | None = None,
) -> ImageData:
    """Load one split of a dataset as a single tensor.

    Args:
        name: one of :data:`DATASET_NAMES`, or ``"idx:<folder>"`` for a folder of IDX files.
        split: ``"train"`` or ``"test"``.
        data_dir: folder of the torchvision datasets (default :func:`default_data_dir`);
            unused by ``digits`` and ``idx:``.
        download: fetch missing files from the network; False only reads what is on disk.
        mirror: base URL that replaces the official server (default
            ``$LATENTLAB_MIRROR``); a ``{name}`` in it is replaced by the registry name, so
            one variable can serve several datasets whose files share names.
        checksums: file name -> md5, overriding torchvision's official table (for
            cifar10 this covers the archive and the extracted batch files too).

    Returns:
        The split, shared with later calls through the cache: do not modify its tensors.

    Raises:
        DatasetError: unknown name or split, data neither on disk nor downloadable, a
            checksum mismatch, or files that cannot be parsed.
    """
    kind, folder = _parse_name(name)
    if split not in SPLITS:
        raise DatasetError(f"Unknown split {split!r}: choose train or test.")
    if kind == "digits":
        root = None
    elif kind == "idx":
        assert folder is not None
        root = folder.expanduser().resolve()
    else:
        root = Path(data_dir if data_dir is not None else default_data_dir()).expanduser()
        root = root.resolve()
    key = (name, split, str(root))
    hit = _cache_get(key)
    if hit is not None:
        return hit
    with _LOAD_LOCK:  # one load at a time: downloads and extraction never race in-process
        hit = _cache_get(key)
        if hit is not None:
            return hit
        if kind == "digits":
            result = _load_digits(split)
        elif kind == "idx":
            assert root is not None
            result = _load_idx(name, root, split)
        else:
            assert root is not None
            table = _checksum_table(kind, checksums)
            base = mirror if mirror is not None else os.environ.get("LATENTLAB_MIRROR") or None
            if base is not None:
                base = base.replace("{name}", kind)
            if kind == "cifar10":
                result = _load_cifar10(root, split, download, base, table)
            else:
                result = _load_mnist_like(kind, root, split, download, base, table)
        _cache_put(key, result)
        return result


def clear_cache() -> None:
    """Forget every split :func:`load` has kept in memory."""
    with _CACHE_LOCK:
        _CACHE.clear()


# ----------------------------------------------------------------------------- cache

_CACHE: OrderedDict[tuple[str, str, str], ImageData] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_LOAD_LOCK = threading.RLock()


def _cache_get(key: tuple[str, str, str]) -> ImageData | None:
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
        return hit


def _cache_put(key: tuple[str, str, str], value: ImageData) -> None:
    with _CACHE_LOCK:
        _CACHE[key] = value
        _CACHE.move_to_end(key)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)


# ----------------------------------------------------------------------------- helpers


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


def _official_table(kind: str) -> dict[str, str]:
    cls = _torchvision_class(kind)
    if kind == "cifar10":
        table = {cls.filename: cls.tgz_md5, cls.meta["filename"]: cls.meta["md5"]}
        table.update({fn: md5 for fn, md5 in cls.train_list + cls.test_list})
        return table
    return dict(cls.resources)


def _checksum_table(kind: str, overrides: Mapping[str, str] | None) -> dict[str, str]:
    table = _official_table(kind)
    for file_name, md5 in (overrides or {}).items():
        if file_name not in table:
            raise DatasetError(
                f"checksums names {file_name!r}, which is not a file of {_SPECS[kind].title}: "
                f"use one of {', '.join(sorted(table))}."
            )
        table[file_name] = str(md5).lower()
    return table


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Unreachable(Exception):
    """No mirror delivered a file; the message is the reason."""


def _download(file_name: str, dest_dir: Path, bases: list[str], md5: str) -> Path:
    """Fetch ``file_name`` from the first base URL that serves it with the right md5.

    The file is written beside its destination and renamed into place only once its md5
    matches, so a partial or wrong file is never left where a loader would trust it.

    Raises:
        DatasetError: a server delivered the file with another md5.
        _Unreachable: no server could be reached or none had the file.
    """
    _make_dir(dest_dir)
    dest = dest_dir / file_name
    tmp = dest_dir / f".{file_name}.part-{os.getpid()}-{threading.get_ident()}"
    failures: list[str] = []
    mismatch: str | None = None
    for base in bases:
        url = base.rstrip("/") + "/" + file_name
        log.info("downloading %s", url)
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        try:
            with (
                urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response,
                open(tmp, "wb") as fh,
            ):
                shutil.copyfileobj(response, fh, 1 << 20)
            got = _md5(tmp)
            if got != md5:
                mismatch = (
                    f"Checksum mismatch for {file_name} from {url}: expected md5 {md5}, "
                    f"got {got}; use a mirror that serves the official file or pass its md5 "
                    f"in checksums."
                )
                continue
            os.replace(tmp, dest)
            return dest
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError, timeouts
            failures.append(f"{url}: {_reason(exc)}")
        finally:
            tmp.unlink(missing_ok=True)
    if mismatch is not None:
        raise DatasetError(mismatch)
    raise _Unreachable("; ".join(failures))


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(
            f"Cannot create {_show(path)} ({_reason(exc)}): pass --data-dir (or "
            f"LATENTLAB_DATA_DIR) to a folder you can write to."
        ) from exc


def _gunzip(src: Path, dest: Path) -> None:
    """Decompress the IDX file ``src`` (or copy it if not gzipped) to ``dest`` atomically.

    Its IDX header is read and checked first (magic number, dimensions, the size cap of
    :func:`idx_max_bytes`), and then exactly the announced number of bytes is inflated, so
    a small archive that inflates to gigabytes is refused before it is written out."""
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}-{threading.get_ident()}")
    magic = 2049 if "labels" in dest.name else 2051
    try:
        with _open_maybe_gzip(src) as rfh, open(tmp, "wb") as wfh:
            dims = _idx_read_header(rfh, src, magic)
            wfh.write(magic.to_bytes(4, "big"))
            wfh.write(b"".join(d.to_bytes(4, "big") for d in dims))
            left = int(np.prod(dims, dtype=object))
            while left > 0:
                chunk = rfh.read(min(left, 1 << 20))
                if not chunk:
                    break
                wfh.write(chunk)
                left -= len(chunk)
            extra = rfh.read(1)
        if left or extra:
            raise DatasetError(
                f"{_show(src)} holds {'less' if left else 'more'} data than its IDX header "
                f"announces ({'x'.join(map(str, dims))} bytes): replace {src.name} with an "
                f"intact copy (or delete it so it is downloaded again)."
            )
        os.replace(tmp, dest)
    except _IDX_READ_ERRORS as exc:
        raise DatasetError(
            f"Could not decompress {_show(src)} to {_show(dest)} ({_reason(exc)}): replace "
            f"{src.name} with an intact copy (or delete it so it is downloaded again), or pass "
            f"--data-dir to a folder you can write to."
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- MNIST family


def _fmnist_system_dir() -> Path:
    return Path(os.environ.get("LATENTLAB_FMNIST_SYSTEM_DIR") or FMNIST_SYSTEM_DIR)


def _system_copy(raw: Path) -> bool:
    """Fill ``raw`` from Debian's Fashion-MNIST, if installed. Returns whether it did."""
    system = _fmnist_system_dir()
    sources = []
    for file_name in _official_table("fashion-mnist"):
        stem = file_name.removesuffix(".gz")
        found = next((p for p in (system / file_name, system / stem) if p.is_file()), None)
        if found is None:
            return False
        sources.append((found, raw / stem))
    _make_dir(raw)
    for src, dest in sources:
        if not dest.is_file():
            log.info("copying %s to %s", src, dest)
            _gunzip(src, dest)
    return True


def _missing_mnist_like(kind: str, raw: Path, reason: str) -> DatasetError:
    spec = _SPECS[kind]
    fix = "put the four IDX files in that folder"
    if kind == "fashion-mnist":
        fix = f"install Debian's dataset-fashion-mnist package, {fix}"
    return DatasetError(
        f"{spec.title} is not in {_show(raw)} and could not be downloaded ({reason}): {fix}, "
        f"set LATENTLAB_MIRROR to a reachable mirror, or pass --data-dir "
        f"(or LATENTLAB_DATA_DIR) to a folder that has them."
    )


def _prepare_mnist_like(
    kind: str, raw: Path, download: bool, mirror: str | None, table: dict[str, str]
) -> None:
    """Make sure the four decompressed IDX files are in ``raw``."""
    if all((raw / fn.removesuffix(".gz")).is_file() for fn in table):
        return
    if kind == "fashion-mnist" and _system_copy(raw):
        return
    bases = [mirror] if mirror else list(_torchvision_class(kind).mirrors)
    for file_name, md5 in table.items():
        dest = raw / file_name.removesuffix(".gz")
        if dest.is_file():
            continue
        archive = raw / file_name
        if not (archive.is_file() and _md5(archive) == md5):
            if not download:
                raise _missing_mnist_like(kind, raw, "downloads are turned off")
            try:
                archive = _download(file_name, raw, bases, md5)
            except _Unreachable as exc:
                raise _missing_mnist_like(kind, raw, str(exc)) from None
        _gunzip(archive, dest)


def _load_mnist_like(
    kind: str, root: Path, split: str, download: bool, mirror: str | None, table: dict[str, str]
) -> ImageData:
    cls = _torchvision_class(kind)
    raw = root / cls.__name__ / "raw"
    _prepare_mnist_like(kind, raw, download, mirror, table)
    for stem, magic in zip(_IDX_FILES[split], (2051, 2049), strict=True):
        try:  # header and length first: torchvision reads a whole file into memory
            _idx_dims(raw / stem, magic)
        except DatasetError as exc:
            raise DatasetError(
                f"Could not read {_SPECS[kind].title} from {_show(raw)}: {exc}"
            ) from exc
    try:
        dataset = cls(root=str(root), train=split == "train", download=False)
    except (RuntimeError, AssertionError, ValueError, TypeError, OSError) as exc:
        raise DatasetError(
            f"Could not read {_SPECS[kind].title} from {_show(raw)} ({_reason(exc)}): "
            f"delete that folder to download it again, or replace its files with intact copies."
        ) from exc
    images = dataset.data.unsqueeze(1).to(torch.float32).div_(255.0)  # (N, 1, H, W)
    labels = dataset.targets.to(torch.int64)
    return _checked(kind, split, images, labels, list(cls.classes), raw)


def _checked(
    kind: str,
    split: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    names: list[str],
    where: Path,
) -> ImageData:
    """Build the ImageData after checking shape and labels agree with the registry."""
    spec = _SPECS[kind]
    if tuple(images.shape[1:]) != spec.shape:
        raise DatasetError(
            f"{spec.title} in {_show(where)} holds images shaped {tuple(images.shape[1:])}, "
            f"not {spec.shape}: replace the files with the real dataset, or load them as "
            f"idx:<folder>."
        )
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(names)):
        raise DatasetError(
            f"{spec.title} in {_show(where)} has labels outside 0..{len(names) - 1}: replace "
            f"the files with the real dataset, or load them as idx:<folder>."
        )
    return ImageData(kind, split, images.contiguous(), labels.contiguous(), names)


# ----------------------------------------------------------------------------- CIFAR-10


def _cifar10_class(table: dict[str, str]) -> Any:
    """torchvision's CIFAR10 with its per-file md5s taken from ``table``."""
    base = _torchvision_class("cifar10")

    class CheckedCIFAR10(base):  # type: ignore[misc, valid-type]
        train_list = [[fn, table[fn]] for fn, _ in base.train_list]
        test_list = [[fn, table[fn]] for fn, _ in base.test_list]
        meta = {**base.meta, "md5": table[base.meta["filename"]]}

    return CheckedCIFAR10


def _load_cifar10(
    root: Path, split: str, download: bool, mirror: str | None, table: dict[str, str]
) -> ImageData:
    cls = _cifar10_class(table)
    folder = root / cls.base_folder
    members = [fn for fn, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    if not all((folder / fn).is_file() for fn in members):
        archive = root / cls.filename
        md5 = table[cls.filename]
        if not (archive.is_file() and _md5(archive) == md5):
            reason = "downloads are turned off"
            if download:
                base_url = mirror or cls.url.rsplit("/", 1)[0]
                try:
                    archive = _download(cls.filename, root, [base_url], md5)
                    reason = ""
                except _Unreachable as exc:
                    reason = str(exc)
            if reason:
                raise DatasetError(
                    f"CIFAR-10 is not in {_show(folder)} and could not be downloaded "
                    f"({reason}): put {cls.filename} (or its extracted {cls.base_folder} "
                    f"folder) in {_show(root)}, set LATENTLAB_MIRROR to a reachable mirror, "
                    f"or pass --data-dir (or LATENTLAB_DATA_DIR) to a folder that has it."
                )
        from torchvision.datasets.utils import extract_archive

        log.info("extracting %s", archive)
        try:
            extract_archive(str(archive), str(root))
        except Exception as exc:  # tarfile raises several types for a broken archive
            raise DatasetError(
                f"Could not extract {_show(archive)} ({_reason(exc)}): delete it so it is "
                f"downloaded again."
            ) from exc
    for fn in members:
        path = folder / fn
        if not path.is_file() or _md5(path) != table[fn]:
            raise DatasetError(
                f"CIFAR-10 file {_show(path)} is missing or fails its md5 check: delete "
                f"{_show(folder)} (and a bad {cls.filename}) so it is downloaded again, or "
                f"pass its md5 in checksums."
            )
    no_check = {fn: None for fn in table}  # just verified above; skip torchvision's second pass
    try:
        dataset = _cifar10_class(no_check)(root=str(root), train=split == "train")
    except (RuntimeError, ValueError, KeyError, OSError, pickle.UnpicklingError) as exc:
        raise DatasetError(
            f"Could not read CIFAR-10 from {_show(folder)} ({_reason(exc)}): delete that "
            f"folder so it is downloaded again."
        ) from exc
    data = torch.from_numpy(np.ascontiguousarray(dataset.data))  # (N, 32, 32, 3) uint8
    images = data.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)  # (N, 3, 32, 32)
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    return _checked("cifar10", split, images, labels, list(dataset.classes), folder)


# ----------------------------------------------------------------------------- digits


def _load_digits(split: str) -> ImageData:
    from sklearn.datasets import load_digits

    pixels, targets = load_digits(return_X_y=True)  # (1797, 64) in 0..16, (1797,)
    test = np.arange(len(targets)) % 5 == 0
    keep = test if split == "test" else ~test
    images = torch.from_numpy(pixels[keep].reshape(-1, 1, 8, 8) / 16.0).to(torch.float32)
    labels = torch.from_numpy(targets[keep].astype(np.int64))
    return ImageData("digits", split, images.contiguous(), labels, [str(d) for d in range(10)])


# ----------------------------------------------------------------------------- idx:<folder>


def _idx_path(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _idx_missing_error(folder: Path, stem: str) -> DatasetError:
    if not folder.is_dir():
        return DatasetError(
            f"IDX folder {_show(folder)} does not exist: pass idx:<folder> with a folder that "
            f"holds train-/t10k-images-idx3-ubyte and train-/t10k-labels-idx1-ubyte (.gz or not)."
        )
    return DatasetError(
        f"{_show(folder)} has no {stem} (or {stem}.gz): put the MNIST-style IDX files "
        f"train-/t10k-images-idx3-ubyte and train-/t10k-labels-idx1-ubyte in it."
    )


def _open_maybe_gzip(path: Path) -> Any:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


_IDX_MAX_RATIO = 200  # image data compresses 2-50x; zero padding that inflates more is a bomb
_IDX_BOMB_FLOOR = 64 << 20  # small files may be all zeros: the ratio counts only above this
_IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only one the lab reads
_IDX_READ_ERRORS = (OSError, EOFError, zlib.error)  # gzip raises all three on broken files


def _idx_kind(expect_magic: int) -> str:
    return "image" if expect_magic == 2051 else "label"


def _not_idx(path: Path, expect_magic: int, magic: int | None) -> DatasetError:
    kind = _idx_kind(expect_magic)
    return DatasetError(
        f"{_show(path)} is not an IDX {kind} file (magic number {magic}, expected "
        f"{expect_magic}): replace it with an MNIST-style {kind} file of unsigned bytes."
    )


def _idx_read_header(fh: Any, path: Path, expect_magic: int) -> list[int]:
    """Read an IDX header from the open (possibly gzipped) stream ``fh`` and check it: the
    magic number (unsigned bytes, ``expect_magic``'s number of dimensions), complete
    dimensions, and a data size within :func:`idx_max_bytes`. Returns the dimensions and
    leaves ``fh`` at the first data byte; nothing past the header is read."""
    ndim = expect_magic & 0xFF
    head = fh.read(4)
    if len(head) < 4:
        raise DatasetError(
            f"{_show(path)} ends before its IDX header ({len(head)} of 4 magic bytes): "
            f"replace it with an intact copy."
        )
    magic = int.from_bytes(head, "big")
    if magic != expect_magic:
        if head[:2] == b"\x00\x00" and head[3] == ndim and head[2] != _IDX_UBYTE:
            raise DatasetError(
                f"{_show(path)} holds IDX data of type 0x{head[2]:02x}, not unsigned bytes "
                f"(0x08): convert it to an MNIST-style file of unsigned bytes."
            )
        raise _not_idx(path, expect_magic, magic)
    raw = fh.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise DatasetError(
            f"{_show(path)} ends inside its IDX header ({4 + len(raw)} of {4 + 4 * ndim} "
            f"bytes): replace it with an intact copy."
        )
    dims = [int.from_bytes(raw[4 * i : 4 * (i + 1)], "big") for i in range(ndim)]
    size = 1
    for d in dims:
        size *= d
    cap = idx_max_bytes()
    if size > cap:
        raise DatasetError(
            f"{_show(path)} announces {'x'.join(map(str, dims))} = {size} bytes of data, "
            f"more than the {cap}-byte limit for one IDX file: use a smaller file, or raise "
            f"LATENTLAB_MAX_IDX_BYTES if it is genuine."
        )
    if path.suffix == ".gz" and size > _IDX_BOMB_FLOOR:
        packed = max(path.stat().st_size, 1)
        if size > _IDX_MAX_RATIO * packed:
            raise DatasetError(
                f"{_show(path)} is {packed} bytes but announces {size} bytes of data, "
                f"{size // packed}x its size, which no image data compresses to (a "
                f"decompression bomb): replace it with the real file."
            )
    return dims


def _idx_open_error(path: Path, exc: BaseException) -> DatasetError:
    return DatasetError(
        f"Could not read {_show(path)} ({_reason(exc)}): replace it with an intact copy."
    )


def _idx_dims(path: Path, expect_magic: int) -> list[int]:
    """The checked dimensions of an IDX file, reading only its header (gzip or not); a plain
    file's length must match them as well."""
    try:
        with _open_maybe_gzip(path) as fh:
            dims = _idx_read_header(fh, path, expect_magic)
    except _IDX_READ_ERRORS as exc:
        raise _idx_open_error(path, exc) from exc
    if path.suffix != ".gz":
        _check_plain_size(path, dims)
    return dims


def _check_plain_size(path: Path, dims: list[int]) -> None:
    head = 4 * (1 + len(dims))
    expected = int(np.prod(dims, dtype=object))
    have = path.stat().st_size - head
    if have != expected:
        raise DatasetError(
            f"{_show(path)} holds {have} bytes of data but its header announces "
            f"{'x'.join(map(str, dims))} = {expected}: replace it with an intact copy."
        )


def _read_idx(path: Path, expect_magic: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (2051: images (N, H, W); 2049: labels (N,)).

    The header is read and checked first, and then exactly the announced number of bytes
    (plus one to notice trailing data), streaming through gzip: a small archive that
    inflates to gigabytes is refused after its header, and a lying header cannot make the
    reader inflate more than it announced."""
    try:
        with _open_maybe_gzip(path) as fh:
            dims = _idx_read_header(fh, path, expect_magic)
            if path.suffix != ".gz":
                _check_plain_size(path, dims)
            expected = int(np.prod(dims, dtype=object))
            data = fh.read(expected + 1)
    except _IDX_READ_ERRORS as exc:
        raise _idx_open_error(path, exc) from exc
    if len(data) != expected:
        held = f"{len(data)} bytes" if len(data) < expected else "more bytes"
        raise DatasetError(
            f"{_show(path)} holds {held} of data but its header announces "
            f"{'x'.join(map(str, dims))} = {expected}: replace it with an intact copy."
        )
    return np.frombuffer(data, dtype=np.uint8, count=expected).reshape(dims)


def _idx_label_values(folder: Path) -> np.ndarray:
    """Sorted unique labels over the label files present in ``folder``."""
    paths = [_idx_path(folder, _IDX_FILES[s][1]) for s in SPLITS]
    present = [p for p in paths if p is not None]
    if not present:
        raise _idx_missing_error(folder, _IDX_FILES["train"][1])
    return np.unique(np.concatenate([_read_idx(p, 2049) for p in present]))


def _load_idx(name: str, folder: Path, split: str) -> ImageData:
    image_stem, label_stem = _IDX_FILES[split]
    image_path = _idx_path(folder, image_stem)
    if image_path is None:
        raise _idx_missing_error(folder, image_stem)
    label_path = _idx_path(folder, label_stem)
    if label_path is None:
        raise _idx_missing_error(folder, label_stem)
    pixels = _read_idx(image_path, 2051)  # (N, H, W) uint8
    targets = _read_idx(label_path, 2049)  # (N,) uint8
    if len(pixels) != len(targets):
        raise DatasetError(
            f"{_show(image_path)} has {len(pixels)} images but {_show(label_path)} has "
            f"{len(targets)} labels: use files of the same split."
        )
    values = _idx_label_values(folder)  # class i is the label value values[i]
    images = torch.from_numpy(pixels.copy()).unsqueeze(1).to(torch.float32).div_(255.0)
    labels = torch.from_numpy(np.searchsorted(values, targets).astype(np.int64))
    return ImageData(name, split, images.contiguous(), labels, [str(v) for v in values])


# ----------------------------------------------------------------------------- bundled sample

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "pretrained" / "samples"
"""Small test-split samples shipped in the repository (pretrained/build.py writes them)."""


def bundled_sample(name: str) -> ImageData | None:
    """The bundled sample of a dataset's test split (e.g. 2,000 Fashion-MNIST test images),
    or None when the repository ships none for ``name``."""
    files = sorted(SAMPLES_DIR.glob(f"{name}-test-*.npz")) if name in _SPECS else []
    if not files:
        return None
    with np.load(files[-1]) as f:
        images = torch.from_numpy(f["images"].astype(np.float32) / 255.0)
        return ImageData(
            name=name,
            split="test",
            images=images.contiguous(),
            labels=torch.from_numpy(f["labels"].astype(np.int64)),
            class_names=[str(c) for c in f["class_names"]],
        )
