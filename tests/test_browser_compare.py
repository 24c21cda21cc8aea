"""The Embeddings and Compare pages in a real browser: a real ``streamlit run`` server and
Debian's Chromium. A box drawn with the mouse in one scatter highlights the same images in
the other two; hovering a dot shows its image; a click and a shared link bring back the
same view. Screenshots go to artifacts/.
"""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import expect

from core import projections as proj
from core.runs import Run
from tests.browser import chromium_page, page_errors, streamlit_server, wait_idle

pytestmark = pytest.mark.browser

N_TEST = 360  # digits test split

# Per chart: its view, how many points it draws, the sample positions plotly marks selected
# (``selectedpoints`` of the class traces mapped through ``customdata``; null when nothing
# is highlighted) and the sample position of the "clicked image" star, if any.
STATE_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => {
  const overlay = t => t.name === 'clicked image' || /nearest/.test(t.name);
  const cls = gd._fullData.filter(t => !overlay(t));
  const sel = t => gd.data[t.index].selectedpoints;
  const star = gd._fullData.find(t => t.name === 'clicked image');
  return {
    view: gd.layout.meta && gd.layout.meta.view,
    points: cls.reduce((a, t) => a + t._length, 0),
    selected: cls.some(sel) ? cls.flatMap(t => (sel(t) || []).map(i => t.customdata[i]))
                                 .sort((a, b) => a - b) : null,
    star: star ? star.customdata[0] : null,
  };
})"""

# screen position and sample position of point i of class trace k in chart c
POINT_JS = """([c, k, i]) => {
  const gd = document.querySelectorAll('.js-plotly-plot')[c];
  const fl = gd._fullLayout, r = gd.getBoundingClientRect(), t = gd._fullData[k];
  return {x: r.left + fl.xaxis._offset + fl.xaxis.c2p(t.x[i]),
          y: r.top + fl.yaxis._offset + fl.yaxis.c2p(t.y[i]), pos: t.customdata[i]};
}"""

# sample positions of the points of chart c that lie inside a screen rectangle
INSIDE_JS = """([c, x0, y0, x1, y1]) => {
  const gd = document.querySelectorAll('.js-plotly-plot')[c];
  const fl = gd._fullLayout, r = gd.getBoundingClientRect(), out = [];
  gd._fullData.forEach(t => {
    if (t.name === 'clicked image' || /nearest/.test(t.name)) return;
    for (let i = 0; i < t._length; i++) {
      const x = r.left + fl.xaxis._offset + fl.xaxis.c2p(t.x[i]);
      const y = r.top + fl.yaxis._offset + fl.yaxis.c2p(t.y[i]);
      if (x >= x0 && x <= x1 && y >= y0 && y <= y1) out.push(t.customdata[i]);
    }
  });
  return out.sort((a, b) => a - b);
}"""

# the sample position plotly's hover is on in chart c
HOVERED_JS = "c => document.querySelectorAll('.js-plotly-plot')[c]._hoverdata[0].customdata"
# whether plotly's hover in chart c is on the point of sample position pos
HOVERING_JS = """([c, pos]) => {
  const h = document.querySelectorAll('.js-plotly-plot')[c]._hoverdata;
  return !!h && h.length > 0 && h[0].customdata === pos;
}"""
# the three charts are laid out with their points (the scripts above read these)
DRAWN_JS = """() => {
  const gds = Array.from(document.querySelectorAll('.js-plotly-plot'));
  return gds.length === 3 && gds.every(gd => gd._fullLayout && gd._fullLayout.xaxis
    && gd._fullLayout.xaxis.c2p && gd._fullData && gd._fullData.some(t => t._length > 0));
}"""


@pytest.fixture(scope="module")
def served(tiny_runs, tiny_runs_dir):
    """A real server over the tiny runs, with every view of the 4-D fcconv-vae run cached
    for the default sample (all 360 test digits) and for 200 of them."""
    run = tiny_runs["fcconv-vae"]
    proj.precompute(run)
    proj.precompute(run, n=200)
    with streamlit_server(tiny_runs_dir) as url:
        yield url, run


def open_embeddings(page, url: str, query: str) -> None:
    page.goto(f"{url}/embeddings?{query}")
    wait_idle(page)
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot .nsewdrag').length === 3", timeout=60_000
    )
    page.wait_for_function(DRAWN_JS, timeout=60_000)


def test_box_selection_highlights_the_same_images_in_all_views(served, artifacts):
    url, run = served
    with chromium_page(height=1400) as page:
        open_embeddings(page, url, f"run={run.id}")
        before = page.evaluate(STATE_JS)
        assert [c["view"] for c in before] == list(proj.VIEWS)
        assert [c["points"] for c in before] == [N_TEST] * 3
        assert all(c["selected"] is None for c in before)

        # drag a box over the middle of the UMAP chart (plotly's box-select drag mode)
        area = page.query_selector_all(".js-plotly-plot")[1].query_selector(".nsewdrag")
        b = area.bounding_box()
        x0, y0 = b["x"] + 0.2 * b["width"], b["y"] + 0.2 * b["height"]
        x1, y1 = b["x"] + 0.8 * b["width"], b["y"] + 0.8 * b["height"]
        inside = page.evaluate(INSIDE_JS, [1, x0, y0, x1, y1])
        # points within 3 pixels of the edge may fall either way (rounding of the drag)
        surely = set(page.evaluate(INSIDE_JS, [1, x0 + 3, y0 + 3, x1 - 3, y1 - 3]))
        maybe = set(page.evaluate(INSIDE_JS, [1, x0 - 3, y0 - 3, x1 + 3, y1 + 3]))
        assert 0 < len(inside) < N_TEST
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move(x1, y1, steps=12)
        page.mouse.up()
        page.wait_for_function(
            "Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".filter(gd => gd.data.some(t => t.selectedpoints)).length === 3",
            timeout=60_000,
        )
        wait_idle(page)
        after = page.evaluate(STATE_JS)
        assert [c["view"] for c in after] == list(proj.VIEWS)
        chosen = after[1]["selected"]
        assert surely <= set(chosen) <= maybe  # the points inside the box
        assert after[0]["selected"] == chosen == after[2]["selected"]
        body = page.inner_text('[data-testid="stMain"]')
        assert f"{len(chosen)} images selected in the UMAP (pixels) view" in body
        assert f"Selection ({len(chosen)} images)" in body
        assert page_errors(page) == []
        page.screenshot(path=str(artifacts / "embeddings_box_selection.png"))


def test_hover_shows_the_image(served, artifacts):
    url, run = served
    with chromium_page(height=1400) as page:
        open_embeddings(page, url, f"run={run.id}")
        p = page.evaluate(POINT_JS, [0, 3, 5])
        page.mouse.move(p["x"] - 20, p["y"] - 20)
        page.mouse.move(p["x"], p["y"], steps=5)
        page.wait_for_function(
            "document.getElementById('ll-hover-tip')?.style.display === 'block'", timeout=10_000
        )
        hovered = page.evaluate(HOVERED_JS, 0)
        tip = page.evaluate(
            """() => { const t = document.getElementById('ll-hover-tip');
               const im = t.querySelector('.ll-img');
               return {cap: t.innerText, pos: +t.dataset.pos, bg: im.style.backgroundImage,
                       w: im.getBoundingClientRect().width}; }"""
        )
        index = proj.sample_index(N_TEST, N_TEST)[hovered]
        assert tip["cap"].endswith(f"#{index}") and tip["pos"] == hovered
        assert tip["bg"].startswith('url("data:image/png;base64,') and tip["w"] >= 64
        page.screenshot(path=str(artifacts / "embeddings_hover.png"))


def test_click_and_shared_link_reopen_the_same_view(served, artifacts):
    url, run = served
    with chromium_page(height=1400) as page:
        open_embeddings(page, url, f"run={run.id}&n=200")
        p = page.evaluate(POINT_JS, [0, 2, 4])
        page.mouse.move(p["x"] - 10, p["y"] - 10)
        page.mouse.move(p["x"], p["y"], steps=4)
        # plotly's hover is throttled: wait until it has caught up with the mouse, on the dot
        page.wait_for_function(HOVERING_JS, arg=[0, p["pos"]], timeout=10_000)
        hovered = page.evaluate(HOVERED_JS, 0)
        page.mouse.click(p["x"], p["y"])
        page.wait_for_url(re.compile(r"point=\d+"), timeout=60_000)
        wait_idle(page)
        point = int(re.search(r"point=(\d+)", page.url).group(1))
        idx = proj.sample_index(N_TEST, 200)
        assert point == idx[hovered]  # the test index of the dot under the mouse
        assert "n=200" in page.url and f"run={run.id}" in page.url
        page.wait_for_function(
            "Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".filter(gd => gd.data.some(t => t.name === 'clicked image')).length === 3",
            timeout=60_000,
        )
        state = page.evaluate(STATE_JS)
        assert [c["star"] for c in state] == [hovered] * 3
        body = page.inner_text('[data-testid="stMain"]')
        assert body.count("of 8 neighbours share its class") == 3
        page.screenshot(path=str(artifacts / "embeddings_clicked.png"))
        shared = page.url

    with chromium_page(height=1400) as page:  # a fresh browser opens the shared link
        page.goto(shared)
        wait_idle(page)
        page.wait_for_function(
            "Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".filter(gd => gd.data.some(t => t.name === 'clicked image')).length === 3",
            timeout=60_000,
        )
        state = page.evaluate(STATE_JS)
        assert [c["points"] for c in state] == [200] * 3
        assert [c["star"] for c in state] == [hovered] * 3
        n_box = page.query_selector('[data-testid="stNumberInput"] input')
        assert n_box.input_value() == "200"
        body = page.inner_text('[data-testid="stMain"]')
        assert f"Clicked image #{point}" in body
        assert body.count("of 8 neighbours share its class") == 3
        assert page_errors(page) == []
        page.screenshot(path=str(artifacts / "embeddings_shared_link.png"))


def test_compare_page_shared_link(served, tiny_runs, artifacts):
    url, _ = served
    a, b = tiny_runs["mlp-vae"], tiny_runs["conv-vae"]
    with chromium_page(height=2600) as page:
        page.goto(f"{url}/compare?run={a.id}&other={b.id}")
        wait_idle(page)
        page.wait_for_selector('[data-testid="stImage"]', timeout=60_000)
        wait_idle(page)
        boxes = page.query_selector_all('[data-testid="stSelectbox"]')
        picked = {b.query_selector("label").inner_text().strip(): b.query_selector("input")
                  .input_value() for b in boxes}  # fmt: skip
        assert picked["First run"] == "mlp-vae (mlp-vae, digits)"
        assert picked["Second run"] == "conv-vae (conv-vae, digits)"
        assert f"other={b.id}" in page.url
        assert len(page.query_selector_all(".js-plotly-plot")) == 1  # the loss curves
        assert page_errors(page) == []
        page.screenshot(path=str(artifacts / "compare_runs.png"))


def test_compare_evaluate_a_replaces_its_caption_and_button(tiny_runs, tmp_path, artifacts):
    """A click on "Evaluate A" runs the evaluation in the background; when it ends, A's
    "Not evaluated yet" and its button are gone and A's metric cards stand in their place
    (B, not evaluated, keeps both). The evaluated page is shot at three widths."""
    root = tmp_path / "runs"
    root.mkdir()
    for fam in ("mlp-vae", "ae"):
        src = tiny_runs[fam].path
        shutil.copytree(src, root / src.name, ignore=shutil.ignore_patterns("cache"))
    a, b = Run(root / tiny_runs["mlp-vae"].id), Run(root / tiny_runs["ae"].id)
    with streamlit_server(root) as url:
        with chromium_page(width=1280, height=1600) as page:
            page.goto(f"{url}/compare?run={a.id}&other={b.id}")
            wait_idle(page)
            main = page.locator('[data-testid="stMain"]')
            expect(main.get_by_text("Not evaluated yet")).to_have_count(2)
            page.get_by_role("button", name="Evaluate A").click()
            # the job's progress, then (the fragment reruns the page) A's metric cards
            page.get_by_test_id("stMetric").first.wait_for(timeout=300_000)
            wait_idle(page)
            assert a.evaluation() is not None and b.evaluation() is None
            expect(main.get_by_text("Not evaluated yet")).to_have_count(1)  # B's
            expect(page.get_by_role("button", name="Evaluate A")).to_have_count(0)
            expect(page.get_by_role("button", name="Evaluate B")).to_have_count(1)
            expect(page.get_by_text("Evaluating on the test split")).to_have_count(0)
            ssim = page.get_by_test_id("stMetric").filter(has_text="SSIM")
            expect(ssim).to_contain_text(f"{a.evaluation()['ssim']:.3f}")
            # A's column of "Test metrics": its name, then straight to its cards
            col_a = page.get_by_test_id("stColumn").filter(has_text=f"A: {a.name}").first
            text_a = col_a.inner_text()
            assert text_a.startswith(f"A: {a.name}") and "SSIM" in text_a
            assert "Not evaluated yet" not in text_a and "Evaluate" not in text_a
            assert page_errors(page) == []
        for width in (1024, 1280, 1920):
            with chromium_page(width=width, height=1800) as page:
                page.goto(f"{url}/compare?run={a.id}&other={b.id}")
                wait_idle(page)
                page.get_by_test_id("stImage").first.wait_for(timeout=60_000)
                wait_idle(page)
                assert page.evaluate("document.documentElement.scrollWidth") == width
                assert page_errors(page) == []
                page.screenshot(path=str(artifacts / f"compare-{width}.png"))
