"""Projections of a set of images to a few dimensions, scikit-learn style: PCA on pixels,
UMAP on pixels (umap-learn), and the model's own embedding (reduced to 2-D with PCA when
it has more dimensions). Results are cached as .npz files in a run's cache/ folder.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA

from core.store import atomic

METHODS = ("pca", "umap", "model")


def flatten(images: torch.Tensor) -> np.ndarray:
    return images.reshape(len(images), -1).float().numpy()


def fit_pca(x: np.ndarray, dim: int, seed: int = 0) -> PCA:
    return PCA(n_components=min(dim, x.shape[1], x.shape[0]), random_state=seed).fit(x)


def umap_project(x: np.ndarray, dim: int = 2, seed: int = 0, n_neighbors: int = 15):
    """UMAP of the rows of x (first call in a process also pays for numba compilation)."""
    import umap  # heavy import: only when asked

    reducer = umap.UMAP(n_components=dim, n_neighbors=n_neighbors, random_state=seed)
    return reducer.fit_transform(x).astype(np.float32)


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
