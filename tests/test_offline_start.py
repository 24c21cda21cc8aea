"""First start on a laptop with no network, no Fashion-MNIST package and no runs folder:
the app opens on the pretrained zoo and every page renders on every pretrained model,
using the bundled sample of Fashion-MNIST test images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core import data as datalib
from core.runs import list_runs, load_model

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


def offline_notes(at) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("Offline:")]


def shown_images(at) -> list[str]:
    """Captions of every picture on the page (one entry per picture)."""
    return [i.caption for img in at.get("image") for i in img.proto.imgs]


def check_page(at, page: str, run, model) -> None:
    """The page's key content: its title and what it draws for this model."""
    titles = [t.value for t in at.title]
    subheaders = [s.value for s in at.subheader]
    if page == "train":
        assert titles == ["Train a model"] and "New run" in subheaders
    elif page == "runs":
        assert titles == ["Runs"] and "Manage a run" in subheaders
    elif page == "explore":
        assert titles == ["Latent explorer"]
        assert len(at.get("bidi_component")) >= 2  # the plane and the drawing pad
        grid = [c for c in shown_images(at) if c.endswith("(bottom)")]
        assert len(grid) == 1, shown_images(at)  # the decoded grid, captioned by its axes
        assert len(at.get("plotly_chart")) == 1  # KL / variance per unit
    elif page == "conditional":
        assert titles == ["Conditional sampling"]
        if model.conditional:
            assert any(" draws of z from the " in c for c in shown_images(at))
            assert [t.label for t in at.tabs][:3] == ["Samples", "Class × z grid", "Class swap"]
        else:
            assert any("is not conditional" in i.value for i in at.info)
    elif page == "embeddings":
        assert titles == ["Embeddings: PCA, UMAP and the model"]
        assert {"PCA (pixels)", "UMAP (pixels)", "Model embedding"} <= set(subheaders)
        charts = at.get("plotly_chart")
        assert len(charts) == 3
        points = [sum(len(t.get("x") or []) for t in json.loads(c.proto.spec)["data"])
                  for c in charts]  # fmt: skip
        assert points[0] > 0 and len(set(points)) == 1, points  # the same sample in each
    elif page == "compare":
        assert titles == ["Compare two runs"]
        assert {"Loss curves", "Decoded grids"} <= set(subheaders)
        assert len(at.get("plotly_chart")) >= 1  # the loss curves
        assert len(shown_images(at)) >= 2  # a decoded grid per run


@pytest.mark.parametrize("run", ZOO, ids=lambda r: r.id)
def test_every_page_renders_on_every_pretrained_model(offline, run):
    """Every page draws its content with no error; a page that reads a Fashion-MNIST run's
    test images says, once, that the bundled sample stands in for them (digits ship with
    scikit-learn, so no note there)."""
    model, _ = load_model(run.checkpoint_path)
    fmnist = run.config()["train"]["dataset"] == "fashion-mnist"
    uses_data = {"explore", "embeddings", "compare"} | ({"conditional"} if model.conditional
                                                        else set())  # fmt: skip
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.session_state["run_id"] = run.id
    at.run()
    for page in PAGES[1:]:
        at.switch_page(f"../pages/{page}.py")
        at.run()
        assert not at.exception, (page, [e.message for e in at.exception])
        errors = [e.value for e in at.error]
        assert not errors, (page, errors)
        check_page(at, page, run, model)
        notes = offline_notes(at)
        if fmnist and page in uses_data:
            assert len(notes) == 1, (page, notes)
            assert "bundled sample" in notes[0] and "not available here" in notes[0]
        else:
            assert notes == [], (page, notes)
