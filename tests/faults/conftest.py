"""The fault suite: every test in this folder is one fault case (a parametrised test is one
case per parameter set), tried with real processes and real files.

At the end pytest prints ``N faults tried, N handled cleanly, N runs damaged``: *handled
cleanly* counts cases that passed; *runs damaged* counts earlier runs (a finished run
copied next to each case's faults by the ``earlier_run`` fixture) whose files changed.
The target is every case handled cleanly and no earlier run damaged.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from core.runs import Run
from core.train import TrainConfig, train

_count = {"tried": 0, "clean": 0, "damaged": 0}
_outcome: dict[str, bool] = {}


def _in_suite(nodeid: str) -> bool:
    return nodeid.replace("\\", "/").startswith("tests/faults/")


def pytest_runtest_logreport(report):
    if not _in_suite(report.nodeid):
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        _outcome[report.nodeid] = report.passed
    elif report.when == "teardown" and report.failed and report.nodeid in _outcome:
        _outcome[report.nodeid] = False


def pytest_terminal_summary(terminalreporter):
    _count["tried"], _count["clean"] = len(_outcome), sum(_outcome.values())
    if _count["tried"]:
        terminalreporter.write_line(
            f"fault suite: {_count['tried']} faults tried, {_count['clean']} handled cleanly, "
            f"{_count['damaged']} runs damaged"
        )


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock" and p.relative_to(folder).parts[0] != "cache"
    }


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Run:
    """One finished 2-epoch digits run (mlp-vae, L=2), the template of ``earlier_run``."""
    cfg = TrainConfig(dataset="digits", model="mlp-vae", epochs=2, batch_size=128, val_size=100)
    return train(cfg, {"latent_dim": 2, "hidden_dim": 16}, name="earlier",
                 root=tmp_path_factory.mktemp("template"))  # fmt: skip


@pytest.fixture
def fault_root(tmp_path) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    return root


@pytest.fixture
def earlier_run(finished_run, fault_root):
    """A copy of a finished run in the case's runs folder; after the case its files must be
    exactly as before (else the case fails and counts as a damaged run). Derived arrays
    under cache/ may be added by the pages that read it."""
    dest = fault_root / "20000101-000000-earlier"
    shutil.copytree(finished_run.path, dest, ignore=shutil.ignore_patterns(".lock"))
    before = _digest(dest)
    yield Run(dest)
    after = _digest(dest) if dest.is_dir() else {}
    if after != before:
        _count["damaged"] += 1
        changed = sorted(
            set(before) ^ set(after) | {k for k in before if after.get(k) != before[k]}
        )
        pytest.fail(f"an earlier run was damaged: {changed}")
