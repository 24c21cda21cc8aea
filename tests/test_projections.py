"""core.projections: the PCA / UMAP / model views of a run's test sample, their cache, the
KNN table, the CSV export, nearest neighbours, the background process and the CLI, and the
phases a precomputation reports as it goes (the estimates, the start at the end of a run
and the page's progress are in ``tests/test_projection_progress.py``).

UMAP runs in this process once (a 200-image sample of the bundled digits, fitted on its
1,437 training images) and in a background worker once; numba's compilation is cached in
the machine's numba folder (``core.embed.numba_cache_dir``) after the first.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time

import numpy as np
import pytest

from core import data as datalib
from core import projections as proj
from core.runs import Run, load_model

# the phases of a precomputation of every view, in order (after "start")
PHASES = ["libraries", "load", "2d-pca", "2d-neighbours", "2d-graph", "2d-epochs", "sheet",
          "pca", "model", "knn-fit", "knn-fit-epochs", "knn-transform",
          "knn-transform-epochs"]  # fmt: skip


def copy_run(run: Run, dest) -> Run:
    """A private copy of a tiny run, so its cache starts empty and stays ours."""
    shutil.copytree(run.path, dest / run.id, ignore=shutil.ignore_patterns("cache"))
    return Run(dest / run.id)


RECORDS: list[dict] = []  # every progress record of the fixture's precomputation


@pytest.fixture(scope="module")
def projected(tiny_runs, tmp_path_factory):
    """A copy of the 4-D fcconv-vae run with every view of 200 test images computed."""
    run = copy_run(tiny_runs["fcconv-vae"], tmp_path_factory.mktemp("proj"))
    t0 = time.perf_counter()
    RECORDS.clear()
    views = proj.precompute(run, n=200, listener=RECORDS.append)
    return run, views, time.perf_counter() - t0


def test_precompute_shapes(projected):
    run, views, _ = projected
    assert list(views) == list(proj.VIEWS)
    idx = proj.sample_index(len(datalib.load("digits", "test")), 200)
    assert len(idx) == 200 and len(set(idx.tolist())) == 200
    for name, v in views.items():
        assert v.xy.shape == (200, 2) and v.xy.dtype == np.float32, name
        assert v.emb.shape == (200, 4), name  # scored at the model's latent size (4)
        assert np.isfinite(v.xy).all() and np.isfinite(v.emb).all(), name
        np.testing.assert_array_equal(v.index, idx)
        assert 0.0 <= v.knn <= 1.0 and v.dim == 4
        assert v.train_n == len(datalib.load("digits", "train"))  # 1,437 < 10,000
        assert v.seconds_2d >= 0 and v.seconds_full >= 0
    assert views["model"].how == "model embedding, PCA to 2-D"
    assert views["umap"].how == proj.UMAP_2D_HOW and "PCA-50" in views["umap"].how
    rec = proj.progress(run, 200)
    assert rec["state"] == "done" and rec["step"] == rec["steps"] == len(PHASES) + 1
    assert rec["fraction"] == rec["fraction_2d"] == 1.0 and rec["ready_2d"] is True
    assert [k for k, _ in rec["phases"]] == ["start", *PHASES]  # every phase ran, in order


def test_pixel_views_score_above_chance(projected):
    # digits are easy: KNN on pixel PCA/UMAP is far above the 10 % of guessing
    _, views, _ = projected
    assert views["pca"].knn > 0.5 and views["umap"].knn > 0.5


def test_cache_hit_returns_identical_arrays_without_recomputing(projected):
    run, views, cold = projected
    files = sorted(run.cache_dir.glob("proj-*.npz"))
    assert len(files) == 3
    stamps = {f: f.stat().st_mtime_ns for f in files}
    t0 = time.perf_counter()
    again = proj.precompute(run, n=200)
    warm = time.perf_counter() - t0
    assert {f: f.stat().st_mtime_ns for f in files} == stamps  # nothing rewritten
    for name in proj.VIEWS:
        a, b = views[name], again[name]
        np.testing.assert_array_equal(a.xy, b.xy)
        np.testing.assert_array_equal(a.emb, b.emb)
        # the stored timings come back: a recomputation would have measured new ones
        assert (a.knn, a.seconds_2d, a.seconds_full) == (b.knn, b.seconds_2d, b.seconds_full)
    assert warm < 5 and warm < cold / 3


def test_load_view_never_computes(projected, tiny_runs, tmp_path):
    run, views, _ = projected
    v = proj.load_view(run, "umap", 200, embed_dim=4)
    np.testing.assert_array_equal(v.xy, views["umap"].xy)
    assert proj.load_view(run, "umap", 150, embed_dim=4) is None  # another sample size
    fresh = copy_run(tiny_runs["fcconv-vae"], tmp_path)
    assert proj.load_view(fresh, "pca", 200, embed_dim=4) is None
    assert not list(fresh.cache_dir.glob("proj-*"))


def test_thumbnail_sheet_holds_the_sample_in_order(projected):
    from PIL import Image

    run, views, _ = projected
    assert (run.cache_dir / "sheet-n200-s0.png").exists()  # written by precompute
    raw, mime, geo = proj.thumbnail_sheet(run, 200)
    assert mime == "image/png"
    assert geo == {"cols": 100, "cell_w": 8, "cell_h": 8, "sheet_w": 800, "sheet_h": 16}
    sheet = np.asarray(Image.open(io.BytesIO(raw)), dtype=np.float32) / 255
    assert sheet.shape == (16, 800)
    test = datalib.load("digits", "test")
    for pos in (0, 99, 100, 157):
        r, c = divmod(pos, 100)
        cell = sheet[r * 8 : (r + 1) * 8, c * 8 : (c + 1) * 8]
        want = test.images[views["pca"].index[pos], 0].numpy()
        assert np.abs(cell - want).max() <= 1 / 30 + 1e-6  # 16 grey levels


def test_knn_table_has_one_row_per_view(projected):
    _, views, _ = projected
    rows = proj.knn_table(views)
    assert [r["view"] for r in rows] == [proj.TITLES[v] for v in proj.VIEWS]
    assert [r["KNN accuracy (k=5)"] for r in rows] == [round(views[v].knn, 4) for v in proj.VIEWS]
    assert all(r["KNN dims"] == 4 for r in rows)
    # the snakers4 reference column appears for Fashion-MNIST only
    assert "snakers4 (FMNIST)" not in rows[0]
    fm = proj.knn_table(views, "fashion-mnist")
    assert [r["snakers4 (FMNIST)"] for r in fm] == [0.77, 0.80, 0.80]


def test_csv_content(projected):
    run, views, _ = projected
    test = datalib.load("digits", "test")
    idx = views["pca"].index
    labels = test.labels[idx].numpy()
    text = proj.to_csv(views, labels, test.class_names)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 200
    head = ["test_index", "label", "class", "pca_x", "pca_y", "umap_x", "umap_y",
            "model_x", "model_y", "z0", "z1", "z2", "z3"]  # fmt: skip
    assert list(rows[0]) == head
    for i in (0, 57, 199):
        r = rows[i]
        assert int(r["test_index"]) == idx[i] and int(r["label"]) == labels[i]
        assert r["class"] == test.class_names[labels[i]]
        assert float(r["umap_y"]) == pytest.approx(views["umap"].xy[i, 1], rel=1e-5, abs=1e-5)
        assert float(r["z2"]) == pytest.approx(views["model"].emb[i, 2], rel=1e-5, abs=1e-5)


def test_csv_quotes_class_names_with_commas(projected):
    _, views, _ = projected
    labels = np.zeros(200, dtype=int)
    text = proj.to_csv({"pca": views["pca"]}, labels, ['a "shirt", top'] + ["x"] * 9)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["class"] == 'a "shirt", top' and list(rows[0])[-1] == "pca_y"


def test_neighbours_are_nearest_first_and_exclude_the_image(projected):
    _, views, _ = projected
    v = views["model"]
    near = proj.neighbours(v, 10, k=8)
    assert len(near) == 8 and 10 not in near
    d = np.linalg.norm(v.emb - v.emb[10], axis=1)
    assert np.all(np.diff(d[near]) >= 0)
    others = np.delete(np.arange(200), np.r_[near, 10])
    assert d[near].max() <= d[others].min()


def test_sample_size_is_capped_and_checked():
    assert proj.sample_size(None, 360) == 360
    assert proj.sample_size(5000, 10000) == 5000
    assert proj.sample_size(100, 360) == 100
    with pytest.raises(ValueError, match="at least 1 image"):
        proj.sample_size(0, 360)
    np.testing.assert_array_equal(proj.sample_index(50, 80), np.arange(50))
    a, b = proj.sample_index(1000, 100, seed=0), proj.sample_index(1000, 100, seed=1)
    assert (np.diff(a) > 0).all() and not np.array_equal(a, b)


@pytest.mark.parametrize("family", ["mlp-vae", "gumbel-vae", "autodecoder", "cvae", "ae"])
def test_model_view_of_every_family(tiny_runs, tmp_path, family):
    run = copy_run(tiny_runs[family], tmp_path)
    model, _ = load_model(run.checkpoint_path)
    v = proj.compute_view(run, "model", 120, model=model)
    assert v.xy.shape == (120, 2) and v.emb.shape == (120, model.latent_dim)
    expect = "as is (2-D latent)" if model.latent_dim == 2 else "PCA to 2-D"
    assert v.how.endswith(expect)
    assert 0.0 <= v.knn <= 1.0


def test_model_view_is_recomputed_for_a_new_checkpoint(tiny_runs, tmp_path):
    run = copy_run(tiny_runs["ae"], tmp_path)
    proj.compute_view(run, "model", 100)
    first = list(run.cache_dir.glob("proj-model-*.npz"))
    assert len(first) == 1
    st = run.checkpoint_path.stat()
    os.utime(run.checkpoint_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # "resumed"
    proj.compute_view(run, "model", 100)
    second = list(run.cache_dir.glob("proj-model-*.npz"))
    assert len(second) == 1 and second[0].name != first[0].name


def test_unknown_view_and_missing_checkpoint(tiny_runs, tmp_path):
    run = copy_run(tiny_runs["ae"], tmp_path)
    with pytest.raises(ValueError, match="Unknown view 'tsne'"):
        proj.compute_view(run, "tsne", 100)
    with pytest.raises(ValueError, match="Unknown view 'tsne'"):
        proj.precompute(run, 100, views=("pca", "tsne"))
    run.checkpoint_path.unlink()
    with pytest.raises(ValueError, match="no checkpoint yet"):
        proj.precompute(run, 100)


def test_background_process_fills_the_cache(tiny_runs, tmp_path):
    # PCA and the model only: the machinery is the same as for UMAP, minus numba's compile
    run = copy_run(tiny_runs["mlp-vae"], tmp_path)
    pid = proj.start_background(run, 150, views=("pca", "model"))
    assert proj.start_background(run, 150, views=("pca", "model")) == pid  # no second process
    assert proj.progress(run, 150)["state"] == "running"
    deadline = time.time() + 180
    while proj.progress(run, 150)["state"] == "running" and time.time() < deadline:
        time.sleep(0.5)
    rec = proj.progress(run, 150)
    assert rec["state"] == "done", rec
    assert proj.load_view(run, "pca", 150, embed_dim=2) is not None
    assert proj.load_view(run, "model", 150, embed_dim=2) is not None


def test_cli(tiny_runs, tmp_path, capsys):
    run = copy_run(tiny_runs["mlp-vae"], tmp_path)
    assert proj.main([str(run.path), "--n", "100", "--views", "pca,model"]) == 0
    out = capsys.readouterr().out
    assert "PCA (pixels)" in out and "Model embedding" in out and "KNN accuracy" in out
    assert proj.main([str(tmp_path / "nope")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert proj.main([str(run.path), "--views", "pca,tsne"]) == 2
    assert "Unknown view 'tsne'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- progress
def test_progress_names_each_phase_in_order_and_never_goes_back(projected):
    run, views, _ = projected
    assert [r["phase"] for r in RECORDS][0] == "libraries"
    seen = list(dict.fromkeys(r["phase"] for r in RECORDS))
    assert seen == PHASES  # UMAP's 2-D view first, its full-dimensional KNN score last
    for key in ("fraction", "fraction_2d", "elapsed"):
        values = [r[key] for r in RECORDS]
        assert values == sorted(values), key
    assert all(0.0 <= r["fraction"] <= r["fraction_2d"] <= 1.0 for r in RECORDS)
    assert RECORDS[-1]["state"] == "done" and RECORDS[-1]["fraction"] == 1.0
    # umap-learn's optimisation epochs, as they ran: k/500 with k going up to 500
    epochs = [r["stage"] for r in RECORDS if r["phase"] == "2d-epochs"]
    assert epochs[-1] == "UMAP optimisation, epoch 500/500"
    ks = [int(s.split("epoch ")[1].split("/")[0]) for s in epochs]
    assert ks == sorted(ks) and ks[0] < 500
    assert any(r["stage"].startswith("UMAP of the test images: optimisation, epoch 100/100")
               for r in RECORDS)  # fmt: skip
    # the 2-D view is ready (and on disk) before PCA, the model and the KNN scores start
    first_pca = next(i for i, r in enumerate(RECORDS) if r["phase"] == "pca")
    assert RECORDS[first_pca]["ready_2d"] and RECORDS[first_pca]["fraction_2d"] == 1.0
    assert not any(r["ready_2d"] for r in RECORDS if r["phase"].startswith("2d-"))
    part = run.cache_dir / "proj2d-umap-n200-s0.npz"
    full = proj.cache_file(run, f"{proj.cache_key(run, 'umap', 200, 0, 4)}.npz")
    pca = proj.cache_file(run, f"{proj.cache_key(run, 'pca', 200, 0, 4)}.npz")
    assert part.stat().st_mtime_ns <= pca.stat().st_mtime_ns <= full.stat().st_mtime_ns
    np.testing.assert_array_equal(np.load(part)["xy"], views["umap"].xy)
