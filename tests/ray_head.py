"""A real Ray head on this machine (node address 127.0.0.1; Ray's own servers listen on
every interface), for the Ray tests and ``bench.classroom --ray``."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile

import psutil

from tests.browser import free_port


def _stop(temp: str) -> None:
    """End this head's processes only: those whose command line names its temp folder, and
    their children (the workers); never another Ray on the machine (``ray stop`` would)."""
    procs, me = set(), os.getpid()
    for p in psutil.process_iter(["cmdline"]):
        if p.pid != me and temp in " ".join(p.info["cmdline"] or []):
            procs.add(p)
            with contextlib.suppress(psutil.Error):
                procs.update(p.children(recursive=True))
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(list(procs), timeout=20)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=10)


@contextlib.contextmanager
def local_ray_head(cpus: int = 1, worker_niceness: int | None = None):
    """Start a Ray head with ``cpus`` CPUs for 127.0.0.1 (Ray's own command line, run by this
    Python); yields its address (host:port), then ends its processes and removes its
    folder, also when it failed to start. ``worker_niceness``: the ``nice`` Ray starts its
    workers at (Ray's default: 15)."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are capped
    port = free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    if worker_niceness is not None:
        env["RAY_worker_niceness"] = str(worker_niceness)
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", f"--port={port}",
           "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--include-dashboard=false",
           "--disable-usage-stats", f"--temp-dir={temp}"]  # fmt: skip
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"ray start failed ({done.returncode}): {done.stderr[-2000:]}")
        yield f"127.0.0.1:{port}"
    finally:
        _stop(temp)
        shutil.rmtree(temp, ignore_errors=True)
