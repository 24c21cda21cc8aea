"""Timings of the Embeddings page on Fashion-MNIST: numba's one-off compilation, a cold 2-D
UMAP of 5,000 and 10,000 test images, a cold ``core.projections.precompute`` of a run, and
the page's open time once its cache is warm (AppTest script time and a real browser).

    python -m bench.embedding_timing                     # trains a small run first
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
from core.embed import flatten, umap_project
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", help="a Fashion-MNIST run directory (default: train a small one)")
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000])
    p.add_argument("--no-browser", action="store_true", help="skip the Chromium timing")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*n_jobs value.*")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    rows: list[tuple[str, str]] = []
    load0 = os.getloadavg()[0]

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

    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU "
          f"cores, torch {torch.__version__}; load average {load0:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end\n")  # fmt: skip
    print("| measurement | time |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
