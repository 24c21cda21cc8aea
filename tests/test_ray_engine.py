"""Training on a Ray cluster (core.ray_engine), on a real Ray head started here on
127.0.0.1 with one CPU: runs train there into the same run store (state, curves,
checkpoint), resume there, wait in Ray's queue and can be cancelled while waiting or while
training; killing the launcher ends the task (the run reads as interrupted and resumes); a
cluster that cannot be reached or is too small for the run is one sentence."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil
import pytest

from core import jobs, queue, ray_engine
from core.runs import load_model
from core.store import lock as locks
from tests.browser import free_port, wait_until
from tests.ray_head import local_ray_head
from tests.test_queue import ARGS, DIGITS, paused_pid

ray = pytest.importorskip("ray", reason="Ray is the optional extra (requirements-ray.txt)")


@pytest.fixture(scope="module")
def ray_head():
    """A real Ray head on loopback with one CPU (so a second run waits in Ray's queue),
    whose workers start at nice 0 (Ray's default is 15), so the trainer's own shows."""
    with local_ray_head(cpus=1, worker_niceness=0) as address:
        yield address


@pytest.fixture
def on_ray(ray_head, monkeypatch, tmp_path):
    monkeypatch.setenv(ray_engine.ENV_ADDRESS, ray_head)
    monkeypatch.setenv("LATENTLAB_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("LATENTLAB_THREADS_PER_RUN", "1")
    root = tmp_path / "runs"
    root.mkdir()
    return root


@pytest.fixture
def paused(monkeypatch, tmp_path):
    """Trainers started from here pause at a point until the test removes the marker file
    (core.store.faults; the variables reach the Ray worker with the lab's others)."""
    mark = tmp_path / "paused"

    def at(point: str):
        monkeypatch.setenv("LATENTLAB_FAULT_PAUSE", point)
        monkeypatch.setenv("LATENTLAB_FAULT_MARK", str(mark))
        return mark

    return at


def test_the_address_comes_from_the_environment_or_the_file(tmp_path):
    conf = tmp_path / "latentlab.toml"
    conf.write_text('[ray]\naddress = "10.0.0.5:6379"\n')
    assert ray_engine.address({"LATENTLAB_CONFIG": str(conf)}) == "10.0.0.5:6379"
    env = {"LATENTLAB_CONFIG": str(conf), "LATENTLAB_RAY_ADDRESS": "auto"}
    assert ray_engine.address(env) == "auto"  # the environment beats the file
    assert ray_engine.address({"LATENTLAB_CONFIG": str(tmp_path / "none.toml")}) is None
    conf.write_text('[ray]\naddress = " 10.0.0.5:6379 "\n')
    assert ray_engine.address({"LATENTLAB_CONFIG": str(conf)}) == "10.0.0.5:6379"
    conf.write_text("[ray]\naddress = 6379\n")
    with pytest.raises(queue.QueueConfigError, match=r"must be host:port or auto, got 6379\."):
        ray_engine.address({"LATENTLAB_CONFIG": str(conf)})
    with pytest.raises(queue.QueueConfigError, match=r"Ray Client address .* host:port"):
        ray_engine.address({ray_engine.ENV_ADDRESS: "ray://10.0.0.5:10001"})


def test_a_task_goes_where_one_node_has_all_it_needs():
    gpu_node = {"CPU": 4, "GPU": 1, "memory": 16e9}
    cpu_node = {"CPU": 32, "memory": 256e9}
    assert ray_engine._fits([gpu_node, cpu_node], {"CPU": 8, "GPU": 0, "memory": 20e9})
    # 8 CPUs and a GPU: each exists somewhere, but on no one node
    assert not ray_engine._fits([gpu_node, cpu_node], {"CPU": 8, "GPU": 1, "memory": None})
    assert ray_engine._fits([gpu_node, cpu_node], {"CPU": 2, "GPU": 1, "memory": 1e9})


def test_a_run_trains_on_the_cluster_and_resumes_there(on_ray, monkeypatch):
    from core import projections as proj

    monkeypatch.setenv("LATENTLAB_PRECOMPUTE_VIEWS", "1")
    run = jobs.start(DIGITS, ARGS, "on-ray", root=on_ray)
    st = jobs.wait(run, timeout=180)
    assert st["state"] == "done", st
    assert st["engine"] == "ray" and st["node"]  # trained by a Ray task, on that node
    assert [m["epoch"] for m in run.metrics()] == [1, 2]  # the curves, as for a local run
    model, ck = load_model(run.checkpoint_path)
    assert ck["epoch"] == 2 and model.latent_dim == 2
    assert queue.waiting(on_ray) == []
    # the Embeddings views start on the server once the task is done (not as a child of
    # the Ray worker, which Ray ends with it)
    wait_until(lambda: proj.progress(run, proj.DEFAULT_N) is not None, 60, "the views' job")
    wait_until(lambda: not run.busy, 60, "the launcher to end")
    time.sleep(3)  # a child of the Ray worker would have been ended by now
    rec = proj.progress(run, proj.DEFAULT_N)
    try:
        assert rec["state"] in ("running", "done"), rec
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(rec["pid"], signal.SIGTERM)  # the test's, and two cores are few
    monkeypatch.setenv("LATENTLAB_PRECOMPUTE_VIEWS", "0")

    jobs.resume(run, 3)  # resume goes to the cluster too, from the checkpoint there
    assert jobs.wait(run, timeout=180)["state"] == "done"
    assert [m["epoch"] for m in run.metrics()] == [1, 2, 3]
    assert load_model(run.checkpoint_path)[1]["epoch"] == 3


def test_rays_queue_cancel_while_waiting_and_while_training(on_ray, paused, monkeypatch):
    """Two runs on a one-CPU cluster: the second waits in Ray's queue, said on the Train
    page, whose Cancel takes it out; the first is cancelled while training."""
    from tests.test_pages_app import button, open_page

    mark = paused("setup")
    a = jobs.start(DIGITS, ARGS, "a", root=on_ray)
    worker = paused_pid(mark)  # a's trainer: a Ray worker process, holding the only CPU
    assert psutil.Process(worker).cmdline()[0].startswith("ray::")
    assert psutil.Process(worker).nice() == max(10, os.nice(0))  # the lab's, below pages
    launcher = locks.trainer_process(a.path)
    assert launcher is not None and launcher.pid != worker  # only the launcher is signalled
    assert launcher.nice() == max(10, os.nice(0))  # a waiting Ray driver: below the pages
    b = jobs.start(DIGITS, ARGS, "b", root=on_ray)

    def waiting_text():
        return queue.describe(b.state()) or ""

    wait_until(lambda: "free" in waiting_text(), 60, "b to wait in Ray's queue")
    assert waiting_text() == (
        "Waiting for the Ray cluster: Ray's scheduler starts it when a node has 1 CPU, "
        f"{round(b.status()['memory_needed'] / 1e6)} MB of memory free."
    )
    assert queue.waiting(on_ray) == []  # not in this server's own line
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(on_ray))
    at = open_page("train", **{"train.requested": b.id})  # the Train page says the same
    [bar] = at.get("progress")
    assert bar.proto.text == waiting_text()

    button(at, "Cancel").click().run()  # still in Ray's queue: taken out of it
    st = jobs.wait(b, timeout=60)
    assert st["state"] == "cancelled"
    assert st["message"] == "cancelled while waiting for the Ray cluster"
    assert not b.has_checkpoint()

    jobs.cancel(a)  # training (paused at its setup): it stops at its first look at CANCEL
    mark.unlink()
    st = jobs.wait(a, timeout=120)
    assert st["state"] == "cancelled", st
    wait_until(lambda: not psutil.pid_exists(worker), 60, "the worker to end")


def test_killing_the_launcher_ends_the_task_and_the_run_resumes(on_ray, paused, monkeypatch):
    mark = paused("after-checkpoint")  # the first epoch's checkpoint is on disk
    run = jobs.start(DIGITS, ARGS, "killed", root=on_ray)
    worker = paused_pid(mark)
    launcher = locks.trainer_process(run.path)
    os.kill(launcher.pid, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(worker), 60, "Ray to end the launcher's task")
    st = jobs.refresh(run)
    assert st["state"] == "interrupted" and st["resumable"], st
    mark.unlink()
    monkeypatch.delenv("LATENTLAB_FAULT_PAUSE")
    jobs.resume(run, 2)
    assert jobs.wait(run, timeout=180)["state"] == "done"
    assert load_model(run.checkpoint_path)[1]["epoch"] == 2


def test_a_cluster_too_small_or_not_there_is_one_sentence(on_ray, ray_head, monkeypatch):
    monkeypatch.setenv("LATENTLAB_THREADS_PER_RUN", "4")  # the head has one CPU
    st = jobs.wait(jobs.start(DIGITS, ARGS, "big", root=on_ray), timeout=120)
    assert (st["state"], st["message"]) == ("failed", (
        "No Ray node is big enough for this run: it needs 4 CPUs, "
        f"{round(st['memory_needed'] / 1e6)} MB of memory on one node; lower the threads per "
        "run or add a bigger node."))  # fmt: skip
    monkeypatch.setenv("LATENTLAB_THREADS_PER_RUN", "1")
    conf = on_ray.parent / "latentlab.toml"  # a bad address in the file, read by the launcher
    conf.write_text('[ray]\naddress = "ray://10.0.0.5:10001"\n')
    monkeypatch.setenv("LATENTLAB_CONFIG", str(conf))
    monkeypatch.delenv(ray_engine.ENV_ADDRESS)
    st = jobs.wait(jobs.start(DIGITS, ARGS, "client", root=on_ray), timeout=120)
    assert st["state"] == "failed" and "is a Ray Client address" in st["message"], st
    monkeypatch.setenv(ray_engine.ENV_ADDRESS, f"127.0.0.1:{free_port()}")  # nobody there
    st = jobs.wait(jobs.start(DIGITS, ARGS, "nowhere", root=on_ray), timeout=180)
    assert st["state"] == "failed"
    assert st["message"].startswith("Could not reach the Ray cluster at 127.0.0.1:")
