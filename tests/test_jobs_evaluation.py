"""Evaluation as a background job (core.jobs.start_evaluation / evaluation_state): the
worker's result equals an in-process evaluation, one job per run at a time, a killed worker
reads as failed, and a read-only pretrained run is evaluated into runs/_cache/<id>/."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest

from core import jobs
from core.evaluate import evaluate
from core.runs import Run
from core.train import TrainConfig, train
from tests.conftest import ROOT

TIMEOUT = 600  # seconds: the worker imports torch and sklearn, slow on a busy machine


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Run:
    cfg = TrainConfig(dataset="digits", model="mlp-vae", epochs=2, batch_size=128, val_size=100)
    return train(cfg, {"latent_dim": 2, "hidden_dim": 16}, root=tmp_path_factory.mktemp("runs"))


def copy_of(run: Run, dest: Path) -> Run:
    shutil.copytree(run.path, dest / run.id, ignore=shutil.ignore_patterns("cache"))
    return Run(dest / run.id)


def workers(run: Run) -> list[psutil.Process]:
    """Live evaluation workers of ``run`` (children of this process)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            cmd, zombie = p.cmdline(), p.status() == psutil.STATUS_ZOMBIE
            if "core.evaluate" in cmd and str(run.path.resolve()) in cmd and not zombie:
                out.append(p)
        except psutil.Error:
            pass
    return out


def without_timing(ev: dict) -> dict:
    return {k: v for k, v in ev.items() if k not in ("seconds", "target")}


def test_background_evaluation_equals_in_process(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(tmp_path))
    run = copy_of(tiny_run, tmp_path)
    assert jobs.evaluation_state(run)["state"] == "none"
    started = jobs.start_evaluation(run, judge=False)
    assert started["state"] in jobs.EVAL_LIVE and started["alive"]
    assert started["judge"] is False and isinstance(started["started_at"], float)
    st = jobs.wait_evaluation(run, TIMEOUT)
    assert st["state"] == "done", st
    assert not st["alive"] and st["message"].startswith("evaluated in")
    saved = json.loads((run.cache_dir / "evaluation.json").read_text())
    here = evaluate(run.path, save=False, judge=False)
    assert without_timing(saved) == without_timing(json.loads(json.dumps(here)))
    assert Path(saved["target"]).resolve() == Path(here["target"]).resolve()
    assert run.evaluation() == saved
    status = json.loads((run.cache_dir / jobs.EVAL_STATUS).read_text())
    assert status["state"] == "done" and status["started_at"] == started["started_at"]


def test_one_job_at_a_time_and_a_killed_worker_reads_as_failed(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(tmp_path))
    mark = tmp_path / "paused"
    monkeypatch.setenv("LATENTLAB_FAULT_PAUSE", "evaluation")  # the worker waits there
    monkeypatch.setenv("LATENTLAB_FAULT_MARK", str(mark))
    run = copy_of(tiny_run, tmp_path)
    first = jobs.start_evaluation(run, judge=False)
    t0 = time.time()
    while not mark.exists():
        assert time.time() - t0 < TIMEOUT, jobs.evaluation_state(run)
        time.sleep(0.1)
    st = jobs.evaluation_state(run)
    assert st["state"] == "running" and st["alive"] and st["pid"] == first["pid"]
    assert int(mark.read_text()) == first["pid"]

    again = jobs.start_evaluation(run, judge=False)  # returns the running one
    assert again["pid"] == first["pid"] and again["state"] == "running"
    [worker] = workers(run)
    assert worker.pid == first["pid"]

    os.kill(first["pid"], signal.SIGKILL)
    t0 = time.time()
    while (st := jobs.evaluation_state(run))["state"] != "failed":
        assert time.time() - t0 < 60, st
        time.sleep(0.1)
    assert st == {**st, "alive": False, "message": jobs.EVAL_DEAD}
    assert not (run.cache_dir / "evaluation.json").exists()
    assert run.evaluation() is None


def snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def test_a_pretrained_run_is_evaluated_into_its_cache_folder(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(runs))
    src = ROOT / "pretrained" / "digits-mlp-vae-2d"
    entry = tmp_path / "pretrained" / src.name
    shutil.copytree(src, entry)
    (entry / "cache" / "evaluation.json").unlink(missing_ok=True)  # not evaluated yet
    run = Run(entry)
    assert run.readonly and run.evaluation() is None
    before = snapshot(entry)

    jobs.start_evaluation(run, judge=False)
    st = jobs.wait_evaluation(run, TIMEOUT)
    assert st["state"] == "done", st
    cache = runs / "_cache" / run.id
    assert run.cache_dir.resolve() == cache.resolve()
    written = {p.name for p in cache.iterdir()}
    assert {jobs.EVAL_STATUS, jobs.EVAL_LOCK, "evaluation.json"} <= written
    assert snapshot(entry) == before  # nothing written in the read-only entry
    ev = run.evaluation()
    assert ev == json.loads((cache / "evaluation.json").read_text())
    assert ev["model"] == "mlp-vae" and ev["test_images"] == 360
