"""The progress of the Embeddings page's background views (``core.projection_progress``):
estimates that follow what was measured, the page's reading of them, the start at the end
of a training run (``core.projections.after_training``) and its switch
(``LATENTLAB_PRECOMPUTE_VIEWS``), and the page showing a real worker's epochs while it
runs (the worker held at an epoch by the fault point ``projection-epoch``).

The workers here are real ``python -m core.projections`` processes on the bundled digits;
numba's compilation is cached in the machine's numba folder after the first.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.embeddings_page import eta
from app.text import md_escape
from core import projections as proj
from core.projection_progress import Phase, Tracker
from core.runs import Run
from core.train import TrainConfig, train
from tests.test_projections import PHASES, copy_run

ROOT = Path(__file__).resolve().parent.parent
EMBEDDINGS = str(ROOT / "pages" / "embeddings.py")
N_TEST = 360  # the digits test split: the page's default 5,000 is capped to it


def stop_worker(run: Run, n: int = N_TEST) -> None:
    """End the worker this test started, if it still runs."""
    rec = proj.progress(run, n)
    if rec and rec.get("state") == "running":
        os.killpg(rec["pid"], signal.SIGTERM)


# ----------------------------------------------------------------------------- estimates
def test_estimates_follow_what_was_measured(tmp_path):
    # a clock we move by hand: the estimates are a function of what was measured
    now = [100.0]
    phases = [Phase("start", "start", 0.0), Phase("load", "load", 2.0, first=True),
              Phase("2d-epochs", "epochs", 10.0, first=True), Phase("pca", "pca", 4.0)]  # fmt: skip
    t = Tracker(tmp_path / "p.json", phases, 100.0, clock=lambda: now[0], n=1, seed=0)
    t.enter("load")
    assert t.estimates(now[0]) == (16.0, 12.0)  # the priors, before anything was measured
    busy = Tracker(tmp_path / "q.json", phases, 100.0, clock=lambda: now[0], speed0=2.0)
    assert busy.estimates(now[0]) == (32.0, 24.0)  # on a machine twice as loaded as idle
    now[0] = 104.0  # loading took 4 s against 2: this machine runs at half the priors' speed
    t.enter("2d-epochs", 0, 101)
    assert t.estimates(now[0]) == (4 + 20 + 8, 4 + 20)
    now[0] = 106.0  # the first epoch (numba compiling) is not a rate
    t.enter("2d-epochs", 1, 101)
    now[0] = 107.0  # then 10 epochs a second: 90 left take 9 s
    t.enter("2d-epochs", 11, 101)
    whole, first = t.estimates(now[0])
    assert first == pytest.approx(7 + 9) and whole == pytest.approx(7 + 9 + 8)
    rec = json.loads((tmp_path / "p.json").read_text())  # what a page polling it reads
    assert rec["stage"] == "epochs, epoch 11/101" and rec["estimate_2d_s"] == pytest.approx(16)
    now[0] = 116.0
    t.enter("pca")  # the 2-D view is ready: its time is known, no longer estimated
    assert t.estimates(now[0])[1] == pytest.approx(16.0) and t.seconds_2d == pytest.approx(16)
    done = t.finish()
    assert done["state"] == "done" and done["fraction"] == done["fraction_2d"] == 1.0


def test_page_eta_never_promises_less_than_has_passed():
    rec = {"started_at": 1000.0, "estimate_2d_s": 40.0, "fraction_2d": 0.3}
    assert eta(rec, 1010.0) == (0.3, 10.0, 40.0)
    assert eta(rec, 1030.0) == (0.75, 30.0, 40.0)
    share, elapsed, total = eta(rec, 1060.0)  # overran its estimate
    assert (elapsed, total) == (60.0, 61.0) and share < 1.0
    assert eta({"started_at": 1000.0}, 1005.0) == (0.0, 5.0, None)  # an older record


# ----------------------------------------------------------------------------- run end
def wait_for(check, what: str, limit: float = 300.0):
    """Poll ``check()`` until it returns something true (a generous limit, not a timing)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def tiny_digits_run(root: Path) -> Run:
    cfg = TrainConfig(dataset="digits", model="mlp-vae", epochs=1, batch_size=128, val_size=200)
    return train(cfg, {"latent_dim": 2, "hidden_dim": 32}, name="fresh", root=root)


