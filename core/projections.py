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

The views, the sample and the read-outs live in ``core.projection_views`` (re-exported
here); this module runs them in the background and is the CLI.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import psutil

from core import data as datalib
from core.projection_views import (  # noqa: F401 - re-exported for callers of core.projections
    DEFAULT_N,
    SHEET_COLS,
    SNAKERS4_FMNIST,
    TITLES,
    UMAP_MAX_DIM,
    UMAP_NEIGHBOURS,
    VIEWS,
    View,
    cache_file,
    cache_key,
    checkpoint_signature,
    compute_view,
    dataset_of,
    knn_table,
    knn_train_sample,
    knn_train_size,
    load_view,
    neighbours,
    offline,
    sample_index,
    sample_size,
    test_split,
    thumbnail_sheet,
    to_csv,
    view_dim,
)
from core.runs import Run, load_model
from core.store import atomic, schema
from core.store import proc as procs

ROOT = Path(__file__).resolve().parent.parent


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
