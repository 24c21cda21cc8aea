"""The training queue: at most ``slots`` runs of a runs folder train at once; the others
wait their turn in the order they were started (FIFO).

Every run started from the app (``core.jobs``) is spawned as ``python -m core.queue
<core.train's arguments>``: a light process (no torch, about 20 MB) that owns the run's
lock, waits for a free slot, then sets its thread count and runs ``core.train`` in the same
process. A slot is ``<runs>/.queue/slot-<k>.lock``, held by an exclusive ``flock`` for as
long as the trainer lives, so a run that ends, fails or is killed (kill -9 included) frees
its slot at once, and nothing has to be cleaned up.

The queue is kept in the run store itself: a waiting run's status.json is ``queued`` with
``phase: "waiting"``, ``queued_at``, ``queue_position`` (1 = next), ``slots`` and
``expected_start`` (an estimate, absent when there is none); its place is its rank by
(``queued_at``, id) among the waiting runs whose lock is held. The waiting processes run in
their own session, so a restart of the Streamlit server leaves the queue as it was. Cancel
works while waiting: the CANCEL file or SIGTERM (``core.jobs.cancel``) ends the wait and the
run reads as cancelled.

Before a run takes a slot, the memory it needs (``memory_needed`` in its status, from
``core.memory``'s estimate when it was started) is checked against what is free; it waits
while there is not enough.

Settings (environment variables beat the ``[queue]`` table of the TOML file named by
``$LATENTLAB_CONFIG``, default ``./latentlab.toml``): ``LATENTLAB_MAX_RUNS`` /
``max_runs`` (default: one per GPU; without one, CPU cores / threads per run) and
``LATENTLAB_THREADS_PER_RUN`` / ``threads_per_run`` (default 1: with several runs on few
cores, one thread each avoids the 10-30x slow-down of oversubscribed cores) and
``LATENTLAB_TRAIN_NICE`` / ``train_nice`` (default 10, 0 to 19: the ``nice`` of this
process, waiting or training, so that the pages the server draws go first when training fills
the cores; an idle core still goes to training whole; a Ray run's launcher takes it too, and
its task's trainer runs at least this low on its node: Ray starts workers at 15 unless
``RAY_worker_niceness`` says less).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.runs import Run, list_runs
from core.store import lock as locks

QUEUE_DIR = ".queue"
ENV_SLOTS = "LATENTLAB_MAX_RUNS"
ENV_THREADS = "LATENTLAB_THREADS_PER_RUN"
ENV_NICE = "LATENTLAB_TRAIN_NICE"
NICE = 10  # the trainer's default niceness (the Embeddings views' workers use the same)
ENV_CONFIG = "LATENTLAB_CONFIG"
MAX_SETTING = 1024
POLL = 0.5  # seconds between looks at the queue while waiting
REWRITE = 5.0  # a waiting run's status is rewritten at least this often (its estimate)
WAIT_FIELDS = ("queue_position", "expected_start")  # dropped once the run has its slot


class Cancelled(BaseException):
    """The run was cancelled while it waited (a BaseException: no ``except Exception``
    on the way swallows it)."""


class QueueConfigError(ValueError):
    """A queue setting is not a whole number in range (one sentence)."""


@dataclass(frozen=True)
class Settings:
    slots: int
    threads: int
    gpus: int
    nice: int = NICE


def gpu_count(environ=os.environ) -> int:
    """NVIDIA GPUs this process may use, without importing torch: CUDA_VISIBLE_DEVICES when
    set, else the driver's list in /proc."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([v for v in visible.split(",") if v.strip() and v.strip() != "-1"])
    try:
        return len(list(Path("/proc/driver/nvidia/gpus").iterdir()))
    except OSError:
        return 0


def config_path(environ=os.environ) -> Path:
    """The settings file, absolute: ``$LATENTLAB_CONFIG`` or ``./latentlab.toml``, from the
    current folder of the process that asks (``core.jobs`` passes it to the queue's
    processes, which run from the repository root)."""
    return Path(environ.get(ENV_CONFIG) or "latentlab.toml").expanduser().absolute()


