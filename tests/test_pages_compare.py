"""The Embeddings and Compare pages, headless through Streamlit's AppTest, on the tiny
digits runs. The views are precomputed first (UMAP on a few hundred digits: seconds, plus
numba's compilation on the first call), so the embedding page opens from a warm cache.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.text import md_escape
from core import data as datalib
from core import jobs
from core import projections as proj
from core.runs import Run
from core.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
EMBEDDINGS = str(ROOT / "pages" / "embeddings.py")
COMPARE = str(ROOT / "pages" / "compare.py")
N_TEST = 360  # the digits test split: the page's default 5,000 is capped to it


@pytest.fixture(scope="module")
def warm(tiny_runs):
    """The 4-D fcconv-vae run with every view of the default sample (and of 200) cached."""
    run = tiny_runs["fcconv-vae"]
    proj.precompute(run)
    proj.precompute(run, n=200)
    return run


def page(path: str, run: Run, **query) -> AppTest:
    at = AppTest.from_file(path, default_timeout=120)
    at.session_state["run_id"] = run.id
    for k, v in query.items():
        at.query_params[k] = str(v)
    return at.run()


def markdown_text(at) -> str:
    return "\n".join(m.value for m in at.markdown)


# ----------------------------------------------------------------------------- embeddings
def test_embeddings_page_from_a_warm_cache(runs_env, warm):
    t0 = time.perf_counter()
    at = page(EMBEDDINGS, warm)
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3  # PCA, UMAP, model side by side
    assert [s.value for s in at.subheader][:3] == [proj.TITLES[v] for v in proj.VIEWS]
    table = at.dataframe[0].value
    assert len(table) == 3 and list(table["view"]) == [proj.TITLES[v] for v in proj.VIEWS]
    assert at.number_input(key="emb_n").value == N_TEST
    assert at.query_params["n"] == str(N_TEST)
    assert "point" not in at.query_params
    assert len(at.get("download_button")) == 1
    assert any("Protocol: k = 5" in c.value for c in at.caption)
    assert not at.get("progress")  # UMAP came from the cache
    assert time.perf_counter() - t0 < 60


def test_shared_link_reopens_the_clicked_image(runs_env, warm):
    idx = proj.sample_index(N_TEST, 200)
    at = page(EMBEDDINGS, warm, n=200, point=int(idx[17]))
    assert not at.exception, at.exception
    assert at.number_input(key="emb_n").value == 200
    assert at.query_params["point"] == str(idx[17])
    text = markdown_text(at)
    assert f"Clicked image **#{idx[17]}**" in text
    for title in proj.TITLES.values():  # one row of neighbours per view
        assert f"**{title}**:" in text and "of 8 neighbours share its class" in text
    assert text.count("of 8 neighbours share its class") == 3
    assert len(at.dataframe[0].value) == 3


def test_point_outside_the_sample_and_bad_numbers_are_explained(runs_env, warm):
    outside = sorted(set(range(N_TEST)) - set(proj.sample_index(N_TEST, 200).tolist()))[0]
    at = page(EMBEDDINGS, warm, n=200, point=outside)
    assert not at.exception
    assert any(f"#{outside} is not in this sample" in w.value for w in at.warning)
    at = page(EMBEDDINGS, warm, n="lots")
    assert not at.exception
    assert any("Ignored ?n=lots" in w.value for w in at.warning)
    assert at.number_input(key="emb_n").value == N_TEST


def copy_runs(tiny_runs, names, dest: Path, monkeypatch) -> list[Run]:
    """Private copies of tiny runs (empty caches) in their own runs folder."""
    for name in names:
        src = tiny_runs[name].path
        shutil.copytree(src, dest / src.name, ignore=shutil.ignore_patterns("cache"))
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(dest))
    return [Run(dest / tiny_runs[name].id) for name in names]


def test_cold_umap_runs_in_the_background(tiny_runs, tmp_path, monkeypatch):
    """With no cache, PCA and the model draw at once and UMAP shows progress."""
    (run,) = copy_runs(tiny_runs, ["ae"], tmp_path, monkeypatch)
    at = page(EMBEDDINGS, run)
    try:
        assert not at.exception, at.exception
        assert len(at.get("plotly_chart")) == 2  # PCA and the model
        bars = at.get("progress")
        assert len(bars) == 1 and "UMAP runs in the background" in bars[0].proto.text
        assert len(at.dataframe[0].value) == 2  # the UMAP row lands with its view
        rec = proj.progress(run, N_TEST)
        assert rec["state"] == "running"
    finally:
        rec = proj.progress(run, N_TEST)
        if rec and rec.get("state") == "running":
            os.killpg(rec["pid"], signal.SIGTERM)  # the process this test started


# ----------------------------------------------------------------------------- compare
def test_compare_page(runs_env, tiny_runs):
    a, b = tiny_runs["mlp-vae"], tiny_runs["cvae"]
    at = page(COMPARE, a, other=b.id)
    assert not at.exception, at.exception
    assert at.selectbox[0].value == a.id and at.selectbox(key="cmp_other").value == b.id
    assert at.query_params["other"] == b.id
    assert len(at.get("plotly_chart")) == 1  # both loss curves on one chart
    assert [s.value for s in at.subheader] == [
        "Loss curves", "Test metrics", "Reconstructions of the same test images",
        "Decoded grids",
    ]  # fmt: skip
    captions = [c for im in at.get("image") for c in im.captions]
    assert len(captions) == 5  # originals, 2 reconstructions, 2 decoded grids
    assert captions[:3] == ["Originals", f"A: {md_escape(a.name)}", f"B: {md_escape(b.name)}"]
    assert "one column per label" in captions[4]  # the cvae's samples
    at.radio[0].set_value("Latent plane").run()
    assert not at.exception, at.exception
    captions = [c for im in at.get("image") for c in im.captions]
    assert sum("mean ± 2 SD" in c for c in captions) == 2


def test_compare_second_run_defaults_and_bad_link(runs_env, tiny_runs):
    a = tiny_runs["ae"]
    at = page(COMPARE, a, other="no-such-run")
    assert not at.exception
    bad = md_escape(repr("no-such-run"))  # the link's value, shown as text
    assert any(f"There is no run {bad}" in w.value for w in at.warning)
    assert at.selectbox(key="cmp_other").value != a.id
    at.selectbox(key="cmp_other").set_value(tiny_runs["gumbel-vae"].id).run()
    assert at.query_params["other"] == tiny_runs["gumbel-vae"].id
    at.radio[0].set_value("Latent plane").run()  # categorical latent: no plane, one sentence
    assert any("this one is categorical" in i.value for i in at.info)


def test_compare_evaluates_a_run_on_request(tiny_runs, tmp_path, monkeypatch):
    a, b = copy_runs(tiny_runs, ["mlp-vae", "ae"], tmp_path, monkeypatch)
    at = page(COMPARE, a, other=b.id)
    assert not at.exception
    assert a.evaluation() is None and not at.get("metric")
    at.button(key="cmp_eval_A").click().run()  # starts the background evaluation
    assert not at.exception, at.exception
    assert jobs.wait_evaluation(a, timeout=600)["state"] == "done"
    at.run()  # what the progress fragment does when the job ends
    assert not at.exception and not at.error, at.exception
    ev = a.evaluation()
    assert ev is not None and ev["test_images"] == N_TEST
    labels = [m.label for m in at.metric]
    assert "SSIM" in labels and "KNN accuracy (model)" in labels and "Active units" in labels
    ssim = next(m for m in at.metric if m.label == "SSIM")
    assert ssim.value == f"{ev['ssim']:.3f}"
    # A's "Not evaluated yet" and its button gave way to the metrics; B's are still there
    assert [b.key for b in at.button if str(b.key).startswith("cmp_eval")] == ["cmp_eval_B"]
    assert sum("Not evaluated yet" in c.value for c in at.caption) == 1


def metrics_column(at: AppTest, tag: str):
    """The "Test metrics" column of run ``tag`` (A or B): the one that starts with its name."""
    for col in at.columns:
        if col.markdown and col.markdown[0].value.startswith(f"**{tag}: "):
            return col
    raise AssertionError(f"no Test metrics column for {tag}")


def test_compare_evaluate_click_puts_progress_in_the_offers_place(tiny_runs, tmp_path, monkeypatch):
    """Issue 16, item 6: the page drawn right after "Evaluate A" holds A's progress where
    its "Not evaluated yet" and button were (the click's callback starts the job before the
    page is drawn; nothing is left above the progress, then the metrics), and a click that
    cannot start a job says why in one sentence."""
    a, b = copy_runs(tiny_runs, ["mlp-vae", "ae"], tmp_path, monkeypatch)
    at = page(COMPARE, a, other=b.id)
    col_a = metrics_column(at, "A")
    assert [c.value for c in col_a.caption][0].startswith("Not evaluated yet")
    assert [x.key for x in col_a.button] == ["cmp_eval_A"]

    at.button(key="cmp_eval_A").click().run()
    assert not at.exception, at.exception
    assert jobs.evaluation_state(a)["state"] in ("queued", "running", "done")
    col_a = metrics_column(at, "A")
    assert not col_a.button and not any("Not evaluated" in c.value for c in col_a.caption)
    shown = [i.value for i in col_a.info] + [m.label for m in col_a.metric]
    assert shown and (
        shown[0].startswith(("Starting the evaluation", "Evaluating on the test split"))
        or "SSIM" in shown
    ), shown
    assert [x.key for x in metrics_column(at, "B").button] == ["cmp_eval_B"]  # B untouched
    assert jobs.wait_evaluation(a, timeout=600)["state"] == "done"
    at.run()  # what the progress fragment does when the job ends
    col_a = metrics_column(at, "A")
    assert not col_a.info and not col_a.button and "SSIM" in [m.label for m in col_a.metric]

    # B's checkpoint goes after its button was drawn: the click is refused in one sentence
    b.checkpoint_path.rename(b.path / "elsewhere.pt")
    at.button(key="cmp_eval_B").click().run()
    assert not at.exception, at.exception
    col_b = metrics_column(at, "B")
    why = "This run has no checkpoint yet: wait for its first epoch."  # shown as text
    assert [e.value for e in col_b.error] == [f"The evaluation could not start: {md_escape(why)}"]
    assert [i.value for i in col_b.info] == ["No checkpoint yet: wait for its first epoch."]
    at.run()  # said once
    assert not metrics_column(at, "B").error


def test_compare_runs_on_different_datasets(tiny_runs, tmp_path, monkeypatch):
    """A real one-epoch Fashion-MNIST run beside a digits run: no common test images."""
    try:
        datalib.load("fashion-mnist", "test")
    except datalib.DatasetError as e:
        pytest.skip(str(e))
    (digits,) = copy_runs(tiny_runs, ["mlp-vae"], tmp_path, monkeypatch)
    cfg = TrainConfig(dataset="fashion-mnist", model="mlp-vae", epochs=1, batch_size=128,
                      train_size=256, val_size=64)  # fmt: skip
    fm = train(cfg, {"latent_dim": 2, "hidden_dim": 16}, name="fm-tiny", root=tmp_path)
    at = page(COMPARE, digits, other=fm.id)
    assert not at.exception, at.exception
    assert any("different datasets (digits and fashion-mnist)" in i.value for i in at.info)
    assert len(at.get("image")) == 2  # the two decoded grids, no reconstructions


def test_the_evaluation_clock_runs_from_the_press():
    """While the worker is still loading PyTorch the job is queued: the clock runs then too,
    so a 10 s start does not look stuck; a malformed start time shows no clock."""
    from app.evaluation_ui import evaluation_text

    t0 = 1_000_000.0
    queued = evaluation_text({"state": "queued", "started_at": t0}, now=t0 + 7.9)
    assert queued == "Starting the evaluation process (loading PyTorch)… 0:07"
    running = evaluation_text({"state": "running", "started_at": t0, "judge": True}, now=t0 + 75)
    assert running.startswith("Evaluating on the test split… 1:15 (a conditional model")
    assert evaluation_text({"state": "running", "started_at": True}) == (
        "Evaluating on the test split…"
    )
