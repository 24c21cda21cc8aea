"""Disk full in the middle of a run (a small tmpfs, mounted when running as root): the run
is marked failed with "no space left on device: free space and resume", temp files are
removed, the previous checkpoint stays intact, every page keeps serving, and once space is
freed the run resumes to the end."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.runs import list_runs, read_checkpoint

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\1" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def _env(**extra):
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **extra)


ARGS = ["--dataset", "digits", "--model", "mlp-vae", "--latent-dim", "2", "--hidden-dim",
        "256", "--batch-size", "256", "--val-size", "100", "--epochs", "3", "--quiet"]  # fmt: skip


@pytest.mark.parametrize("point", ["after-metrics", "before-checkpoint", "mid-epoch"])
def test_disk_full_fails_cleanly_and_resumes(point, small_disk, finished_run, tmp_path,
                                             monkeypatch):  # fmt: skip
    root = small_disk / "runs"
    root.mkdir()
    earlier = root / "20000101-000000-earlier"
    shutil.copytree(finished_run.path, earlier, ignore=shutil.ignore_patterns(".lock"))
    earlier_files = {p.name: p.read_bytes() for p in earlier.iterdir() if p.is_file()}
    mark = tmp_path / "paused"
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.train", *ARGS, "--runs-dir", str(root), "--name", "full"],
        cwd=ROOT, env=_env(LATENTLAB_FAULT_PAUSE=point, LATENTLAB_FAULT_MARK=str(mark)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 240
    while not mark.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline
        time.sleep(0.05)
    run = next(r for r in list_runs(root) if "full" in r.id)
    ckpt_before = run.checkpoint_path.read_bytes() if run.has_checkpoint() else None
    filler = _fill(small_disk)
    mark.unlink()  # go on, into a full disk
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 1, (out, err)
    assert "no space left on device: free space and resume" in err
    assert "Traceback" not in err
    st = run.state()
    assert st["state"] == "failed" and "no space left on device" in st["message"], st
    assert not list(run.path.rglob("*.tmp")), "temp files left behind"
    if ckpt_before is not None:
        assert run.checkpoint_path.read_bytes() == ckpt_before  # the last good epoch, intact
        read_checkpoint(run.checkpoint_path)

    # every page keeps serving while the disk is full (reading a run never writes)
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(root))
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.session_state["train.watch"] = run.id
    at.session_state["runs.target"] = run.id
    at.run()
    for page in ("train", "runs", "explore", "embeddings", "compare"):
        at.switch_page(f"../pages/{page}.py")
        at.run()
        assert not at.exception, (page, [e.message for e in at.exception])

    filler.unlink()  # free space, then resume (or restart) to the end
    how = ["--resume", str(run.path)] if run.has_checkpoint() else ["--run-dir", str(run.path)]
    done = subprocess.run(
        [sys.executable, "-m", "core.train", *how, "--epochs", "3", "--quiet"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert run.state()["state"] == "done"
    assert [r["epoch"] for r in run.metrics()] == [1, 2, 3]
    assert {p.name: p.read_bytes() for p in earlier.iterdir() if p.is_file()} == earlier_files
