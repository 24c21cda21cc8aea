"""The app in a real browser: a real ``streamlit run app/main.py`` on a temporary runs folder
(copies of the tiny runs), driven by Debian's Chromium. Every page must draw without a
Streamlit exception; a 1-epoch digits run is started by clicking on the Train page, found by
a second tab, finishes, and shows up on the Runs page; a run outlives a server restart.
Screenshots go to artifacts/."""

from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import expect

from core import jobs
from core.runs import list_runs
from tests.browser import chromium_page, page_errors, streamlit_server, wait_idle, wait_until

# url path -> what the page must show (its title)
PAGES = {
    "": "Latent lab",
    "train": "Train a model",
    "runs": "Runs",
    "explore": None,
    "conditional": None,
    "embeddings": None,
    "compare": None,
}


@pytest.fixture
def browser_runs(tiny_runs, tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    for run in tiny_runs.values():
        shutil.copytree(run.path, root / run.path.name)
    return root


def pick(page, label: str, option: str) -> None:
    """Choose ``option`` in the select box labelled ``label``."""
    page.get_by_test_id("stSelectbox").filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)


def type_in(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_idle(page)


def grid_texts(page) -> list[str]:
    """Cell texts of the st.dataframe grids (glide keeps an accessible table in the DOM)."""
    return page.locator('[data-testid="stDataFrame"] td[role="gridcell"]').all_text_contents()


@pytest.mark.browser
def test_every_page_and_a_run_started_by_clicking(browser_runs, tiny_runs, artifacts):
    current = tiny_runs["mlp-vae"].id
    with streamlit_server(browser_runs) as url, chromium_page(height=1800) as page:
        for path, title in PAGES.items():
            page.goto(f"{url}/{path}?run={current}")
            wait_idle(page, timeout=180_000)
            assert page_errors(page) == [], f"/{path}: {page_errors(page)}"
            if title:
                heading = page.locator('[data-testid="stMainBlockContainer"] h1').first
                assert heading.inner_text().strip() == title
            page.screenshot(path=str(artifacts / f"app-{path or 'home'}.png"))

        # ---- start a 1-epoch digits run from the Train page
        page.goto(f"{url}/train")
        wait_idle(page)
        pick(page, "Dataset", "digits")
        pick(page, "Model", "mlp-vae")
        type_in(page, "Epochs", "1")
        type_in(page, "Hidden size", "32")
        type_in(page, "Run name (optional)", "browser-run")
        page.get_by_role("button", name="Start training").click()
        watching = page.get_by_role("combobox", name="Run", exact=True)
        expect(watching).to_have_value(re.compile(r"^browser-run · "), timeout=60_000)
        new = [p for p in browser_runs.iterdir() if p.name.endswith("browser-run")]
        assert len(new) == 1

        # a second tab (its own Streamlit session) finds the run in the runs folder
        other = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
        other.goto(f"{url}/train")
        wait_idle(other)
        watching = other.get_by_role("combobox", name="Run", exact=True)
        expect(watching).to_have_value(re.compile(r"^browser-run · "), timeout=60_000)
        other.close()

        page.get_by_text("Finished: 1 epoch").wait_for(timeout=300_000)
        wait_idle(page)
        assert page_errors(page) == []
        assert page.get_by_test_id("stPlotlyChart").count() == 1
        page.screenshot(path=str(artifacts / "app-train-finished.png"))

        # ---- it is listed on the Runs page
        page.goto(f"{url}/runs")
        wait_idle(page)
        page.wait_for_function(  # the grid draws its cells after the script run
            "() => [...document.querySelectorAll("
            '\'[data-testid="stDataFrame"] td[role="gridcell"]\')]'
            ".some(td => td.textContent === 'browser-run')",
            timeout=60_000,
        )
        assert "browser-run" in grid_texts(page)
        assert page_errors(page) == []
        page.screenshot(path=str(artifacts / "app-runs-after.png"))


@pytest.mark.browser
def test_a_run_survives_a_server_restart(tmp_path, artifacts):
    """The training process is not the server's: stopping the server leaves it training, and
    a new server finds it in the runs folder (progress, Cancel)."""
    root = tmp_path / "runs"
    root.mkdir()
    with streamlit_server(root) as url, chromium_page() as page:
        page.goto(f"{url}/train")
        wait_idle(page)
        pick(page, "Dataset", "digits")
        pick(page, "Model", "mlp-vae")
        type_in(page, "Epochs", "500")
        type_in(page, "Run name (optional)", "survivor")
        page.get_by_role("button", name="Start training").click()
        watching = page.get_by_role("combobox", name="Run", exact=True)
        expect(watching).to_have_value(re.compile(r"^survivor · "), timeout=60_000)
    [run] = list_runs(root)
    try:
        wait_until(
            lambda: jobs.refresh(run)["state"] == "running" and run.metrics(),
            180,
            "the run to train its first epoch",
        )
        with streamlit_server(root) as url, chromium_page() as page:
            page.goto(f"{url}/train")
            wait_idle(page)
            watching = page.get_by_role("combobox", name="Run", exact=True)
            expect(watching).to_have_value(re.compile(r"^survivor · "), timeout=60_000)
            expect(page.get_by_text(re.compile(r"Epoch \d+/500"))).to_be_visible()
            page.screenshot(path=str(artifacts / "app-train-after-restart.png"))
            page.get_by_role("button", name="Cancel").click()
            page.get_by_text("Cancelled").first.wait_for(timeout=120_000)
        assert run.status()["state"] == "cancelled"
    finally:
        jobs.cancel(run)
        jobs.wait(run, timeout=60)


@pytest.mark.browser
def test_start_shows_the_progress_where_the_user_looks(tmp_path, artifacts):
    """At 1024, 1280 and 1920 px: the Start button is reached, and after the click the run's
    progress bar is inside the window (the form folds away under it), counting the epoch in
    progress; Cancel ends the run with a pluralised sentence."""
    root = tmp_path / "runs"
    root.mkdir()
    with streamlit_server(root) as url:
        for width in (1024, 1280, 1920):
            with chromium_page(width=width, height=800) as page:
                page.goto(f"{url}/train")
                wait_idle(page)
                pick(page, "Dataset", "digits")
                pick(page, "Model", "mlp-vae")
                type_in(page, "Epochs", "400")
                type_in(page, "Run name (optional)", f"at-{width}")
                start = page.get_by_role("button", name="Start training")
                start.scroll_into_view_if_needed()
                page.screenshot(path=str(artifacts / f"train-form-{width}.png"))
                start.click()
                bar = page.get_by_test_id("stProgress")
                expect(bar).to_be_in_viewport(timeout=60_000)
                expect(bar).to_contain_text(re.compile(r"Epoch [1-9]\d*/400 · "), timeout=120_000)
                assert "Epoch 0/" not in bar.inner_text()
                expect(page.get_by_role("heading", name="Watching")).to_be_in_viewport()
                page.screenshot(path=str(artifacts / f"train-live-{width}.png"))
                assert page_errors(page) == []
                page.get_by_role("button", name="Cancel").click()
                done = page.get_by_text(re.compile(r"^Cancelled (after \d+ of 400 epochs|before)"))
                done.wait_for(timeout=120_000)
                assert "1 epochs" not in done.inner_text()
                page.screenshot(path=str(artifacts / f"train-cancelled-{width}.png"))


@pytest.mark.browser
def test_a_mistyped_run_link_and_the_self_hosted_header(browser_runs, artifacts):
    """A link whose ?run= names no run opens on the newest run with one warning saying so
    (and the URL then names the run shown); the header has the viewer's menu but no Deploy
    button (.streamlit/config.toml), and the browser asks nothing of any other host (no
    usage statistics) nor logs an error."""
    newest = list_runs(browser_runs)[0]
    requests, errors = [], []
    with streamlit_server(browser_runs) as url, chromium_page() as page:
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{url}/?run=no-such-run")
        wait_idle(page)
        warning = page.get_by_test_id("stAlert").filter(has_text="There is no run")
        expect(warning).to_have_count(1)
        said = warning.inner_text()
        assert "There is no run 'no-such-run' (from ?run=, mistyped or deleted)" in said
        assert f"{newest.name} (" in said and "pick another run in the sidebar" in said
        expect(page).to_have_url(re.compile(rf"[?&]run={re.escape(newest.id)}$"))
        picker = page.get_by_role("combobox", name="Current run", exact=True)
        expect(picker).to_have_value(re.compile(rf"^{re.escape(newest.name)} \("))
        expect(page.get_by_test_id("stMainMenu")).to_be_visible()
        assert page.get_by_test_id("stAppDeployButton").count() == 0
        page.screenshot(path=str(artifacts / "app-run-link-mistyped.png"))
    elsewhere = [u for u in requests if not u.startswith((url, "data:", "blob:"))]
    assert elsewhere == [], elsewhere
    assert errors == [], errors
