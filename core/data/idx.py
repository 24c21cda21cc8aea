"""IDX files (the MNIST format): the header checked first (magic number, dimensions, the
size cap, the gzip ratio), then exactly the announced bytes read, so a lying or bomb-like
file is refused before anything is inflated; and the ``idx:<folder>`` loader."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.data.registry import (
    _IDX_FILES,
    IDX_MAX_BYTES,
    SPLITS,
    DatasetError,
    ImageData,
    _reason,
    _show,
    data_dir_fix,
)
from core.store import atomic


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


def idx_split_files(folder: Path, split: str) -> tuple[Path, Path]:
    """(images, labels) files of a split in an IDX folder; DatasetError when one is missing."""
    paths = []
    for stem in _IDX_FILES[split]:
        path = _idx_path(folder, stem)
        if path is None:
            raise _idx_missing_error(folder, stem)
        paths.append(path)
    return paths[0], paths[1]


def _load_idx(name: str, folder: Path, split: str) -> ImageData:
    image_path, label_path = idx_split_files(folder, split)
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


def _gunzip(src: Path, dest: Path) -> None:
    """Decompress the IDX file ``src`` (or copy it if not gzipped) to ``dest`` atomically.

    Its IDX header is read and checked first (magic number, dimensions, the size cap of
    :func:`idx_max_bytes`), and then exactly the announced number of bytes is inflated, so
    a small archive that inflates to gigabytes is refused before it is written out."""
    magic = 2049 if "labels" in dest.name else 2051

    def inflate(tmp: Path) -> None:
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
        if left or extra:  # the temp file is removed, never renamed into place
            raise DatasetError(
                f"{_show(src)} holds {'less' if left else 'more'} data than its IDX header "
                f"announces ({'x'.join(map(str, dims))} bytes): replace {src.name} with an "
                f"intact copy (or delete it so it is downloaded again)."
            )

    try:
        atomic.write_with(dest, inflate)
    except _IDX_READ_ERRORS as exc:
        raise DatasetError(
            f"Could not decompress {_show(src)} to {_show(dest)} ({_reason(exc)}): replace "
            f"{src.name} with an intact copy (or delete it so it is downloaded again), or "
            f"{data_dir_fix()} a folder you can write to."
        ) from exc
