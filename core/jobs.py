"""Training runs as their own processes, so a page reload, a Streamlit rerun or a crash
in one cannot take the other down.

``start`` validates, creates the run directory *owning its lock*, and spawns
``python -m core.queue --run-dir DIR`` with the locked file handed down, so the run is
owned without a gap from creation to the end of training (``core.queue`` waits for a
training slot, then runs ``core.train`` in the same process); ``refresh`` is the run's state
worked out from its files and lock (``Run.state``); ``cancel`` asks the trainer to stop
(a CANCEL file, plus SIGTERM to the verified trainer process only); ``resume`` continues
a run from its last checkpoint and ``restart`` trains an interrupted run with no
checkpoint from the beginning. Both refuse a run another process owns.

Evaluation is a background job as well: ``start_evaluation`` runs ``core.evaluate`` on a
run in its own process (at most one per run; a second start returns the running one) and
``evaluation_state`` says how it is doing (a dead worker reads as failed), for the pages
to poll like training; ``wait_evaluation`` blocks until it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import psutil

from core import queue
from core.config import TrainConfig, run_memory, validate_run
from core.data.registry import APP_ENV
from core.runs import FINISHED, Run, RunBusyError, RunError, runs_dir
from core.store import atomic, faults, schema
from core.store import lock as locks
from core.store import proc as procs
from core.store.checkpoint import read_checkpoint
from core.store.repair import applicable_args
from core.train import new_run_config


def _resume_checked(conf: dict, epochs: int) -> int:
    """The checks the trainer makes before resuming a run (``core.cli``: its settings as
    ``validate_run`` sees them, without the model settings its backbone does not use), made
    here so that a refusal is one sentence on the page, not a process that dies; the bytes
    the run needs. Raises ValueError (ConfigError, DatasetError, RunError)."""
    try:
        cfg = TrainConfig(**conf["train"])
        model = conf["model"]
        args = applicable_args(model.get("args") or {}, cfg.model)
    except (KeyError, TypeError, AttributeError):
        raise RunError(
            "This run's config.json does not hold settings this version can train: it "
            "cannot be resumed (its checkpoint can still be explored and evaluated)."
        ) from None
    cfg.epochs = epochs
    return run_memory(cfg, validate_run(cfg, args, memory_limit=total_memory()))


def total_memory() -> int:
    """The machine's memory: what a queued run must fit in (it waits for it to be free)."""
    return int(psutil.virtual_memory().total)


def _spawn(run: Run, extra: list[str], message: str, memory: int | None = None) -> None:
    """Put ``run``, whose lock this process holds, in the training queue: launch
    ``python -m core.queue`` (which waits for a slot, then trains in the same process) and
    hand the lock over to it."""
    assert run.lock is not None and run.lock.fd is not None
    fd = run.lock.fd
    run.cancel_flag.unlink(missing_ok=True)
    mem = {"memory_needed": memory} if memory else {}
    # the last status written here: from the spawn on, only the child writes it
    run.set_status("queued", message=message, queued_at=time.time(),  # its place in line
                   drop=("memory_needed", "phase", "pid", "engine", "node", *queue.WAIT_FIELDS),
                   **mem)  # fmt: skip
    env = {locks.FD_ENV: str(fd), APP_ENV: "1",  # its messages are read in the app
           queue.ENV_CONFIG: str(queue.config_path())}  # fmt: skip
    try:
        proc = procs.spawn("core.queue", ["--quiet", *extra], run.log_path, env=env,
                           pass_fds=(fd,))  # fmt: skip
        run.lock.write_owner(proc.pid)
    except BaseException:
        run.release()
        raise
    run.lock.hand_over()  # the child holds the lock now
    run.lock = None


def start(
    cfg: TrainConfig,
    model_args: dict | None = None,
    name: str | None = None,
    root: str | Path | None = None,
) -> Run:
    """Validate (against the dataset's real image shape), write runs/<id>/ and launch
    training in the background. Nothing is created when a setting is refused."""
    mc = validate_run(cfg, model_args, memory_limit=total_memory())  # the queue waits for it
    need = run_memory(cfg, mc)
    run = Run.create(new_run_config(cfg, model_args), root, name)
    _spawn(run, ["--run-dir", str(run.path.resolve())], "starting the training process", need)
    return run


def _busy() -> RunBusyError:
    return RunBusyError(
        "This run is still training (or starting): wait for it to finish or cancel it."
    )


def _own(run: Run) -> Run:
    if run.readonly:
        raise RunError(f"{run.name} is a pretrained run and read-only: train your own copy.")
    try:
        return run.acquire()
    except RunBusyError:
        raise _busy() from None


