"""A classroom on one server: ``python -m bench.classroom [--students 30] [--tabs 3]``.

Starts a real ``streamlit run app/main.py`` on 127.0.0.1 with an empty runs folder. Thirty
students, spread over ``--within`` seconds, each open Home and press the quick start
("Train a VAE on digits": mlp-vae, 20 epochs), which takes them to the Train page, where
they stay and watch their run until the end (its fragment re-runs every second). The
server's training queue (``core.queue``) decides how many runs train at once.

``--tabs`` of the students (spread among them) are real Chromium tabs, each its own
browser context and so its own Streamlit session; the others are browser-less sessions
(``bench/st_client.py``) that speak the page's websocket protocol: they ask for the same
pages, press the same button and re-run the Train page's fragment on its timer, but render
nothing. In a classroom each student's browser runs on the student's own machine; here
thirty Chromium tabs would render on the server's two cores (they took half of them in the
all-tab runs, ``--tabs 30``), so the browser-less sessions give the server's own figures
and the few tabs what a student sees.

While the students press and while the queue drains, a probe tab opens the Runs page every
few seconds and times it twice: a fresh load of its URL (navigation to the page drawn and
idle; 60 s if it never is) and, from Home, a click on the sidebar's link, as a student moves
between pages (click to the page drawn and idle); one more browser-less session asks for the
Runs page as often (the server's own time). A sampler reads every run's status.json and the
server's memory twice a second. Runs left unfinished at the end are cancelled; the runs
folder is kept for a look (its path is printed). At the end it prints: runs started /
finished / lost (lost: a press that made no run, a run that failed, or one still unfinished
at ``--timeout``), the longest queue wait (run folder seen to first "running"), the server's
memory peak (the Streamlit process alone, and with its training processes), and page
response p50 / p95: Home drawn and the press to the Train page drawn (tabs: navigation to
the quick-start button, and to the Train page's heading; sessions: the request to the
script's end), the Train page's fragment re-runs (sessions: each re-run asked to answered),
and the probes' Runs page. The CPU seconds of the server, its training processes and
Chromium are printed apart.

With ``--ray CPUS`` the server trains on a real Ray head started on 127.0.0.1 with that
many CPUs (``core.ray_engine``; needs requirements-ray.txt): the runs wait in Ray's queue
instead of the server's, and the Ray processes' CPU time and memory are printed apart.

Targets (issue 14) on a 2-core machine: no run lost, every run finishes, server memory under
4 GB beyond the training processes allowed by N, page p95 under 2 s throughout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from bench.st_client import Session
from core import jobs, queue
from core.runs import list_runs
from tests.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server, wait_idle

TERMINAL = ("done", "failed", "cancelled")
QUICK_START = "Train a VAE on digits"
# the Ray head's processes and its workers ("ray::train_on_worker", "ray::IDLE") by name,
# and its Python helpers (monitor, log monitor) by a path in their command line
RAY_PROCESSES = ("ray::", "raylet", "gcs_server")
RAY_PATHS = ("/ray/_private/", "/ray/autoscaler/", "/ray/dashboard/")


def server_process(port: int) -> psutil.Process:
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "streamlit" in " ".join(cmd) and str(port) in cmd:
            return p
    raise RuntimeError(f"no streamlit process on port {port}")


class Sampler(threading.Thread):
    """Twice a second: each run's state (first seen, first running, terminal) and memory."""

    def __init__(self, runs_dir: Path, server: psutil.Process):
        super().__init__(daemon=True)
        self.runs_dir, self.server = runs_dir, server
        self.seen: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.state: dict[str, str] = {}
        self.server_peak = self.total_peak = 0
        self.training_peak = 0  # training processes at once, as seen
        self.cpu: dict[str, dict[int, float]] = {
            "server": {}, "training": {}, "chromium": {}, "ray": {}}  # fmt: skip
        self.ray_peak = self.ray_pss_peak = self.total_pss_peak = 0
        self.stop = threading.Event()

    def cpu_seconds(self) -> None:
        """The CPU time of each process so far (user + system), by who it works for: the
        Streamlit server, its training and view processes, and Chromium."""
        groups = {"server": [self.server], "training": [], "chromium": [], "ray": []}
        try:
            groups["training"] = self.server.children(recursive=True)
        except psutil.Error:
            pass
        for p in psutil.process_iter(["name", "cmdline"]):
            name = (p.info["name"] or "").lower()
            cmd = " ".join(p.info["cmdline"] or [])
            if "chrom" in name:
                groups["chromium"].append(p)
            elif name.startswith(RAY_PROCESSES) or any(s in cmd for s in RAY_PATHS):
                groups["ray"].append(p)
        ray_rss = ray_pss = 0
        for p in groups["ray"]:
            with contextlib.suppress(psutil.Error):
                m = p.memory_full_info()
                ray_rss, ray_pss = ray_rss + m.rss, ray_pss + m.pss
        self.ray_peak = max(self.ray_peak, ray_rss)
        self.ray_pss_peak = max(self.ray_pss_peak, ray_pss)
        for group, procs in groups.items():
            for p in procs:
                try:
                    t = p.cpu_times()
                except psutil.Error:
                    continue
                self.cpu[group][p.pid] = t.user + t.system

    def memory(self) -> None:
        """The server's peak, and its processes' with their children's (trainers, queue
        and Ray launchers) summed two ways: RSS counts the pages they share (torch's and
        Ray's libraries) once per process; PSS splits each shared page among its sharers,
        so the sum is the memory they take together."""
        try:
            m = self.server.memory_full_info()
            kids = self.server.children(recursive=True)
        except psutil.Error:
            return
        total, pss = m.rss, m.pss
        for k in kids:
            try:
                km = k.memory_full_info()
            except psutil.Error:
                continue
            total, pss = total + km.rss, pss + km.pss
        self.server_peak = max(self.server_peak, m.rss)
        self.total_peak = max(self.total_peak, total)
        self.total_pss_peak = max(self.total_pss_peak, pss)

    def run(self) -> None:
        while not self.stop.is_set():
            now = time.time()
            live = 0
            for run in list_runs(self.runs_dir):
                self.seen.setdefault(run.id, now)
                try:
                    st = json.loads((run.path / "status.json").read_text())
                except (OSError, ValueError):
                    continue
                state = st.get("state", "")
                self.state[run.id] = state
                if state == "running":
                    self.running.setdefault(run.id, now)
                    live += 1
            self.training_peak = max(self.training_peak, live)
            self.memory()
            self.cpu_seconds()
            self.stop.wait(0.5)


