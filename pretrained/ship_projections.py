"""Precompute the UMAP view of every pretrained entry and ship it in ``<entry>/cache/``:
``python pretrained/ship_projections.py``.

UMAP is the one slow view of the Embeddings page (numba compilation, then a minute or more of
fitting on two cores). ``core.projections.cache_file`` reads a copy shipped in the entry's
cache folder first, so with these files the page shows a pretrained run's three views at
once. The UMAP view depends only on the dataset, the sample and the dimension, so it is
computed once per (dataset, dimension) and copied to every entry that shares them. Two
samples are shipped: the page's default (5,000 test images, when the dataset is on disk)
and the offline one (the bundled sample's halves), which this script computes in a child
process that cannot see the dataset.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from core import projections as proj
from core.runs import Run, load_model

HERE = Path(__file__).resolve().parent


def entries() -> list[Run]:
    return [Run(p.parent) for p in sorted(HERE.glob("*/checkpoint.pt"))]


def ship(runs_dir: Path) -> list[str]:
    """Compute the UMAP view of one entry per (dataset, dimension) in this process's data
    situation and copy it into every matching entry's cache folder."""
    os.environ["LATENTLAB_RUNS_DIR"] = str(runs_dir)
    done: dict[tuple, Path] = {}
    shipped = []
    for run in entries():
        model, _ = load_model(run.checkpoint_path, "cpu")
        name, _ = proj.dataset_of(run)
        n = proj.sample_size(proj.DEFAULT_N, len(proj.test_split(run)))
        dim = proj.view_dim("umap", model.latent_dim)
        file = f"{proj.cache_key(run, 'umap', n, 0, dim)}.npz"
        if (name, n, dim) not in done:
            proj.compute_view(run, "umap", n, 0, model)
            done[(name, n, dim)] = proj.cache_file(run, file)
        target = run.path / "cache" / file
        if not target.exists():
            shutil.copyfile(done[(name, n, dim)], target)
        shipped.append(f"{run.path.name}/cache/{file}")
    return shipped


def main() -> int:
    if sys.argv[1:2] == ["--child"]:  # the offline pass, in the restricted environment
        print(*ship(Path(sys.argv[2])), sep="\n")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        print(*ship(Path(tmp) / "runs"), sep="\n")
        env = dict(
            os.environ,
            LATENTLAB_DATA_DIR=str(Path(tmp) / "no-data"),
            LATENTLAB_FMNIST_SYSTEM_DIR=str(Path(tmp) / "no-debian-package"),
            LATENTLAB_MIRROR="http://127.0.0.1:9/{name}/",  # a closed port: fails at once
        )
        child = [sys.executable, __file__, "--child", str(Path(tmp) / "runs-offline")]
        return subprocess.call(child, env=env)


if __name__ == "__main__":
    sys.exit(main())
