"""The same test images seen three ways, side by side: PCA and UMAP of the pixels, and the
model's own embedding, each with the KNN accuracy of its full-dimensional embedding.

The seed studies claim that a VAE's latent space organises images better than PCA and as
well as UMAP (snakers4 on Fashion-MNIST, KNN accuracy: VAE 0.80, UMAP about 0.80, PCA 0.77).
This module measures that claim for any run:

- the sample: ``n`` test images (default 5,000, capped at the test split), drawn with
  ``seed`` (default 0); :func:`sample_index` says which;
- the 2-D views, each fitted on the sample itself: PCA to 2 components, UMAP to 2
  components (15 neighbours, Euclidean), and the model's embedding (``model.embed``; used
  as is when it is 2-D, else reduced by :func:`core.embed.to_2d`, which names its method);
- the KNN protocol (``core.metrics.knn_accuracy``): k = 5, Euclidean, majority vote; the
  classifier is fitted on the first min(10,000, training split) training images
  (``core.metrics.knn_reference``, the sample ``core.evaluate`` uses) and scored on the
  shown test sample. Each view is scored in full dimension d = the model's embedding size:
  the model's embedding itself, PCA to d components fitted on the training sample, UMAP to
  min(d, 32) components fitted on the training sample and applied to the test sample
  (``UMAP.transform``).

Every view is cached as ``<run cache>/proj-<view>-n<n>-s<seed>-d<d>-first10000[-<checkpoint>].npz``;
the model's view carries a short signature of the checkpoint file, so a resumed run is
recomputed. :func:`precompute` fills the cache; :func:`start_background` (which the
Embeddings page calls the first time it opens a run) runs it in its own process, which
writes its progress to ``<run cache>/progress-n<n>-s<seed>.json`` so a page can poll it.

CLI: ``python -m core.projections RUN_DIR [--n 5000] [--views pca,umap,model]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import torch

from core import data as datalib
from core.embed import cached, fit_pca, flatten, model_embedding, to_2d, umap_project
from core.metrics import KNN_K, KNN_TRAIN, knn_accuracy, knn_reference
from core.runs import Run, load_model
from core.store import atomic, schema
from core.store import proc as procs

DEFAULT_N = 5000
VIEWS = ("pca", "umap", "model")
TITLES = {"pca": "PCA (pixels)", "umap": "UMAP (pixels)", "model": "Model embedding"}
UMAP_MAX_DIM = 32  # UMAP to more components is slow and no longer a fair, common practice
UMAP_NEIGHBOURS = 15
SNAKERS4_FMNIST = {"model": 0.80, "umap": 0.80, "pca": 0.77}  # KNN accuracy, VAE row for model
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class View:
    """One projection of the sample.

    Attributes:
        name: "pca", "umap" or "model".
        xy: (n, 2) the 2-D view of the sample.
        emb: (n, dim) the full-dimensional embedding of the sample that KNN scores.
        knn: KNN accuracy of ``emb`` (protocol in the module docstring).
        dim: dimensions of ``emb``.
        how: how the 2-D view was made, in words.
        seconds_2d: time to make the 2-D view.
        seconds_full: time to make the full-dimensional embedding and score it.
        index: (n,) test-split index of each row.
        train_n: training images the KNN classifier was fitted on.
    """

    name: str
    xy: np.ndarray
    emb: np.ndarray
    knn: float
    dim: int
    how: str
    seconds_2d: float
    seconds_full: float
    index: np.ndarray
    train_n: int = 0

    @property
    def title(self) -> str:
        return TITLES[self.name]


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
    shipped = run.path / "cache" / name
    return shipped if shipped.exists() else run.cache_dir / name


def cache_key(run: Run, view: str, n: int, seed: int, dim: int) -> str:
    key = f"proj-{view}-n{n}-s{seed}-d{dim}-first{KNN_TRAIN}"  # the KNN reference sample
    return f"{key}-{checkpoint_signature(run)}" if view == "model" else key


# ----------------------------------------------------------------------------- one view
def _umap_fit_transform(train_x: np.ndarray, test_x: np.ndarray, dim: int, seed: int):
    import umap  # heavy import: only when asked

    reducer = umap.UMAP(n_components=dim, n_neighbors=UMAP_NEIGHBOURS, random_state=seed)
    tr = reducer.fit_transform(train_x).astype(np.float32)
    return tr, reducer.transform(test_x).astype(np.float32)


def _compute(run: Run, view: str, idx: np.ndarray, seed: int, dim: int, model) -> dict:
    test = test_split(run)
    x, y = test.images[idx], test.labels[idx]
    train = knn_train_sample(run)
    t0 = time.perf_counter()
    if view == "pca":
        xy = fit_pca(flatten(x), 2, seed).transform(flatten(x)).astype(np.float32)
        how = "PCA to 2-D, fitted on the sample"
    elif view == "umap":
        xy = umap_project(flatten(x), 2, seed, UMAP_NEIGHBOURS)
        how = f"UMAP to 2-D ({UMAP_NEIGHBOURS} neighbours), fitted on the sample"
    else:
        emb = model_embedding(model, x, y)
        xy, how = to_2d(emb, seed)
        how = f"model embedding, {how}"
    t1 = time.perf_counter()
    if view == "pca":
        pca = fit_pca(flatten(train.images), dim, seed)
        emb_tr, emb = pca.transform(flatten(train.images)), pca.transform(flatten(x))
    elif view == "umap":
        emb_tr, emb = _umap_fit_transform(flatten(train.images), flatten(x), dim, seed)
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
    """The cached view, or None when it has not been computed (never computes)."""
    n = sample_size(n, len(test_split(run)))
    path = cache_file(run, f"{cache_key(run, view, n, seed, view_dim(view, embed_dim))}.npz")
    if not path.exists():
        return None
    with np.load(path) as f:
        return _as_view(view, {k: f[k] for k in f.files})


def compute_view(run: Run, view: str, n: int | None = None, seed: int = 0, model=None) -> View:
    """One view of the run's test sample, from the cache or computed and cached.

    Args:
        view: "pca", "umap" or "model".
        n: sample size (default 5,000, capped at the test split).
        model: the run's model, when the caller already has it loaded.
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
        result = cached(folder, key, lambda: _compute(run, view, idx, seed, dim, model))
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
    from PIL import Image

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
    buf = io.BytesIO()
    if c == 1:
        levels = np.round(grid[..., 0].clip(0, 1) * 15) * 17  # 16 grey levels
        Image.fromarray(levels.astype(np.uint8)).save(buf, format="PNG")
    else:
        rgb = (grid.clip(0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(rgb).save(buf, format="JPEG", quality=88)
    with contextlib.suppress(OSError):  # a full disk costs a redraw next time, nothing more
        atomic.write_bytes(path, buf.getvalue())
    return buf.getvalue(), mime, geometry


# ----------------------------------------------------------------------------- all views
def _progress_path(run: Run, n: int, seed: int) -> Path:
    return run.cache_dir / f"progress-n{n}-s{seed}.json"


def _write_progress(path: Path, pid: int | None = None, **fields) -> None:
    atomic.write_json(path, dict(fields, pid=pid or os.getpid(), updated_at=time.time()))


def precompute(
    run: Run | str | Path, n: int = DEFAULT_N, seed: int = 0, views=VIEWS, model=None
) -> dict[str, View]:
    """Compute and cache every view of a run's test sample (cached views load instantly).

    Writes its progress to ``<run cache>/progress-n<n>-s<seed>.json`` as it goes.

    Returns:
        {view name: View}, in the order of ``views``.
    """
    run = run if isinstance(run, Run) else Run(Path(run))
    if not run.has_checkpoint():
        raise ValueError(f"Run {run.name} has no checkpoint yet: nothing to project.")
    n = sample_size(n, len(test_split(run)))
    bad = [v for v in views if v not in VIEWS]
    if bad:
        raise ValueError(f"Unknown view {bad[0]!r}: choose among {', '.join(VIEWS)}.")
    path = _progress_path(run, n, seed)
    started = time.time()
    out: dict[str, View] = {}
    try:
        if model is None:
            model, _ = load_model(run.checkpoint_path, "cpu")
        for i, view in enumerate(views):
            _write_progress(path, state="running", n=n, seed=seed, step=i, steps=len(views),
                            stage=f"{TITLES[view]} of {n:,} test images",
                            started_at=started)  # fmt: skip
            out[view] = compute_view(run, view, n, seed, model)
        thumbnail_sheet(run, n, seed)
    except Exception as e:
        _write_progress(path, state="failed", n=n, seed=seed, step=len(out), steps=len(views),
                        stage="failed", error=f"{type(e).__name__}: {e}",
                        started_at=started)  # fmt: skip
        raise
    _write_progress(path, state="done", n=n, seed=seed, step=len(views), steps=len(views),
                    stage="done", started_at=started, seconds=time.time() - started)  # fmt: skip
    return out


# ----------------------------------------------------------------------------- background
def _alive(pid) -> bool:
    """Is a projection worker with this pid at work? (It is never signalled, so a reused
    pid can only make a stale record look alive until its file is rewritten.)"""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
        return False
    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE and "core.projections" in p.cmdline()
    except psutil.Error:
        return False


def progress(run: Run, n: int, seed: int = 0) -> dict | None:
    """The progress of the latest precomputation of this sample, or None if none ran.

    A "running" record whose process is gone reads as "failed"."""
    n = sample_size(n, len(test_split(run)))
    try:
        rec = schema.read_json(_progress_path(run, n, seed))
    except schema.Damaged:
        return None
    if not isinstance(rec, dict):
        return None
    if rec.get("state") == "running" and not _alive(rec.get("pid")):
        rec.update(state="failed", error="the projection process stopped before finishing")
    return rec


def start_background(run: Run, n: int = DEFAULT_N, seed: int = 0, views=VIEWS) -> int:
    """Run :func:`precompute` in its own process (``python -m core.projections``) unless
    one is already at work on this sample; returns that process's id."""
    n = sample_size(n, len(test_split(run)))
    rec = progress(run, n, seed)
    if rec and rec.get("state") == "running":
        return int(rec["pid"])
    path = _progress_path(run, n, seed)
    args = [str(run.path), "--n", str(n), "--seed", str(seed), "--views", ",".join(views)]
    try:
        proc = procs.spawn("core.projections", args,
                           run.cache_dir / f"projections-n{n}-s{seed}.log",
                           env={"PYTHONWARNINGS": "ignore"})  # fmt: skip
        # claim the sample at once (unless the child already wrote), so a second caller
        # waits on this process instead of starting another
        rec = progress(run, n, seed) or {}
        if rec.get("pid") != proc.pid:
            _write_progress(path, pid=proc.pid, state="running", n=n, seed=seed, step=0,
                            steps=len(views), stage="starting (loading libraries)",
                            started_at=time.time())  # fmt: skip
    except OSError as e:
        raise ValueError(
            f"The projection could not start ({e.strerror or e}): free disk space and try again."
        ) from None
    return proc.pid


# ----------------------------------------------------------------------------- read-outs
def knn_table(views: dict[str, View], dataset: str | None = None) -> list[dict]:
    """One row per view: how it was made, the KNN score and dimension, and the times."""
    rows = []
    for name, v in views.items():
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


# ----------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m core.projections",
        description="Compute and cache the PCA, UMAP and model views of a run's test sample.",
    )
    p.add_argument("run_dir", help="a run directory")
    p.add_argument("--n", type=int, default=DEFAULT_N, help="sample size (capped at the split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--views", default=",".join(VIEWS), help="comma-separated: pca,umap,model")
    args = p.parse_args(argv)
    run = Run(Path(args.run_dir))
    if not run.exists:
        print(f"error: {args.run_dir} is not a run directory (no config.json).", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", message=".*n_jobs value.*")
    try:
        out = precompute(run, args.n, args.seed, [v for v in args.views.split(",") if v])
    except (ValueError, datalib.DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for row in knn_table(out, dataset_of(run)[0]):
        print("  ".join(f"{k}: {v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
