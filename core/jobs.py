"""Training runs as their own processes, so a page reload, a Streamlit rerun or a crash
in one cannot take the other down.

``start`` writes the run directory and spawns ``python -m core.train --run-dir DIR`` in a
new session (it outlives the Streamlit server); ``refresh`` reads status.json and marks a
run whose process vanished as failed; ``cancel`` asks the process to stop at the next
batch (a CANCEL file plus SIGTERM); ``resume`` continues a finished run for more epochs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.models import resolve_config
from core.runs import FINISHED, Run
from core.train import TrainConfig, new_run_config

ROOT = Path(__file__).resolve().parent.parent
_children: dict[int, subprocess.Popen] = {}


def _spawn(run: Run, extra: list[str]) -> int:
    log = open(run.log_path, "ab")  # noqa: SIM115 - handed to the child
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.train", "--quiet", *extra],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    log.close()
    _children[proc.pid] = proc
    run.set_status("queued", pid=proc.pid, message="starting the training process")
    return proc.pid


def start(
    cfg: TrainConfig,
    model_args: dict | None = None,
    name: str | None = None,
    root: str | Path | None = None,
) -> Run:
    """Validate, write runs/<id>/config.json and launch training in the background."""
    cfg.validate()
    resolve_config(cfg.model, image_shape=(1, 28, 28), num_classes=10, num_items=1,
                   **(model_args or {}))  # fmt: skip
    run = Run.create(new_run_config(cfg, model_args), root, name)
    _spawn(run, ["--run-dir", str(run.path.resolve())])
    return run


def resume(run: Run, epochs: int) -> Run:
    """Continue a finished or cancelled run up to ``epochs`` total epochs."""
    st = refresh(run)
    if st.get("state") not in FINISHED:
        raise ValueError("This run is still training: wait for it to finish or cancel it.")
    if not run.has_checkpoint():
        raise ValueError("This run has no checkpoint to resume from.")
    run.set_status("queued", message=f"resuming to {epochs} epochs")
    _spawn(run, ["--resume", str(run.path.resolve()), "--epochs", str(int(epochs))])
    return run


def _alive(pid: int) -> bool:
    proc = _children.get(pid)
    if proc is not None:
        return proc.poll() is None  # also reaps a finished child
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def refresh(run: Run) -> dict:
    """status.json, with a run whose process is gone marked failed."""
    st = run.status()
    if st.get("state") in ("queued", "running") and st.get("pid") and not _alive(int(st["pid"])):
        time.sleep(0.2)  # the process may have written its final state just now
        st = run.status()
        if st.get("state") in ("queued", "running"):
            st = run.set_status(
                "failed", message="the training process ended unexpectedly; see log.txt in the run"
            )
    return st


def cancel(run: Run) -> None:
    """Ask a running run to stop after the current batch; its last checkpoint stays."""
    run.cancel_flag.touch()
    st = run.status()
    pid = st.get("pid")
    if st.get("state") == "queued":  # still importing: no stop handler yet, so end it here
        if pid and _alive(int(pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        run.set_status("cancelled", message="cancelled before training started")
        return
    if pid and _alive(int(pid)):
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass


def wait(run: Run, timeout: float = 600, poll: float = 0.5) -> dict:
    """Block until the run has finished (done, failed or cancelled) or ``timeout`` passes."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        st = refresh(run)
        if st.get("state") in FINISHED:
            return st
        time.sleep(poll)
    return refresh(run)
