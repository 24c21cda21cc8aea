"""The same test images seen three ways, side by side: PCA and UMAP of the pixels, and the
model's own embedding, each with the KNN accuracy of its full-dimensional embedding.

The seed studies claim that a VAE's latent space organises images better than PCA and as
well as UMAP (snakers4 on Fashion-MNIST, KNN accuracy: VAE 0.80, UMAP about 0.80, PCA 0.77).
This module measures that claim for any run:

- the sample: ``n`` test images (default 5,000, capped at the test split), drawn with
  ``seed`` (default 0); :func:`sample_index` says which;
- the 2-D views, each fitted on the sample itself: PCA to 2 components, UMAP to 2
  components (15 exact Euclidean neighbours on a PCA-50 reduction of the pixels, then
  umap-learn's defaults: :func:`core.embed.umap_2d`), and the model's embedding
  (``model.embed``; used as is when it is 2-D, else reduced by :func:`core.embed.to_2d`,
  which names its method);
- the KNN protocol (``core.metrics.knn_accuracy``): k = 5, Euclidean, majority vote; the
  classifier is fitted on the first min(10,000, training split) training images
  (``core.metrics.knn_reference``, the sample ``core.evaluate`` uses) and scored on the
  shown test sample. Each view is scored in full dimension d = the model's embedding size:
  the model's embedding itself, PCA to d components fitted on the training sample, UMAP to
  min(d, 32) components fitted on the raw pixels of the training sample (umap-learn's own
  neighbour search) and applied to the test sample (``UMAP.transform``).

Every view is cached as ``<run cache>/proj-<view>-n<n>-s<seed>-d<d>-first10000[-<checkpoint>].npz``;
the model's view carries a short signature of the checkpoint file, so a resumed run is
recomputed; UMAP's 2-D chart is also cached alone (``proj2d-umap-n<n>-s<seed>.npz``).
:func:`precompute` fills the cache in the order the page needs it: UMAP's 2-D view first,
then the thumbnail sheet, PCA and the model's views, and UMAP's KNN score last.
:func:`start_background` runs it in its own process (one thread, ``nice`` +10), which
writes its progress to ``<run cache>/progress-n<n>-s<seed>.json``
(``core.projection_progress``: phases, umap-learn's epochs, estimates) so a page can poll
it. The trainer calls :func:`after_training` as a run finishes, which starts it for the
page's default sample unless ``LATENTLAB_PRECOMPUTE_VIEWS=0``; the page starts it for any
other sample, or when nothing ran.

CLI: ``python -m core.projections RUN_DIR [--n 5000] [--views pca,umap,model]``.

The views, the sample and the read-outs live in ``core.projection_views`` (re-exported
here); this module runs them in the background and is the CLI.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from pathlib import Path

import psutil

from core import data as datalib
from core import queue
from core.embed import numba_cache_dir, use_numba_cache
from core.metrics import KNN_TRAIN
from core.projection_progress import Phase, Tracker, load_factor, plan, write_progress  # noqa: F401
from core.projection_views import (  # noqa: F401 - re-exported for callers of core.projections
    DEFAULT_N,
    SHEET_COLS,
    SNAKERS4_FMNIST,
    TITLES,
    UMAP_2D_HOW,
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
    umap_2d_view,
    view_dim,
)
from core.runs import Run, load_model, runs_dir
from core.store import proc as procs
from core.store import schema

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- settings
ENV_PRECOMPUTE = "LATENTLAB_PRECOMPUTE_VIEWS"  # "0": a finished run starts nothing
NICE = 10  # the background worker's priority: below the server, level with the trainers


# ----------------------------------------------------------------------------- all views
def _progress_path(run: Run, n: int, seed: int) -> Path:
    return run.cache_dir / f"progress-n{n}-s{seed}.json"


def _tracker(
    run: Run, n: int, seed: int, views, started_at: float, listener=None, in_process=False
) -> Tracker:
    try:
        m = min(datalib.dataset_info(dataset_of(run)[0]).train_size, KNN_TRAIN)
        dim = int(run.config()["model"]["config"]["latent_dim"])
    except (datalib.DatasetError, KeyError, TypeError, ValueError):  # priors only: guess
        m, dim = KNN_TRAIN, 10
    cold = "umap" in views and not any(numba_cache_dir().glob("*/*.nbi"))
    phases = plan(views, n, m, min(dim, UMAP_MAX_DIM), cold)
    if in_process:  # counted from the call, not from the start of the process
        phases[0].prior = 0.0
        if "umap" in sys.modules:  # and umap-learn is loaded already
            phases[1].prior = 0.0 if phases[1].key == "libraries" else phases[1].prior
    return Tracker(_progress_path(run, n, seed), phases, started_at, listener, n=n, seed=seed,
                   views=list(views), speed0=load_factor())  # fmt: skip


def precompute(
    run: Run | str | Path,
    n: int = DEFAULT_N,
    seed: int = 0,
    views=VIEWS,
    model=None,
    started_at: float | None = None,
    listener=None,
    worker: dict | None = None,
) -> dict[str, View]:
    """Compute and cache every view of a run's test sample (cached views load instantly):
    UMAP's 2-D view first, then the thumbnail sheet, PCA and the model's views, and UMAP's
    KNN score last.

    Writes its progress to ``<run cache>/progress-n<n>-s<seed>.json`` as it goes (a
    :class:`Tracker` record; ``listener`` also gets each record).

    Args:
        started_at: when the job started (``time.time()``; default now): a background
            process passes its own start, so the estimates count its imports.
        worker: how the process runs (``{"nice": ..., "threads": ...}``), for the record.

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
    tracker = _tracker(run, n, seed, views, started_at or time.time(), listener,
                       in_process=started_at is None)  # fmt: skip
    if worker:
        tracker.fields["worker"] = worker
    out: dict[str, View] = {}
    try:
        if "umap" in views:
            tracker.enter("libraries")
            import umap  # noqa: F401 - the import is this phase

            use_numba_cache()
        tracker.enter("load")
        if model is None:
            model, _ = load_model(run.checkpoint_path, "cpu")
        test_split(run)
        if "umap" in views:
            umap_2d_view(run, n, seed, lambda p, *a: tracker.enter(f"2d-{p}", *a))
        tracker.enter("sheet")
        thumbnail_sheet(run, n, seed)
        for view in [v for v in VIEWS if v in views and v != "umap"]:
            tracker.enter(view)
            out[view] = compute_view(run, view, n, seed, model)
        if "umap" in views:
            out["umap"] = compute_view(run, "umap", n, seed, model,
                                       lambda p, *a: tracker.enter(f"knn-{p}", *a))  # fmt: skip
    except Exception as e:
        tracker.write(state="failed", stage="failed", error=f"{type(e).__name__}: {e}")
        raise
    tracker.finish()
    return {v: out[v] for v in views}


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


