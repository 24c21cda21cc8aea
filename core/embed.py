"""Projections of a set of images to a few dimensions, scikit-learn style: PCA on pixels,
UMAP on pixels (umap-learn), and the model's own embedding (reduced to 2-D with PCA when
it has more dimensions). Results are cached as .npz files in a run's cache/ folder.

:func:`umap_2d` is the Embeddings page's fast 2-D UMAP: PCA to 50 dimensions, exact
neighbours by matrix products (no pynndescent, so none of its numba compilation), then
umap-learn from those neighbours, reporting each phase and optimisation epoch.
:func:`use_numba_cache` compiles umap-learn's hot numba functions with ``cache=True``
into a writable folder, so a fresh process loads them instead of compiling them again.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA

from core.store import atomic

METHODS = ("pca", "umap", "model")
Report = Callable[..., None]  # report(phase) or report(phase, k, total): a job's progress


def flatten(images: torch.Tensor) -> np.ndarray:
    return images.reshape(len(images), -1).float().numpy()


def fit_pca(x: np.ndarray, dim: int, seed: int = 0) -> PCA:
    return PCA(n_components=min(dim, x.shape[1], x.shape[0]), random_state=seed).fit(x)


def umap_project(x: np.ndarray, dim: int = 2, seed: int = 0, n_neighbors: int = 15):
    """UMAP of the rows of x with umap-learn's defaults (its own neighbour search on x;
    the first call in a process also pays for numba compilation)."""
    import umap  # heavy import: only when asked

    reducer = umap.UMAP(n_components=dim, n_neighbors=n_neighbors, random_state=seed)
    return reducer.fit_transform(x).astype(np.float32)


def umap_fit_transform(
    train_x: np.ndarray,
    test_x: np.ndarray,
    dim: int,
    seed: int = 0,
    n_neighbors: int = 15,
    report: Report | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """UMAP to ``dim`` components fitted on ``train_x`` (umap-learn's defaults: its own
    neighbour search on the rows as given) and applied to ``test_x`` (``transform``).

    ``report`` hears ``report("fit")``, ``report("fit-epochs", k, total)``,
    ``report("transform")`` and ``report("transform-epochs", k, total)``.

    Returns:
        (train embedding, test embedding), float32.
    """
    import umap  # heavy import: only when asked

    report = report or (lambda *a: None)
    stage = ["fit-epochs"]
    reducer = umap.UMAP(n_components=dim, n_neighbors=n_neighbors, random_state=seed,
                        tqdm_kwds=epoch_reporter(lambda k, n: report(stage[0], k, n)))  # fmt: skip
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        report("fit")
        tr = reducer.fit_transform(train_x).astype(np.float32)
        report("transform")
        stage[0] = "transform-epochs"
        return tr, reducer.transform(test_x).astype(np.float32)


# ----------------------------------------------------------------------------- fast 2-D UMAP
PCA_DIMS = 50  # the 2-D UMAP is fitted on this many principal components of the pixels


class _EpochSink:
    """A file for tqdm: umap-learn draws its epoch bar ("k/total", our ``bar_format``)
    into it, and each drawing becomes ``on_epoch(k, total)``."""

    def __init__(self, on_epoch):
        self.on_epoch = on_epoch

    def write(self, text: str) -> None:
        found = re.findall(r"(\d+)/(\d+)", text)
        if found:
            self.on_epoch(*map(int, found[-1]))

    def flush(self) -> None:
        pass


def epoch_reporter(on_epoch) -> dict | None:
    """umap-learn's ``tqdm_kwds`` that call ``on_epoch(k, total)`` as the optimisation
    runs (at most 5 times a second, and at its first and last epoch), or None."""
    if on_epoch is None:
        return None
    return {"disable": False, "file": _EpochSink(on_epoch), "bar_format": "{n}/{total}",
            "mininterval": 0.2, "ascii": True}  # fmt: skip


def exact_neighbours(x: np.ndarray, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of every row of ``x``, itself first (Euclidean, exact, by
    matrix products in chunks of ``chunk`` rows).

    Returns:
        (indices (n, k) int64, distances (n, k) float32), nearest first.
    """
    x = np.asarray(x, np.float64)
    k = min(k, len(x))
    sq = (x * x).sum(1)
    idx = np.empty((len(x), k), np.int64)
    dist = np.empty((len(x), k), np.float32)
    for s in range(0, len(x), chunk):
        d2 = sq[s : s + chunk, None] + sq[None, :] - 2.0 * (x[s : s + chunk] @ x.T)
        rows = np.arange(len(d2))
        d2[rows, s + rows] = -1.0  # itself first, whatever the rounding
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        dd = np.take_along_axis(d2, part, 1)
        order = np.argsort(dd, axis=1, kind="stable")
        idx[s : s + chunk] = np.take_along_axis(part, order, 1)
        dist[s : s + chunk] = np.sqrt(np.maximum(np.take_along_axis(dd, order, 1), 0.0))
    return idx, dist