class Sessions(threading.Thread):
    """The browser-less students (``bench.st_client``), each at its time: open Home, press
    the quick start, then watch the Train page (its fragment's timer) until ``stop``."""

    def __init__(self, url: str, who: list[int], start: list[float], probe_every: float):
        super().__init__(daemon=True)
        self.url, self.who, self.start_at, self.probe_every = url, who, start, probe_every
        self.home_ms, self.press_ms, self.pressed, self.failed = [], [], [], []
        self.sessions: list[Session] = []
        self.probe_ms: list[float] = []  # the Runs page, asked for by one more session
        self.stop = threading.Event()

    def run(self) -> None:
        asyncio.run(self._all())

    async def _probe(self, every: float) -> None:
        async with Session(self.url) as s:
            await s.open()
            while True:
                try:
                    self.probe_ms.append(await s.open("Runs", timeout=60))
                except TimeoutError:
                    self.probe_ms.append(60_000.0)
                await asyncio.sleep(every)

    async def _all(self) -> None:
        tasks = [asyncio.create_task(self._student(i)) for i in self.who]
        if self.who:
            tasks.append(asyncio.create_task(self._probe(self.probe_every)))
        while not self.stop.is_set():
            await asyncio.sleep(0.2)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _student(self, i: int) -> None:
        await asyncio.sleep(max(0.0, self.start_at[i] - time.time()))
        try:
            async with Session(self.url) as s:
                self.sessions.append(s)
                self.home_ms.append(await s.open())
                ms = await s.press(QUICK_START)
                if s.page_hash != s.pages.get("Train"):
                    said = f" (the page said: {s.alerts[-1]})" if s.alerts else ""
                    raise RuntimeError(f"the press did not lead to the Train page{said}")
                self.press_ms.append(ms)
                self.pressed.append(time.time())
                await asyncio.Event().wait()  # watch the run until the bench ends
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - counted, and said, at the end
            self.failed.append(f"student {i}: {type(e).__name__}: {str(e)[:300]}")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def classroom(
    students: int,
    within: float,
    timeout: float,
    probe_every: float,
    ray_cpus: int = 0,
    tabs: int = 3,
) -> dict:
    env = {"OMP_NUM_THREADS": "1", "LATENTLAB_PRECOMPUTE_VIEWS": "0"}
    args = (students, within, timeout, probe_every, env, min(tabs, students))
    if not ray_cpus:
        return _classroom(*args)
    from tests.ray_head import local_ray_head

    with local_ray_head(ray_cpus) as address:
        env["LATENTLAB_RAY_ADDRESS"] = address
        return {"ray_cpus": ray_cpus, **_classroom(*args)}


