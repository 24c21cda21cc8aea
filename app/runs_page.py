"""The Runs page: every run in one table (filter, sort, pick), what you can do with one
(open, rename, delete, repair, resume, download its checkpoint), and the checkpoint upload
that makes a new run."""

from __future__ import annotations

import contextlib
from datetime import datetime

import streamlit as st

from app.common import is_pretrained, run_label, runs_root, set_current_run
from app.runs_table import find_user_run
from app.text import md_escape, one_line
from app.train_monitor import LIVE_STATES, interrupted_actions
from core import jobs, queue
from core.importer import import_checkpoint
from core.runs import MAX_NAME, CheckpointError, Run, RunError

INTRO = """
A **run** is one training of one model: a folder holding its settings (`config.json`), its
progress (`status.json`), one line of losses per epoch (`metrics.jsonl`) and the trained
weights (`checkpoint.pt`). *Pretrained* runs ship with the lab and are read-only.

The columns: **final loss** is the last epoch's validation loss (reconstruction + β·KL, in
nats per image, lower is better). **SSIM** compares reconstructions with the originals by
local structure (1 = identical). **KNN accuracy** asks: if you label each test image with
the majority label of its 5 nearest training images *in latent space*, how often are you
right? High values mean the code groups images by class although it never saw a label.
SSIM and KNN accuracy come from **Evaluate** on the Train page (cached per run).

Click a row to pick it for the actions below. A **checkpoint** file carries the weights and
everything needed to rebuild the model, so a downloaded one can be uploaded again here, on
another machine.
"""


def table_section(df) -> None:
    """Filters, sort and the table; a clicked row becomes the run to manage."""
    ss = st.session_state
    c1, c2, c3, c4 = st.columns(4)
    # "All" (an empty filter keeps every run): the default "Choose options" is cut off in
    # a quarter of a 1024-pixel window
    states, models, datasets = (
        col.multiselect(
            label, sorted(df[c].dropna().unique()), key=f"runs.f_{c}", placeholder="All"
        )  # fmt: skip
        for col, label, c in (
            (c1, "State", "state"),
            (c2, "Model", "model"),
            (c3, "Dataset", "dataset"),
        )  # fmt: skip
    )
    sort_by = c4.selectbox(
        "Sort by",
        ["created", "name", "final loss", "SSIM", "KNN acc", "epochs"],
        key="runs.sort",
        format_func=lambda c: {"KNN acc": "KNN accuracy", "created": "newest"}.get(c, c),
    )
    shown = df
    if states:
        shown = shown[shown["state"].isin(states)]
    if models:
        shown = shown[shown["model"].isin(models)]
    if datasets:
        shown = shown[shown["dataset"].isin(datasets)]
    # newest first; losses ascending (best first); scores descending (best first)
    ascending = sort_by in ("name", "final loss")
    shown = shown.sort_values(sort_by, ascending=ascending, na_position="last")
    shown = shown.reset_index(drop=True)
    view = shown.assign(**{"KNN %": 100 * shown["KNN acc"]}).drop(columns="KNN acc")
    view = view[[c if c != "KNN acc" else "KNN %" for c in shown.columns]]
    event = st.dataframe(
        view,
        key="runs.table",
        on_select="rerun",
        selection_mode="single-row",
        hide_index=True,
        placeholder="–",  # a run not evaluated yet: a dash, not the word None
        # "created" stays out so the table fits a 1280-pixel window (the order "newest"
        # and the panel below give the date); on narrower ones the name stays in view
        column_order=[c for c in view.columns if c not in ("id", "created")],
        column_config={
            "name": st.column_config.TextColumn(width=150, pinned=True),
            "latent": st.column_config.NumberColumn("latent", help="Latent size"),
            "final loss": st.column_config.NumberColumn(format="%.2f"),
            "SSIM": st.column_config.NumberColumn(format="%.3f"),
            "KNN %": st.column_config.NumberColumn(
                "KNN", format="%.1f%%", help="KNN accuracy (see What am I looking at?)"
            ),
        },
    )
    st.caption(f"{len(shown)} of {len(df)} runs. Click a column header to sort by it.")
    rows = event.selection.rows if event else []
    picked = shown["id"].iloc[rows[0]] if rows and rows[0] < len(shown) else None
    if picked and picked != ss.get("runs.last_pick"):
        ss["runs.target"] = picked
    ss["runs.last_pick"] = picked
    if ss.get("runs.requested") in list(df["id"]):
        ss["runs.target"] = ss.pop("runs.requested")


def manage_section(runs: list[Run], df) -> None:
    """The run picker of "Manage a run" and the picked run's panel."""
    ss = st.session_state
    st.subheader("Manage a run")
    ids = list(df["id"])
    by_id = {r.id: r for r in runs}
    if ss.get("runs.target") not in ids:
        ss["runs.target"] = ss.get("run_id") if ss.get("run_id") in ids else ids[0]
    target = st.selectbox(
        "Run",
        ids,
        key="runs.target",
        format_func=lambda i: run_label(by_id[i]) if i in by_id else i,
    )
    run = find_user_run(target)
    if run is not None:
        run_panel(run)