def _cores() -> int:
    """CPU cores this process may use (its affinity: a container's limit, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def file_table(environ=os.environ, name: str = "queue") -> dict:
    """One table of the settings file (``[queue]``, ``[ray]``); {} when there is no file."""
    path = config_path(environ)
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f).get(name, {})
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise QueueConfigError(
            f"{path} could not be read as TOML ({e}): fix or remove it."
        ) from None
    return table if isinstance(table, dict) else {}


def _whole(value, name: str, where: str, lo: int = 1, hi: int = MAX_SETTING) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = lo - 1
    if not lo <= n <= hi or isinstance(value, float | bool):
        raise QueueConfigError(
            f"{name} ({where}) must be a whole number from {lo} to {hi}, got {value!r:.40}."
        )
    return n


def settings(environ=os.environ) -> Settings:
    """The queue's settings: environment, then the config file, then the defaults."""
    file = file_table(environ)

    def pick(env: str, key: str, default: int, lo: int = 1, hi: int = MAX_SETTING) -> int:
        if environ.get(env, "").strip():
            return _whole(environ[env], env, "environment", lo, hi)
        if key in file:
            return _whole(file[key], key, "config file", lo, hi)
        return default

    threads = pick(ENV_THREADS, "threads_per_run", 1)
    gpus = gpu_count(environ)
    default = gpus if gpus else max(1, _cores() // threads)
    nice = pick(ENV_NICE, "train_nice", NICE, 0, 19)
    return Settings(pick(ENV_SLOTS, "max_runs", default), threads, gpus, nice)


# ----------------------------------------------------------------------------- reading
def slot_path(root: Path, k: int, kind: str = "slot") -> Path:
    """A slot's lock file: ``slot-<k>.lock`` for training, ``views-<k>.lock`` for the
    Embeddings views a finished run starts (``hold_view_slot``)."""
    return Path(root) / QUEUE_DIR / f"{kind}-{k}.lock"


def busy_slots(root: Path, slots: int) -> int:
    return sum(locks.file_locked(slot_path(root, k)) for k in range(slots))


def _status(run: Run) -> dict:
    try:
        return run.status()
    except Exception:  # noqa: BLE001 - a damaged status is not in the queue
        return {}


def on_ray(status: dict) -> bool:
    """A run handed to a Ray cluster (core.ray_engine): it waits in Ray's queue, not in
    this server's, and takes none of its slots."""
    return status.get("engine") == "ray"


def waiting(root: Path) -> list[Run]:
    """The runs waiting for a slot, first in line first (``queued_at``, written by
    ``core.jobs`` when it spawned the run, then the id): status queued, not yet past the
    queue (phase unset or waiting), and a live owner (lock held)."""
    found = []
    for run in list_runs(root):  # the store's own listing: no links, no _ or . folders
        st = _status(run)
        queued = st.get("state") == "queued" and "queued_at" in st
        if queued and not on_ray(st) and st.get("phase") in (None, "waiting") and run.busy:
            found.append((float(st.get("queued_at") or 0), run.path.name, run))
    return [r for *_, r in sorted(found, key=lambda t: (t[0], t[1]))]


def remaining_seconds(st: dict, now: float) -> float | None:
    """Seconds a training run still needs, from its progress since it (re)started
    (``start_step``: the step a resumed run started from); None when unknown."""
    step, total, started = st.get("step"), st.get("total"), st.get("started_at")
    first = st.get("start_step") or 0
    numbers = (step, total, started, first)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
        return None
    if step <= first:
        return None
    return max(0.0, (now - started) / (step - first) * (total - step))


def expected_start(root: Path, ahead: int, slots: int, now: float) -> float | None:
    """When the run with ``ahead`` runs before it in the queue should start: the moment the
    (ahead+1)-th training run is expected to finish; None when that cannot be told (more
    runs ahead than are training, or no progress measured yet)."""
    left = []
    for run in list_runs(root):
        st = _status(run)
        if (
            st.get("state") == "running" and not on_ray(st) and run.busy
        ):  # a killed one says running
            v = remaining_seconds(st, now)
            left.append(float("inf") if v is None else v)
    left.sort()
    if ahead >= min(len(left), slots) or left[ahead] == float("inf"):
        return None
    return now + left[ahead]


def describe(status: dict, now: float | None = None) -> str | None:
    """A waiting run's place, said for a person ("Waiting in the queue: place 2 of the
    runs waiting; 2 runs train at once here; expected to start in about 1:05"); None when the
    run is not waiting."""
    if status.get("state") != "queued" or status.get("phase") != "waiting":
        return None
    msg = str(status.get("message") or "")
    if on_ray(status):  # the cluster's scheduler keeps the line, not ours
        return "Waiting for the Ray cluster: " + msg.removeprefix("waiting for ") + "."
    if msg.startswith("waiting for memory"):
        return "Waiting for memory: " + msg.removeprefix("waiting for memory: ") + "."
    place, slots = status.get("queue_position"), status.get("slots")
    text = "Waiting in the queue"
    if isinstance(place, int) and place >= 1:
        text += f": place {place}" + (" (next)" if place == 1 else "")
    if isinstance(slots, int) and slots >= 1:
        text += f"; {slots} run{'s train' if slots != 1 else ' trains'} at once here"
    when = status.get("expected_start")
    if isinstance(when, int | float) and not isinstance(when, bool):
        left = max(0, int(when - (now or time.time())))
        text += f"; expected to start in about {left // 60}:{left % 60:02d}"
    else:
        text += "; no start estimate until the runs ahead have measured progress"
    return text + "."


# ----------------------------------------------------------------------------- waiting
def take_slot(root: Path, slots: int, kind: str = "slot") -> int | None:
    """Hold a free slot (an open file descriptor kept until the process ends), or None."""
    (Path(root) / QUEUE_DIR).mkdir(parents=True, exist_ok=True)
    for k in range(slots):
        fd = os.open(slot_path(root, k, kind), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        os.set_inheritable(fd, False)
        return fd
    return None


def hold_view_slot(root: Path, poll: float = 1.0) -> int | None:
    """Wait for one of the ``slots`` view slots of the runs folder ``root`` and hold it for
    the rest of the process: at most as many background Embeddings workers compute at once
    as runs train (thirty runs finishing start thirty workers; the others wait, in no
    particular order). None when the slots cannot be made (a read-only folder): no bound."""
    try:
        slots = settings().slots
        while True:
            fd = take_slot(root, slots, "views")
            if fd is not None:
                return fd
            time.sleep(poll)
    except (OSError, QueueConfigError):
        return None


def size_text(n: float) -> str:
    """Bytes for a person: "1.2 GB", or "36 MB" under a gigabyte (not "0.0 GB")."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{max(1, round(n / 1e6))} MB"


def wait_for_slot(run: Run, s: Settings, poll: float = POLL) -> int:
    """Wait in line, then take a slot; returns its file descriptor. Raises Cancelled when
    the run's CANCEL file appears."""
    root = run.path.parent
    st = _status(run)
    need = st.get("memory_needed")
    queued_at = st.get("queued_at") or time.time()  # core.jobs wrote it at the spawn
    run.set_status("queued", phase="waiting", queued_at=queued_at, slots=s.slots,
                   pid=os.getpid(), message="waiting for a free training slot")  # fmt: skip
    shown, last_write = None, 0.0
    while True:
        if run.cancel_flag.exists():
            raise Cancelled()
        line = waiting(root)
        # not found (its status unreadable for a moment): behind everyone, never ahead
        ahead = next((i for i, r in enumerate(line) if r.path == run.path), len(line))
        free = s.slots - busy_slots(root, s.slots)
        free_memory = psutil.virtual_memory().available
        short = isinstance(need, int) and need > free_memory
        if ahead < free and not short:
            fd = take_slot(root, s.slots)
            if fd is not None:
                run.set_status("queued", phase="starting", message="starting the training process",
                               drop=WAIT_FIELDS)  # fmt: skip
                return fd
        now = time.time()
        if short:
            message = (
                f"waiting for memory: needs about {size_text(need)}, {size_text(free_memory)} free"
            )
        else:
            message = f"waiting in the queue: place {ahead + 1}, {s.slots} at once here"
        if (ahead, message) != shown or now - last_write > REWRITE:
            eta = expected_start(root, ahead, s.slots, now)
            run.set_status("queued", phase="waiting", queued_at=queued_at, slots=s.slots,
                           queue_position=ahead + 1, message=message,
                           **({"expected_start": eta} if eta is not None else {}),
                           drop=() if eta is not None else ("expected_start",))  # fmt: skip
            shown, last_write = (ahead, message), now
        time.sleep(poll)


def lower_priority(nice: int | str) -> None:
    """Run this process at ``nice`` at least, below the server's pages (never raised: a
    process already lower stays there)."""
    with contextlib.suppress(OSError, ValueError):
        os.nice(max(0, int(nice) - os.nice(0)))


def _run_dir(argv: list[str]) -> Path | None:
    for flag in ("--run-dir", "--resume"):
        if flag in argv[:-1]:
            return Path(argv[argv.index(flag) + 1])
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m core.queue <core.train arguments>``: wait for a slot, then train."""
    argv = list(sys.argv[1:] if argv is None else argv)
    path = _run_dir(argv)
    if path is None:
        print("error: give --run-dir RUN or --resume RUN, as to core.train.", file=sys.stderr)
        return 2
    run = Run(path)
    try:
        s = settings()
        from core import ray_engine  # light: Ray itself is imported only when configured

        where = ray_engine.address()
    except QueueConfigError as e:
        run.set_status("failed", message=str(e))
        print(f"error: {e}", file=sys.stderr)
        return 2
    lower_priority(s.nice)  # waiting or training, the server's pages go first
    if where is not None:  # a Ray cluster trains it; Ray's scheduler keeps the line
        return ray_engine.run(run, argv, s, where)

    def on_term(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one changes nothing
        raise Cancelled()

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        wait_for_slot(run, s)
    except Cancelled:
        run.set_status("cancelled", message="cancelled while waiting in the queue",
                       drop=("phase", *WAIT_FIELDS))  # fmt: skip
        return 0
    finally:
        signal.signal(signal.SIGTERM, old)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(s.threads)
    from core.train import main as train_main  # torch, only once a slot is held

    return train_main(argv)


if __name__ == "__main__":
    # run the importable module's main, not this __main__ copy: core.ray_engine imports
    # core.queue, and its QueueConfigError must be the class main() catches
    from core.queue import main as module_main

    sys.exit(module_main())
