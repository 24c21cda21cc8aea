"""The training queue (core.queue) with real trainer processes: at most N runs train at
once, the rest wait in FIFO order with their place in status.json, cancel works while
waiting, a killed trainer frees its slot, memory is checked before a run starts, and the
settings come from the environment, a TOML file or the hardware."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from core import jobs, queue
from core.runs import Run
from core.store import lock as locks
from core.train import TrainConfig, new_run_config
from tests.browser import wait_until

DIGITS = TrainConfig(dataset="digits", model="mlp-vae", epochs=2, batch_size=64, val_size=100)
ARGS = {"latent_dim": 2, "hidden_dim": 16}


# ----------------------------------------------------------------------------- settings
def test_settings_from_environment_file_and_hardware(tmp_path):
    conf = tmp_path / "latentlab.toml"
    conf.write_text("[queue]\nmax_runs = 3\nthreads_per_run = 2\n")
    env = {"LATENTLAB_CONFIG": str(conf), "CUDA_VISIBLE_DEVICES": ""}
    assert queue.settings(env) == queue.Settings(slots=3, threads=2, gpus=0)
    env["LATENTLAB_MAX_RUNS"] = "5"  # the environment beats the file
    assert queue.settings(env).slots == 5
    bare = {"LATENTLAB_CONFIG": str(tmp_path / "none.toml"), "CUDA_VISIBLE_DEVICES": ""}
    assert queue.settings(bare) == queue.Settings(os.cpu_count() or 1, 1, 0)  # cores / 1
    bare["CUDA_VISIBLE_DEVICES"] = "0,1"
    assert queue.settings(bare) == queue.Settings(2, 1, 2)  # one run per GPU
    assert queue.settings(bare).nice == 10  # trainers give way to the server's pages
    conf.write_text("[queue]\ntrain_nice = 0\n")
    assert queue.settings(env).nice == 0
    assert queue.settings({**env, "LATENTLAB_TRAIN_NICE": "19"}).nice == 19


BAD = [("LATENTLAB_MAX_RUNS", v, "1 to 1024") for v in ("0", "-1", "two", "1.5", "99999")]
BAD += [("LATENTLAB_TRAIN_NICE", v, "0 to 19") for v in ("-1", "20", "low", "5.0")]


@pytest.mark.parametrize(("var", "value", "allowed"), BAD)
def test_a_bad_setting_is_one_sentence(tmp_path, var, value, allowed):
    env = {"LATENTLAB_CONFIG": str(tmp_path / "none.toml"), var: value}
    with pytest.raises(queue.QueueConfigError) as e:
        queue.settings(env)
    assert str(e.value) == (
        f"{var} (environment) must be a whole number from {allowed}, got {value!r}."
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("[queue\n")
    with pytest.raises(queue.QueueConfigError, match="could not be read as TOML"):
        queue.settings({"LATENTLAB_CONFIG": str(bad)})


def test_describe_says_the_place_and_the_estimate():
    st = {"state": "queued", "phase": "waiting", "queue_position": 1, "slots": 2,
          "expected_start": 1065.0}  # fmt: skip
    assert queue.describe(st, now=1000.0) == (
        "Waiting in the queue: place 1 (next); 2 runs train at once here; expected to start "
        "in about 1:05."
    )
    st = {"state": "queued", "phase": "waiting", "queue_position": 3, "slots": 1}
    assert queue.describe(st, now=0) == (
        "Waiting in the queue: place 3; 1 run trains at once here; no start estimate until "
        "the runs ahead have measured progress."
    )
    assert queue.describe({"state": "running", "phase": "waiting"}) is None


# ----------------------------------------------------------------------------- real runs
@pytest.fixture
def one_slot(monkeypatch, tmp_path):
    """Trainers started from here see one slot, and pause as they start training until the
    test removes the marker file (core.store.faults: the "setup" point, reached once a
    trainer holds its slot)."""
    mark = tmp_path / "paused"
    monkeypatch.setenv("LATENTLAB_MAX_RUNS", "1")
    monkeypatch.setenv("LATENTLAB_FAULT_PAUSE", "setup")
    monkeypatch.setenv("LATENTLAB_FAULT_MARK", str(mark))
    monkeypatch.setenv("LATENTLAB_CONFIG", str(tmp_path / "none.toml"))
    root = tmp_path / "runs"
    root.mkdir()
    return root, mark


def paused_pid(mark: Path, timeout: float = 120) -> int:
    wait_until(mark.exists, timeout, "a trainer to pause at its setup")
    wait_until(lambda: mark.read_text().strip().isdigit(), 10, "the paused trainer's pid")
    return int(mark.read_text())


def place(run: Run):
    st = run.state()
    return st["state"], st.get("phase"), st.get("queue_position")


def test_runs_wait_in_fifo_order_and_cancel_works_while_waiting(one_slot):
    root, mark = one_slot
    a, b, c = (jobs.start(DIGITS, ARGS, name, root=root) for name in ("a", "b", "c"))
    pid = paused_pid(mark)
    assert pid == locks.owner(a.path)["pid"]  # a trains (paused), holding the one slot
    assert psutil.Process(pid).nice() == max(10, os.nice(0))  # below the server by default
    wait_until(lambda: place(b) == ("queued", "waiting", 1), 60, "b to wait first in line")
    wait_until(lambda: place(c) == ("queued", "waiting", 2), 60, "c to wait second")
    assert queue.busy_slots(root, 1) == 1
    assert "place 2" in queue.describe(c.state())
    waiter = psutil.Process(locks.owner(c.path)["pid"])
    assert waiter.memory_info().rss < 150e6  # a waiting run has not imported torch

    jobs.cancel(c)  # while it waits: SIGTERM to its verified process
    assert jobs.wait(c, timeout=60)["state"] == "cancelled"
    assert c.state()["message"] == "cancelled while waiting in the queue"
    assert not {"phase", "queue_position", "expected_start"} & set(c.status())  # out of line
    assert not c.has_checkpoint()

    mark.unlink()  # a goes on and finishes; then b takes the slot and pauses in turn
    assert paused_pid(mark) == locks.owner(b.path)["pid"]
    assert jobs.refresh(a)["state"] == "done"
    mark.unlink()
    assert jobs.wait(b, timeout=180)["state"] == "done"
    assert b.status()["started_at"] > a.status()["updated_at"] - 1  # one after the other


def test_a_killed_trainer_frees_its_slot(one_slot):
    root, mark = one_slot
    a, b = (jobs.start(DIGITS, ARGS, name, root=root) for name in ("a", "b"))
    pid = paused_pid(mark)
    wait_until(lambda: place(b) == ("queued", "waiting", 1), 60, "b to wait")
    mark.unlink()
    os.kill(pid, signal.SIGKILL)  # kill -9 while it holds the slot: the kernel drops it
    assert paused_pid(mark) == locks.owner(b.path)["pid"]
    assert jobs.refresh(a)["state"] == "interrupted"
    mark.unlink()
    assert jobs.wait(b, timeout=180)["state"] == "done"


def test_a_run_waits_for_memory(tmp_path):
    """A run whose estimate exceeds the free memory waits (saying so) instead of starting,
    and its cancel ends the wait."""
    run = Run.create(new_run_config(DIGITS, ARGS), tmp_path / "runs", "big")
    run.set_status("queued", memory_needed=int(psutil.virtual_memory().total * 4))
    s = queue.Settings(slots=1, threads=1, gpus=0)
    out = {}

    def wait():
        try:
            out["fd"] = queue.wait_for_slot(run, s, poll=0.05)
        except queue.Cancelled:
            out["cancelled"] = True

    t = threading.Thread(target=wait)
    t.start()
    try:
        wait_until(lambda: "memory" in (queue.describe(run.status()) or ""), 30, "the note")
        assert queue.describe(run.status()).startswith("Waiting for memory: needs about ")
        assert queue.busy_slots(run.path.parent, 1) == 0
    finally:
        run.cancel_flag.touch()
        t.join(30)
        run.release()
    assert out == {"cancelled": True}


def test_waiting_runs_keep_their_place_without_the_server(one_slot):
    """The queue lives in the run store: a fresh reader (a restarted server) finds the
    same places; waiting processes do not belong to the process that started them."""
    root, mark = one_slot
    a, b = (jobs.start(DIGITS, ARGS, name, root=root) for name in ("a", "b"))
    paused_pid(mark)
    wait_until(lambda: place(b) == ("queued", "waiting", 1), 60, "b to wait")
    assert [r.name for r in queue.waiting(root)] == ["b"]
    again = Run(root / b.path.name)  # nothing shared with the Run objects above
    assert again.state()["state"] == "queued" and again.status()["queue_position"] == 1
    waiter = psutil.Process(locks.owner(b.path)["pid"])
    assert os.getsid(waiter.pid) != os.getsid(0)  # its own session: outlives the server
    mark.unlink()
    paused_pid(mark)
    mark.unlink()
    for r in (a, b):
        assert jobs.wait(r, timeout=180)["state"] == "done"


def test_the_train_and_runs_pages_show_the_place_and_cancel_it(one_slot, monkeypatch):
    """A waiting run on the Train page: its place in the progress bar's text, and Cancel
    ends the wait; the Runs page's panel says the same."""
    from tests.test_pages_app import button, open_page

    root, mark = one_slot
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(root))
    a, b = (jobs.start(DIGITS, ARGS, name, root=root) for name in ("a", "b"))
    paused_pid(mark)
    wait_until(lambda: place(b) == ("queued", "waiting", 1), 60, "b to wait")
    at = open_page("train", **{"train.requested": b.id})
    [bar] = at.get("progress")
    assert bar.proto.text.startswith("Waiting in the queue: place 1 (next); 1 run trains")
    at = open_page("runs", **{"runs.requested": b.id})
    said = [re.sub(r"\\(.)", r"\1", i.value) for i in at.info]  # shown as text
    assert any(v.startswith("Waiting in the queue: place 1") for v in said), said
    at = open_page("train", **{"train.requested": b.id})
    button(at, "Cancel").click()
    at.run()
    assert jobs.wait(b, timeout=60)["state"] == "cancelled"
    mark.unlink()
    assert jobs.wait(a, timeout=180)["state"] == "done"


