"""Training on a Ray cluster, for a classroom that one server cannot carry.

With a Ray address configured (``LATENTLAB_RAY_ADDRESS``, or ``address`` in the ``[ray]``
table of the settings file ``core.queue`` reads), a run started from the app is trained by
a Ray task on the cluster instead of in the server's own queue. Everything else stays as
for a local run:

- ``core.jobs`` spawns ``python -m core.queue`` as always; that light process (no torch)
  owns the run's lock for the run's whole life, connects to the cluster, submits one task
  (``num_cpus`` = threads per run, one GPU when a node with one fits the run and its device
  is not cpu, and the memory the run needs as Ray's ``memory`` resource) and waits for it.
  Ray's scheduler keeps the line: there is no queue of ours on the cluster.
- The task trains with ``core.train`` into the same run directory, under the launcher's
  lock (``RunLock.delegate``: a random token in ``<run>/.delegate``, a guard against a stale
  task writing into a run that has a new owner, not a secret), and writes status.json,
  metrics.jsonl and the checkpoints there, so the pages show state, curves, cancel and
  resume unchanged. Every 2 s and before each checkpoint it checks that its launcher still
  holds the run, and stops when not (``LockLost``).
- Cancel: the CANCEL file stops a training task after its batch; a task still waiting for
  the cluster is taken out of Ray's queue (``ray.cancel``). Killing the launcher ends the
  task too (Ray ends the tasks of a driver that dies), so the run reads as interrupted and
  resumes from its last checkpoint.
- The Embeddings views of a finished run start here, on the server: Ray ends a finished
  worker's child processes.

Storage: the runs folder and the data folder must be the same POSIX path on the server and
on every Ray node, on a filesystem whose ``flock`` a node sees (one machine; across
machines, e.g. CephFS; NFS emulates flock with POSIX locks, which the lock hand-over does
not survive; only one machine has been tried). fsspec URLs are not supported: the run store
relies on atomic renames. Every node needs this repository importable and its requirements.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from pathlib import Path

from core.queue import (
    ENV_NICE,
    NICE,
    POLL,
    QueueConfigError,
    Settings,
    file_table,
    lower_priority,
    size_text,
)
from core.runs import FINISHED, Run
from core.store import lock as locks

ENV_ADDRESS = "LATENTLAB_RAY_ADDRESS"
CONNECT_TIMEOUT = 20  # seconds to reach the cluster before the run fails with one sentence


def address(environ=os.environ) -> str | None:
    """The Ray cluster runs are trained on, or None to train on this server."""
    value = environ.get(ENV_ADDRESS, "").strip()
    where = "environment"
    if not value:
        value, where = file_table(environ, "ray").get("address", ""), "config file"
        value = value.strip() if isinstance(value, str) else value
    if value in ("", None):
        return None
    if not isinstance(value, str) or len(value) > 200 or any(c.isspace() for c in value):
        raise QueueConfigError(
            f"The Ray address ({where}) must be host:port or auto, got {value!r:.60}."
        )
    if value.startswith("ray://"):  # Ray Client: another extra, and a dead driver's tasks
        raise QueueConfigError(  # live on for its reconnect grace period
            f"The Ray address ({where}) is a Ray Client address ({value:.60}), which the lab "
            "does not use: give the cluster's GCS address, host:port (port 6379 by default)."
        )
    return value


def _need_text(cpus: int, gpus: int, memory: int | None) -> str:
    parts = [f"{cpus} CPU{'s' if cpus != 1 else ''}"]
    if gpus:
        parts.append(f"{gpus} GPU")
    if memory:
        parts.append(f"{size_text(memory)} of memory")
    return ", ".join(parts)


def _worker_env(threads: int, nice: int = NICE) -> dict:
    """The settings a trainer on a Ray node must see as the launcher does: the lab's own
    variables, the data folder as an absolute path (the same on shared storage), threads,
    and the trainer's ``nice`` (``train_on_worker`` applies it)."""
    from core.data.registry import default_data_dir

    skip = (locks.FD_ENV, locks.DELEGATE_ENV, ENV_ADDRESS)
    env = {k: v for k, v in os.environ.items() if k.startswith("LATENTLAB_") and k not in skip}
    env["LATENTLAB_DATA_DIR"] = str(default_data_dir().resolve())
    env["LATENTLAB_PRECOMPUTE_VIEWS"] = "0"  # the launcher starts them (a worker's child dies)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    env[ENV_NICE] = str(nice)
    return env


def train_on_worker(argv: list[str], run_dir: str, env: dict, token: str) -> int:
    """The Ray task: train ``run_dir`` with ``core.train``'s arguments under the lock its
    launcher holds (``token``). Runs in a fresh worker process (``max_calls=1``)."""
    os.environ.update(env)
    os.environ[locks.DELEGATE_ENV] = token
    # below the pages of a server on the same node, as the local queue's trainers are (Ray
    # starts workers at 15 unless RAY_worker_niceness says less; a fresh worker each task)
    lower_priority(env.get(ENV_NICE, NICE))
    run = Run(Path(run_dir))
    node = socket.gethostname()
    if not run.cancel_flag.exists():
        run.set_status("queued", phase="starting", node=node,
                       message=f"starting on Ray node {node}")  # fmt: skip
    from core.train import main as train_main  # torch, on the worker only

    try:
        return train_main(argv)
    except KeyboardInterrupt:  # ray.cancel reached a task that had just started
        run.set_status("cancelled", message="cancelled as it started on the Ray cluster",
                       drop=("phase",))  # fmt: skip
        return 0


