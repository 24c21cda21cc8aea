"""The decoder in the browser (issue 15): onnxruntime-web, served by the app, decodes the
exact point under the cursor, equal to torch's decoding; the toggle switches to the
blended grid; without the runtime the plane falls back to the grid and says why. A real
``streamlit run`` server and Debian's Chromium."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import explore as ex
from core.runs import load_model
from tests.browser import ROOT, chromium_page, page_errors, streamlit_server, wait_idle
from tests.test_browser_explore import DECODED, PLANE, decoded_pixels, open_explorer

pytestmark = pytest.mark.browser

ENGINE = '[data-testid="ll-engine"]'
POINTS = [(0.0, 0.0), (1.3, -0.7), (-2.1, 1.9), (0.37, 2.6)]
COUNT_SENDS = """(() => {
  window.__wsSends = 0;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (...a) { window.__wsSends++; return send.apply(this, a); };
})();"""


def exact_ready(page) -> dict:
    page.wait_for_function("() => window.__latentlab.scrub.exactReady === true", timeout=60_000)
    return page.evaluate("() => window.__latentlab.scrub")


def browser_decodings(page, points) -> list[np.ndarray]:
    out = page.evaluate(
        "async (pts) => { const r = []; for (const [u, v] of pts) "
        "r.push(await window.__latentlab.exactDecode(u, v)); return r; }",
        [list(p) for p in points],
    )
    return [np.asarray(a, dtype=np.float32) for a in out]


def torch_decodings(run, plane: dict, points, label=None) -> list[np.ndarray]:
    model, _ = load_model(run.checkpoint_path)
    o, du, dv = (np.asarray(plane[k], dtype=np.float64) for k in ("origin", "du", "dv"))
    z = np.stack([o + u * du + v * dv for u, v in points]).astype(np.float32)
    y = None if label is None else torch.full((len(points),), label)
    with torch.no_grad():
        x = model.decode(torch.as_tensor(z), y).numpy()
    return [a.reshape(-1) for a in x]


@pytest.mark.parametrize("family", ["conv-vae", "cvae"])
def test_the_browser_decodes_the_exact_point_as_torch_does(tiny_runs, artifacts, family):
    run = tiny_runs[family]
    with streamlit_server(run.path.parent) as url, chromium_page(1400, 1400) as page:
        page.add_init_script(COUNT_SENDS)
        open_explorer(page, f"{url}/explore?run={run.id}")
        exact_ready(page)
        assert page.locator(ENGINE).inner_text().startswith("Exact: the decoder itself runs")
        plane = page.evaluate("() => window.__latentlab.exactPlane")
        label = None
        if family == "cvae":
            assert sum(plane["onehot"]) == 1
            label = plane["onehot"].index(1)
        got = browser_decodings(page, POINTS)
        want = torch_decodings(run, plane, POINTS, label)
        worst = max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True))
        assert worst <= 1e-4, f"the browser's decoding differs from torch's by {worst:.2g}"
        assert len({g.tobytes() for g in got}) == len(POINTS)  # four points, four pictures

        if family == "cvae":  # the label at the cursor: redrawn in the browser, no message
            other = (label + 3) % len(plane["onehot"])
            sends = page.evaluate("() => window.__wsSends")
            assert sends > 0  # the count sees the page's own messages (its first run)
            page.get_by_test_id("ll-label").select_option(str(other))
            page.wait_for_function("() => (window.__latentlab.scrub.labelLatencies || []).length")
            again = browser_decodings(page, POINTS[:2])
            want = torch_decodings(run, plane, POINTS[:2], other)
            assert max(float(np.abs(g - w).max()) for g, w in zip(again, want, strict=True)) <= 1e-4
            assert not np.allclose(again[0], got[0], atol=1e-3)  # the label changed the picture
            assert page.evaluate("() => window.__wsSends") == sends

        # the mouse: every move is decoded exactly, and the canvas shows it
        box = page.locator(PLANE).bounding_box()
        count = "() => window.__latentlab.scrub.exactPaints || 0"
        before = page.evaluate(count)
        seen = set()
        for fx, fy in [(0.2, 0.2), (0.8, 0.3), (0.5, 0.7)]:
            n = page.evaluate(count)
            page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            page.wait_for_function("(n) => window.__latentlab.scrub.exactPaints > n", arg=n)
            seen.add(decoded_pixels(page))
        assert len(seen) == 3
        assert page.evaluate(count) >= before + 3
        page.screenshot(path=str(artifacts / f"explore_exact_{family}.png"))

        # the toggle: the blended grid takes over, and the page says so
        page.get_by_test_id("ll-exact").uncheck()
        assert "exact decoding is off" in page.locator(ENGINE).inner_text()
        paints = page.evaluate("() => window.__latentlab.scrub.paints")
        page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.6 * box["height"])
        page.wait_for_function("(n) => window.__latentlab.scrub.paints > n", arg=paints)
        assert page.evaluate("() => window.__latentlab.scrub.engine") == "grid"
        page.get_by_test_id("ll-exact").check()
        assert page.evaluate("() => window.__latentlab.scrub.engine") == "exact"
        assert page_errors(page) == []


def test_home_starts_the_runtime_so_the_explorer_only_loads_its_decoder(tiny_runs):
    """Home (any page) starts onnxruntime-web at idle with a one-node model; moving to the
    explorer in the same tab then creates only the decoder's session on the running runtime."""
    run = tiny_runs["mlp-vae"]
    ort = "() => window.__latentlabOrt"
    with streamlit_server(run.path.parent) as url, chromium_page(1400, 1200) as page:
        page.goto(f"{url}/?run={run.id}")
        wait_idle(page)
        page.wait_for_function(f"() => ({ort})()?.timing?.warm > 0", timeout=60_000)
        assert page.evaluate(f"() => ({ort})().sessions.size") == 0  # no decoder on Home
        started = page.evaluate(f"() => ({ort})().timing.start")
        page.locator('[data-testid="stSidebarNav"] a', has_text="Latent explorer").click()
        page.locator(PLANE).wait_for(timeout=60_000)
        exact_ready(page)
        timing = page.evaluate(f"() => ({ort})().timing")
        assert timing["start"] == started  # the runtime was loaded once, on Home
        assert timing["warm"] < timing["session"]
        assert page.locator(ENGINE).inner_text().startswith("Exact: the decoder itself runs")
        assert page_errors(page) == []