def _classroom(
    students: int, within: float, timeout: float, probe_every: float, env, tabs: int
) -> dict:
    from playwright.sync_api import sync_playwright

    runs_dir = Path(tempfile.mkdtemp(prefix="classroom-")) / "runs"
    runs_dir.mkdir()
    with streamlit_server(runs_dir, extra_env=env, timeout=120) as url:
        sampler = Sampler(runs_dir, server_process(int(url.rsplit(":", 1)[1])))
        sampler.start()
        pressed, press_failed, probe_ms, home_ms, press_ms = [], [], [], [], []
        nav_ms = []
        t0 = time.time()
        start_at = [t0 + i * within / students for i in range(students)]
        tab_students = sorted({round(k * students / tabs) for k in range(tabs)}) if tabs else []
        who = [i for i in range(students) if i not in tab_students]
        ws = Sessions(url, who, start_at, probe_every)
        ws.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                probe = browser.new_context().new_page()
                last_probe = 0.0

                def probe_now() -> None:  # the Runs page, timed; a failure is a sample too
                    nonlocal last_probe
                    last_probe = time.time()
                    t = time.perf_counter()
                    try:  # a fresh load of the page: HTML, the app's scripts, the session
                        probe.goto(f"{url}/runs", timeout=60_000)
                        wait_idle(probe, timeout=60_000)
                    except Exception:  # noqa: BLE001 - timed out: counted at its 60 s
                        pass
                    probe_ms.append((time.perf_counter() - t) * 1000)
                    nav = probe.locator('[data-testid="stSidebarNav"] a')
                    try:  # and as a student goes there: Home, then the sidebar's link
                        nav.filter(has_text="Home").first.click(timeout=60_000)
                        probe.get_by_role("button", name=QUICK_START).wait_for(timeout=60_000)
                    except Exception:  # noqa: BLE001 - Home not reached: nothing to time
                        return
                    t = time.perf_counter()
                    try:
                        nav.filter(has_text="Runs").first.click(timeout=60_000)
                        probe.get_by_role("heading", name="Runs").first.wait_for(timeout=60_000)
                        wait_idle(probe, timeout=60_000)
                    except Exception:  # noqa: BLE001 - timed out: counted as it took
                        pass
                    nav_ms.append((time.perf_counter() - t) * 1000)

                for i in tab_students:  # the tabs, one at a time from this process
                    while time.time() < start_at[i]:  # probing while it is not their turn
                        if time.time() - last_probe >= probe_every:
                            probe_now()
                        time.sleep(max(0.0, min(0.2, start_at[i] - time.time())))
                    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                    try:
                        t = time.perf_counter()
                        page.goto(url, timeout=120_000)
                        button = page.get_by_role("button", name=QUICK_START)
                        button.wait_for(timeout=120_000)
                        home_ms.append((time.perf_counter() - t) * 1000)
                        t = time.perf_counter()
                        button.click(timeout=120_000)
                        page.get_by_text("Train a model").first.wait_for(timeout=120_000)
                        press_ms.append((time.perf_counter() - t) * 1000)
                        pressed.append(time.time())
                    except Exception as e:  # noqa: BLE001 - counted, and said, at the end
                        press_failed.append(f"student {i}: {type(e).__name__}: {str(e)[:120]}")
                    if time.time() - last_probe >= probe_every:  # probes while they press
                        probe_now()
                while ws.is_alive() and len(ws.pressed) + len(ws.failed) < len(ws.who):
                    probe_now()  # the sessions still pressing
                    time.sleep(probe_every)
                pressed += ws.pressed
                while time.time() < t0 + timeout:  # then while the queue drains
                    states = [sampler.state.get(r) for r in list(sampler.seen)]
                    if len(states) >= len(pressed) and all(s in TERMINAL for s in states):
                        break
                    probe_now()
                    time.sleep(probe_every)
                drained = time.time() - t0
                browser.close()
        finally:  # runs outlive the server (own sessions): cancel what is left, then clean
            ws.stop.set()
            ws.join(30)
            sampler.stop.set()
            sampler.join(5)
            for run in list_runs(runs_dir):
                if sampler.state.get(run.id) not in TERMINAL:
                    jobs.cancel(run)
        slots = queue.settings({**os.environ, **env}).slots
    waits = [sampler.running[r] - sampler.seen[r] for r in sampler.running]
    finished = sum(1 for s in sampler.state.values() if s == "done")
    refresh_ms = [ms for s in ws.sessions for ms in s.fragment_ms]
    return {
        "students": students,
        "chromium_tabs": len(tab_students),
        "browserless_sessions": len(ws.who),
        "presses": len(pressed),
        "last_press_s": round(max(pressed) - t0, 1) if pressed else None,
        "press_failures": press_failed + ws.failed,
        "pages_with_an_error": sum(bool(s.errors) for s in ws.sessions),
        "runs_started": len(sampler.seen),
        "runs_finished": finished,
        "runs_lost": students - finished,
        "states": {s: list(sampler.state.values()).count(s) for s in set(sampler.state.values())},
        "slots": slots,
        "training_at_once_peak": sampler.training_peak,
        "longest_queue_wait_s": round(max(waits), 1) if waits else None,
        "drained_s": round(drained, 1),
        "server_rss_peak_mb": round(sampler.server_peak / 2**20),
        "server_and_training_rss_peak_mb": round(sampler.total_peak / 2**20),
        "server_and_training_pss_peak_mb": round(sampler.total_pss_peak / 2**20),
        "ray_rss_peak_mb": round(sampler.ray_peak / 2**20),
        "ray_pss_peak_mb": round(sampler.ray_pss_peak / 2**20),
        "tabs_home_drawn_ms": spread(home_ms),
        "tabs_press_to_train_page_ms": spread(press_ms),
        "sessions_home_ms": spread(ws.home_ms),
        "sessions_press_to_train_page_ms": spread(ws.press_ms),
        "sessions_train_page_refresh_ms": spread(refresh_ms),
        "runs_page_probe_ms": spread(probe_ms),
        "runs_page_probe_in_app_ms": spread(nav_ms),
        "sessions_runs_page_probe_ms": spread(ws.probe_ms),
        "load_at_end": round(os.getloadavg()[0], 1),
        # where the cores went (CPU seconds, last seen per process; ends of short-lived
        # processes are missed by up to half a second each)
        "cpu_s": {g: round(sum(v.values())) for g, v in sampler.cpu.items()},
        "runs_folder": str(runs_dir),
    }


def spread(ms: list[float]) -> str:
    if not ms:
        return "none measured"
    return (f"p50 {statistics.median(ms):.0f}, p95 {pct(ms, 0.95):.0f}, max {max(ms):.0f} "
            f"(n={len(ms)})")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=30)
    p.add_argument("--tabs", type=int, default=3,
                   help="how many are Chromium tabs (the rest: bench.st_client)")  # fmt: skip
    p.add_argument("--within", type=float, default=60, help="seconds over which they press")
    p.add_argument("--timeout", type=float, default=1800, help="give up on the queue after")
    p.add_argument("--probe-every", type=float, default=2.0, help="seconds between probes")
    p.add_argument("--ray", type=int, default=0, metavar="CPUS",
                   help="train on a local Ray head with this many CPUs")  # fmt: skip
    a = p.parse_args(argv)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, load {os.getloadavg()[0]:.1f} at start"
    )
    res = classroom(a.students, a.within, a.timeout, a.probe_every, a.ray, a.tabs)
    width = max(map(len, res))
    for k, v in res.items():
        print(f"{k:{width}s}  {v}")
    return 0 if res["runs_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