def _reachable(where: str) -> None:
    """Fail at once when nothing listens at a host:port address (Ray itself retries for
    minutes); ``auto`` is left to Ray."""
    host, _, port = where.rpartition(":")
    if where != "auto" and host and port.isdigit():
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()


def _nodes(ray) -> list[dict]:
    """The live nodes' resources (CPU, GPU, memory)."""
    return [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]


def _fits(nodes: list[dict], need: dict) -> bool:
    """Whether one node alone has every resource the task asks for (Ray places a task on
    one node; a task no node fits would wait in its queue for ever)."""
    return any(all(node.get(k, 0) >= v for k, v in need.items() if v) for node in nodes)


def run(run: Run, argv: list[str], s: Settings, where: str) -> int:
    """The launcher's side (``python -m core.queue`` with a Ray address): own the run, hand
    it to the cluster, wait for the task, and record how it ended when the task could not."""
    run.acquire()  # adopts the lock core.jobs passed down; held until this process ends
    token = secrets.token_hex(16)
    run.lock.grant_delegate(token)
    stop = threading.Event()

    def on_term(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one changes nothing
        stop.set()

    st = run.status()
    need = st.get("memory_needed") if isinstance(st.get("memory_needed"), int) else None
    run.set_status("queued", phase="waiting", engine="ray", pid=os.getpid(),
                   message=f"connecting to it at {where}",
                   drop=("queue_position", "expected_start", "node"))  # fmt: skip
    try:
        import ray
        from ray import exceptions as rayerr
    except ImportError:
        run.set_status("failed", message="Ray is not installed on the server: pip install "
                       f"-r requirements-ray.txt, or unset {ENV_ADDRESS}.")  # fmt: skip
        return 1
    try:
        _reachable(where)
        ray.init(address=where, namespace="latentlab", logging_level=logging.ERROR,
                 log_to_driver=True)  # fmt: skip
    except Exception as e:  # noqa: BLE001 - any failure to connect: one sentence
        why = f"Could not reach the Ray cluster at {where} ({type(e).__name__}): start it, "
        run.set_status("failed", message=why + f"or fix or unset {ENV_ADDRESS}.")
        return 1
    # after ray.init, which installs a handler that ends the process on SIGTERM: a cancel
    # must reach the task (out of Ray's queue, or CANCEL for the trainer) instead
    signal.signal(signal.SIGTERM, on_term)
    try:
        code = _submit_and_wait(ray, rayerr, run, argv, s, need, token, stop)
        run.release()  # the task has ended: the run reads as ended at once, not after shutdown
    except Exception as e:
        run.set_status("failed", message=f"Handing the run to the Ray cluster failed: "
                       f"{type(e).__name__}: {str(e)[:300]}", drop=("phase",))  # fmt: skip
        raise
    finally:
        ray.shutdown()
    if code == 0 and run.status().get("state") == "done":
        # the Embeddings views, started here on the server: a child of the Ray worker would
        # end with it (Ray ends a finished worker's processes)
        from core.projections import after_training

        after_training(run)
    return code


def _submit_and_wait(ray, rayerr, run, argv, s, need, token, stop) -> int:
    nodes = _nodes(ray)
    device = str(run.config().get("train", {}).get("device") or "auto")
    gpu_ok = device != "cpu" and _fits(nodes, {"GPU": 1, "CPU": s.threads, "memory": need})
    gpus = 1 if gpu_ok else 0  # a GPU when a node with one fits the run, and it may use it
    wanted = _need_text(s.threads, gpus, need)
    if not _fits(nodes, {"CPU": s.threads, "GPU": gpus, "memory": need}):
        run.set_status("failed", message=f"No Ray node is big enough for this run: it needs "
                       f"{wanted} on one node; lower the threads per run or add a bigger "
                       "node.")  # fmt: skip
        return 1
    opts = {"num_cpus": s.threads, "num_gpus": gpus, "max_retries": 0}
    if need:
        opts["memory"] = need
    task = ray.remote(max_calls=1)(train_on_worker).options(**opts)  # a fresh worker each
    # written before the task exists: once it does, only the task writes status.json
    run.set_status("queued", phase="waiting", engine="ray",
                   message=f"Ray's scheduler starts it when a node has {wanted} free")  # fmt: skip
    ref = task.remote(argv, str(run.path.resolve()), _worker_env(s.threads, s.nice), token)
    asked = False
    while not ray.wait([ref], timeout=POLL)[0]:
        if not asked and (stop.is_set() or run.cancel_flag.exists()):
            asked = True
            run.cancel_flag.touch()  # a training task stops after its batch
            if run.status().get("phase") == "waiting":  # not started: leave Ray's queue
                ray.cancel(ref)
    try:
        code = ray.get(ref)
    except rayerr.TaskCancelledError:
        if run.status().get("state") not in FINISHED:  # the task may have said it first
            run.set_status("cancelled", message="cancelled while waiting for the Ray cluster",
                           drop=("phase",))  # fmt: skip
        return 0
    except rayerr.RayError as e:  # the worker or its node died: the first line says which
        code, why = 1, (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    else:
        why = f"the trainer on the Ray node exited with code {code}: see the run's log"
    if code != 0 and run.status().get("state") not in FINISHED:
        run.set_status("failed", message=why, drop=("phase",))
    return code
