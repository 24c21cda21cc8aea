"""The Conditional sampling page in a real browser (a real ``streamlit run`` server over the
tiny digits runs and the pretrained zoo, Debian's Chromium): on a plain run one click
opens a pretrained conditional model, which draws z from its prior or its labels' own codes
and whose digits accuracy charts name all ten classes.
Screenshots at 1024, 1280 and 1920 pixels go to artifacts/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.common import PRETRAINED_DIR
from core.runs import list_runs, load_model
from tests.browser import chromium_page, page_errors, streamlit_server, wait_idle

pytestmark = pytest.mark.browser

SIDEBAR_PICK = '[data-testid="stSidebar"] [data-testid="stSelectbox"] input'
# the tick labels of the accuracy chart's x axis, as plotly drew them
TICKS_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot .xtick text'))
  .map(t => t.textContent)"""


@pytest.fixture(scope="module")
def digits_cvae():
    """The pretrained conditional model trained on digits (found by its capability)."""
    for run in list_runs(PRETRAINED_DIR):
        digits = run.config()["train"]["dataset"] == "digits" and run.has_checkpoint()
        if digits and load_model(run.checkpoint_path)[0].conditional:
            return run
    pytest.fail(f"no conditional digits model in {PRETRAINED_DIR}")


def test_one_click_from_a_plain_run_to_a_conditional_model(
    tiny_runs, tiny_runs_dir, digits_cvae, artifacts
):
    plain = tiny_runs["mlp-vae"]
    label = f"{digits_cvae.name} (cvae on digits)"
    with streamlit_server(tiny_runs_dir) as url:
        for width in (1024, 1280, 1920):
            with chromium_page(width=width, height=1100) as page:
                page.goto(f"{url}/conditional?run={plain.id}")
                wait_idle(page)
                expect(page.get_by_text("is not conditional")).to_be_visible()
                expect(page.get_by_role("button", name=label)).to_be_visible()
                train = page.get_by_role("link", name="Train a conditional VAE (cvae)")
                expect(train).to_be_visible()
                assert page_errors(page) == []
                page.screenshot(path=str(artifacts / f"conditional-plain-{width}.png"))

                page.get_by_role("button", name=label).click()
                page.wait_for_url(f"**run={digits_cvae.id}**", timeout=60_000)
                page.get_by_text("conditional on 10 labels").wait_for(timeout=60_000)
                wait_idle(page)
                page.get_by_test_id("stImage").first.wait_for(timeout=60_000)  # the samples
                expect(page.get_by_test_id("stSlider").first).to_be_visible()
                sidebar = page.locator(SIDEBAR_PICK).input_value()
                assert sidebar == f"pretrained · {digits_cvae.name} (cvae, digits)"
                assert page.get_by_text("is not conditional").count() == 0
                page.screenshot(path=str(artifacts / f"conditional-opened-{width}.png"))

                # z from each label's own codes: the link and the caption follow
                page.get_by_test_id("stRadioGroup").get_by_text("each label's own codes").click()
                page.wait_for_url("**draw=codes**", timeout=60_000)
                page.get_by_text("from the codes of this label's training images").wait_for(
                    timeout=60_000
                )
                wait_idle(page)

                page.get_by_role("tab", name="Sample accuracy").click()
                page.wait_for_function(f"({TICKS_JS})().length >= 34", timeout=60_000)
                ticks = page.evaluate(TICKS_JS)
                # the per-class charts (accuracy, variety, own codes) name every class
                assert ticks[:20] == [str(k) for k in range(10)] * 2
                assert ticks[24:34] == [str(k) for k in range(10)]
                # and the temperature chart its four temperatures
                assert sorted(ticks[20:24]) == ["0.7", "0.8", "0.9", "1"]
                # the judge's blur, in pixels of these 8 x 8 digits (its help tooltip)
                judge = page.get_by_test_id("stMetric").filter(has_text="Real test images").first
                judge.get_by_test_id("stTooltipHoverTarget").hover()
                tip = page.get_by_text("sigma up to 0.43 px of these 8 × 8 images")
                tip.wait_for(timeout=10_000)
                assert "of 28" not in tip.inner_text()
                assert page_errors(page) == []
                page.screenshot(path=str(artifacts / f"conditional-accuracy-{width}.png"))


def test_class_swap_of_an_uploaded_picture(tiny_runs_dir, digits_cvae, tmp_path, artifacts):
    """An uploaded picture, said to be a 3, is drawn under every label; a file that is not
    a picture gets one sentence, not a traceback."""
    import io

    from PIL import Image

    from core import data as datalib

    test = datalib.load("digits", "test")
    three = test.images[int((test.labels == 3).nonzero()[0])][0]  # (8, 8) in [0, 1]
    png = tmp_path / "three.png"
    big = Image.fromarray((three.numpy() * 255).astype("uint8")).resize((64, 64))
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    png.write_bytes(buf.getvalue())
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not a picture")
    with streamlit_server(tiny_runs_dir) as url, chromium_page(height=1400) as page:
        # ?class=3: the test image is a 3, and the upload's label follows it (no drop-down
        # to open, which raced the expander's animation)
        page.goto(f"{url}/conditional?run={digits_cvae.id}&class=3")
        wait_idle(page)
        page.get_by_role("tab", name="Class swap").click()
        page.get_by_text("…or upload a picture of your own").click()
        shows = page.get_by_role("combobox", name=re.compile("What it shows"))
        expect(shows).to_have_value("3")
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(png))
        page.get_by_text("as the model sees it").wait_for(timeout=60_000)
        wait_idle(page)
        seen = page.get_by_test_id("stExpander").locator("img").first
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                               arg=seen.element_handle(), timeout=30_000)  # fmt: skip
        assert page.get_by_text("▸ 3", exact=True).count() == 1  # encoded with label 3
        expect(page.get_by_text("Your picture is encoded with its own label (3)")).to_be_visible()
        assert page_errors(page) == []
        page.screenshot(path=str(artifacts / "conditional-swap-upload.png"), full_page=True)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(bad))
        alert = page.get_by_test_id("stAlertContentError").first
        alert.wait_for(timeout=60_000)
        assert "picture" in alert.inner_text().lower()
        assert page_errors(page) == []
