"""Training runs as their own processes, so a page reload, a Streamlit rerun or a crash
in one cannot take the other down.

``start`` validates, creates the run directory *owning its lock*, and spawns
``python -m core.train --run-dir DIR`` with the locked file handed down, so the run is
owned without a gap from creation to the end of training; ``refresh`` is the run's state
worked out from its files and lock (``Run.state``); ``cancel`` asks the trainer to stop
(a CANCEL file, plus SIGTERM to the verified trainer process only); ``resume`` continues
a run from its last checkpoint and ``restart`` trains an interrupted run with no
checkpoint from the beginning. Both refuse a run another process owns.
"""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

from core.config import TrainConfig, validate_run
from core.runs import FINISHED, Run, RunBusyError, RunError
from core.store import lock as locks
from core.store import proc as procs
from core.store.checkpoint import read_checkpoint
from core.train import new_run_config

_children: dict[str, object] = {}  # run id -> Popen (reaped by core.store.proc)


def _spawn(run: Run, extra: list[str], message: str) -> None:
    """Launch the trainer for ``run``, whose lock this process holds, and hand the lock
    over to it."""
    assert run.lock is not None and run.lock.fd is not None
    fd = run.lock.fd
    run.cancel_flag.unlink(missing_ok=True)
    run.set_status("queued", message=message)
    try:
        proc = procs.spawn(
            "core.train",
            ["--quiet", *extra],
            run.log_path,
            env={locks.FD_ENV: str(fd)},
            pass_fds=(fd,),
        )
        run.lock.write_owner(proc.pid)
        run.set_status("queued", pid=proc.pid, message=message)
        _children[run.id] = proc
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
    validate_run(cfg, model_args)
    run = Run.create(new_run_config(cfg, model_args), root, name)
    _spawn(run, ["--run-dir", str(run.path.resolve())], "starting the training process")
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
        raise RunError(f"This run already has {done} epochs: ask for more than that.")
    _own(run)
    _spawn(
        run,
        ["--resume", str(run.path.resolve()), "--epochs", str(int(epochs))],
        f"resuming to {int(epochs)} epochs",
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
    with contextlib.suppress(OSError):
        run.cancel_flag.touch()
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
