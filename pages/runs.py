"""Runs: every run in one table (filter, sort, pick), and what you can do with one: open it,
rename it, delete it, download its checkpoint; and upload a checkpoint to make a new run."""

import streamlit as st

from app import runs_page as ui
from app.common import all_runs, explain
from app.runs_table import runs_table
from app.text import md_escape

st.title("Runs")
explain(ui.INTRO)

ss = st.session_state
if ss.get("runs.flash"):
    st.success(md_escape(ss.pop("runs.flash")))
runs = all_runs()
df = runs_table(runs)

if df.empty:
    st.info("No runs yet: train one on the **Train** page, or upload a checkpoint below.")
else:
    ui.table_section(df)
    ui.manage_section(runs, df)

ui.upload_section()
