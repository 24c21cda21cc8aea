"""Whether a dataset can be trained on from here, found before a run is created.

``availability`` looks only at files (no network, no torch): the dataset is *ready* (bundled,
on disk, or in Debian's Fashion-MNIST package), will be *downloaded* when a run starts (from
which mirror, about how many megabytes), or its last download *failed* (the loaders record
why in ``<data dir>/.download-failed-<name>.json``). ``check_download`` then opens one TCP
connection per mirror (a few seconds at most) so that the Train page refuses, in one
sentence, a run whose download cannot even start, instead of creating a run that fails.

``resolve_idx_folder`` is the one check of an ``idx:<folder>`` typed into the app: the
folder must lie inside the data folder or a folder listed in ``$LATENTLAB_IDX_DIRS``
(links are followed first, so a link cannot lead out of them).

Messages say how to fix things for where they are read (``in_app``): the command line has
``--data-dir``; so does the app after a ``--`` (``streamlit run app/main.py -- --data-dir D``,
which sets ``$LATENTLAB_DATA_DIR`` for the trainers it starts).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from core.data.registry import (
    _IDX_FILES,
    _SPECS,
    FMNIST_SYSTEM_DIR,
    IDX_PREFIX,
    DatasetError,
    _parse_name,
    _reason,
    _show,
    data_dir_fix,
    default_data_dir,
    in_app,
)
from core.store import schema

PROBE_TIMEOUT_S = 3.0
"""Seconds ``check_download`` waits for a mirror to accept a connection."""

IDX_DIRS_ENV = "LATENTLAB_IDX_DIRS"
"""Folders (separated by ``os.pathsep``) the app may read ``idx:`` folders from, besides the
data folder."""

MAX_FOLDER_TEXT = 1000  # characters of a typed folder name
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"  # torchvision's CIFAR10.filename
_CIFAR_FOLDER = "cifar-10-batches-py"  # ... base_folder, and its members:
_CIFAR_MEMBERS = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


# ----------------------------------------------------------------------------- messages
def digits_hint(app: bool | None = None) -> str:
    """In the app, the dataset that always works ("" on the command line)."""
    return " (or train on digits, which needs no download)" if in_app(app) else ""


def mnist_like_fix(kind: str, app: bool | None = None) -> str:
    """What to do when an MNIST-family dataset is neither on disk nor downloadable."""
    fix = "put the four IDX files in that folder"
    if kind == "fashion-mnist":
        fix = f"install Debian's dataset-fashion-mnist package, {fix}"
    return (
        f"{fix}, set LATENTLAB_MIRROR to a reachable mirror, or {data_dir_fix(app)} a folder "
        f"that has them{digits_hint(app)}"
    )


def cifar10_fix(root: Path, app: bool | None = None) -> str:
    """What to do when CIFAR-10 is neither on disk nor downloadable."""
    return (
        f"put {_CIFAR_ARCHIVE} (or its extracted {_CIFAR_FOLDER} folder) in {_show(root)}, set "
        f"LATENTLAB_MIRROR to a reachable mirror, or {data_dir_fix(app)} a folder that has "
        f"it{digits_hint(app)}"
    )


# ----------------------------------------------------------------------------- failed downloads
def failure_marker(root: Path, kind: str) -> Path:
    """The file in the data folder that records why the last download of ``kind`` failed."""
    return Path(root) / f".download-failed-{kind}.json"


def _record_failure(root: Path, kind: str, reason: str) -> None:
    from core.store import atomic

    with contextlib.suppress(OSError, ValueError):  # a read-only data folder: nothing kept
        atomic.write_json(failure_marker(root, kind), {"reason": reason[:2000], "at": time.time()})


def _clear_failure(root: Path, kind: str) -> None:
    with contextlib.suppress(OSError):
        failure_marker(root, kind).unlink(missing_ok=True)


def last_failure(root: Path, kind: str) -> str | None:
    """Why the last download of ``kind`` into ``root`` failed, or None (none recorded)."""
    try:
        record = schema.read_json(failure_marker(root, kind), 8192)
    except schema.Damaged:  # missing, unreadable, too large or not JSON
        return None
    reason = record.get("reason") if isinstance(record, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        return None
    text = " ".join(reason.split()).rstrip(".")
    return text if len(text) <= 300 else text[:299] + "…"


# ----------------------------------------------------------------------------- availability
@dataclass(frozen=True)
class Availability:
    """Where a dataset's files are, found without the network.

    Attributes:
        name: the dataset name as given.
        state: ``"ready"`` (nothing to fetch), ``"download"`` (fetched when a run starts)
            or ``"failed"`` (not on disk, and its last download failed).
        note: one sentence for the Train form ("" when ready).
        sources: the base URLs a download would use.
        folder: where the files go (None for bundled data and idx folders).
    """

    name: str
    state: str
    note: str = ""
    sources: tuple[str, ...] = ()
    folder: Path | None = None


def _mirrors(kind: str) -> list[str]:
    """The base URLs ``core.data.load`` downloads ``kind`` from."""
    base = os.environ.get("LATENTLAB_MIRROR") or None
    if base is not None:
        return [base.replace("{name}", kind)]
    from core.data.registry import _torchvision_class  # torchvision: only when needed

    cls = _torchvision_class(kind)
    if kind == "cifar10":
        return [cls.url.rsplit("/", 1)[0] + "/"]
    return list(cls.mirrors)


def _fmnist_system_ready() -> bool:
    system = Path(os.environ.get("LATENTLAB_FMNIST_SYSTEM_DIR") or FMNIST_SYSTEM_DIR)
    stems = [s for split in _IDX_FILES.values() for s in split]
    return all((system / s).is_file() or (system / f"{s}.gz").is_file() for s in stems)


def availability(
    name: str, data_dir: str | Path | None = None, *, app: bool | None = None
) -> Availability:
    """Whether ``name`` can be trained on without a download (files only, no network).

    Raises:
        DatasetError: an unknown name.
    """
    kind, _ = _parse_name(name)
    if kind in ("digits", "idx"):  # bundled; an idx folder is checked by dataset_info
        return Availability(name, "ready")
    spec = _SPECS[kind]
    root = Path(data_dir if data_dir is not None else default_data_dir()).expanduser()
    if kind == "cifar10":
        folder = root / _CIFAR_FOLDER
        ready = (root / _CIFAR_ARCHIVE).is_file() or all(
            (folder / m).is_file() for m in _CIFAR_MEMBERS
        )
    else:
        folder = root / str(spec.torchvision_class) / "raw"
        stems = [s for split in _IDX_FILES.values() for s in split]
        ready = all((folder / s).is_file() or (folder / f"{s}.gz").is_file() for s in stems)
        ready = ready or (kind == "fashion-mnist" and _fmnist_system_ready())
    if ready:
        return Availability(name, "ready", folder=folder)
    sources = tuple(_mirrors(kind))
    failed = last_failure(root, kind)
    fix = cifar10_fix(root, app) if kind == "cifar10" else mnist_like_fix(kind, app)
    if failed:
        note = (
            f"{spec.title} is not in {_show(folder)} and its last download failed ({failed}): "
            f"{fix}."
        )
        return Availability(name, "failed", note, sources, folder)
    note = (
        f"{spec.title} is not downloaded yet: about {spec.download_mb} MB will be downloaded "
        f"from {sources[0]} into {_show(folder)} when you start."
    )
    return Availability(name, "download", note, sources, folder)


def _probe(url: str, timeout: float) -> str | None:
    """Why nothing answers at ``url``'s host (one TCP connection, through the proxy urllib
    would use), or None when something does or it cannot be told cheaply."""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "file":
            return (
                None
                if Path(urllib.request.url2pathname(parts.path)).is_dir()
                else (f"{url}: no such folder")
            )
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None  # another scheme: the download itself will say
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        proxy = urllib.request.getproxies().get(parts.scheme)
        if proxy and not urllib.request.proxy_bypass(host):
            pp = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            host, port = pp.hostname or host, pp.port or 80
    except ValueError as exc:  # a malformed port or URL
        return f"{url}: {_reason(exc)}"
    result: list[str | None] = ["no answer"]

    def connect() -> None:  # in a thread: a name lookup ignores socket timeouts
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result[0] = None
        except OSError as exc:
            result[0] = _reason(exc)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if worker.is_alive():
        return f"{host}:{port}: no answer within {timeout:g} s"
    return None if result[0] is None else f"{host}:{port}: {result[0]}"


def check_download(
    name: str,
    data_dir: str | Path | None = None,
    *,
    timeout: float = PROBE_TIMEOUT_S,
    app: bool | None = None,
) -> Availability:
    """``availability``, and for a dataset still to download, one connection to each mirror:
    a run is refused when none answers.

    Raises:
        DatasetError: no mirror answers (one sentence: why, and what to do).
    """
    avail = availability(name, data_dir, app=app)
    if avail.state == "ready":
        return avail
    reasons = []
    for url in avail.sources:
        why = _probe(url, timeout)
        if why is None:
            return avail
        reasons.append(why)
    kind, _ = _parse_name(name)
    root = Path(data_dir if data_dir is not None else default_data_dir()).expanduser()
    fix = cifar10_fix(root, app) if kind == "cifar10" else mnist_like_fix(kind, app)
    raise DatasetError(
        f"{_SPECS[kind].title} is not in {_show(avail.folder or root)} and cannot be downloaded "
        f"from here ({'; '.join(reasons)}): {fix}."
    )


# ----------------------------------------------------------------------------- idx folders
def idx_roots() -> list[Path]:
    """The folders the app may read ``idx:`` folders from: the data folder, then each folder
    of ``$LATENTLAB_IDX_DIRS`` (links resolved)."""
    extra = [p for p in os.environ.get(IDX_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    out = []
    for p in [default_data_dir(), *map(Path, extra)]:
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            out.append(p.expanduser().resolve())
    return out


def idx_roots_text() -> str:
    """The allowed folders, as the form's messages name them."""
    roots = idx_roots()
    first = f"{_show(roots[0])}/ (the data folder)" if roots else "the data folder"
    more = [f"{_show(r)}/" for r in roots[1:]]
    return first + (f" or {', '.join(more)} ({IDX_DIRS_ENV})" if more else "")


