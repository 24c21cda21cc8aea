"""Real-browser helpers: start ``streamlit run app/main.py`` on a free port on 127.0.0.1
and drive Debian's Chromium with Playwright (never ``playwright install``)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(
    runs_dir: Path, extra_env: dict | None = None, timeout: float = 60, app_args=()
):
    """Yield the base URL of a real Streamlit server serving app/main.py (``app_args`` go
    to the app, after a ``--``)."""
    port = free_port()
    env = dict(os.environ, LATENTLAB_RUNS_DIR=str(runs_dir), **(extra_env or {}))
    log = open(Path(runs_dir).parent / f"streamlit-{port}.log", "wb")  # noqa: SIM115
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"),
        "--server.headless", "true", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    if app_args:
        cmd += ["--", *map(str, app_args)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited at start; see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(healthy, timeout, f"streamlit to answer its health check ({log.name})", 0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    """Yield a Playwright page in headless Debian Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


# True once the app has been idle for two animation frames in a row: the script has run
# (the app root says "notRunning") and the running icon is gone. Polled every frame; the
# count of idle frames lives on window and restarts at each wait.
IDLE_FRAMES_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const busy = !app || app.getAttribute('data-test-script-state') !== 'notRunning'
    || document.querySelector('[data-testid="stStatusWidgetRunningIcon"]') !== null;
  window.__llIdleFrames = busy ? 0 : (window.__llIdleFrames || 0) + 1;
  return window.__llIdleFrames >= 2;
}"""


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the app has drawn its page and no script run is in progress."""
    page.wait_for_selector('[data-testid="stSidebarNav"]', timeout=timeout)
    main = '[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]'
    page.wait_for_selector(main, timeout=timeout)
    page.evaluate("() => { window.__llIdleFrames = 0; }")
    page.wait_for_function(IDLE_FRAMES_JS, polling="raf", timeout=timeout)


def wait_until(condition, timeout: float, what: str, every: float = 0.5):
    """Poll ``condition()`` until it returns something true (returned) or ``timeout``
    seconds pass (the test fails, saying what it waited for)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def page_errors(page) -> list[str]:
    """Texts of exceptions Streamlit drew on the page."""
    return [e.inner_text() for e in page.query_selector_all('[data-testid="stException"]')]