def test_a_bad_setting_fails_the_run_with_its_sentence(tmp_path, monkeypatch):
    """The waiting process refuses a bad LATENTLAB_MAX_RUNS: the run reads failed with the
    sentence (the launcher writes nothing after the spawn that could hide it)."""
    monkeypatch.setenv("LATENTLAB_MAX_RUNS", "0")
    run = jobs.start(DIGITS, ARGS, "x", root=tmp_path / "runs")
    st = jobs.wait(run, timeout=60)
    assert st["state"] == "failed", st
    assert st["message"] == (
        "LATENTLAB_MAX_RUNS (environment) must be a whole number from 1 to 1024, got '0'."
    )


def test_estimates_count_live_runs_and_a_resumed_runs_own_progress(tmp_path):
    st = {"state": "running", "step": 150, "total": 200, "started_at": 100.0, "start_step": 100}
    assert queue.remaining_seconds(st, now=150.0) == pytest.approx(50.0)  # 50 steps in 50 s
    assert queue.remaining_seconds({**st, "step": 100}, now=150.0) is None  # none measured yet
    root = tmp_path / "runs"
    dead = Run.create(new_run_config(DIGITS, ARGS), root, "killed")
    dead.set_status("running", **{k: v for k, v in st.items() if k != "state"})
    dead.release()  # its trainer is gone, though its status still says running
    assert queue.expected_start(root, 0, 1, now=150.0) is None
    live = Run.create(new_run_config(DIGITS, ARGS), root, "live")  # lock held: alive
    live.set_status("running", **{k: v for k, v in st.items() if k != "state"})
    assert queue.expected_start(root, 0, 1, now=150.0) == pytest.approx(200.0)
    live.release()


def test_the_queue_checks_memory_against_the_machine_not_the_moment():
    from core.config import ConfigError, validate_run

    with pytest.raises(ConfigError, match="is all this machine has: use a smaller model"):
        validate_run(DIGITS, ARGS, memory_limit=1000)


def test_background_views_wait_for_a_view_slot(tiny_runs, tmp_path, monkeypatch):
    """The Embeddings views a finished run starts are bounded like training: with every
    view slot held, a worker waits (computes nothing) until one is free."""
    from core import projections as proj
    from tests.test_projections import copy_run

    monkeypatch.setenv("LATENTLAB_MAX_RUNS", "1")
    monkeypatch.setenv("LATENTLAB_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "runs").mkdir()
    run = copy_run(tiny_runs["mlp-vae"], tmp_path / "runs")
    held = queue.take_slot(run.path.parent, 1, "views")
    try:
        pid = proj.start_background(run, 100, 0, ("pca",))
        time.sleep(3)  # an unbounded worker finishes a PCA of 100 images in this time
        assert psutil.pid_exists(pid)
        assert (proj.progress(run, 100) or {}).get("state") != "done"
    finally:
        os.close(held)
    wait_until(lambda: (proj.progress(run, 100) or {}).get("state") == "done", 120, "views")
