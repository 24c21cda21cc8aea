"""The torchvision datasets (MNIST, Fashion-MNIST, KMNIST, CIFAR-10): checksum tables,
downloads checked against their md5 before they are renamed into place, Debian's
Fashion-MNIST package, and the loaders that check shape and labels against the registry."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import pickle
import shutil
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.data.availability import (
    _clear_failure,
    _record_failure,
    cifar10_fix,
    mnist_like_fix,
)
from core.data.idx import _gunzip, _idx_dims
from core.data.registry import (
    _IDX_FILES,
    _SPECS,
    DOWNLOAD_TIMEOUT_S,
    FMNIST_SYSTEM_DIR,
    DatasetError,
    ImageData,
    _reason,
    _show,
    _torchvision_class,
    data_dir_fix,
)
from core.store import atomic

log = logging.getLogger("core.data")

_USER_AGENT = "latent-lab"


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


class _Mismatch(Exception):
    """A server delivered a file with another md5; the message says so."""


def _download(file_name: str, dest_dir: Path, bases: list[str], md5: str) -> Path:
    """Fetch ``file_name`` from the first base URL that serves it with the right md5.

    The file is written beside its destination (``core.store.atomic``) and renamed into
    place only once its md5 matches, so a partial or wrong file is never left where a
    loader would trust it.

    Raises:
        DatasetError: a server delivered the file with another md5.
        _Unreachable: no server could be reached or none had the file.
    """
    _make_dir(dest_dir)
    dest = dest_dir / file_name
    failures: list[str] = []
    mismatch: str | None = None
    for base in bases:
        url = base.rstrip("/") + "/" + file_name
        log.info("downloading %s", url)
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})

        def fetch(tmp: Path, request=request, url=url) -> None:
            with (
                urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response,
                open(tmp, "wb") as fh,
            ):
                shutil.copyfileobj(response, fh, 1 << 20)
            got = _md5(tmp)
            if got != md5:  # the temp file is removed, never renamed into place
                raise _Mismatch(
                    f"Checksum mismatch for {file_name} from {url}: expected md5 {md5}, "
                    f"got {got}; use a mirror that serves the official file or pass its md5 "
                    f"in checksums."
                )

        try:
            atomic.write_with(dest, fetch)
            return dest
        except _Mismatch as exc:
            mismatch = str(exc)
        except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError, timeouts
            failures.append(f"{url}: {_reason(exc)}")
    if mismatch is not None:
        raise DatasetError(mismatch)
    raise _Unreachable("; ".join(failures))


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(
            f"Cannot create {_show(path)} ({_reason(exc)}): {data_dir_fix()} a folder you can "
            f"write to."
        ) from exc


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
    return DatasetError(
        f"{_SPECS[kind].title} is not in {_show(raw)} and could not be downloaded ({reason}): "
        f"{mnist_like_fix(kind)}."
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
                _record_failure(raw.parent.parent, kind, str(exc))
                raise _missing_mnist_like(kind, raw, str(exc)) from None
        _gunzip(archive, dest)
    _clear_failure(raw.parent.parent, kind)


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
                    _clear_failure(root, "cifar10")
                except _Unreachable as exc:
                    reason = str(exc)
                    _record_failure(root, "cifar10", reason)
            if reason:
                raise DatasetError(
                    f"CIFAR-10 is not in {_show(folder)} and could not be downloaded "
                    f"({reason}): {cifar10_fix(root)}."
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
