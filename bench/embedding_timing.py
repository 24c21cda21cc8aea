"""Timings of the Embeddings page's views.

Issue 16 (the default): from the end of a training run to UMAP's 2-D view on the page, on
the bundled digits and on Fashion-MNIST. A run is trained with the views started at its
end (``core.projections.after_training``), then the same background job is started again
on the run (``start_background``, what ``after_training`` calls). Each is timed with an
empty numba cache (a fresh ``NUMBA_CACHE_DIR``: "cold") and then with the cache it left
("warm"); both are fresh processes. While a job runs, its progress file is read every
0.1 s, and the page's estimate ("roughly N s in all", ``app.embeddings_page.eta``) at 25,
50 and 75 % of the actual time is compared with the actual time. Then, in this process
after a warm-up, the 2-D UMAP of 5,000 and 10,000 Fashion-MNIST test images
(``core.embed.umap_2d``) and umap-learn's defaults on the raw pixels of 10,000.

Issue 5 (``--page``, or ``--run``): numba's one-off compilation, a cold 2-D UMAP of 5,000
and 10,000 test images, a cold ``core.projections.precompute`` of a run, and the page's
open time once its cache is warm (AppTest script time and a real browser).

    python -m bench.embedding_timing                     # issue 16: run end -> 2-D view
    python -m bench.embedding_timing --page              # issue 5: trains a small run first
    python -m bench.embedding_timing --run pretrained/fmnist-fcconv-vae-l10  # or a given run

Prints a Markdown table for BENCHMARKS.md. Run it on an idle machine: the numbers scale
with free CPU cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from core import data as datalib
from core import projections as proj
from core.embed import flatten, umap_2d, umap_project
from core.runs import Run

ROOT = Path(__file__).resolve().parent.parent


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def small_run(root: Path) -> Run:
    """A 2-epoch fcconv-vae (10-D latent) on Fashion-MNIST: enough for timing the page."""
    from core.train import TrainConfig, train

    cfg = TrainConfig(dataset="fashion-mnist", model="fcconv-vae", epochs=2, batch_size=256)
    return train(cfg, {"latent_dim": 10}, name="bench-fmnist", root=root)


def page_open_apptest(run: Run) -> tuple[float, float]:
    """Script time of pages/embeddings.py: the first run in this process (model and
    dataset loads) and a second run (a rerun; everything cached)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "embeddings.py"), default_timeout=300)
    at.session_state["run_id"] = run.id
    _, first = timed(at.run)
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3, "the cache was not warm"
    _, second = timed(at.run)
    return first, second


def page_open_browser(run: Run, runs_root: Path) -> list[tuple[str, float]]:
    """Seconds until the three charts are drawn, in Chromium: moving to the page from Home
    through the sidebar (the first time the server also loads the model, the dataset and
    plotly's JavaScript), and loading the page's URL in a fresh tab (all JavaScript parsed
    again)."""
    from tests.browser import chromium_page, streamlit_server, wait_idle

    ready = "document.querySelectorAll('.js-plotly-plot .nsewdrag').length === 3"
    nav = '[data-testid="stSidebarNav"] >> text='
    out = []
    with streamlit_server(runs_root) as url, chromium_page(height=1400) as page:
        page.goto(f"{url}/?run={run.id}")
        wait_idle(page, timeout=120_000)
        for i in range(3):
            t0 = time.perf_counter()
            page.click(nav + "Embeddings")
            page.wait_for_function(ready, timeout=300_000)
            out.append((f"sidebar Home -> Embeddings, visit {i + 1}", time.perf_counter() - t0))
            page.click(nav + "Home")
            wait_idle(page, timeout=120_000)
        t0 = time.perf_counter()
        page.goto(f"{url}/embeddings?run={run.id}")
        page.wait_for_function(ready, timeout=300_000)
        out.append(("the page's URL loaded in the tab (new session)", time.perf_counter() - t0))
    return out