def umap_2d(
    x: np.ndarray, seed: int = 0, n_neighbors: int = 15, report: Report | None = None
) -> np.ndarray:
    """The page's 2-D UMAP of the rows of ``x``: PCA to :data:`PCA_DIMS` components (when
    ``x`` has more), the exact ``n_neighbors`` nearest neighbours there, then umap-learn
    (2 components, its defaults otherwise) from those neighbours.

    ``report`` hears each phase as it starts: ``report("pca")``, ``report("neighbours")``,
    ``report("graph")`` (umap-learn's fuzzy graph and spectral start), then
    ``report("epochs", k, total)`` for the optimisation epochs.
    """
    import umap  # heavy import: only when asked

    report = report or (lambda *a: None)
    report("pca")
    x = np.asarray(x, np.float32)
    if x.shape[1] > PCA_DIMS and len(x) > PCA_DIMS:
        x = fit_pca(x, PCA_DIMS, seed).transform(x).astype(np.float32)
    report("neighbours")
    knn = exact_neighbours(x, n_neighbors)
    report("graph")
    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(x) - 1),
                        random_state=seed, precomputed_knn=knn,
                        tqdm_kwds=epoch_reporter(lambda k, n: report("epochs", k, n)))  # fmt: skip
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*precomputed_knn.*")  # no transform needed
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        return reducer.fit_transform(x).astype(np.float32)


# ----------------------------------------------------------------------------- numba's cache
def numba_cache_dir() -> Path:
    """Where compiled numba functions are kept: ``$NUMBA_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/latentlab/numba`` (``~/.cache/latentlab/numba``)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "latentlab" / "numba"


@torch.no_grad()
def model_embedding(
    model, images: torch.Tensor, labels: torch.Tensor | None = None, batch: int = 2048
) -> np.ndarray:
    """The model's embedding of every image, (N, embed_dim), on the CPU."""
    model.eval()
    dev = model.device
    out = []
    for i in range(0, len(images), batch):
        x = images[i : i + batch].to(dev)
        y = labels[i : i + batch].to(dev) if model.conditional else None
        out.append(model.embed(x, y).float().cpu())
    return torch.cat(out).numpy()


def to_2d(emb: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D view of an embedding: itself when 2-D, else its top two principal components."""
    if emb.shape[1] == 2:
        return emb.astype(np.float32), "as is (2-D latent)"
    if emb.shape[1] == 1:
        return np.c_[emb, np.zeros(len(emb))].astype(np.float32), "1-D latent, y = 0"
    return fit_pca(emb, 2, seed).transform(emb).astype(np.float32), "PCA to 2-D"


def cached(cache_dir: Path | None, key: str, compute) -> dict:
    """Load ``<cache_dir>/<key>.npz`` or compute a dict of arrays, time it, and store it
    (a cache file that cannot be read is computed again)."""
    if cache_dir is not None:
        path = Path(cache_dir) / f"{key}.npz"
        if path.exists():
            bad = (OSError, ValueError, EOFError, KeyError)
            with contextlib.suppress(*bad), np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
    t0 = time.perf_counter()
    result = dict(compute())
    result.setdefault("seconds", np.array(time.perf_counter() - t0))
    if cache_dir is not None:  # best effort: a full or read-only disk only costs a recompute
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_with(path, lambda tmp: _savez(tmp, result))
    return result


def _savez(tmp: Path, arrays: dict) -> None:
    with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
        np.savez(f, **arrays)


# umap-learn's numba functions that the views compile in every fresh process (umap-learn
# declares them without ``cache=True``): (module, attribute)
_UNCACHED = (
    ("umap.umap_", "smooth_knn_dist"),
    ("umap.umap_", "compute_membership_strengths"),
    ("umap.layouts", "_nb_optimize_layout_euclidean_single_epoch"),
    ("umap.umap_", "fast_knn_indices"),  # the KNN score's UMAP below 4,096 training images
    ("umap.umap_", "submatrix"),
)


def use_numba_cache(folder: Path | None = None) -> bool:
    """Swap umap-learn's uncached hot numba functions for the same functions compiled with
    ``cache=True`` into ``folder`` (default :func:`numba_cache_dir`), so only the first
    process on a machine compiles them. Best effort: returns False (and changes nothing)
    when the folder cannot be written or umap-learn's layout is not the one known here."""
    import importlib

    import numba
    from numba.core.registry import CPUDispatcher

    folder = Path(folder or numba_cache_dir())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            return False
        found = []
        for module, name in _UNCACHED:
            mod = importlib.import_module(module)
            disp = getattr(mod, name, None)
            if not isinstance(disp, CPUDispatcher) or disp._cache.__class__.__name__ != "NullCache":
                return isinstance(disp, CPUDispatcher)  # already swapped, or unknown layout
            found.append((mod, name, disp))
    except (OSError, ImportError):
        return False
    old = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(folder)  # read as each cached dispatcher is made
    try:
        for mod, name, disp in found:
            opts = {k: v for k, v in disp.targetoptions.items() if k != "nopython"}
            setattr(mod, name, numba.njit(disp.py_func, cache=True, locals=disp.locals, **opts))
    finally:
        numba.config.CACHE_DIR = old
    return True