def test_a_finished_run_starts_its_views_in_the_background(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("LATENTLAB_PRECOMPUTE_VIEWS", "1")
    run = tiny_digits_run(tmp_path)
    assert run.status()["state"] == "done"
    rec = proj.progress(run, proj.DEFAULT_N)  # 5,000 capped at the 360 test digits
    assert rec is not None and rec["n"] == N_TEST, "the run's end started nothing"
    assert rec["views"] == list(proj.VIEWS) and rec["pid"] != os.getpid()
    try:
        part = wait_for(lambda: proj.load_view(run, "umap", 360, 2), "the 2-D UMAP view")
        assert part.xy.shape == (360, 2) and part.how == proj.UMAP_2D_HOW
        done = wait_for(lambda: (r := proj.progress(run, 360))["state"] != "running" and r,
                        "the background job to finish")  # fmt: skip
    finally:
        rec = proj.progress(run, 360)
        if rec and rec.get("state") == "running":
            os.killpg(rec["pid"], signal.SIGTERM)  # the process this test started
    assert done["state"] == "done", done
    assert done["worker"] == {"nice": proj.NICE, "threads": 1}  # low priority, one thread
    assert [k for k, _ in done["phases"]] == ["start", *PHASES]
    assert done["seconds"] >= done["estimate_2d_s"] > 0  # the 2-D view came first
    for name in proj.VIEWS:
        view = proj.load_view(run, name, 360, 2)
        assert view is not None and view.scored and 0 <= view.knn <= 1, name
    assert (run.cache_dir / "sheet-n360-s0.png").exists()


@pytest.mark.parametrize("value", ["0", "off"])
def test_the_switch_off_starts_nothing(tmp_path, monkeypatch, value):
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("LATENTLAB_PRECOMPUTE_VIEWS", value)
    run = tiny_digits_run(tmp_path)
    assert run.status()["state"] == "done"
    # start_background claims the sample before it returns, so nothing now is nothing later
    assert proj.progress(run, 360) is None
    assert not list(run.cache_dir.glob("progress-*")) and not list(run.cache_dir.glob("proj*"))
    assert proj.after_training(run) is None


# ----------------------------------------------------------------------------- the page
def test_page_draws_the_2d_umap_before_its_knn_score(tiny_runs, tmp_path, monkeypatch):
    run = copy_run(tiny_runs["ae"], tmp_path)
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(tmp_path))
    proj.umap_2d_view(run, 360)  # only the 2-D part is in the cache
    at = AppTest.from_file(str(ROOT / "pages" / "embeddings.py"), default_timeout=120)
    at.session_state["run_id"] = run.id
    at.run()
    try:
        assert not at.exception, at.exception
        assert len(at.get("plotly_chart")) == 3  # PCA, UMAP's 2-D view and the model
        assert not at.get("progress")
        table = at.dataframe[0].value
        assert list(table["view"]) == [proj.TITLES["pca"], proj.TITLES["model"]]
        captions = [c.value for c in at.caption]
        assert any(c.endswith(proj.UMAP_2D_HOW) and c.startswith("2-D view in") for c in captions)
        assert any(c.startswith("UMAP's KNN score is being computed in the background")
                   for c in captions)  # fmt: skip
        rec = proj.progress(run, 360)
        assert rec["state"] == "running" and rec["views"] == ["umap"]
    finally:
        rec = proj.progress(run, 360)
        if rec and rec.get("state") == "running":
            os.killpg(rec["pid"], signal.SIGTERM)  # the process this page started


def epoch_of(rec: dict) -> tuple[int, int]:
    """(k, total) of a record's ``stage`` during umap-learn's optimisation."""
    m = re.search(r"epoch (\d+)/(\d+)$", rec["stage"])
    assert m, rec["stage"]
    return int(m.group(1)), int(m.group(2))


def bar_of(at: AppTest) -> tuple[int, str]:
    (bar,) = at.get("progress")
    return bar.proto.value, bar.proto.text


def held_page(run: Run, mark: Path) -> tuple[dict, int, str, float, float]:
    """With the worker held at an epoch: its record, the page's bar (value, text) and the
    clock before and after the page ran."""
    wait_for(mark.exists, "the worker to stop at an epoch")
    rec = proj.progress(run, N_TEST)
    t0 = time.time()
    at = AppTest.from_file(EMBEDDINGS, default_timeout=120)
    at.session_state["run_id"] = run.id
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2  # PCA and the model; UMAP's chart waits
    return rec, *bar_of(at), t0, time.time()


def test_the_page_shows_the_workers_measured_epochs(tiny_runs, tmp_path, monkeypatch):
    run = copy_run(tiny_runs["ae"], tmp_path)
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(tmp_path))
    mark = tmp_path / "held"  # the worker waits at each epoch record it writes, but its first
    for k, v in {"PAUSE": "projection-epoch", "MARK": str(mark), "SKIP": "1"}.items():
        monkeypatch.setenv(f"LATENTLAB_FAULT_{k}", v)
    proj.start_background(run, N_TEST)  # what the end of a run starts
    try:
        rec, value, text, t0, t1 = held_page(run, mark)
        assert rec["state"] == "running" and rec["phase"] == "2d-epochs"
        k, total = epoch_of(rec)
        assert 1 <= k < total == 500  # a real epoch of umap-learn's optimisation
        said = md_escape(f"UMAP optimisation, epoch {k}/500")  # the bar's text is Markdown
        assert text.startswith(f"UMAP runs in the background: {said}.")
        # the estimate shown is the worker's, never less than what has passed
        lo, hi = eta(rec, t0)[2], eta(rec, t1)[2]
        shown = int(re.search(r"roughly (\d+) s in all", text).group(1))
        assert round(lo) - 1 <= shown <= round(hi) + 1, (text, rec)
        assert value >= int(100 * rec["fraction_2d"])

        mark.unlink()  # let it go on to its next epoch record: the progress moves forward
        rec2, value2, text2, *_ = held_page(run, mark)
        assert rec2["phase"] != "2d-epochs" or epoch_of(rec2)[0] > k
        assert rec2["fraction_2d"] >= rec["fraction_2d"] and rec2["updated_at"] > rec["updated_at"]
        if rec2["phase"] == "2d-epochs":  # still the 2-D view's optimisation: the bar says so
            assert md_escape(f"epoch {epoch_of(rec2)[0]}/500") + "." in text2 and value2 >= value

        def released():  # release the worker at every epoch record until the 2-D view lands
            mark.unlink(missing_ok=True)
            return proj.load_view(run, "umap", N_TEST, 3)

        part = wait_for(released, "UMAP's 2-D view")
        assert part.xy.shape == (N_TEST, 2) and not part.scored
        rec3 = wait_for(lambda: (r := proj.progress(run, N_TEST))["ready_2d"] and r, "the record")
        assert rec3["fraction_2d"] == 1.0 and rec3["fraction"] >= rec2["fraction"]
        # now measured, not estimated: from the worker's start to the view, its fit included
        assert part.seconds_2d <= rec3["estimate_2d_s"] <= rec3["elapsed"]
    finally:
        mark.unlink(missing_ok=True)
        stop_worker(run)
