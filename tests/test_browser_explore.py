"""The latent explorer in a real browser: a real ``streamlit run`` server and Debian's
Chromium (Playwright). Scrubbing, pinning, the shared link and drawing cannot be tested
headless with AppTest: custom components only run in a browser."""

from __future__ import annotations

import re

import pytest

from tests.browser import chromium_page, page_errors, streamlit_server, wait_idle

pytestmark = pytest.mark.browser

PLANE = '[data-testid="ll-overlay"]'
DECODED = '[data-testid="ll-decoded"]'
PAD = '[data-testid="ll-pad"]'


def open_explorer(page, url: str) -> None:
    page.goto(url)
    wait_idle(page)
    page.locator(PLANE).wait_for(timeout=60_000)
    page.wait_for_function("() => window.__latentlab?.scrub?.ready === true", timeout=60_000)


def decoded_pixels(page) -> str:
    return page.locator(DECODED).evaluate("c => c.toDataURL()")


def pinned_caption(page):
    return page.get_by_text(re.compile(r"^z0 = -?\d+\.\d{3}, z1 = -?\d+\.\d{3}$"))


def test_scrub_pin_share_and_draw(tiny_runs, artifacts):
    run = tiny_runs["mlp-vae"]
    with streamlit_server(run.path.parent) as url, chromium_page(1400, 1700) as page:
        open_explorer(page, f"{url}/explore?run={run.id}")
        assert page_errors(page) == []
        box = page.locator(PLANE).bounding_box()

        # ---- scrub: the decoded image follows the mouse, with no server round trip
        seen, readouts = set(), set()
        moves = page.evaluate("() => window.__latentlab.scrub.moves")
        for fx, fy in [(0.15, 0.15), (0.85, 0.2), (0.5, 0.5), (0.2, 0.85), (0.85, 0.85)]:
            page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=4)
            seen.add(decoded_pixels(page))
            readouts.add(page.locator('[data-testid="ll-readout"]').inner_text())
        assert len(seen) >= 3, "the decoded image did not change as the mouse moved"
        assert len(readouts) == 5
        scrub = page.evaluate("() => window.__latentlab.scrub")
        assert scrub["moves"] >= moves + 5 and scrub["paints"] >= 5  # (speed: bench/)
        page.screenshot(path=str(artifacts / "explore_scrub.png"))

        # ---- pin: a click is decoded exactly on the server and written into the link
        page.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + 0.4 * box["height"])
        page.wait_for_function("() => location.search.includes('pin=')", timeout=30_000)
        wait_idle(page)
        caption = pinned_caption(page)
        caption.wait_for(timeout=30_000)
        pinned_text = caption.inner_text()
        assert page.get_by_role("button", name="Download PNG").first.is_visible()
        link = page.url
        assert re.search(r"[?&]pin=-?[\d.e-]+%2C-?[\d.e-]+|[?&]pin=-?[\d.e-]+,-?[\d.e-]+", link)
        assert "axes=z0%2Cz1" in link or "axes=z0,z1" in link
        page.screenshot(path=str(artifacts / "explore_pinned.png"))

        # ---- draw: strokes on the pad are encoded and placed on the plane
        pad = page.locator(PAD)
        pad.scroll_into_view_if_needed()
        pb = pad.bounding_box()
        page.mouse.move(pb["x"] + 0.5 * pb["width"], pb["y"] + 0.2 * pb["height"])
        page.mouse.down()
        for k in range(1, 11):
            page.mouse.move(pb["x"] + (0.5 - 0.02 * k) * pb["width"],
                            pb["y"] + (0.2 + 0.06 * k) * pb["height"])  # fmt: skip
        page.mouse.up()
        page.get_by_text("drawing, as the model sees it").wait_for(timeout=30_000)
        page.get_by_text("its reconstruction").first.wait_for(timeout=30_000)
        page.get_by_text(re.compile(r"◆ drawing on the plane at")).wait_for(timeout=30_000)
        wait_idle(page)
        assert page_errors(page) == []
        page.screenshot(path=str(artifacts / "explore_drawn.png"))

    # ---- the shared link reopens the same view in a new session (new server, new browser)
    with streamlit_server(run.path.parent) as url2, chromium_page(1400, 1700) as page:
        open_explorer(page, re.sub(r"^http://127\.0\.0\.1:\d+", url2, link))
        caption = pinned_caption(page)
        caption.wait_for(timeout=30_000)
        assert caption.inner_text() == pinned_text
        assert "pin=" in page.url
        assert page_errors(page) == []
        page.screenshot(path=str(artifacts / "explore_reopened.png"))


