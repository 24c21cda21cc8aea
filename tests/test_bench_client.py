"""bench/st_client.py, the browser-less Streamlit session the classroom bench puts most of
its students on, against a real server: it must do what a tab does (Home drawn, the quick
start pressed, the Train page reached, a real run started, the page's fragment re-run on
its timer), or the bench's server figures would be of something else."""

from __future__ import annotations

import asyncio

import pytest

from bench.st_client import Session
from core import jobs
from core.runs import list_runs
from tests.browser import streamlit_server


@pytest.fixture()
def server(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    env = {"OMP_NUM_THREADS": "1", "LATENTLAB_PRECOMPUTE_VIEWS": "0"}
    with streamlit_server(runs, extra_env=env) as url:
        yield url, runs
        for run in list_runs(runs):
            jobs.cancel(run)


def test_a_session_opens_home_presses_the_quick_start_and_watches_its_run(server):
    url, runs = server

    async def student():
        async with Session(url) as s:
            home = await s.open()
            assert "Train a VAE on digits" in s.buttons  # Home drawn, its button seen
            assert set(s.pages) >= {"Home", "Train", "Runs", "Latent explorer"}
            await s.press("Train a VAE on digits")
            assert s.page_hash == s.pages["Train"]  # st.switch_page followed
            assert "Cancel" in s.buttons or "Start training" in s.buttons
            (run,) = list_runs(runs)
            assert s.query_string == f"run={run.id}"  # the page's ?run= link, kept
            assert list(s.fragments.values()) == [1.0]  # the live panel's timer
            await asyncio.sleep(4)  # its re-runs, asked and answered
            assert len(s.fragment_ms) >= 2
            assert s.errors == []
            with pytest.raises(KeyError, match="no button 'Nope'"):
                await s.press("Nope")
            for _ in range(240):  # the run ends: the page redraws itself as finished
                if jobs.refresh(run)["state"] == "done" and not s.fragments:
                    break
                await asyncio.sleep(0.5)
            assert jobs.refresh(run)["state"] == "done"
            await asyncio.sleep(2)
            assert s.fragments == {}  # and its timer stopped, as the page's does
            assert "Resume" in s.buttons and any(a.startswith("Finished") for a in s.alerts)
            ms = await s.open("Runs")
            assert s.page_hash == s.pages["Runs"]
            return home, ms

    home, runs_page = asyncio.run(student())
    assert home > 0 and runs_page > 0
