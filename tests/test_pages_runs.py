"""The Runs page headless (streamlit.testing.v1.AppTest over app/main.py, so the sidebar run
picker is drawn too), on copies of two tiny digits runs and the real pretrained zoo: a
rename reaches every picker, a delete names the run it asks about, an unevaluated run's
KNN accuracy is a dash, and read-only runs offer no rename or delete at all."""

from __future__ import annotations

import re
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from app.common import PRETRAINED_DIR
from core.runs import Run, list_runs
from core.store import atomic
from tests.test_pages_app import open_page


def open_runs(**state) -> AppTest:
    return open_page("runs", **state)


def texts(elements) -> str:
    """The elements' text as a reader sees it (Markdown escapes and bold marks removed)."""
    return re.sub(r"\\(.)", r"\1", "\n".join(str(e.value) for e in elements)).replace("**", "")


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r} among {[b.label for b in at.button]}"
    return found[0]


@pytest.fixture
def own_runs(tmp_path, monkeypatch, tiny_runs) -> list[Run]:
    """Copies of two tiny runs (no evaluation cached) in a fresh runs folder."""
    root = tmp_path / "runs"
    root.mkdir()
    for fam in ("mlp-vae", "ae"):
        src = tiny_runs[fam].path
        shutil.copytree(src, root / src.name, ignore=shutil.ignore_patterns("cache"))
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(root))
    return list_runs(root)


def test_rename_reaches_the_table_the_run_picker_and_the_sidebar(own_runs):
    run = next(r for r in own_runs if r.name == "mlp-vae")
    at = open_runs(run_id=run.id)
    old = run.name
    sidebar = at.selectbox(key="run_id")
    assert sidebar.value == run.id and any(o.startswith(f"{old} (") for o in sidebar.options)
    at.selectbox(key="runs.target").set_value(run.id).run()
    at.text_input(key=f"runs.name.{run.id}").set_value("sharp digits")
    button(at, "Rename").click().run()
    assert not at.exception, at.exception
    assert Run(run.path).name == "sharp digits"
    assert "Renamed to sharp digits." in texts(at.success)
    assert "sharp digits" in list(at.dataframe[0].value["name"])
    for key in ("run_id", "runs.target"):  # the sidebar's picker and "Manage a run"'s
        box = at.selectbox(key=key)
        assert box.value == run.id
        labels = [o for o in box.options if o.endswith("(mlp-vae, digits)") and "·" not in o]
        assert labels == ["sharp digits (mlp-vae, digits)"], box.options
        # the browser holds the choice by its label: it is sent the new one to show
        assert box.proto.set_value and box.proto.raw_value == labels[0]
        assert not any(o.startswith(f"{old} (") for o in box.options)


def test_delete_asks_about_the_run_by_its_name(own_runs):
    run, other = own_runs
    Run(run.path).rename("keep me? no")
    at = open_runs()
    at.selectbox(key="runs.target").set_value(run.id).run()
    button(at, "Delete…").click().run()
    question = texts(at.warning)
    assert "Delete keep me? no with its checkpoint and metrics?" in question
    assert run.id not in question  # the folder id means nothing to a reader
    assert run.path.exists()
    button(at, "Yes, delete it").click().run()
    assert not run.path.exists() and other.path.exists()
    assert "Deleted keep me? no." in texts(at.success)


def test_unevaluated_runs_show_a_dash_for_knn(own_runs):
    at = open_runs()
    grid = at.dataframe[0]
    table = grid.value
    mine = table[table["id"].isin([r.id for r in own_runs])]
    assert len(mine) == 2 and mine["KNN %"].isna().all()  # never evaluated
    # missing numbers are drawn as the placeholder, not as the word None
    assert grid.proto.placeholder == "–"
    evaluated = table[table["source"] == "pretrained"]["KNN %"].dropna()
    assert len(evaluated) > 0 and ((evaluated > 0) & (evaluated <= 100)).all()


def test_pretrained_runs_offer_no_rename_or_delete(own_runs):
    zoo = [r for r in list_runs(PRETRAINED_DIR) if r.config_or_none() is not None]
    assert zoo, f"no pretrained runs in {PRETRAINED_DIR}"
    at = open_runs()
    for run in (zoo[0], zoo[-1]):
        at.selectbox(key="runs.target").set_value(run.id).run()
        assert not at.exception, at.exception
        assert "read-only (pretrained)" in texts(at.caption)
        delete, rename = button(at, "Delete…"), button(at, "Rename")
        assert delete.disabled and rename.disabled  # greyed out before any click
        assert "read-only" in delete.help and "read-only" in rename.help
        assert at.text_input(key=f"runs.name.{run.id}").disabled
        assert not button(at, "Open (make it the current run)").disabled
    # a user run next to them is still renamable
    at.selectbox(key="runs.target").set_value(own_runs[0].id).run()
    assert not button(at, "Delete…").disabled and not button(at, "Rename").disabled


def test_find_run_finds_what_all_runs_lists_and_nothing_else(own_runs, tmp_path):
    """``find_run`` looks a run up directly (the live panel asks every second): it must
    answer as a search of ``all_runs`` would, hostile ids included."""
    from app.common import all_runs, find_run

    root = own_runs[0].path.parent
    shutil.copytree(PRETRAINED_DIR / "digits-mlp-vae-2d", root / "digits-mlp-vae-2d")
    (root / "_cache").mkdir(exist_ok=True)
    (root / "not-a-run").mkdir()  # no config, status or lock: not listed
    (root / "linked").symlink_to(own_runs[0].path)  # links are never listed
    atomic.write_json(root / "status.json", {"state": "done"})  # "." must not be the folder
    listed = all_runs()
    assert len(listed) > len(own_runs)
    for run in listed:
        first = next(r for r in listed if r.id == run.id)  # the user's copy comes first
        assert find_run(run.id).path == first.path
    assert find_run("digits-mlp-vae-2d").path == root / "digits-mlp-vae-2d"
    for bad in (None, "", "_cache", ".queue", "not-a-run", "linked", "../runs", "..",
                f"../{root.name}/{own_runs[0].id}", "a\0b", "nope", ".", "a" * 300):  # fmt: skip
        assert find_run(bad) is None, bad
