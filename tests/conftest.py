"""Shared fixtures: tiny real runs of every model family on the bundled digits, and the
browser helpers (a real Streamlit server, Debian's Chromium through Playwright)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.models import FAMILIES
from core.runs import Run
from core.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
# a finished run starts no background Embeddings views in the suite (and in the servers and
# trainers it spawns); tests/test_projections.py turns it on where it tests that
os.environ.setdefault("LATENTLAB_PRECOMPUTE_VIEWS", "0")

# name -> (model, model args): every family in the registry, with the small settings its
# spec gives (``FamilySpec.tiny``), so every run takes a second or two.
TINY = {name: (name, dict(spec.tiny)) for name, spec in FAMILIES.items()}


def make_tiny_runs(root: Path, epochs: int = 2) -> dict[str, Run]:
    runs = {}
    for name, (model, args) in TINY.items():
        cfg = TrainConfig(dataset="digits", model=model, epochs=epochs, batch_size=128,
                          val_size=200)  # fmt: skip
        runs[name] = train(cfg, {k: v for k, v in args.items() if v is not None}, name=name,
                           root=root)  # fmt: skip
    return runs


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Run]:
    """One finished 2-epoch digits run per model family, in a fresh runs folder."""
    return make_tiny_runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def tiny_runs_dir(tiny_runs) -> Path:
    return next(iter(tiny_runs.values())).path.parent


@pytest.fixture
def runs_env(tiny_runs_dir, monkeypatch):
    """Point the app at the tiny runs folder."""
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(tiny_runs_dir))
    return tiny_runs_dir


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects by marker
def pytest_collection_modifyitems(config, items):
    """The fault suite (tests/faults/) is marked ``faults``: its own step, ``python3 -m
    pytest -m faults``. Browser tests need Debian's Chromium; skip them with a reason where
    it is absent."""
    for item in items:
        if item.nodeid.replace("\\", "/").startswith("tests/faults/"):
            item.add_marker(pytest.mark.faults)
    if os.path.exists("/usr/bin/chromium"):
        return
    skip = pytest.mark.skip(reason="/usr/bin/chromium is missing: apt-get install chromium")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
