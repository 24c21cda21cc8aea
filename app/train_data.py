"""The Train form's dataset before a run: the line under the dataset choice (an IDX folder's
size or why it cannot be read, a download to come, a download that failed) and the check
of an IDX folder typed by the user.

The folder is typed in the browser, so it is hostile: ``core.data.resolve_idx_folder``
accepts only folders inside the data folder or ``$LATENTLAB_IDX_DIRS`` (links followed
first), and the files are then read through ``core.data.dataset_info`` (headers checked
before anything is inflated)."""

from __future__ import annotations

import dataclasses

import streamlit as st

from app.text import md_escape
from core import data as datalib
from core.config import TrainConfig
from core.data.availability import idx_roots_text

IDX = "idx"  # the form's choice "a folder of IDX files on the server" (train.idx_folder)


def dataset_note(choice: str, folder_text: str) -> None:
    """What the chosen dataset needs before a run, in one line under the select box."""
    if choice == IDX:
        if not folder_text.strip():
            st.caption(
                "Type a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (gzipped or not), under "
                f"{md_escape(idx_roots_text())}."
            )
            return
        try:
            folder = datalib.resolve_idx_folder(folder_text)
            info = datalib.dataset_info(f"{datalib.IDX_PREFIX}{folder}")
        except datalib.DatasetError as e:
            st.warning(md_escape(str(e)), icon=":material/folder_off:")
            return
        _, h, w = info.image_shape
        st.caption(
            f"{info.train_size:,} training and {info.test_size:,} test images of {h}×{w} "
            f"pixels, {info.num_classes} classes, in {md_escape(str(folder))}."
        )
        return
    avail = datalib.availability(choice, app=True)
    if avail.state == "download":
        st.caption(md_escape(avail.note), help="LATENTLAB_MIRROR on the server replaces it.")
    elif avail.state == "failed":
        st.warning(md_escape(avail.note), icon=":material/cloud_off:")


def prepare(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its IDX folder (typed by the user) checked and resolved
    (``core.data.resolve_idx_folder``: only inside the data folder or $LATENTLAB_IDX_DIRS).

    Raises:
        core.data.DatasetError: one sentence on a folder that cannot be used.
    """
    if not cfg.dataset.startswith(datalib.IDX_PREFIX):
        return cfg
    folder = datalib.resolve_idx_folder(cfg.dataset[len(datalib.IDX_PREFIX) :])
    return dataclasses.replace(cfg, dataset=f"{datalib.IDX_PREFIX}{folder}")
