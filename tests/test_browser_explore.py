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
