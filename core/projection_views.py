"""The Embeddings page's views of a run's test sample: the sample itself, the PCA, UMAP
and model views with their KNN scores, their cache files, the thumbnail sheet and the
read-outs (KNN table, neighbours, CSV). ``core.projections`` (which re-exports all of this)
says what is measured and runs the background worker that fills the cache.

UMAP's view comes in two parts: its 2-D chart (``proj2d-umap-n<n>-s<seed>.npz``, made by
:func:`umap_2d_view` in seconds) and the full view with its KNN score (``proj-umap-...``,
the slow part). :func:`load_view` returns the 2-D part alone (``knn`` and ``emb`` None)
until the full view lands.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core import data as datalib
from core import embed
from core.embed import cached, fit_pca, flatten, model_embedding, to_2d
from core.images import jpeg_bytes, png_bytes
from core.metrics import KNN_K, KNN_TRAIN, knn_accuracy, knn_reference
from core.runs import Run, load_model
from core.store import atomic

DEFAULT_N = 5000
VIEWS = ("pca", "umap", "model")
TITLES = {"pca": "PCA (pixels)", "umap": "UMAP (pixels)", "model": "Model embedding"}
UMAP_MAX_DIM = 32  # UMAP to more components is slow and no longer a fair, common practice
UMAP_NEIGHBOURS = 15
SNAKERS4_FMNIST = {"model": 0.80, "umap": 0.80, "pca": 0.77}  # KNN accuracy, VAE row for model
UMAP_2D_HOW = (f"UMAP to 2-D ({UMAP_NEIGHBOURS} exact neighbours on a PCA-{embed.PCA_DIMS} "
               "reduction of the pixels), fitted on the sample")  # fmt: skip


@dataclass
class View:
    """One projection of the sample.

    Attributes:
        name: "pca", "umap" or "model".
        xy: (n, 2) the 2-D view of the sample.
        emb: (n, dim) the full-dimensional embedding of the sample that KNN scores; None
            while only the 2-D view exists (UMAP's, before its KNN scoring).
        knn: KNN accuracy of ``emb`` (protocol in the module docstring), or None.
        dim: dimensions of ``emb``.
        how: how the 2-D view was made, in words.
        seconds_2d: time to make the 2-D view.
        seconds_full: time to make the full-dimensional embedding and score it.
        index: (n,) test-split index of each row.
        train_n: training images the KNN classifier was fitted on.
    """

    name: str
    xy: np.ndarray
    emb: np.ndarray | None
    knn: float | None
    dim: int
    how: str
    seconds_2d: float
    seconds_full: float
    index: np.ndarray
    train_n: int = 0

    @property
    def title(self) -> str:
        return TITLES[self.name]

    @property
    def scored(self) -> bool:
        """Has the full-dimensional embedding and its KNN score (not the 2-D part alone)."""
        return self.emb is not None


# ----------------------------------------------------------------------------- the sample
def dataset_of(run: Run) -> tuple[str, str | None]:
    """(dataset name, data folder) a run was trained on."""
    t = run.config().get("train", {})
    return t.get("dataset", "digits"), t.get("data_dir")


def _offline_halves(run: Run) -> tuple[datalib.ImageData, datalib.ImageData] | None:
    """Without the dataset on disk or online: the bundled test sample split in two halves,
    (reference images the KNN, PCA and UMAP are fitted on, images shown and scored)."""
    name, _ = dataset_of(run)
    sample = datalib.bundled_sample(name)
    if sample is None:
        return None
    ref, shown = torch.arange(0, len(sample), 2), torch.arange(1, len(sample), 2)
    part = lambda i: datalib.ImageData(  # noqa: E731
        name, "test", sample.images[i].contiguous(), sample.labels[i], sample.class_names
    )
    return part(ref), part(shown)


def offline(run: Run) -> bool:
    """True when the run's dataset is unavailable and the bundled sample stands in: its
    even images then play the training images and its odd images the test sample."""
    name, data_dir = dataset_of(run)
    try:
        datalib.load(name, "train", data_dir)
        return False
    except datalib.DatasetError:
        if _offline_halves(run) is None:
            raise
        return True


def test_split(run: Run) -> datalib.ImageData:
    name, data_dir = dataset_of(run)
    if offline(run):
        return _offline_halves(run)[1]
    return datalib.load(name, "test", data_dir)


def sample_size(n: int | None, total: int) -> int:
    """The sample size actually used: ``n`` (default 5,000) capped at the split size."""
    n = DEFAULT_N if n is None else int(n)
    if n < 1:
        raise ValueError(f"The sample size must be at least 1 image, got {n}.")
    return min(n, total)


def sample_index(total: int, n: int, seed: int = 0) -> np.ndarray:
    """Sorted test-split indices of the sample: the first ``n`` of a seeded permutation
    (the same rule as ``ImageData.subset``)."""
    if n >= total:
        return np.arange(total)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=g)[:n].sort().values.numpy()


def knn_train_sample(run: Run) -> datalib.ImageData:
    """The training images the KNN classifier (and the full-dimensional PCA and UMAP) are
    fitted on: the first min(10,000, training split), as ``core.evaluate`` does."""
    name, data_dir = dataset_of(run)
    if offline(run):
        return _offline_halves(run)[0]
    return knn_reference(datalib.load(name, "train", data_dir))


def knn_train_size(run: Run) -> int:
    """How many training images :func:`knn_train_sample` holds."""
    return len(knn_train_sample(run))


def checkpoint_signature(run: Run) -> str:
    """A short hash of the checkpoint file's size and modification time."""
    st = run.checkpoint_path.stat()
    return hashlib.sha1(f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:8]


def cache_file(run: Run, name: str) -> Path:
    """Where a cached file of the run is: a copy shipped in ``<run>/cache/`` (read-only
    pretrained runs may carry their projections) or else the run's cache folder."""
    return next((p for p in run.cached(name) if p.exists()), run.cache_dir / name)


def cache_key(run: Run, view: str, n: int, seed: int, dim: int) -> str:
    key = f"proj-{view}-n{n}-s{seed}-d{dim}-first{KNN_TRAIN}"  # the KNN reference sample
    return f"{key}-{checkpoint_signature(run)}" if view == "model" else key


# ----------------------------------------------------------------------------- one view
def umap_2d_view(run: Run, n: int | None = None, seed: int = 0, report: embed.Report | None = None):
    """UMAP's 2-D chart of the sample (``core.embed.umap_2d``), from the cache or computed
    and cached; a View without ``emb`` and ``knn``. ``report`` hears its phases."""
    test = test_split(run)
    n = sample_size(n, len(test))
    idx = sample_index(len(test), n, seed)

    def compute() -> dict:
        t0 = time.perf_counter()
        xy = embed.umap_2d(flatten(test.images[idx]), seed, UMAP_NEIGHBOURS, report)
        return {"xy": xy, "how": np.array(UMAP_2D_HOW), "index": idx,
                "seconds_2d": np.array(time.perf_counter() - t0)}  # fmt: skip

    key = f"proj2d-umap-n{n}-s{seed}"
    d = cached(cache_file(run, f"{key}.npz").parent, key, compute)
    return View("umap", d["xy"], None, None, 2, str(d["how"]), float(d["seconds_2d"]), 0.0,
                d["index"])  # fmt: skip


def _compute(run: Run, view: str, idx: np.ndarray, seed: int, dim: int, model, report) -> dict:
    test = test_split(run)
    x, y = test.images[idx], test.labels[idx]
    train = knn_train_sample(run)
    t0 = time.perf_counter()
    if view == "pca":
        xy = fit_pca(flatten(x), 2, seed).transform(flatten(x)).astype(np.float32)
        how = "PCA to 2-D, fitted on the sample"
    elif view == "umap":
        part = umap_2d_view(run, len(idx), seed, report)
        xy, how, t0 = part.xy, part.how, time.perf_counter() - part.seconds_2d  # cached or not
    else:
        emb = model_embedding(model, x, y)
        xy, how = to_2d(emb, seed)
        how = f"model embedding, {how}"
    t1 = time.perf_counter()
    if view == "pca":
        pca = fit_pca(flatten(train.images), dim, seed)
        emb_tr, emb = pca.transform(flatten(train.images)), pca.transform(flatten(x))
    elif view == "umap":
        emb_tr, emb = embed.umap_fit_transform(flatten(train.images), flatten(x), dim, seed,
                                         UMAP_NEIGHBOURS, report)  # fmt: skip
    else:
        emb_tr = model_embedding(model, train.images, train.labels)
    knn = knn_accuracy(emb_tr, train.labels, emb, y)
    t2 = time.perf_counter()
    return {
        "xy": np.asarray(xy, np.float32),
        "emb": np.asarray(emb, np.float32),
        "knn": np.array(knn),
        "dim": np.array(emb.shape[1]),
        "how": np.array(how),
        "seconds_2d": np.array(t1 - t0),
        "seconds_full": np.array(t2 - t1),
        "index": idx,
        "train_n": np.array(len(train)),
    }


def _as_view(name: str, d: dict) -> View:
    return View(
        name=name,
        xy=d["xy"],
        emb=d["emb"],
        knn=float(d["knn"]),
        dim=int(d["dim"]),
        how=str(d["how"]),
        seconds_2d=float(d["seconds_2d"]),
        seconds_full=float(d["seconds_full"]),
        index=d["index"],
        train_n=int(d.get("train_n", 0)),
    )


def view_dim(view: str, embed_dim: int) -> int:
    """Dimensions the view is scored in: the model's embedding size (UMAP: at most 32)."""
    return min(embed_dim, UMAP_MAX_DIM) if view == "umap" else embed_dim


def load_view(run: Run, view: str, n: int, embed_dim: int, seed: int = 0) -> View | None:
    """The cached view, or None when it has not been computed (never computes). UMAP's
    2-D part alone (``emb`` and ``knn`` None) while its full view is not there yet."""
    n = sample_size(n, len(test_split(run)))
    path = cache_file(run, f"{cache_key(run, view, n, seed, view_dim(view, embed_dim))}.npz")
    part = cache_file(run, f"proj2d-umap-n{n}-s{seed}.npz")
    if not path.exists() and view == "umap" and part.exists():
        return umap_2d_view(run, n, seed)  # a cache hit
    if not path.exists():
        return None
    with np.load(path) as f:
        return _as_view(view, {k: f[k] for k in f.files})


def compute_view(
    run: Run,
    view: str,
    n: int | None = None,
    seed: int = 0,
    model=None,
    report: embed.Report | None = None,
) -> View:
    """One view of the run's test sample, from the cache or computed and cached.

    Args:
        view: "pca", "umap" or "model".
        n: sample size (default 5,000, capped at the test split).
        model: the run's model, when the caller already has it loaded.
        report: hears UMAP's phases and epochs (``core.embed``).
    """
    if view not in VIEWS:
        raise ValueError(f"Unknown view {view!r}: choose one of {', '.join(VIEWS)}.")
    if model is None:
        model, _ = load_model(run.checkpoint_path, "cpu")
    total = len(test_split(run))
    n = sample_size(n, total)
    dim = view_dim(view, model.latent_dim)
    idx = sample_index(total, n, seed)
    key = cache_key(run, view, n, seed, dim)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")  # umap + random_state
        folder = cache_file(run, f"{key}.npz").parent
        result = cached(folder, key, lambda: _compute(run, view, idx, seed, dim, model, report))
    if view == "model":  # drop views of older checkpoints of this run
        for old in run.cache_dir.glob(f"proj-model-n{n}-s{seed}-*.npz"):
            if old.stem != key:
                old.unlink(missing_ok=True)
    return _as_view(view, result)


# ----------------------------------------------------------------------------- thumbnails
SHEET_COLS = 100


def thumbnail_sheet(run: Run, n: int | None = None, seed: int = 0) -> tuple[bytes, str, dict]:
    """Every image of the sample on one sheet, ``SHEET_COLS`` per row in sample order, for
    hover thumbnails; cached as ``<run cache>/sheet-n<n>-s<seed>.png`` (or .jpg).

    Grey images are stored as 16-level PNG (about 1 MB for 5,000 Fashion-MNIST images,
    against 2 MB at 256 levels), colour images as JPEG (quality 88).

    Returns:
        (file bytes, MIME type, {"cols", "cell_w", "cell_h", "sheet_w", "sheet_h"}).
    """
    test = test_split(run)
    n = sample_size(n, len(test))
    _, c, h, w = test.images.shape
    cols = min(SHEET_COLS, n)
    rows = -(-n // cols)
    geometry = {"cols": cols, "cell_w": w, "cell_h": h, "sheet_w": cols * w, "sheet_h": rows * h}
    ext, mime = ("png", "image/png") if c == 1 else ("jpg", "image/jpeg")
    path = cache_file(run, f"sheet-n{n}-s{seed}.{ext}")
    if path.exists():
        return path.read_bytes(), mime, geometry
    x = test.images[sample_index(len(test), n, seed)].permute(0, 2, 3, 1).numpy()  # (n,H,W,C)
    grid = np.zeros((rows * cols, h, w, c), np.float32)
    grid[:n] = x
    grid = grid.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)
    if c == 1:
        levels = np.round(grid[..., 0].clip(0, 1) * 15) * 17  # 16 grey levels
        encoded = png_bytes(levels.astype(np.uint8))
    else:
        rgb = (grid.clip(0, 1) * 255).round().astype(np.uint8)
        encoded = jpeg_bytes(rgb, quality=88)
    with contextlib.suppress(OSError):  # a full disk costs a redraw next time, nothing more
        atomic.write_bytes(path, encoded)
    return encoded, mime, geometry


# ----------------------------------------------------------------------------- read-outs
def knn_table(views: dict[str, View], dataset: str | None = None) -> list[dict]:
    """One row per scored view: how it was made, the KNN score and dimension, the times."""
    rows = []
    for name, v in views.items():
        if not v.scored:
            continue
        row = {"view": v.title, f"KNN accuracy (k={KNN_K})": round(v.knn, 4)}
        if dataset == "fashion-mnist":
            row["snakers4 (FMNIST)"] = SNAKERS4_FMNIST[name]
        row.update({
            "KNN dims": v.dim,
            "2-D seconds": round(v.seconds_2d, 2),
            "full-dim + KNN seconds": round(v.seconds_full, 2),
            "2-D view": v.how,
        })  # fmt: skip
        rows.append(row)
    return rows


def neighbours(view: View, pos: int, k: int = 8) -> np.ndarray:
    """Sample positions of the ``k`` nearest other images to the one at ``pos``, in the
    view's full-dimensional embedding (Euclidean), nearest first."""
    d = np.linalg.norm(view.emb - view.emb[pos], axis=1)
    d[pos] = np.inf
    k = min(k, len(d) - 1)
    near = np.argpartition(d, k)[:k] if k < len(d) else np.arange(len(d))
    return near[np.argsort(d[near], kind="stable")]


def to_csv(views: dict[str, View], labels, class_names: list[str]) -> str:
    """The sample as CSV: test index, label, class, each view's x and y, and the model's
    full embedding (z0, z1, ...)."""
    first = next(iter(views.values()))
    labels = np.asarray(labels)
    cols = {"test_index": first.index, "label": labels,
            "class": np.asarray(class_names, dtype=object)[labels]}  # fmt: skip
    for name, v in views.items():
        cols[f"{name}_x"], cols[f"{name}_y"] = v.xy[:, 0], v.xy[:, 1]
    if "model" in views:
        for j in range(views["model"].emb.shape[1]):
            cols[f"z{j}"] = views["model"].emb[:, j]
    buf = io.StringIO()
    buf.write(",".join(cols) + "\n")
    for i in range(len(first.index)):
        buf.write(",".join(_cell(c[i]) for c in cols.values()) + "\n")
    return buf.getvalue()


def _cell(v) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.6g}"
    s = str(v)
    return f'"{s.replace(chr(34), chr(34) * 2)}"' if any(c in s for c in ',"\n') else s