def test_category_grid_flips_the_decoding(tiny_runs, artifacts):
    run = tiny_runs["gumbel-vae"]
    with streamlit_server(run.path.parent) as url, chromium_page(1400, 2200) as page:
        open_explorer(page, f"{url}/explore?run={run.id}")
        caption = page.get_by_text("decoded from the chosen categories")
        caption.wait_for(timeout=30_000)
        img = page.locator('[data-testid="stImage"]', has=caption).locator("img").first
        before = img.get_attribute("src")
        cats = page.locator('[data-testid="ll-cats"]')
        k = int(cats.locator('td.cell.on[data-v="0"]').get_attribute("data-k"))
        flip = (k + 1) % 5
        cell = cats.locator(f'td.cell[data-v="0"][data-k="{flip}"]')
        cell.scroll_into_view_if_needed()
        cell.click()
        page.wait_for_function(
            "([sel, old]) => [...document.querySelectorAll(sel)].some("
            "(i) => i.closest('[data-testid=stImage]')?.innerText.includes("
            "'decoded from the chosen categories') && i.getAttribute('src') !== old)",
            arg=['[data-testid="stImage"] img', before],
            timeout=30_000,
        )
        wait_idle(page)
        assert cats.locator('td.cell.on[data-v="0"]').get_attribute("data-k") == str(flip)
        assert page_errors(page) == []
        page.screenshot(path=str(artifacts / "explore_categories.png"))


# The window sizes people use (width x height), with Streamlit's sidebar open (its default).
WIDTHS = {1024: 768, 1280: 800, 1920: 800}
PRETRAINED = "fmnist-cvae-l10"  # 10-d and conditional: the most controls above the plane

# Boxes of the elements a reader needs (null when absent), and every control and picture
# that must show whole: its own box, its container's (the page's: inside its padding),
# whether its content overflows (scrollWidth).
GEOMETRY_JS = """() => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return {x: r.left, y: r.top, r: r.right, b: r.bottom, w: r.width, h: r.height}; };
  const inner = (e) => { const b = box(e), css = getComputedStyle(e);
    const l = parseFloat(css.paddingLeft), r = parseFloat(css.paddingRight);
    return {...b, x: b.x + l, r: b.r - r, w: b.w - l - r}; };
  const all = (s) => [...document.querySelectorAll(s), ...[...document.querySelectorAll("*")]
    .flatMap((h) => h.shadowRoot ? [...h.shadowRoot.querySelectorAll(s)] : [])];  // components
  const one = (s) => { const e = all(s)[0]; return e ? box(e) : null; };
  const controls = [];
  const add = (name, e, within) => controls.push({name, box: box(e), within: inner(within),
    overflow: e.scrollWidth - e.clientWidth, text: (e.innerText || "").trim()});
  const main = document.querySelector('[data-testid="stMainBlockContainer"]');
  for (const key of ["ex_kind", "ex_pca_i", "ex_pca_j", "ex_range", "ex_label"]) {
    const c = document.querySelector(`.st-key-${key}`);
    if (!c) continue;
    add(key, c, main);
    for (const b of c.querySelectorAll("button, [data-baseweb=select], [role=slider]"))
      add(`${key} ${b.tagName.toLowerCase()}`, b, c);
  }
  const side = all(".ll-side")[0];
  for (const l of all(".ll-check")) add("plane checkbox", l, side);
  add("plane side", side, main);
  const pad = all(".ll-pad")[0];  // the drawing pad, in its column below the plane
  const column = pad.getRootNode().host.closest('[data-testid="stColumn"]');
  for (const s of [".ll-pad-canvas", ".ll-pad-tools"]) add(`pad ${s}`, all(s)[0], column);
  for (const i of document.querySelectorAll('[data-testid="stImage"] img')) {
    if (!i.offsetWidth) continue;  // in a hidden tab
    const caption = i.closest('[data-testid="stImage"]').innerText.trim();
    add(`picture "${caption}"`, i, i.closest('[data-testid="stColumn"]') || main);
  }
  return {plane: one('[data-testid="ll-overlay"]'), decoded: one('[data-testid="ll-decoded"]'),
    title: one(".ll-title"), sidebar: one('[data-testid="stSidebar"]'),
    vw: window.innerWidth, vh: window.innerHeight, controls};
}"""


