"""Hostile IDX files (``idx:<folder>`` datasets and the MNIST-family raw files): gzip bombs,
lying headers, truncated and damaged files, wrong magic numbers and types. Each case is
refused with one ``DatasetError`` sentence after reading at most the announced bytes (a
bomb after its header), and leaves no decompressed file behind."""

from __future__ import annotations

import gzip
import re
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from core import data
from core.data import DatasetError

GIB = 1 << 30
IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


# ----------------------------------------------------------------------------- helpers
def one_sentence(msg: str) -> None:
    assert "\n" not in msg and "Traceback" not in msg and len(msg) < 600, msg
    assert not re.search(r"[.!?]\s+[A-Z]", msg), f"more than one sentence: {msg}"
    assert msg.rstrip().endswith("."), msg


def header(magic: int, *dims: int, dtype: int = 0x08) -> bytes:
    ndim = magic & 0xFF
    return bytes([0, 0, dtype, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)


def idx_bytes(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return header(2051 if array.ndim == 3 else 2049, *array.shape) + array.tobytes()


def zeros_gzip(path: Path, head: bytes, payload: int) -> None:
    """A real gzip file inflating to ``head`` + ``payload`` zero bytes, written streaming as
    concatenated gzip members (1 MiB of zeros compresses to ~1 KB): a 1 GiB bomb is ~1 MB
    on disk and takes milliseconds to write."""
    chunk = gzip.compress(b"\0" * (1 << 20), compresslevel=9)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(head))
        for _ in range(payload >> 20):
            fh.write(chunk)
        fh.write(gzip.compress(b"\0" * (payload & ((1 << 20) - 1))))


def good_folder(folder: Path, n=20, shape=(6, 5)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for images, labels, m in ((IMAGES, LABELS, n), (TEST_IMAGES, TEST_LABELS, n // 2)):
        (folder / images).write_bytes(idx_bytes(rng.integers(0, 256, (m, *shape))))
        (folder / labels).write_bytes(idx_bytes(rng.integers(0, 4, m)))
    return folder


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv("LATENTLAB_MAX_IDX_BYTES", raising=False)
    monkeypatch.delenv("LATENTLAB_MIRROR", raising=False)
    data.clear_cache()
    yield
    data.clear_cache()


def refused(fn, fragment: str, max_seconds: float = 5.0, max_mb: float = 64.0) -> str:
    """``fn()`` must raise DatasetError with ``fragment`` in one sentence, quickly and
    without allocating more than ``max_mb`` (a bomb is never inflated)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(DatasetError) as err:
            fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    seconds = time.perf_counter() - t0
    msg = str(err.value)
    one_sentence(msg)
    assert fragment in msg, msg
    assert seconds < max_seconds, f"took {seconds:.1f} s"
    assert peak < max_mb * 1e6, f"allocated {peak / 1e6:.0f} MB"
    return msg


def in_folder(folder: Path, split: str = "train"):
    return lambda: data.load(f"idx:{folder}", split)


def info_of(folder: Path):
    return lambda: data.dataset_info(f"idx:{folder}")


# ----------------------------------------------------------------------------- bombs
def _bomb_images(folder: Path) -> str:
    (folder / IMAGES).unlink()
    zeros_gzip(folder / f"{IMAGES}.gz", header(2051, 1024, 1024, 1024), GIB)
    return "decompression bomb"


def _bomb_over_cap(folder: Path) -> str:
    (folder / IMAGES).unlink()
    zeros_gzip(folder / f"{IMAGES}.gz", header(2051, 4096, 1024, 1024), 1 << 20)  # lies too
    return "limit for one IDX file"


def _bomb_labels(folder: Path) -> str:
    (folder / LABELS).unlink()
    zeros_gzip(folder / f"{LABELS}.gz", header(2049, GIB), GIB)
    return "decompression bomb"


def _lying_header(folder: Path) -> str:
    """Announces 20 images of 6x5 but inflates to 1 GiB: read stops after 601 bytes."""
    (folder / IMAGES).unlink()
    zeros_gzip(folder / f"{IMAGES}.gz", header(2051, 20, 6, 5), GIB)
    return "holds more bytes of data"


def _huge_dims(folder: Path) -> str:
    (folder / IMAGES).write_bytes(header(2051, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF))
    return "limit for one IDX file"


def _small_cap(folder: Path, monkeypatch) -> str:
    monkeypatch.setenv("LATENTLAB_MAX_IDX_BYTES", "100")
    return "100-byte limit"


def _bad_cap(folder: Path, monkeypatch) -> str:
    monkeypatch.setenv("LATENTLAB_MAX_IDX_BYTES", "lots")
    return "LATENTLAB_MAX_IDX_BYTES"


# ----------------------------------------------------------------------------- damaged files
def _truncated_plain(folder: Path) -> str:
    path = folder / IMAGES
    path.write_bytes(path.read_bytes()[:-7])
    return "header announces"


def _trailing_plain(folder: Path) -> str:
    path = folder / IMAGES
    path.write_bytes(path.read_bytes() + b"extra")
    return "header announces"


def _truncated_gzip(folder: Path) -> str:
    blob = gzip.compress((folder / IMAGES).read_bytes())
    (folder / IMAGES).unlink()
    (folder / f"{IMAGES}.gz").write_bytes(blob[: len(blob) // 2])
    return "Could not read"


def _bad_crc(folder: Path) -> str:
    blob = bytearray(gzip.compress((folder / IMAGES).read_bytes()))
    blob[-8] ^= 0xFF  # the CRC32 of the trailer
    (folder / IMAGES).unlink()
    (folder / f"{IMAGES}.gz").write_bytes(bytes(blob))
    return "Could not read"


def _not_gzip(folder: Path) -> str:
    (folder / f"{IMAGES}.gz").write_bytes((folder / IMAGES).read_bytes())
    (folder / IMAGES).unlink()
    return "Could not read"


def _empty(folder: Path) -> str:
    (folder / IMAGES).write_bytes(b"")
    return "ends before its IDX header"


def _short_header(folder: Path) -> str:
    (folder / IMAGES).write_bytes(header(2051, 20, 6, 5)[:9])
    return "ends inside its IDX header"


def _wrong_magic(folder: Path) -> str:
    (folder / IMAGES).write_bytes(b"PK\x03\x04" + bytes(100))
    return "not an IDX image file"


def _label_magic_for_images(folder: Path) -> str:
    (folder / IMAGES).write_bytes(idx_bytes(np.zeros(20, np.uint8)))
    return "not an IDX image file"


def _float_type(folder: Path) -> str:
    (folder / IMAGES).write_bytes(header(2051, 20, 6, 5, dtype=0x0D) + bytes(20 * 30 * 4))
    return "type 0x0d"


def _zero_width(folder: Path) -> str:
    (folder / IMAGES).write_bytes(header(2051, 20, 6, 0))
    (folder / TEST_IMAGES).write_bytes(header(2051, 10, 6, 0))
    return "images of 6x0 pixels"


def _no_train_images(folder: Path) -> str:
    (folder / IMAGES).write_bytes(header(2051, 0, 6, 5))
    (folder / LABELS).write_bytes(header(2049, 0))
    return "holds no images"


def _count_mismatch(folder: Path) -> str:
    (folder / LABELS).write_bytes(idx_bytes(np.zeros(19, np.uint8)))
    return "announces 20 images but"


def _shape_mismatch(folder: Path) -> str:
    (folder / TEST_IMAGES).write_bytes(idx_bytes(np.zeros((10, 5, 6), np.uint8)))
    return "test images are 5x6"


CASES = {
    "gzip bomb of 1 GiB images": _bomb_images,
    "bomb announcing more than the cap": _bomb_over_cap,
    "gzip bomb of 1 GiB labels": _bomb_labels,
    "small header, 1 GiB of data": _lying_header,
    "dimensions of 2^32-1": _huge_dims,
    "cap from the environment": _small_cap,
    "cap not a number": _bad_cap,
    "truncated plain file": _truncated_plain,
    "trailing data": _trailing_plain,
    "truncated gzip": _truncated_gzip,
    "gzip with a bad checksum": _bad_crc,
    ".gz that is not gzip": _not_gzip,
    "empty file": _empty,
    "header cut short": _short_header,
    "zip magic": _wrong_magic,
    "label file as images": _label_magic_for_images,
    "float data": _float_type,
    "images 0 pixels wide": _zero_width,
    "no training images": _no_train_images,
    "fewer labels than images": _count_mismatch,
    "test images of another shape": _shape_mismatch,
}
LOADING_CATCHES = {  # cases that concern one split's files, found by load() as well
    "gzip bomb of 1 GiB images",
    "bomb announcing more than the cap",
    "gzip bomb of 1 GiB labels",
    "small header, 1 GiB of data",
    "dimensions of 2^32-1",
    "cap from the environment",
    "cap not a number",
    "truncated plain file",
    "trailing data",
    "truncated gzip",
    "gzip with a bad checksum",
    ".gz that is not gzip",
    "empty file",
    "header cut short",
    "zip magic",
    "label file as images",
    "float data",
}


def _apply(case: str, folder: Path, monkeypatch) -> str:
    fn = CASES[case]
    if fn in (_small_cap, _bad_cap):
        return fn(folder, monkeypatch)
    return fn(folder)


# Damage inside a gzipped image file's data shows only when the data is read (``load``; the
# command line loads the data before it creates a run folder): the metadata lookup reads
# the image headers alone.
FOUND_BY_LOADING_ONLY = {
    "small header, 1 GiB of data",
    "truncated gzip",
    "gzip with a bad checksum",
}


@pytest.mark.parametrize("case", [c for c in CASES if c not in FOUND_BY_LOADING_ONLY])
def test_dataset_info_refuses(case, tmp_path, monkeypatch):
    """The metadata lookup every run is validated with refuses without inflating."""
    folder = good_folder(tmp_path / "idx")
    fragment = _apply(case, folder, monkeypatch)
    refused(info_of(folder), fragment)


@pytest.mark.parametrize("case", sorted(LOADING_CATCHES))
def test_load_refuses(case, tmp_path, monkeypatch):
    """Loading the split refuses the same file, reading at most what its header announces."""
    folder = good_folder(tmp_path / "idx")
    fragment = _apply(case, folder, monkeypatch)
    refused(in_folder(folder), fragment)


# ----------------------------------------------------------------------------- raw MNIST files
def system_copy(folder: Path, break_file: str, blob: bytes | None = None) -> Path:
    """A fake Debian Fashion-MNIST folder (four .gz files) with one file replaced."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for stem, arr in (
        (IMAGES, rng.integers(0, 256, (12, 28, 28))),
        (LABELS, rng.integers(0, 10, 12)),
        (TEST_IMAGES, rng.integers(0, 256, (6, 28, 28))),
        (TEST_LABELS, rng.integers(0, 10, 6)),
    ):
        (folder / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    if blob is not None:
        (folder / f"{break_file}.gz").write_bytes(blob)
    return folder


def _raw_bomb(path: Path) -> tuple[bytes | None, str]:
    zeros_gzip(path, header(2051, 1024, 1024, 1024), GIB)
    return path.read_bytes(), "decompression bomb"


def _raw_lying(path: Path) -> tuple[bytes | None, str]:
    zeros_gzip(path, header(2051, 12, 28, 28), GIB)
    return path.read_bytes(), "more data than its IDX header"


def _raw_truncated(path: Path) -> tuple[bytes | None, str]:
    rng = np.random.default_rng(3)
    blob = gzip.compress(idx_bytes(rng.integers(0, 256, (12, 28, 28))))
    return blob[: len(blob) // 2], "Could not decompress"


def _raw_magic(path: Path) -> tuple[bytes | None, str]:
    return gzip.compress(idx_bytes(np.zeros(12, np.uint8))), "not an IDX image file"


RAW_CASES = {
    "system copy: gzip bomb": _raw_bomb,
    "system copy: 1 GiB behind a small header": _raw_lying,
    "system copy: truncated gzip": _raw_truncated,
    "system copy: label file as images": _raw_magic,
}


@pytest.mark.parametrize("case", list(RAW_CASES))
def test_system_copy_refuses_before_inflating(case, tmp_path, monkeypatch):
    """Debian's Fashion-MNIST files are decompressed into data/FashionMNIST/raw without an
    md5 check: the header comes first, and nothing is left behind."""
    blob, fragment = RAW_CASES[case](tmp_path / "scratch.gz")
    system = system_copy(tmp_path / "system", IMAGES, blob)
    monkeypatch.setenv("LATENTLAB_FMNIST_SYSTEM_DIR", str(system))
    data_dir = tmp_path / "data"
    refused(lambda: data.load("fashion-mnist", "train", data_dir, download=False), fragment)
    raw = data_dir / "FashionMNIST" / "raw"
    left = [p.name for p in raw.iterdir()] if raw.is_dir() else []
    assert IMAGES not in left and not [n for n in left if ".part" in n], left


def _raw_plain(raw: Path, blob: bytes) -> None:
    raw.mkdir(parents=True)
    rng = np.random.default_rng(4)
    for stem, arr in (
        (IMAGES, rng.integers(0, 256, (12, 28, 28))),
        (LABELS, rng.integers(0, 10, 12)),
        (TEST_IMAGES, rng.integers(0, 256, (6, 28, 28))),
        (TEST_LABELS, rng.integers(0, 10, 6)),
    ):
        (raw / stem).write_bytes(idx_bytes(arr))
    (raw / IMAGES).write_bytes(blob)


RAW_DISK = {
    "raw file announcing 4 GiB": (header(2051, 4096, 1024, 1024), "limit for one IDX file"),
    "raw file cut short": (header(2051, 12, 28, 28) + bytes(100), "header announces"),
    "raw file of another type": (
        header(2051, 12, 28, 28, dtype=0x0B) + bytes(12 * 784 * 2),
        "type 0x0b",
    ),  # fmt: skip
}


@pytest.mark.parametrize("blob, fragment", RAW_DISK.values(), ids=list(RAW_DISK))
def test_raw_files_are_checked_before_torchvision_reads_them(tmp_path, blob, fragment):
    _raw_plain(tmp_path / "MNIST" / "raw", blob)
    msg = refused(lambda: data.load("mnist", "train", tmp_path, download=False), fragment)
    assert msg.startswith("Could not read MNIST"), msg