# ----------------------------------------------------------------------------- issue 16
def watch(run: Run, n: int, limit: float = 1800.0) -> tuple[list[dict], float]:
    """Every progress record of the job on this sample until it ends (polled every 0.1 s),
    and the moment UMAP's 2-D view file appeared (``time.time()``)."""
    part = run.cache_dir / f"proj2d-umap-n{n}-s0.npz"
    seen, ready, deadline = [], None, time.time() + limit
    while time.time() < deadline:
        rec = proj.progress(run, n)
        if rec and (not seen or rec.get("updated_at") != seen[-1].get("updated_at")):
            seen.append(rec)
        if ready is None and part.exists():
            ready = time.time()
        if rec and rec.get("state") in ("done", "failed") and ready is not None:
            return seen, ready
        time.sleep(0.1)
    raise TimeoutError(f"the views of {run.id} did not finish in {limit:.0f} s")


def estimate_errors(records: list[dict], start: float, actual: float) -> list[float]:
    """The page's estimate of UMAP's 2-D time against the actual, at 25, 50 and 75 % of the
    way: (estimate / actual - 1), from the latest record written by then."""
    from app.embeddings_page import eta

    out = []
    for share in (0.25, 0.5, 0.75):
        at = start + share * actual
        rec = ([r for r in records if r["updated_at"] <= at] or records[:1])[-1]
        _, _, total = eta(dict(rec, started_at=start), at)
        out.append(total / actual - 1)
    return out


def run_end_rows(dataset: str, root: Path) -> list[tuple[str, str]]:
    """Train a small run with its views started at its end (empty numba cache), then start
    the same job again on it (numba's cache now warm); one row per job."""
    from core.train import TrainConfig, train

    os.environ["NUMBA_CACHE_DIR"] = str(root / f"numba-{dataset}")  # empty: cold
    os.environ["LATENTLAB_PRECOMPUTE_VIEWS"] = "1"
    cfg = TrainConfig(dataset=dataset, model="mlp-vae", epochs=1, batch_size=256)
    run, t_train = timed(lambda: train(cfg, {"latent_dim": 10}, name=f"end-{dataset}", root=root))
    n = proj.sample_size(proj.DEFAULT_N, len(proj.test_split(run)))
    rows = [(f"{dataset}: train the run (mlp-vae, 10-D, 1 epoch)", f"{t_train:.0f} s")]
    for how in ("cold", "warm"):
        if how == "warm":
            for f in run.cache_dir.glob("*"):
                if f.name.startswith(("proj", "progress", "sheet")):
                    f.unlink()
            proj.start_background(run, n)  # what after_training calls
        records, ready = watch(run, n)
        done = records[-1]
        assert done["state"] == "done", done
        end = run.status()["updated_at"] if how == "cold" else done["started_at"]
        actual = ready - done["started_at"]
        errs = ", ".join(f"{e:+.0%}" for e in estimate_errors(records, done["started_at"], actual))
        phases = dict(done["phases"])
        rows.append((
            f"{dataset}, {n:,} test images, {how} numba cache: "
            + ("run end" if how == "cold" else "job start") + " -> 2-D UMAP view on disk",
            f"{ready - end:.1f} s (Python and data {phases['start']:.1f} s, umap-learn import "
            f"{phases['libraries']:.1f} s, graph {phases['2d-graph']:.1f} s, "
            f"{phases['2d-epochs']:.1f} s of epochs); estimate error at 25/50/75 %: {errs}",
        ))  # fmt: skip
        rows.append((f"{dataset}, {how}: the whole job (all views, KNN scores included)",
                     f"{done['seconds']:.0f} s"))  # fmt: skip
    for v in proj.VIEWS:
        view = proj.load_view(run, v, n, 10)
        rows.append((f"{dataset}: KNN accuracy, {view.title} ({view.dim}-D)", f"{view.knn:.3f}"))
    return rows


def in_process_rows() -> list[tuple[str, str]]:
    """UMAP's 2-D view in this (warm) process against umap-learn's defaults on pixels."""
    test = datalib.load("fashion-mnist", "test")
    x_all = flatten(test.images)
    umap_2d(x_all[:500])  # warm-up: imports and numba
    umap_project(x_all[:4200])
    rows = []
    for n in (5000, 10000):
        x = x_all[proj.sample_index(len(test), n)]
        _, t = timed(lambda x=x: umap_2d(x))
        rows.append((f"warm process: 2-D UMAP of {n:,} Fashion-MNIST test images on PCA-50 "
                     "(`core.embed.umap_2d`)", f"{t:.1f} s"))  # fmt: skip
    _, t = timed(lambda: umap_project(x_all))
    rows.append(("warm process: umap-learn's defaults on the raw pixels of 10,000 (reference)",
                 f"{t:.1f} s"))  # fmt: skip
    return rows


