"""The latent explorer and conditional-sampling pages, headless (AppTest through the
app's router), on a tiny real run of every model family. The browser components' own
behaviour (scrubbing, clicks, drawing with the mouse) is covered by
tests/test_browser_explore.py; here their state is set the way the browser sets it."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import explore as ex
from core import jobs
from tests.conftest import ROOT, TINY

FAMILIES = list(TINY)


def open_page(run, page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
    at.session_state["run_id"] = run.id
    at.run()
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.switch_page(f"../pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def labels(at, kind: str) -> list[str]:
    return [e.label for e in at.get(kind)]


def captions(at) -> list[str]:
    """Captions of every st.image on the page."""
    return [c for img in at.get("image") for c in img.captions]


# ----------------------------------------------------------------------------- explorer
@pytest.mark.parametrize("family", FAMILIES)
def test_explorer_page(family, tiny_runs, runs_env):
    run = tiny_runs[family]
    at = open_page(run, "explore")
    assert texts(at.title) == ["Latent explorer"]
    assert not at.error
    tabs = [t.label for t in at.tabs]
    assert {"Decoded grid", "Interpolation"} <= set(tabs)
    assert ("Categories" in tabs) == (family == "gumbel-vae")
    assert ("Place an image" in tabs) == (family == "autodecoder")
    assert {"Horizontal axis", "Vertical axis"} <= set(labels(at, "selectbox"))
    assert any(m.label.startswith("Active ") for m in at.metric)
    downloads = labels(at, "download_button")
    assert {"Download grid PNG", "Download strip PNG", "Download animated GIF"} <= set(downloads)
    assert len(at.get("bidi_component")) >= 2  # the plane and the drawing pad
    assert len(at.get("plotly_chart")) == 1  # KL / variance per unit
    assert "axes" in at.query_params
    assert ("label" in at.query_params) == (family == "cvae")
    assert len(list(run.cache_dir.glob("explore-space-*.npz"))) == 1  # for the next server
    # a rerun recomputes nothing visible: same page, no error
    at.run()
    assert not at.exception


@pytest.mark.parametrize("family", ["fcconv-vae", "gumbel-vae"])
def test_explorer_axes_and_other_coordinates(family, tiny_runs, runs_env):
    at = open_page(tiny_runs[family], "explore")
    assert at.query_params["axes"] == "pc1,pc2"
    at.segmented_control(key="ex_kind").set_value("dims").run()
    assert not at.exception
    assert at.query_params["axes"].startswith("z")
    at.radio(key="ex_fix").set_value("a test image").run()
    at.number_input(key="ex_fix_img").set_value(5).run()
    assert not at.exception
    assert at.query_params["fix"] == "img:5"
    at.radio(key="ex_fix").set_value("sliders").run()
    assert not at.exception
    assert len([s for s in at.slider if s.key and s.key.startswith("ex_fix_dims_")]) >= 1


def test_explorer_pin_from_the_link(tiny_runs, runs_env):
    at = open_page(tiny_runs["mlp-vae"], "explore", {"pin": "0.1,-0.2", "axes": "z1,z0"})
    assert "z1 = 0.100, z0 = -0.200" in captions(at)
    assert "Download PNG" in labels(at, "download_button")
    assert at.query_params["pin"] == "0.1,-0.2" and at.query_params["axes"] == "z1,z0"
    assert at.selectbox(key="ex_dims_i").value == 1
    at.button(key="ex_unpin").click().run()
    assert "pin" not in at.query_params
    assert any("Click the plane to pin" in i for i in texts(at.info))


def test_explorer_forgets_the_pin_of_another_run(tiny_runs, runs_env):
    at = open_page(tiny_runs["mlp-vae"], "explore", {"pin": "0.1,-0.2"})
    assert at.query_params["pin"] == "0.1,-0.2"
    at.selectbox(key="run_id").set_value(tiny_runs["ae"].id).run()
    assert not at.exception
    assert "pin" not in at.query_params
    assert any("Click the plane to pin" in i for i in texts(at.info))


def test_explorer_bad_link_values_are_ignored(tiny_runs, runs_env):
    at = open_page(tiny_runs["mlp-vae"], "explore", {"pin": "oops", "axes": "z9,z0"})
    assert not at.error
    assert at.query_params["axes"] == "z0,z1"
    assert "pin" not in at.query_params


@pytest.mark.parametrize("family", ["mlp-vae", "cvae", "gumbel-vae", "autodecoder"])
def test_explorer_drawing_and_upload(family, tiny_runs, runs_env):
    at = open_page(tiny_runs[family], "explore")
    pic = np.zeros((64, 64, 1), np.uint8)
    pic[10:54, 28:36] = 255  # a "1", white on black like the pad draws for digits
    at.session_state["explore_pad"] = {"image": ex.data_url(ex.png_bytes(pic))}
    at.run()
    assert not at.exception
    assert any(t.startswith("◆ drawing on the plane at") for t in texts(at.caption))
    upload = at.get("file_uploader")[0]
    upload.upload("one.png", ex.png_bytes(255 - pic), "image/png")
    at.run()
    assert not at.exception
    assert any(t.startswith("◆ upload on the plane at") for t in texts(at.caption))
    assert "Download the upload's reconstruction" in labels(at, "download_button")
    if family == "autodecoder":  # placed by optimisation: its loss per step is drawn
        assert len(at.get("arrow_line_chart")) + len(at.get("vega_lite_chart")) >= 3


def test_explorer_upload_that_is_not_an_image(tiny_runs, runs_env):
    at = open_page(tiny_runs["mlp-vae"], "explore")
    at.get("file_uploader")[0].upload("notes.png", b"not a picture", "image/png")
    at.run()
    assert not at.exception
    assert texts(at.error) == ["That file is not a picture Pillow can read: upload a PNG or JPEG."]


def test_explorer_gumbel_categories_and_temperature(tiny_runs, runs_env):
    at = open_page(tiny_runs["gumbel-vae"], "explore")
    nv = TINY["gumbel-vae"][1]["latent_dim"]
    k = TINY["gumbel-vae"][1]["categories"]
    assert len(at.session_state["ex_choice"]) == nv
    at.session_state["ex_choice"] = [k - 1] * nv  # what clicking the grid's cells does
    at.run()
    assert at.session_state["ex_choice"] == [k - 1] * nv
    at.toggle(key="ex_cat_sample").set_value(True).run()
    assert not at.exception
    assert at.slider(key="ex_cat_tau").value > 0
    assert "Download samples PNG" in labels(at, "download_button")
    encoder_choice = at.session_state["ex_choice"]
    at.number_input(key="ex_cat_img").set_value(3).run()  # another image: its own choice
    assert not at.exception
    at.session_state["ex_choice"] = [0] * nv
    at.run()
    at.button(key="ex_cat_reset").click().run()
    assert at.session_state["ex_choice"] != [0] * nv or encoder_choice == [0] * nv


def test_explorer_autodecoder_places_by_optimisation(tiny_runs, runs_env):
    at = open_page(tiny_runs["autodecoder"], "explore")
    assert any(c.startswith("decoded at the found z") for c in captions(at))
    assert len(at.get("arrow_line_chart")) + len(at.get("vega_lite_chart")) >= 1
    at.slider(key="ex_place_steps").set_value(20).run()
    assert not at.exception


def test_explorer_interpolation_between_pins(tiny_runs, runs_env):
    at = open_page(tiny_runs["mlp-vae"], "explore")
    at.radio(key="ex_int_src").set_value("the last two pins").run()
    assert any("Pin two points" in i for i in texts(at.info))
    at.session_state["ex_pins"] = [{"z": [0.0, 0.0]}, {"z": [0.5, -0.5]}]  # two clicks
    at.run()
    assert not at.info or not any("Pin two points" in i for i in texts(at.info))
    at.radio(key="ex_int_method").set_value("spherical").run()
    assert not at.exception
    assert "Download animated GIF" in labels(at, "download_button")


# ----------------------------------------------------------------------------- conditional
def test_conditional_page_on_a_conditional_run(tiny_runs, runs_env):
    at = open_page(tiny_runs["cvae"], "conditional", {"class": "3"})
    assert texts(at.title) == ["Conditional sampling"]
    assert [t.label for t in at.tabs] == ["Samples", "Class × z grid", "Class swap",
                                          "Sample accuracy"]  # fmt: skip
    assert at.selectbox(key="cd_class").value == 3
    assert at.query_params["class"] == "3"
    assert labels(at, "download_button").count("Download PNG") == 3
    at.selectbox(key="cd_class").set_value(5).run()
    assert at.query_params["class"] == "5"
    at.button(key="cd_seed_btn").click().run()
    assert at.session_state["cd_seed"] == 1
    at.slider(key="cd_nz").set_value(4).run()
    at.number_input(key="cd_swap_img").set_value(7).run()
    assert not at.exception
    ev = tiny_runs["cvae"].evaluation()
    if ev is None or "conditional" not in ev:
        assert "Compute it" in labels(at, "button")
    else:
        assert any(m.label == "Conditional-sample accuracy" for m in at.metric)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "cvae"])
def test_conditional_page_explains_and_links_to_training(family, tiny_runs, runs_env):
    at = open_page(tiny_runs[family], "conditional")
    assert any("is not conditional" in i for i in texts(at.info))
    links = at.get("page_link")
    assert links, "no link to the train page"
    assert not at.tabs


@pytest.mark.slow
def test_conditional_sample_accuracy_is_computed_on_demand(tiny_runs, runs_env):
    at = open_page(tiny_runs["cvae"], "conditional")
    if tiny_runs["cvae"].evaluation() is None:
        at.button(key="cd_eval").click().run()  # starts the background evaluation
        assert not at.exception and not at.error
        assert jobs.wait_evaluation(tiny_runs["cvae"], timeout=1800)["state"] == "done"
        at.run()  # what the progress fragment does when the job ends
    assert not at.exception
    assert any(m.label == "Conditional-sample accuracy" for m in at.metric)
