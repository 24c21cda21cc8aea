"""The app's own flags (``streamlit run app/main.py -- --data-dir D --runs-dir R``): parsed
into the environment the server and its trainers share; wrong ones are refused with one
sentence, in the browser too."""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import expect

from app.server_args import folders_from_args
from core.runs import list_runs
from tests.browser import chromium_page, streamlit_server, wait_idle


def test_flags_set_absolute_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"LATENTLAB_RUNS_DIR": "/elsewhere"}
    assert folders_from_args(["--runs-dir", "r", "--data-dir=d"], env) is None
    assert env == {
        "LATENTLAB_RUNS_DIR": str(tmp_path / "r"),  # the flag beats the variable
        "LATENTLAB_DATA_DIR": str(tmp_path / "d"),
    }
    env = {}
    assert folders_from_args([], env) is None and env == {}


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--data-dir"], "expected one argument"),
        (["--run-dir", "x"], "unknown arguments '--run-dir x'"),
        (["--runs-dir", " "], "--runs-dir was given an empty folder name"),
        (["--data-dir", "a-file"], "is a file, not a folder"),
    ],
)
def test_wrong_flags_are_one_sentence_and_change_nothing(tmp_path, monkeypatch, argv, said):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("x")
    env = {}
    msg = folders_from_args(["--runs-dir", "ok", *argv], env)
    assert said in msg and env == {}
    assert msg.count(". ") == 0 and msg.endswith(".")


@pytest.mark.browser
def test_the_server_reads_runs_from_its_flag(tiny_runs, tmp_path, artifacts):
    """Started with ``-- --runs-dir R`` while $LATENTLAB_RUNS_DIR names an empty folder,
    the app lists R's runs; with a wrong flag it says so instead of serving pages."""
    runs = tmp_path / "chosen-runs"
    runs.mkdir()
    for run in list(tiny_runs.values())[:2]:
        shutil.copytree(run.path, runs / run.path.name)
    newest = list_runs(runs)[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["--runs-dir", runs, "--data-dir", tmp_path / "data"]
    with streamlit_server(empty, app_args=args) as url, chromium_page() as page:
        page.goto(url)
        wait_idle(page)
        picker = page.get_by_role("combobox", name="Current run", exact=True)
        expect(picker).to_have_value(re.compile(rf"^{re.escape(newest.name)} \("))
    with streamlit_server(empty, app_args=["--run-dir", runs]) as url, chromium_page() as page:
        page.goto(url)
        wait_idle(page)
        error = page.get_by_test_id("stAlert").filter(has_text="unknown arguments")
        expect(error).to_have_count(1)
        page.screenshot(path=str(artifacts / "app-wrong-flag.png"))