def issue16(args) -> list[tuple[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LATENTLAB_RUNS_DIR"] = tmp
        for dataset in args.datasets:
            rows += run_end_rows(dataset, Path(tmp))
        if "fashion-mnist" in args.datasets:  # numba's cache still in the temporary folder
            rows += in_process_rows()
    return rows


# ----------------------------------------------------------------------------- issue 5
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--page", action="store_true", help="issue 5's page timings")
    p.add_argument("--run", help="issue 5: a Fashion-MNIST run (default: train a small one)")
    p.add_argument("--datasets", nargs="+", default=["digits", "fashion-mnist"],
                   help="issue 16: the datasets of the run-end timing")  # fmt: skip
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000])
    p.add_argument("--no-browser", action="store_true", help="skip the Chromium timing")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*n_jobs value.*")
    load0 = os.getloadavg()[0]
    rows = issue5(args) if args.page or args.run else issue16(args)
    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU "
          f"cores, torch {torch.__version__}; load average {load0:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end\n")  # fmt: skip
    print("| measurement | time |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    return 0


def issue5(args) -> list[tuple[str, str]]:
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    rows: list[tuple[str, str]] = []
    test, t_load = timed(lambda: datalib.load("fashion-mnist", "test"))
    rows.append(("load Fashion-MNIST test split (10,000 images)", f"{t_load:.2f} s"))
    x_all = flatten(test.images)
    # numba compiles UMAP's exact-neighbour path on the first small call and pynndescent's
    # approximate path (used from 4,096 points on) on the first large one
    _, t_small = timed(lambda: umap_project(x_all[:300]))
    _, t_large = timed(lambda: umap_project(x_all[-4200:]))
    rows.append(("numba compilation: first UMAP calls in a process (300, then 4,200 images)",
                 f"{t_small:.1f} s + {t_large:.1f} s"))  # fmt: skip
    for n in args.sizes:
        idx = proj.sample_index(len(test), n)
        _, t = timed(lambda idx=idx: umap_project(x_all[idx]))
        rows.append((f"cold 2-D UMAP of {n:,} test images (after compilation)", f"{t:.1f} s"))

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LATENTLAB_RUNS_DIR"] = tmp
        if args.run:
            run = Run(Path(args.run))
            if not run.readonly:  # a pretrained run's cache goes to the temporary folder
                os.environ["LATENTLAB_RUNS_DIR"] = str(run.path.parent)
                for f in run.cache_dir.glob("*-n5000-s0*"):
                    f.unlink()  # a cold cache for the sample the page opens with
        else:
            run, t_train = timed(lambda: small_run(Path(tmp)))
            rows.append(("train the benchmark run (fcconv-vae, 10-D, 2 epochs)",
                         f"{t_train:.0f} s"))  # fmt: skip
        views, t_pre = timed(lambda: proj.precompute(run, 5000))
        parts = ", ".join(f"{v.title} {v.seconds_2d + v.seconds_full:.1f} s"
                          for v in views.values())  # fmt: skip
        rows.append(("cold `precompute(run, 5000)`: all three views + KNN", f"{t_pre:.1f} s "
                     f"({parts})"))  # fmt: skip
        for v in views.values():
            rows.append((f"KNN accuracy, {v.title} ({v.dim}-D)", f"{v.knn:.3f}"))
        _, t_warm = timed(lambda: proj.precompute(run, 5000))
        rows.append(("warm `precompute(run, 5000)` (cache hit)", f"{t_warm:.2f} s"))
        first, second = page_open_apptest(run)
        rows.append(("embeddings page script, warm cache: first run (loads model, data)",
                     f"{first:.2f} s"))  # fmt: skip
        rows.append(("embeddings page script, warm cache: rerun", f"{second:.2f} s"))
        if not args.no_browser:
            for what, t in page_open_browser(run, Path(os.environ["LATENTLAB_RUNS_DIR"])):
                rows.append((f"Chromium, until the 3 charts are drawn: {what}", f"{t:.2f} s"))

    return rows


if __name__ == "__main__":
    sys.exit(main())