def run_panel(run: Run) -> None:
    """A run's state and actions: open, download, repair, resume, delete, rename."""
    ss = st.session_state
    readonly = run.readonly or is_pretrained(run)
    status = jobs.refresh(run)
    state = status.get("state", "?")
    live = state in LIVE_STATES
    created = (run.config_or_none() or {}).get("created_at")
    when = ""
    if isinstance(created, int | float) and not isinstance(created, bool):
        with contextlib.suppress(ValueError, OverflowError, OSError):
            when = f" · created {datetime.fromtimestamp(created):%Y-%m-%d %H:%M}"
    st.caption(
        md_escape(f"Folder {run.path} · {state}{when}")
        + (" · read-only (pretrained)" if readonly else "")
    )
    if state in ("damaged", "interrupted"):
        st.warning(md_escape(status.get("message", "")))
    waiting = queue.describe(status)
    if waiting:
        st.info(md_escape(waiting), icon=":material/hourglass_top:")
    for p in status.get("problems", [])[1 if state == "damaged" else 0 :]:
        st.caption(md_escape(p))
    bar = st.container(horizontal=True, vertical_alignment="center")
    is_current = ss.get("run_id") == run.id
    bar.button(
        "This is the current run" if is_current else "Open (make it the current run)",
        key="runs.open",
        disabled=is_current or state == "damaged",
        on_click=set_current_run,
        args=(run.id,),
        icon=":material/check_circle:",
    )
    if run.has_checkpoint():
        ckpt = run.checkpoint_path
        bar.download_button(
            "Download checkpoint",
            data=lambda: ckpt.read_bytes(),
            file_name=f"{run.id}.pt",
            mime="application/octet-stream",
            key="runs.download",
            icon=":material/download:",
        )
    else:
        bar.caption("No checkpoint yet.")
    if (
        state == "damaged"
        and run.has_checkpoint()
        and not readonly
        and bar.button(
            "Repair from checkpoint",
            key="runs.repair",
            icon=":material/build:",
            help="Rewrite config.json, status.json and metrics.jsonl from the checkpoint.",
        )
    ):
        try:
            run.repair()
        except (RunError, CheckpointError, OSError) as e:
            st.error(md_escape(str(e)))
        else:
            ss["runs.flash"] = f"Repaired {one_line(run.name, 80)} from its checkpoint."
            st.rerun()
    if state == "interrupted":
        with bar:
            interrupted_actions(run, status)
    if bar.button(
        "Delete…",
        key="runs.delete",
        icon=":material/delete:",
        disabled=readonly or live,
        help="Pretrained runs are read-only."
        if readonly
        else ("Cancel it on the Train page first." if live else None),
    ):
        ss["runs.confirm_delete"] = run.id
    if ss.get("runs.confirm_delete") == run.id:
        with st.container(border=True):
            st.warning(
                f"Delete **{md_escape(run.name)}** with its checkpoint and metrics? This "
                "cannot be undone."
            )
            confirm = st.container(horizontal=True)
            if confirm.button("Yes, delete it", key="runs.delete_yes", type="primary"):
                ss.pop("runs.confirm_delete", None)
                name = run.name  # read before its config.json goes (after, it is the id)
                try:
                    run.delete()
                except (RunError, OSError) as e:
                    st.error(md_escape(str(e)))
                else:
                    ss["runs.flash"] = f"Deleted {one_line(name, 80)}."
                    st.rerun()
            if confirm.button("Keep it", key="runs.delete_no"):
                ss.pop("runs.confirm_delete", None)
                st.rerun()

    if state != "damaged":
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.text_input(
            "New name",
            value=run.name,
            key=f"runs.name.{run.id}",
            max_chars=MAX_NAME,
            disabled=readonly,
        )
        c2.button(
            "Rename",
            key="runs.rename",
            icon=":material/edit:",
            disabled=readonly,
            help="Pretrained runs are read-only." if readonly else None,
            on_click=rename,
            args=(run.id,),
        )
        if ss.get("runs.rename_error"):
            st.error(md_escape(ss.pop("runs.rename_error")))


def rename(run_id: str) -> None:
    """Rename's callback: it runs before the page (sidebar included) is drawn, so every
    run picker is drawn with the new name."""
    ss = st.session_state
    run = find_user_run(run_id)
    if run is None:
        return
    try:
        shown_name = run.rename(ss.get(f"runs.name.{run_id}", run.name))
    except (RunError, OSError) as e:
        ss["runs.rename_error"] = str(e)
        return
    ss["runs.flash"] = f"Renamed to {shown_name}."
    # A picker holds its choice by the label the browser shows: a new label alone leaves
    # the old one in the box (and a later rerun would send it back, matching no run).
    # Setting the value again makes Streamlit send the new label with it.
    for key in ("run_id", "runs.target"):
        if key in ss:
            ss[key] = ss[key]


def upload_section() -> None:
    """Upload a checkpoint: it becomes a new run, picked in "Manage a run"."""
    ss = st.session_state
    st.subheader("Upload a checkpoint")
    ss.setdefault("runs.upload_n", 0)
    upload = st.file_uploader(
        "A checkpoint.pt saved by this lab (downloaded here or written by `python -m core.train`)",
        key=f"runs.upload.{ss['runs.upload_n']}",
    )
    if upload is not None:
        try:
            new = import_checkpoint(upload.getvalue(), upload.name, root=runs_root())
        except (CheckpointError, RunError, OSError) as e:
            st.error(md_escape(str(e)))
        else:
            ss["runs.upload_n"] += 1  # a fresh, empty uploader
            ss["runs.imported"] = new.id
            ss["runs.requested"] = new.id  # picked in "Manage a run" on the next run
            st.rerun()
    if ss.get("runs.imported"):
        new = find_user_run(ss.pop("runs.imported"))
        if new is not None:
            st.success(f"Imported **{md_escape(new.name)}** as a new run ({md_escape(new.id)}).")
            st.button("Open it", key="runs.open_imported", on_click=set_current_run, args=(new.id,))
