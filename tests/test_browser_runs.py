"""The Runs page in a real browser (a real ``streamlit run`` server over copies of two tiny
digits runs, Debian's Chromium): a rename shows at once in the sidebar and in "Manage a
run", a delete asks about the run by its name, pretrained runs offer disabled Rename and
Delete buttons, and the table fits the page at 1280 and 1920 pixels (at 1024 it scrolls
inside itself, its name column pinned). Screenshots go to artifacts/."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect

from tests.browser import chromium_page, page_errors, streamlit_server, wait_idle

pytestmark = pytest.mark.browser

MAIN = '[data-testid="stMain"]'
SIDEBAR_PICK = '[data-testid="stSidebar"] [data-testid="stSelectbox"] input'

# the grid's scrolling area: its content width and its visible width; the page's width
GRID_JS = """() => {
  const sc = document.querySelector('[data-testid="stDataFrame"] .dvn-scroller');
  return {content: sc.scrollWidth, shown: sc.clientWidth,
          page: document.documentElement.scrollWidth, window: window.innerWidth};
}"""
GRID_DRAWN = (
    '() => document.querySelectorAll(\'[data-testid="stDataFrame"] td[role="gridcell"]\')'
    ".length > 0"
)


@pytest.fixture
def two_runs(tiny_runs, tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    for fam in ("mlp-vae", "ae"):
        src = tiny_runs[fam].path
        shutil.copytree(src, root / src.name, ignore=shutil.ignore_patterns("cache"))
    return root, tiny_runs["mlp-vae"], tiny_runs["ae"]


def open_runs(page, url: str, query: str = "") -> None:
    page.goto(f"{url}/runs{query}")
    wait_idle(page)
    page.wait_for_function(GRID_DRAWN, timeout=60_000)
    wait_idle(page)


def manage(page, option: str) -> None:
    """Pick ``option`` in "Manage a run"'s picker."""
    page.get_by_role("combobox", name="Run", exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)


def test_rename_delete_and_read_only_runs(two_runs, artifacts):
    root, mine, other = two_runs
    with streamlit_server(root) as url, chromium_page(width=1280, height=1100) as page:
        open_runs(page, url, f"?run={mine.id}")
        assert page.locator(SIDEBAR_PICK).input_value() == "mlp-vae (mlp-vae, digits)"

        # ---- rename the current run: the sidebar and the run picker follow at once
        box = page.get_by_label("New name", exact=True)
        box.fill("sharp digits")
        box.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Rename").click()
        page.get_by_text("Renamed to sharp digits.").wait_for(timeout=60_000)
        wait_idle(page)
        new_label = "sharp digits (mlp-vae, digits)"
        assert page.locator(SIDEBAR_PICK).input_value() == new_label
        picker = page.get_by_role("combobox", name="Run", exact=True)
        assert picker.input_value() == new_label
        page.wait_for_function(
            '() => [...document.querySelectorAll(\'[data-testid="stDataFrame"] '
            "td[role=\"gridcell\"]')].some(td => td.textContent === 'sharp digits')",
            timeout=60_000,
        )
        page.screenshot(path=str(artifacts / "runs-renamed.png"))

        # ---- delete the other run: the question names it, not its folder
        manage(page, "ae (ae, digits)")
        page.get_by_role("button", name="Delete…").click()
        question = page.get_by_text("with its checkpoint and metrics?")
        question.wait_for(timeout=60_000)
        asked = question.inner_text()
        assert asked.startswith("Delete ae with its checkpoint") and other.id not in asked
        page.screenshot(path=str(artifacts / "runs-delete-question.png"))
        page.get_by_role("button", name="Yes, delete it").click()
        page.get_by_text("Deleted ae.").wait_for(timeout=60_000)
        wait_idle(page)
        assert not (root / other.id).exists() and (root / mine.id).exists()

        # ---- a pretrained run: Rename and Delete are greyed out before any click
        manage(page, "pretrained · digits-cvae-l2 (cvae, digits)")
        main = page.locator(MAIN)
        expect(main.get_by_text("read-only (pretrained)")).to_be_visible()
        expect(page.get_by_role("button", name="Delete…")).to_be_disabled()
        expect(page.get_by_role("button", name="Rename")).to_be_disabled()
        expect(page.get_by_label("New name", exact=True)).to_be_disabled()
        assert page_errors(page) == []
        page.screenshot(path=str(artifacts / "runs-read-only.png"))


def test_the_table_stays_inside_the_page(two_runs, artifacts):
    root, mine, _ = two_runs
    with streamlit_server(root) as url:
        for width in (1024, 1280, 1920):
            with chromium_page(width=width, height=1100) as page:
                open_runs(page, url, f"?run={mine.id}")
                grid = page.evaluate(GRID_JS)
                assert grid["page"] == grid["window"], grid  # nothing sticks out
                if width >= 1280:  # every column in view, no sideways scrolling
                    assert grid["content"] <= grid["shown"], (width, grid)
                assert page_errors(page) == []
                page.screenshot(path=str(artifacts / f"runs-{width}.png"))