THREADS_1 = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                               "NUMBA_NUM_THREADS")}  # fmt: skip


def start_background(run: Run, n: int = DEFAULT_N, seed: int = 0, views=VIEWS) -> int:
    """Run :func:`precompute` in its own process (``python -m core.projections
    --background``: one thread, ``nice`` +10) unless one is already at work on this
    sample; returns that process's id."""
    n = sample_size(n, len(test_split(run)))
    rec = progress(run, n, seed)
    if rec and rec.get("state") == "running":
        return int(rec["pid"])
    args = [str(run.path), "--n", str(n), "--seed", str(seed), "--views", ",".join(views),
            "--background"]  # fmt: skip
    try:
        run.cache_dir.mkdir(parents=True, exist_ok=True)
        proc = procs.spawn("core.projections", args,
                           run.cache_dir / f"projections-n{n}-s{seed}.log",
                           env=dict(THREADS_1, PYTHONWARNINGS="ignore"))  # fmt: skip
        # claim the sample at once (unless the child already wrote), so a second caller
        # waits on this process instead of starting another
        rec = progress(run, n, seed) or {}
        if rec.get("pid") != proc.pid:
            claim = _tracker(run, n, seed, views, time.time())
            claim.fields["pid"] = proc.pid
            claim.write()
    except OSError as e:
        raise ValueError(
            f"The projection could not start ({e.strerror or e}): free disk space and try again."
        ) from None
    return proc.pid


def after_training(run: Run) -> int | None:
    """Called by the trainer as a run finishes: start the Embeddings page's views of the
    run's default sample in the background (UMAP's 2-D view first), unless
    ``LATENTLAB_PRECOMPUTE_VIEWS=0``. Never raises: returns the worker's pid, or None."""
    if os.environ.get(ENV_PRECOMPUTE, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        return start_background(run, DEFAULT_N, 0, VIEWS)
    except Exception as e:  # best effort: the run is done whatever happens here
        print(f"The Embeddings views did not start: {type(e).__name__}: {e}", file=sys.stderr)
        return None


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
    p.add_argument("--background", action="store_true",
                   help=f"run as the background worker: one thread, nice +{NICE}")  # fmt: skip
    args = p.parse_args(argv)
    run = Run(Path(args.run_dir))
    if not run.exists:
        print(f"error: {args.run_dir} is not a run directory (no config.json).", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", message=".*n_jobs value.*")
    worker, waited = None, 0.0
    if args.background:
        t0 = time.time()
        # bounded like training (a pretrained run's views count in the server's runs folder)
        queue.hold_view_slot(runs_dir() if run.readonly else run.path.parent)
        waited = time.time() - t0
        import torch

        with contextlib.suppress(OSError):
            os.nice(NICE)
        torch.set_num_threads(1)
        worker = {"nice": os.nice(0), "threads": torch.get_num_threads()}
    # the estimates count this process's imports, not its wait for a view slot
    started = psutil.Process().create_time() + waited
    try:
        out = precompute(run, args.n, args.seed, [v for v in args.views.split(",") if v],
                         started_at=started, worker=worker)  # fmt: skip
    except (ValueError, datalib.DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for row in knn_table(out, dataset_of(run)[0]):
        print("  ".join(f"{k}: {v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
