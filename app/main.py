"""Entry of the lab: ``streamlit run app/main.py``.

Page config, the sidebar run picker every page shares (its choice lives in
``st.session_state["run_id"]`` and in the URL as ``?run=<id>``), and ``st.navigation`` over
the files in the top-level ``pages/`` folder.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import url_state
from app.common import run_label, usable_runs

ROOT = Path(__file__).resolve().parent.parent

PAGES = [
    ("home.py", "Home", ":material/home:", "home"),
    ("train.py", "Train", ":material/model_training:", "train"),
    ("runs.py", "Runs", ":material/folder_open:", "runs"),
    ("explore.py", "Latent explorer", ":material/explore:", "explore"),
    ("conditional.py", "Conditional sampling", ":material/category:", "conditional"),
    ("embeddings.py", "Embeddings", ":material/scatter_plot:", "embeddings"),
    ("compare.py", "Compare runs", ":material/compare:", "compare"),
]


def sidebar_run_picker() -> None:
    runs = usable_runs()
    ids = [r.id for r in runs]
    labels = {r.id: run_label(r) for r in runs}
    wanted = url_state.text("run")
    if "run_id" not in st.session_state or st.session_state["run_id"] not in ids:
        st.session_state["run_id"] = wanted if wanted in ids else (ids[0] if ids else None)
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
    if st.session_state["run_id"]:
        url_state.write({"run": st.session_state["run_id"]})


def main() -> None:
    st.set_page_config(page_title="Latent lab", page_icon=":material/blur_on:", layout="wide")
    pages = [
        st.Page(str(ROOT / "pages" / f), title=t, icon=i, url_path=u, default=(u == "home"))
        for f, t, i, u in PAGES
    ]
    nav = st.navigation(pages)
    st.session_state.pop("_sample_noted", None)  # app.common notes the offline sample once
    sidebar_run_picker()
    nav.run()


main()