def test_without_the_runtime_the_plane_blends_its_grid_and_says_why(tiny_runs):
    run = tiny_runs["mlp-vae"]
    env = {"STREAMLIT_SERVER_ENABLE_STATIC_SERVING": "false"}
    with streamlit_server(run.path.parent, env) as url, chromium_page(1400, 1200) as page:
        open_explorer(page, f"{url}/explore?run={run.id}")
        engine = page.locator(ENGINE).inner_text()
        assert "blended" in engine and "static file serving is off" in engine
        assert page.get_by_test_id("ll-exact").is_disabled()
        box = page.locator(PLANE).bounding_box()
        seen = set()
        for fx, fy in [(0.2, 0.2), (0.8, 0.8)]:
            page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            seen.add(decoded_pixels(page))
        assert len(seen) == 2 and page.locator(DECODED).is_visible()
        assert page.evaluate("() => window.__latentlab.scrub.engine") == "grid"


SET_SLIDER = """(el, x) => {
  el.value = x;
  el.dispatchEvent(new Event("input", { bubbles: true }));
  return Number(el.value);
}"""


@pytest.mark.parametrize("fix", ["", "&fix=img:5"], ids=["at the mean", "from a test image"])
def test_the_other_coordinates_and_the_label_at_the_cursor_then_a_pin(artifacts, tmp_path, fix):
    """digits-cvae-l8 (zoo, L = 8, conditional): the six other coordinates are sliders in the
    browser; moving one redraws the exact picture with no message to the server; a pin then
    carries the label and the coordinates to the page, which adopts them: its plane gives
    the picture the browser showed at that point, whatever the other coordinates were taken
    from before (the mean, or a test image's)."""
    runs = tmp_path / "runs"
    runs.mkdir()
    with streamlit_server(runs) as url, chromium_page(1400, 1600) as page:
        page.add_init_script(COUNT_SENDS)
        open_explorer(page, f"{url}/explore?run=digits-cvae-l8{fix}")
        exact_ready(page)
        plane = page.evaluate("() => window.__latentlab.exactPlane")
        others = plane["others"]
        assert len(others) == 6 and page.locator('[data-testid="ll-others"]').is_visible()
        page.get_by_text("Other coordinates at the cursor (6)").click()  # open the list
        first = others[0]
        x = first["value"] + 0.4 * (first["hi"] - first["value"])
        sends = page.evaluate("() => window.__wsSends")
        slider = page.locator(f'[data-testid="ll-others"] input[data-k="{first["k"]}"]')
        x = slider.evaluate(SET_SLIDER, x)
        page.wait_for_function("() => (window.__latentlab.scrub.sliderLatencies || []).length")
        label = (plane["onehot"].index(1) + 4) % 10
        page.get_by_test_id("ll-label").select_option(str(label))
        page.wait_for_function("() => (window.__latentlab.scrub.labelLatencies || []).length")
        assert page.evaluate("() => window.__wsSends") == sends

        (got,) = browser_decodings(page, POINTS[1:2])
        u, v = POINTS[1]
        o, du, dv = (np.asarray(plane[k], np.float64) for k in ("origin", "du", "dv"))
        z = o + u * du + v * dv + (x - first["value"]) * np.asarray(first["dir"], np.float64)
        model, _ = load_model(ROOT / "pretrained" / "digits-cvae-l8" / "checkpoint.pt")
        with torch.no_grad():
            want = model.decode(
                torch.as_tensor(z[None], dtype=torch.float32), torch.tensor([label])
            )
        assert float(np.abs(got - want.numpy().reshape(-1)).max()) <= 1e-4

        # a pin: the page adopts the label and the coordinate, and decodes the same point
        box = page.locator(PLANE).bounding_box()
        at = (box["x"] + 0.4 * box["width"], box["y"] + 0.6 * box["height"])
        n = page.evaluate("() => window.__latentlab.scrub.exactPaints || 0")
        page.mouse.move(*at)
        page.wait_for_function("(n) => window.__latentlab.scrub.exactPaints > n", arg=n)
        pin = page.evaluate("() => window.__latentlab.scrub.lastUV")
        (seen,) = browser_decodings(page, [pin])  # the picture the user sees there
        page.mouse.click(*at)
        page.wait_for_function(
            "([k, x]) => { const p = window.__latentlab.exactPlane;"
            " return p && p.others.some((o) => o.k === k && Math.abs(o.value - x) < 1e-6); }",
            arg=[first["k"], x],
            timeout=60_000,
        )
        exact_ready(page)
        after = page.evaluate("() => window.__latentlab.exactPlane")
        assert after["onehot"].index(1) == label
        assert all(o["cur"] == o["value"] for o in after["others"])  # the page's values now
        (pinned,) = browser_decodings(page, [pin])  # the page's plane at the pin
        assert float(np.abs(pinned - seen).max()) <= 1e-5
        assert page.locator(ENGINE).inner_text().startswith("Exact")
        page.screenshot(path=str(artifacts / "explore_exact_sliders.png"))
        assert page_errors(page) == []

        # the interpolation, linear then spherical: the slider "along A -> B" decodes its
        # points here, as core.latent_geometry's lerp and slerp
        ends = page.evaluate("() => window.__latentlab.exactPlane.interp")
        assert ends["method"] == "linear"
        res = page.evaluate("async () => window.__latentlab.exactAlong(0.37)")
        np.testing.assert_allclose(res["z"], ex.lerp(ends["z0"], ends["z1"], 101)[37], atol=1e-5)
        page.get_by_role("tab", name="Interpolation").click()
        page.get_by_text("spherical", exact=True).click()
        page.wait_for_function(
            "() => window.__latentlab.exactPlane?.interp?.method === 'spherical'"
            " && window.__latentlab.scrub.exactReady",
            timeout=60_000,
        )
        ends = page.evaluate("() => window.__latentlab.exactPlane.interp")
        onehot = page.evaluate("() => window.__latentlab.exactPlane.onehot")
        sends = page.evaluate("() => window.__wsSends")
        page.get_by_test_id("ll-along").evaluate(SET_SLIDER, 0.37)
        page.wait_for_function("() => (window.__latentlab.scrub.alongLatencies || []).length")
        assert page.evaluate("() => window.__wsSends") == sends
        res = page.evaluate("async () => window.__latentlab.exactAlong(0.37)")
        z = ex.slerp(ends["z0"], ends["z1"], 101)[37]  # t = 0.37
        np.testing.assert_allclose(res["z"], z, atol=1e-5)
        with torch.no_grad():
            y = torch.tensor([onehot.index(1)])
            want = model.decode(torch.as_tensor(z[None]), y).numpy().reshape(-1)
        assert float(np.abs(np.asarray(res["image"], np.float32) - want).max()) <= 1e-4
