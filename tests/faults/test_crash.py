"""kill -9 at every phase of a run, then resume (or restart): no epoch row repeated or lost,
and metrics, status and checkpoint agree. Real trainer processes, paused at a named point
(``core.store.faults``) so each kill lands exactly there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import jobs
from core.runs import Run, list_runs, read_checkpoint

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 3
ARGS = ["--dataset", "digits", "--model", "mlp-vae", "--latent-dim", "2", "--hidden-dim", "16",
        "--batch-size", "256", "--val-size", "100", "--quiet"]  # fmt: skip


def _env(**extra) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("LATENTLAB_FAULT_PAUSE", None)
    env.update(extra)
    return env


def _start_paused(root: Path, point: str, skip: int, tmp: Path) -> tuple[subprocess.Popen, Run]:
    mark = tmp / "paused"
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.train", *ARGS, "--epochs", str(EPOCHS),
         "--runs-dir", str(root), "--name", "victim"],
        cwd=ROOT, env=_env(LATENTLAB_FAULT_PAUSE=point, LATENTLAB_FAULT_SKIP=str(skip),
                           LATENTLAB_FAULT_MARK=str(mark)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 240
    while not mark.exists():
        if proc.poll() is not None:
            raise AssertionError(f"trainer ended before {point}: {proc.stderr.read().decode()}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError(f"trainer never reached {point}")
        time.sleep(0.05)
    runs = [r for r in list_runs(root) if "victim" in r.id]
    assert len(runs) == 1
    return proc, runs[0]


def _finish(run: Run) -> subprocess.CompletedProcess:
    st = run.state()
    how = ["--resume", str(run.path)] if st["resumable"] else ["--run-dir", str(run.path)]
    return subprocess.run(
        [sys.executable, "-m", "core.train", *how, "--epochs", str(EPOCHS), "--quiet"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _assert_consistent(run: Run) -> None:
    rows = run.metrics()
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    lines = [ln for ln in (run.path / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    assert len(lines) == EPOCHS, "a repeated or half-written metrics row survived"
    ck = read_checkpoint(run.checkpoint_path)
    st = run.state()
    assert st["state"] == "done" and st["epoch"] == ck["epoch"] == EPOCHS, st
    assert [r["epoch"] for r in ck["history"]] == [r["epoch"] for r in rows]
    assert ck["history"][-1]["train_loss"] == pytest.approx(rows[-1]["train_loss"])
    assert not [p.name for p in run.path.rglob("*.tmp")], "temp files left behind"


# (point, times to pass it first): every phase of a run's life, in the first and a later epoch
KILLS = [
    ("setup", 0),
    ("mid-epoch", 0),
    ("mid-epoch", 1),
    ("before-checkpoint", 0),
    ("before-checkpoint", 1),
    ("write:checkpoint.pt", 0),
    ("write:checkpoint.pt", 1),
    ("after-checkpoint", 0),
    ("after-checkpoint", 1),
    ("after-metrics", 0),
    ("after-metrics", 2),
    ("write:status.json", 0),
    ("write:recon.png", 1),
    ("write:config.json", 1),
    ("before-done", 0),
]


@pytest.mark.parametrize("point,skip", KILLS, ids=[f"{p}-{s}" for p, s in KILLS])
def test_kill_9_then_resume_keeps_one_row_per_epoch(point, skip, fault_root, earlier_run, tmp_path):
    proc, run = _start_paused(fault_root, point, skip, tmp_path)
    assert run.state()["state"] in ("queued", "running")  # the trainer owns it
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    st = run.state()
    assert st["state"] in ("interrupted", "done"), st
    if st["state"] == "interrupted":
        assert st["resumable"] == run.has_checkpoint() and st["restartable"] != st["resumable"]
        assert "delete it" in st["message"]
        done = _finish(run)
        assert done.returncode == 0, done.stderr[-2000:]
    _assert_consistent(run)


def test_resume_of_a_live_run_is_refused(fault_root, earlier_run, tmp_path):
    proc, run = _start_paused(fault_root, "mid-epoch", 0, tmp_path)
    try:
        before = (run.path / "metrics.jsonl").read_bytes()
        cli = subprocess.run(
            [sys.executable, "-m", "core.train", "--resume", str(run.path), "--epochs", "5"],
            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert cli.returncode == 2, cli.stderr
        assert "in use by another process" in cli.stderr and "Traceback" not in cli.stderr
        with pytest.raises(ValueError, match="still training"):
            jobs.resume(run, 5)
        with pytest.raises(ValueError, match="still training"):
            jobs.restart(run)
        with pytest.raises(ValueError, match="in use by another process"):
            run.delete()
        assert (run.path / "metrics.jsonl").read_bytes() == before
    finally:
        proc.kill()
        proc.wait()


def test_cancel_signals_only_the_verified_trainer(fault_root, earlier_run, tmp_path):
    proc, run = _start_paused(fault_root, "mid-epoch", 0, tmp_path)
    try:
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        # status.json names an unrelated live process, init and -1: none may be signalled
        for pid in (sleeper.pid, 1, 0):
            run.set_status("running", pid=pid)
            jobs.cancel(run)
            assert sleeper.poll() is None
        jobs.cancel(run)  # the real trainer holds the lock: it gets SIGTERM
        # paused at the fault point it cannot stop by itself: the SIGTERM handler asks it to
        # stop at the next batch, so kill it and check the unrelated process survived
        assert sleeper.poll() is None
        sleeper.kill()
    finally:
        proc.kill()
        proc.wait()
    assert run.state()["state"] in ("cancelled", "interrupted")