def resume(run: Run, epochs: int) -> Run:
    """Continue a run from its last checkpoint up to ``epochs`` total epochs."""
    if run.busy:
        raise _busy()
    if not run.has_checkpoint():
        raise RunError("This run has no checkpoint to resume from: restart it instead.")
    run.config()  # a damaged config cannot be resumed: one sentence says so
    done = read_checkpoint(run.checkpoint_path).get("epoch")  # CheckpointError: one sentence
    finished = run.status().get("state") == "done"
    if not isinstance(done, int) or int(epochs) < done or (int(epochs) == done and finished):
        raise RunError(
            f"This run already has {done} epoch{'s' if done != 1 else ''}: ask for more than that."
        )
    need = _resume_checked(run.config(), int(epochs))
    _own(run)
    _spawn(
        run,
        ["--resume", str(run.path.resolve()), "--epochs", str(int(epochs))],
        f"resuming to {int(epochs)} epochs",
        need,
    )
    return run


def restart(run: Run) -> Run:
    """Train an interrupted run that has no checkpoint again from the beginning."""
    if run.busy:
        raise _busy()
    if run.has_checkpoint():
        raise RunError("This run has a checkpoint: resume it instead of restarting.")
    run.config()
    _own(run)
    try:
        for f in ("metrics.jsonl", "recon.png", "status.json"):
            (run.path / f).unlink(missing_ok=True)
        run.clean_temp()
    except BaseException:
        run.release()
        raise
    _spawn(run, ["--run-dir", str(run.path.resolve())], "restarting from the beginning")
    return run


def refresh(run: Run) -> dict:
    """The run's state from its files and its lock (``Run.state``); never writes."""
    return run.state()


def cancel(run: Run) -> None:
    """Ask a training run to stop after the current batch; its last checkpoint stays. Only
    the process that holds the run's lock and is its trainer is ever signalled."""
    if run.readonly:
        raise RunError(f"{run.name} is a pretrained run and read-only.")
    with contextlib.suppress(OSError):  # a link in its place is not followed (ELOOP)
        os.close(os.open(run.cancel_flag, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644))
    trainer = locks.trainer_process(run.path)
    if trainer is not None:
        with contextlib.suppress(Exception):
            trainer.send_signal(signal.SIGTERM)
        return
    if not run.busy:  # nobody owns it: record the cancel (the state shows it either way)
        with contextlib.suppress(RunBusyError, OSError, RunError), locks.RunLock(run.path):
            if run.status().get("state") in ("queued", "running"):
                run.set_status("cancelled", message="cancelled before training finished")


