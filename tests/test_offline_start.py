"""First start on a laptop with no network, no Fashion-MNIST package and no runs folder:
the app opens on the pretrained zoo and every page renders on every pretrained model,
using the bundled sample of Fashion-MNIST test images."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core import data as datalib
from core.runs import list_runs

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "app" / "main.py")
PAGES = ["home", "train", "runs", "explore", "conditional", "embeddings", "compare"]
ZOO = list_runs(ROOT / "pretrained")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No runs folder, an empty data folder, no system Fashion-MNIST, a dead mirror."""
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(tmp_path / "runs"))  # does not exist yet
    monkeypatch.setenv("LATENTLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LATENTLAB_FMNIST_SYSTEM_DIR", str(tmp_path / "no-debian-package"))
    monkeypatch.setenv("LATENTLAB_MIRROR", "http://127.0.0.1:9/{name}/")  # closed port
    datalib.clear_cache()
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path
    datalib.clear_cache()
    st.cache_resource.clear()
    st.cache_data.clear()


def test_fashion_mnist_really_is_unavailable(offline):
    with pytest.raises(datalib.DatasetError, match="dataset-fashion-mnist"):
        datalib.load("fashion-mnist", "test")


def test_first_start_opens_on_the_zoo(offline):
    at = AppTest.from_file(MAIN, default_timeout=120).run()
    assert not at.exception
    assert at.session_state["run_id"] in {r.id for r in ZOO}
    assert all(o.startswith("pretrained") for o in at.sidebar.selectbox[0].options)


@pytest.mark.parametrize("run", ZOO, ids=lambda r: r.id)
def test_every_page_renders_on_every_pretrained_model(offline, run):
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.session_state["run_id"] = run.id
    at.run()
    for page in PAGES[1:]:
        at.switch_page(f"../pages/{page}.py")
        at.run()
        assert not at.exception, (page, [e.message for e in at.exception])
        errors = [e.value for e in at.error]
        assert not errors, (page, errors)
