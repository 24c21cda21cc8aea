"""Background processes of the lab (trainers, projection workers): one way to start them.

``spawn`` starts ``python -m <module> ...`` from the repository root in its own session
(it outlives a Streamlit rerun or server restart), output appended to a log file, and a
daemon thread
that waits for it, so a finished child never lingers as a ``<defunct>`` zombie.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def spawn(
    module: str,
    args: list[str],
    log_path: Path,
    env: dict | None = None,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.Popen:
    environ = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
    try:
        fd = os.open(log_path, flags, 0o644)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        os.unlink(log_path)  # a link planted in the run: removed, never written through
        fd = os.open(log_path, flags, 0o644)
    with open(fd, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environ,
            start_new_session=True,
            pass_fds=pass_fds,
        )
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    return proc


def alive(proc: subprocess.Popen | None) -> bool:
    return proc is not None and proc.poll() is None