def wait(run: Run, timeout: float = 600, poll: float = 0.2) -> dict:
    """Block until the run has ended (or is damaged) or ``timeout`` passes."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        st = refresh(run)
        if st.get("state") in (*FINISHED, "damaged"):
            return st
        time.sleep(poll)
    return refresh(run)


# ----------------------------------------------------------------------------- evaluation
# ``start_evaluation`` runs ``core.evaluate`` on a run in its own process, like training:
# the caller takes the exclusive flock on ``<cache>/.evaluation.lock`` first and hands the
# locked file down to the worker (``python -m core.evaluate RUN --json --job``), so "is an
# evaluation running" is "is that lock held" (the kernel drops it however the worker ends;
# pids are never trusted). The worker writes ``<cache>/evaluation-status.json`` (queued,
# running, done or failed, started_at, message; atomic) and the result to
# ``<cache>/evaluation.json``; its output goes to ``<cache>/evaluation-log.txt``. The cache
# is ``Run.cache_dir``: ``runs/_cache/<id>/`` for a read-only pretrained run.
EVAL_STATUS = "evaluation-status.json"
EVAL_LOCK = ".evaluation.lock"
EVAL_LOG = "evaluation-log.txt"
EVAL_FD_ENV = "LATENTLAB_EVAL_LOCK_FD"
EVAL_LIVE = ("queued", "running")
EVAL_DEAD = (
    "The evaluation process stopped before finishing (killed, or out of memory): start it again."
)


class _EvalLock(locks.RunLock):
    """``RunLock`` on ``<cache>/.evaluation.lock`` instead of ``<run>/.lock``."""

    def __init__(self, cache: Path):
        super().__init__(cache)
        self.path = Path(cache) / EVAL_LOCK


def _eval_locked(cache: Path) -> bool:
    """True while some process holds the evaluation lock of this cache. Never writes."""
    return locks.file_locked(Path(cache) / EVAL_LOCK)


def _read_eval_status(cache: Path) -> dict:
    try:
        st = schema.read_json(Path(cache) / EVAL_STATUS, limit=64 * 1024)
    except schema.Damaged:
        return {}
    return st if isinstance(st, dict) else {}


def _write_eval_status(cache: Path, state: str, **fields) -> dict:
    st = {**fields, "state": state, "updated_at": time.time()}
    atomic.write_json(Path(cache) / EVAL_STATUS, st)
    return st


def evaluation_state(run: Run) -> dict:
    """The run's evaluation job, from its status file and its lock; never writes.

    Keys: ``state`` ("none" when no job was ever started, else queued, running, done or
    failed), ``alive`` (the worker holds the lock), ``started_at``, ``updated_at``, ``pid``,
    ``judge`` (a conditional model's samples are judged: the judge may be trained first) and
    ``message`` (one sentence). A queued or running job whose lock is free
    (the worker died: kill -9, out of memory) reads as failed.
    """
    cache = run.cache_dir
    alive = _eval_locked(cache)  # first the lock, then the file: the worker writes its
    st = _read_eval_status(cache)  # last state before its lock is released
    state = st.get("state")
    if state not in ("queued", "running", "done", "failed"):
        state = "queued" if alive else "none"  # a launcher between lock and first write
    if state in EVAL_LIVE and not alive:
        alive = _eval_locked(cache)  # a job started between the two reads is not dead
        if alive:
            st = _read_eval_status(cache) or st
            state = st.get("state") if st.get("state") in EVAL_LIVE else "queued"
        else:
            st["message"] = EVAL_DEAD
            state = "failed"
    message = st.get("message")
    return {
        "state": state,
        "alive": alive,
        "started_at": st.get("started_at"),
        "updated_at": st.get("updated_at"),
        "pid": st.get("pid"),
        "judge": st.get("judge"),
        "message": message if isinstance(message, str) else "",
    }


def start_evaluation(run: Run, judge: bool = True) -> dict:
    """Evaluate ``run`` on its test split in a background process (``core.evaluate``);
    returns ``evaluation_state``. While an evaluation of the run is queued or running this
    starts nothing and returns that one. ``judge``: score a conditional model's samples
    (may train the judge first: minutes)."""
    if not run.has_checkpoint():
        raise RunError("This run has no checkpoint yet: wait for its first epoch.")
    cache = run.cache_dir
    if not cache.is_dir():
        raise RunError(f"The cache folder {cache} cannot be made: free space or fix its rights.")
    lk = _EvalLock(cache)
    if not lk.acquire():
        return evaluation_state(run)
    fd = lk.fd
    assert fd is not None
    try:
        lk.write_owner()
        model_cfg = ((run.config_or_none() or {}).get("model") or {}).get("config") or {}
        judged = bool(judge) and bool(model_cfg.get("num_classes"))  # only conditional models
        status = dict(started_at=time.time(), judge=judged, message="starting the evaluation")
        _write_eval_status(cache, "queued", **status)
        log = cache / EVAL_LOG
        log.write_bytes(b"")
        args = [str(run.path.resolve()), "--json", "--job"] + ([] if judge else ["--no-judge"])
        env = {EVAL_FD_ENV: str(fd), "LATENTLAB_RUNS_DIR": str(runs_dir().resolve())}
        proc = procs.spawn("core.evaluate", args, log, env=env, pass_fds=(fd,))
        lk.write_owner(proc.pid)
        _write_eval_status(cache, "queued", pid=proc.pid, **status)
    except BaseException:
        lk.release()
        raise
    lk.hand_over()  # the worker holds the lock now
    return evaluation_state(run)


def evaluation_worker(run_dir: str | Path, judge: bool = True, device: str = "cpu") -> int:
    """The worker's side (``python -m core.evaluate RUN --json --job``): adopt the lock its
    launcher passed down (or take it), evaluate, save, record done or failed. Returns the
    exit status."""
    from core import evaluate as ev  # heavy: only in the worker

    run = Run(Path(run_dir))
    cache = run.cache_dir
    lk = _EvalLock(cache)
    fd = os.environ.pop(EVAL_FD_ENV, None)
    if not (fd is not None and fd.isdigit() and lk.adopt(int(fd))) and not lk.acquire():
        print("error: another evaluation of this run is running.", file=sys.stderr)
        return 2
    lk.write_owner()
    prev = _read_eval_status(cache)
    started = prev.get("started_at") if prev.get("state") in EVAL_LIVE else None
    judged = prev.get("judge") if isinstance(prev.get("judge"), bool) else bool(judge)
    status = dict(started_at=started or time.time(), judge=judged, pid=os.getpid())
    try:
        _write_eval_status(cache, "running", message="evaluating on the test split", **status)
        faults.point("evaluation")
        ev._check_inputs(str(run_dir), device, 0)
        res = ev.evaluate(run.path, device=device, judge=judge, save=False)
        atomic.write_json(cache / "evaluation.json", res)
    except Exception as e:  # one sentence in the status file, the traceback in the log
        if not isinstance(e, ev.EXPECTED_ERRORS):
            traceback.print_exc()
        msg = ev.error_sentence(e, str(run_dir))
        print(f"error: {msg}", file=sys.stderr)
        with contextlib.suppress(OSError):
            _write_eval_status(cache, "failed", message=msg, **status)
        return 2
    print(json.dumps(atomic.finite(res)))
    _write_eval_status(cache, "done", message=f"evaluated in {res.get('seconds', '?')} s", **status)
    lk.release()
    return 0


def wait_evaluation(run: Run, timeout: float = 600, poll: float = 0.2) -> dict:
    """Block until the run's evaluation job has ended or ``timeout`` passes."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        st = evaluation_state(run)
        if st["state"] not in EVAL_LIVE:
            return st
        time.sleep(poll)
    return evaluation_state(run)