@pytest.mark.parametrize("width", list(WIDTHS))
def test_explorer_fits_common_window_widths(width, tmp_path, artifacts):
    """At 1024, 1280 and 1920 px: the decoded picture sits beside the plane (visible while
    the mouse scrubs), no control or picture is cut off or spills over its column, and
    scrubbing still changes the picture."""
    runs = tmp_path / "runs"
    runs.mkdir()
    with streamlit_server(runs) as url, chromium_page(width, WIDTHS[width]) as page:
        open_explorer(page, f"{url}/explore?run={PRETRAINED}")
        assert page_errors(page) == []
        pca = page.get_by_role("radio", name="Principal directions")
        assert pca.is_visible() and pca.get_attribute("aria-checked") == "true"
        page.locator(PAD).wait_for(timeout=30_000)
        page.locator(PLANE).scroll_into_view_if_needed()
        g = page.evaluate(GEOMETRY_JS)
        assert g["sidebar"]["w"] > 150, "the sidebar should be open (Streamlit's default)"
        plane, decoded, vw, vh = g["plane"], g["decoded"], g["vw"], g["vh"]

        # "Decoded at the cursor" is to the right of the plane, level with it, on screen
        where = f"at {width}px: plane {plane}, decoded image {decoded}"
        assert decoded["x"] >= plane["r"], f"the decoded image is not right of the plane {where}"
        assert plane["y"] <= decoded["y"] <= plane["b"], f"not level with the plane {where}"
        assert plane["y"] <= g["title"]["y"] and decoded["b"] <= plane["b"], where
        for name, b in (("plane", plane), ("decoded image", decoded)):
            on_screen = b["x"] >= -1 and b["r"] <= vw + 1 and b["y"] >= -1 and b["b"] <= vh + 1
            assert on_screen, f"{name} not on screen {where}"
        assert plane["w"] >= 300, f"the plane shrank to {plane['w']:.0f}px"

        # no control cut off: inside its container and the window, its content not clipped
        names = {c["name"].split()[0] for c in g["controls"]}
        assert {"ex_kind", "ex_pca_i", "ex_pca_j", "ex_range", "ex_label", "pad"} <= names
        for c in g["controls"]:
            b, w = c["box"], c["within"]
            inside = b["x"] >= w["x"] - 1 and b["r"] <= w["r"] + 1 and b["r"] <= vw
            assert inside and c["overflow"] <= 1, f"{c['name']} clipped at {width}px: {c}"

        # scrubbing: the picture beside the plane follows the mouse
        before = decoded_pixels(page)
        page.mouse.move(plane["x"] + 0.2 * plane["w"], plane["y"] + 0.25 * plane["h"], steps=3)
        page.wait_for_function(
            "([canvas, old]) => canvas.toDataURL() !== old",
            arg=[page.locator(DECODED).element_handle(), before],
            timeout=10_000,
        )
        readout = page.locator('[data-testid="ll-readout"]').inner_text()
        assert re.match(r"PC1 = -?\d+\.\d{3}\nPC2 = -?\d+\.\d{3}", readout), readout
        page.screenshot(path=str(artifacts / f"explore_width_{width}.png"))

        # a pin: its picture (256 px at most) and the decoded grid (640 px at most) shrink to
        # their columns rather than spill over the drawing pad or off the page
        page.mouse.click(plane["x"] + 0.3 * plane["w"], plane["y"] + 0.4 * plane["h"])
        caption = page.get_by_text(re.compile(r"^PC1 = -?\d+\.\d{3}, PC2 = -?\d+\.\d{3}$"))
        caption.wait_for(timeout=30_000)
        wait_idle(page)
        assert page_errors(page) == []
        g = page.evaluate(GEOMETRY_JS)
        pictures = [c for c in g["controls"] if c["name"].startswith("picture")]
        assert any("PC1 = " in c["name"] for c in pictures), pictures
        assert any("(left) to" in c["name"] for c in pictures), pictures  # the decoded grid
        for c in pictures:
            b, w = c["box"], c["within"]
            inside = b["x"] >= w["x"] - 1 and b["r"] <= w["r"] + 1 and b["w"] > 50
            assert inside, f"{c['name']} spills over its column at {width}px: {c}"
        caption.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / f"explore_width_{width}_pinned.png"))

        # a window resized while the page is open: the plane is redrawn to the new width,
        # the picture stays beside it and still follows the mouse
        side = page.evaluate("() => window.__latentlab.planeSize")
        other = 1280 if width == 1024 else 1024
        page.set_viewport_size({"width": other, "height": WIDTHS[other]})
        page.wait_for_function(f"() => window.__latentlab.planeSize !== {side}", timeout=10_000)
        page.locator(PLANE).scroll_into_view_if_needed()
        g = page.evaluate(GEOMETRY_JS)
        assert g["decoded"]["x"] >= g["plane"]["r"] and g["plane"]["r"] <= g["vw"], g["plane"]
        before = decoded_pixels(page)
        p = g["plane"]
        page.mouse.move(p["x"] + 0.8 * p["w"], p["y"] + 0.7 * p["h"], steps=3)
        page.wait_for_function(
            "([canvas, old]) => canvas.toDataURL() !== old",
            arg=[page.locator(DECODED).element_handle(), before],
            timeout=10_000,
        )
