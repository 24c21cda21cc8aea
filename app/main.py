"""Entry of the lab: ``streamlit run app/main.py``.

Page config, the sidebar run picker every page shares (its choice lives in
``st.session_state["run_id"]`` and in the URL as ``?run=<id>``), and ``st.navigation`` over
the files in the top-level ``pages/`` folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

from app import components, url_state
from app.common import all_runs, run_label, warm_up
from app.server_args import apply_once
from app.text import md_escape

ROOT = Path(__file__).resolve().parent.parent
ICON = ROOT / "app" / "icon.svg"

PAGES = [
    ("home.py", "Home", ":material/home:", "home"),
    ("train.py", "Train", ":material/model_training:", "train"),
    ("runs.py", "Runs", ":material/folder_open:", "runs"),
    ("explore.py", "Latent explorer", ":material/explore:", "explore"),
    ("conditional.py", "Conditional sampling", ":material/category:", "conditional"),
    ("embeddings.py", "Embeddings", ":material/scatter_plot:", "embeddings"),
    ("compare.py", "Compare runs", ":material/compare:", "compare"),
]


SHOWN = 60  # characters of a refused ?run= value shown in its warning


def shown(value: str) -> str:
    """A refused value as the warning shows it: quoted, cut to ``SHOWN`` characters,
    escaped for Markdown (a link may hold anything)."""
    quoted = repr(value)
    return md_escape(quoted if len(quoted) <= SHOWN else quoted[: SHOWN - 1] + "…")


def refusal(wanted: str, damaged: bool, instead: str | None, from_link: bool) -> str:
    """One sentence: which run could not be opened and why, what is open instead, and how
    to pick another (``instead`` is the open run's label, None when there is none)."""
    where = " (from ?run=)" if from_link else ""
    if damaged:
        why = f"Run {shown(wanted)}{where} cannot be opened (its config.json is damaged)"
        fix = "repair or delete it on the Runs page, or pick another run in the sidebar"
    elif from_link:
        why = f"There is no run {shown(wanted)} (from ?run=, mistyped or deleted)"
        fix = "pick another run in the sidebar or on the Runs page"
    else:
        why = f"Run {shown(wanted)} is no longer in the runs folder"
        fix = "pick another run in the sidebar or on the Runs page"
    if instead is None:
        return f"{why}, and there is no other run yet: train one on the Train page."
    return f"{why}, so **{md_escape(instead)}** is open instead: {fix}."


def sidebar_run_picker() -> None:
    """The sidebar's run picker. A session starts on the run ``?run=`` names, else on the
    newest run; when the named (or current) run cannot be opened, one warning at the top
    of the page says so and names the run opened instead."""
    everything = all_runs()
    runs = [r for r in everything if r.config_or_none() is not None]
    ids = [r.id for r in runs]
    labels = {r.id: run_label(r) for r in runs}
    ss = st.session_state
    if "run_id" not in ss or ss["run_id"] not in ids:
        from_link = "run_id" not in ss or ss["run_id"] is None
        wanted = url_state.raw("run") if from_link else ss["run_id"]
        fallback = ids[0] if ids else None
        ss["run_id"] = wanted if wanted in ids else fallback
        if from_link and wanted in ids:
            ss["linked_run"] = wanted  # a link named it: the Train page watches it (once)
        if wanted and wanted not in ids:
            damaged = any(r.id == wanted for r in everything)
            instead = labels[fallback] if fallback else None
            st.warning(refusal(wanted, damaged, instead, from_link), icon=":material/link_off:")
            if fallback is None:
                url_state.forget("run")  # said once; nothing else to open
    with st.sidebar:
        st.markdown("### Run")
        if not ids:
            st.caption("No runs yet: train one on the Train page.")
            return
        st.selectbox(
            "Current run",
            ids,
            format_func=lambda i: labels.get(i, i),
            key="run_id",
            help="Every page works on this run. Pretrained runs are read-only.",
        )
    if ss["run_id"]:
        url_state.write({"run": ss["run_id"]})


def main() -> None:
    # A local icon: a :material/...: one makes every browser fetch it from Google's servers.
    st.set_page_config(page_title="Latent lab", page_icon=str(ICON), layout="wide")
    pages = [
        st.Page(str(ROOT / "pages" / f), title=t, icon=i, url_path=u, default=(u == "home"))
        for f, t, i, u in PAGES
    ]
    nav = st.navigation(pages)
    # `streamlit run` sets sys.argv to this script and the arguments after it (AppTest and
    # other hosts leave their own argv, which is not ours to read).
    started_here = sys.argv and Path(sys.argv[0]).resolve() == Path(__file__).resolve()
    problem = apply_once(tuple(sys.argv[1:])) if started_here else None
    if problem:
        st.error(problem, icon=":material/error:")
        st.stop()
    st.session_state.pop("_sample_noted", None)  # app.common notes the offline sample once
    sidebar_run_picker()
    components.runtime_warmup()  # the in-browser decoder's runtime, started at idle
    try:
        nav.run()
    finally:  # also when the page stops or reruns: once drawn, warm the model pages up
        warm_up()


main()
