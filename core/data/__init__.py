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
sentence what is missing and how to fix it; :func:`availability` and :func:`check_download`
tell it before a run is created, and :func:`resolve_idx_folder` checks a folder typed into
the app (``core/data/availability.py``). Loaded splits are kept in a small in-process
cache keyed by (name, split, data folder), so treat their tensors as read-only.

Example:
    >>> from core import data
    >>> train = data.load("digits", "train")
    >>> train.images.shape, train.class_names[:3]
    (torch.Size([1437, 1, 8, 8]), ['0', '1', '2'])
"""

from __future__ import annotations

from core.lazy import lazy_exports
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from core.data.availability import (  # light: files and one socket, no torch
    Availability,
    availability,
    check_download,
    idx_roots,
    resolve_idx_folder,
)
from core.data.registry import (
    _CIFAR10_CLASSES,
    _IDX_FILES,
    _SPECS,
    DATASET_NAMES,
    DOWNLOAD_TIMEOUT_S,
    FMNIST_SYSTEM_DIR,
    IDX_MAX_BYTES,
    IDX_PREFIX,
    SPLITS,
    DatasetError,
    DatasetInfo,
    ImageData,
    _parse_name,
    _show,
    _torchvision_class,
    default_data_dir,
)

if TYPE_CHECKING:  # re-exported too, imported on first use (see __getattr__)
    from core.data.idx import idx_max_bytes, idx_split_files  # noqa: F401
    from core.data.samples import SAMPLES_DIR, bundled_sample

# The loaders import torch (and numpy): they are imported when a dataset is loaded or an
# idx: folder is read, so `from core import data` (the registry, names, shapes) stays light.
_LAZY = {
    "idx_max_bytes": "core.data.idx",
    "idx_split_files": "core.data.idx",
    "SAMPLES_DIR": "core.data.samples",
    "bundled_sample": "core.data.samples",
}


__getattr__ = lazy_exports(globals(), _LAZY)


__all__ = [
    "Availability",
    "DATASET_NAMES",
    "DOWNLOAD_TIMEOUT_S",
    "FMNIST_SYSTEM_DIR",
    "IDX_MAX_BYTES",
    "IDX_PREFIX",
    "SAMPLES_DIR",
    "SPLITS",
    "DatasetError",
    "DatasetInfo",
    "ImageData",
    "availability",
    "bundled_sample",
    "check_download",
    "class_names",
    "clear_cache",
    "dataset_info",
    "default_data_dir",
    "idx_max_bytes",
    "idx_roots",
    "image_shape",
    "load",
    "resolve_idx_folder",
]

_CACHE_SIZE = 6  # splits kept in memory (CIFAR-10 train is ~600 MB as float32)

# ----------------------------------------------------------------------------- public API


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
    from core.data.idx import _idx_dims, _idx_missing_error, _idx_path

    path = _idx_path(folder, _IDX_FILES["train"][0]) or _idx_path(folder, _IDX_FILES["test"][0])
    if path is None:
        raise _idx_missing_error(folder, _IDX_FILES["train"][0])
    dims = _idx_dims(path, 2051)
    return (1, dims[1], dims[2])


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
    from core.data.idx import _idx_dims, _idx_label_values, idx_split_files

    counts: dict[str, int] = {}
    shape: tuple[int, int] | None = None
    for split in SPLITS:
        image_path, label_path = idx_split_files(folder, split)
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
        from core.data.idx import _idx_label_values

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
            from core.data.samples import _load_digits

            result = _load_digits(split)
        elif kind == "idx":
            assert root is not None
            from core.data.idx import _load_idx

            result = _load_idx(name, root, split)
        else:
            assert root is not None
            from core.data.download import _checksum_table, _load_cifar10, _load_mnist_like

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