def resolve_idx_folder(text: object) -> Path:
    """The folder a user typed for an ``idx:`` dataset, checked: a plain path, relative to
    the data folder unless absolute, that is (after following links) a folder inside one of
    ``idx_roots()``. Returns the resolved folder.

    Raises:
        DatasetError: one sentence saying what is wrong and what to type instead.
    """
    where = idx_roots_text()
    if not isinstance(text, str) or not text.strip():
        raise DatasetError(f"Type the folder that holds the IDX files: a folder under {where}.")
    text = text.strip().removeprefix(IDX_PREFIX)
    if len(text) > MAX_FOLDER_TEXT or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise DatasetError(
            f"That folder name is over {MAX_FOLDER_TEXT:,} characters or holds control "
            f"characters: type a plain folder path under {where}."
        )
    shown = repr(text) if len(text) <= 80 else repr(text[:79] + "…")
    roots = idx_roots()
    path = Path(text)
    if not path.is_absolute() and roots:
        path = roots[0] / path
    try:
        real = path.resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, an unreadable folder
        raise DatasetError(
            f"The folder {shown} cannot be followed (a loop of links?): type a plain folder "
            f"under {where}."
        ) from None
    if not any(real == r or real.is_relative_to(r) for r in roots):
        raise DatasetError(
            f"The folder {shown} is not inside {where}, the only folders this server reads IDX "
            f"files from: copy the files into a folder there, or ask the server's admin to add "
            f"its folder to {IDX_DIRS_ENV}."
        )
    if not real.is_dir():
        raise DatasetError(
            f"There is no folder {shown} under {where}: create it and put the four IDX files "
            f"in it, or check the spelling."
        )
    return real
