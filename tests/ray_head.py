"""A real Ray head on 127.0.0.1, for the Ray tests and ``bench.classroom --ray``."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_ray_head(cpus: int = 1):
    """Start ``ray start --head`` with ``cpus`` CPUs on loopback; yields its address
    (host:port) and stops it (``ray stop --force``: every Ray process of this user)."""
    ray_bin = shutil.which("ray")
    if not ray_bin:
        raise RuntimeError("the ray command is missing: pip install -r requirements-ray.txt")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are capped
    port = free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    cmd = [ray_bin, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
           f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats",
           f"--temp-dir={temp}"]  # fmt: skip
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
