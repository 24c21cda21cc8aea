"""The Embeddings page: the same test images seen by PCA, by UMAP and by the model, side by
side, with linked selection, hover thumbnails, nearest neighbours and the KNN score of each.

The page state (sample size, clicked image, box or lasso selection) lives in session state
under ``emb_*`` and in the URL as ``?n=`` and ``?point=``. The charts are built by
``app.embedding_charts``; UMAP runs in a background process (``core.projections``,
started when the run finished or else by this page): its 2-D chart shows as soon as it is
ready, its KNN score lands later.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st

from app import url_state
from app.common import explain, get_model, require_run, run_dataset
from app.compare_common import grid_png, thumb_scale, thumbs
from app.embedding_charts import hover_thumbnails, legend_html, scatter, selection_of, share
from app.text import md_escape
from core import projections as proj
from core.data import DatasetError
from core.metrics import KNN_K

INTRO = f"""
Each dot is one **test image**; colour is its true class. The three charts place the
*same* images three ways:

- **PCA** squeezes the raw pixels onto the two directions along which they vary most;
- **UMAP** arranges the pixels (first reduced to their 50 principal components) so that
  images with similar pixels stay neighbours;
- **the model** shows where its encoder puts each image (its latent mean; reduced to 2-D
  with PCA when the latent has more than two dimensions).

A good embedding puts images of the same class together *without ever being told the
labels*. The table measures that: for every test image, a **{KNN_K}-nearest-neighbour vote**
among labelled training images in that embedding guesses its class. The seed study
(snakers4, Fashion-MNIST) found VAE 0.80, UMAP about 0.80, PCA 0.77.

Try it: **hover** a dot to see its image; **drag a box or lasso** in any chart to light up
the same images in the other two; **click** a dot to see its nearest neighbours in each
embedding below the charts.
"""


def restore_state(run, total: int) -> None:
    """Sample size (?n=) and clicked image (?point=) from the URL on a fresh page; a new
    run starts over."""
    if st.session_state.get("emb_run") != run.id:
        first = "emb_run" not in st.session_state  # a fresh page: take the state from the URL
        kept = st.session_state.get("emb_n_kept")
        n0 = url_state.read_int("n", proj.DEFAULT_N, lo=1) if first else kept
        st.session_state["emb_n_kept"] = max(min(n0, total), min(100, total))
        st.session_state.pop("emb_n", None)
        st.session_state["emb_point"] = url_state.read_int("point", None, lo=0) if first else None
        st.session_state["emb_sel"] = None  # (view, [positions], sample tag) of a box or lasso
        st.session_state["emb_run"] = run.id
    if "emb_n" not in st.session_state:  # widget state is dropped while another page shows
        st.session_state["emb_n"] = st.session_state["emb_n_kept"]


def _start_umap(run, n: int) -> None:
    try:
        proj.start_background(run, n, views=("umap",))
    except ValueError as e:  # a full disk: one sentence, the other views stay usable
        st.error(str(e))
        st.stop()


def _running_job(run, n: int) -> dict | None:
    """The background job's progress record, starting the job when none runs; None (with
    the error and a retry button shown) when the last one failed."""
    rec = proj.progress(run, n)
    if rec is not None and rec.get("state") == "failed":
        st.error(f"UMAP failed: {md_escape(str(rec.get('error', 'unknown error')))}.")
        if st.button("Try again", key="umap_retry"):
            _start_umap(run, n)
        return None
    if rec is None or rec.get("state") != "running":
        _start_umap(run, n)
        rec = proj.progress(run, n) or {}
    return rec


def eta(rec: dict, now: float, key: str = "estimate_2d_s") -> tuple[float, float, float | None]:
    """(share done, seconds so far, estimated seconds in all or None) of a progress record:
    the job's own estimate (``core.projection_progress``), never less than what has passed."""
    elapsed = max(now - float(rec.get("started_at", now)), 0.0)
    est = rec.get(key)
    if not isinstance(est, int | float):
        return float(rec.get("fraction_2d", 0.0)), elapsed, None
    total = max(float(est), elapsed + 1.0)
    return max(float(rec.get("fraction_2d", 0.0)), min(elapsed / total, 0.99)), elapsed, total


@st.fragment(run_every=1.0)
def umap_progress(run, n: int, latent_dim: int) -> None:
    """Poll the background job; rerun the page when UMAP's 2-D view lands in the cache."""
    if proj.load_view(run, "umap", n, latent_dim) is not None:
        st.rerun()
    rec = _running_job(run, n)
    if rec is None:
        return
    share, elapsed, total = eta(rec, time.time())
    stage = md_escape(str(rec.get("stage", "starting")))
    left = ""
    if total is not None:
        left = f", about {total - elapsed:.0f} s left (roughly {total:.0f} s in all)"
    st.progress(share, text=f"UMAP runs in the background: {stage}. {elapsed:.0f} s so far{left}.")
    st.caption("PCA and the model's view are ready; this chart appears when UMAP's 2-D view is.")


@st.fragment(run_every=1.0)
def umap_score_progress(run, n: int, latent_dim: int) -> None:
    """Under UMAP's 2-D chart: poll the job until UMAP's KNN score lands, then rerun."""
    view = proj.load_view(run, "umap", n, latent_dim)
    if view is not None and view.scored:
        st.rerun()
    rec = _running_job(run, n)
    if rec is None:
        return
    _, elapsed, total = eta(rec, time.time(), "estimate_s")
    left = "" if total is None else f", about {total - elapsed:.0f} s left"
    st.caption(f"UMAP's KNN score is being computed in the background "
               f"({md_escape(str(rec.get('stage', '')))}{left}).")  # fmt: skip


def on_select(view_name: str, idx, tag: str) -> None:
    kind, positions = selection_of(st.session_state.get(f"emb_chart_{view_name}"))
    if kind == "point":
        st.session_state["emb_point"] = int(idx[positions[0]])
    elif kind == "region":
        st.session_state["emb_sel"] = (view_name, positions, tag)
    else:
        st.session_state["emb_sel"] = None


def scores_section(run, model, views: dict, ready: dict, n: int) -> None:
    """The scores, one row per view."""
    st.subheader("How well does each embedding group the classes?")
    rows = proj.knn_table(ready, proj.dataset_of(run)[0])
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    n_train = views["pca"].train_n
    st.caption(
        f"Protocol: k = {KNN_K} nearest neighbours (Euclidean, majority vote), fitted on "
        f"the first {n_train:,} training images and scored on the {n:,} test images shown. Each "
        f"embedding is scored in full dimension: the model's own {model.latent_dim}-D embedding, "
        f"PCA to {model.latent_dim} components and UMAP to "
        f"{proj.view_dim('umap', model.latent_dim)} components, both fitted on the same training "
        "images. The 2-D charts are fitted on the shown sample (UMAP's on a PCA-50 reduction of "
        "the pixels). Reference (snakers4, Fashion-MNIST): VAE 0.80, UMAP about 0.80, PCA 0.77."
    )
    if proj.offline(run):
        st.caption(
            "Offline: the dataset is not available here, so the bundled sample of test images "
            "stands in: its even-numbered images play the training images, its odd ones are "
            "shown."
        )


def neighbours_section(test, labels, images, sel, point, point_idx, near: dict) -> None:
    """The selection and the clicked image with its nearest neighbours in each view."""
    scale = thumb_scale(test.image_shape)
    if sel and sel[1]:
        chosen = np.asarray(sel[1])
        counts = pd.Series(np.asarray(test.class_names)[labels[chosen]]).value_counts()
        st.markdown(
            f"**Selection** ({len(chosen):,} images): "
            + ", ".join(f"{k}: {share(v, len(chosen))}" for k, v in counts.head(5).items())
        )
        st.image(grid_png(images[chosen[:48]], 16, scale), caption="up to 48 selected images")

    st.subheader("Nearest neighbours of a clicked image")
    if point is None:
        st.info("Click a dot in any chart to see the image and its 8 nearest neighbours in each "
                "embedding (in full dimension, among the shown sample).")  # fmt: skip
    else:
        left, right = st.columns([1, 4])
        with left:
            st.image(thumbs(images[[point]], scale * 2)[0],
                     caption=f"#{point_idx} · {test.class_names[labels[point]]}")  # fmt: skip
        with right:
            for name in proj.VIEWS:
                if name not in near:
                    st.caption(f"{proj.TITLES[name]}: waiting for its full-dimensional "
                               "embedding (computing in the background).")  # fmt: skip
                    continue
                nb = near[name]
                same = int((labels[nb] == labels[point]).sum())
                st.markdown(
                    f"**{proj.TITLES[name]}**: {same} of {len(nb)} neighbours share its class"
                )
                st.image(thumbs(images[nb], scale),
                         caption=[test.class_names[labels[j]] for j in nb])  # fmt: skip


def render() -> None:
    st.title("Embeddings: PCA, UMAP and the model")
    explain(INTRO)

    run = require_run()
    model, _ = get_model(run)
    try:  # the views need the training images, or the bundled sample in their place
        offline = proj.offline(run)
    except DatasetError as e:  # neither here, nor downloadable, nor bundled
        st.error(md_escape(str(e)))
        st.stop()
    test = proj.test_split(run) if offline else run_dataset(run, "test")
    total = len(test)

    restore_state(run, total)
    c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
    n = c1.number_input(
        f"Sample size (of {total:,} test images)", min_value=min(100, total), max_value=total,
        step=500, key="emb_n", help="Test images drawn with seed 0; UMAP is recomputed per size.",
    )  # fmt: skip
    n = st.session_state["emb_n_kept"] = int(n)
    idx = proj.sample_index(total, n)
    labels = test.labels[idx].numpy()
    images = test.images[idx]
    pos_of = {int(t): p for p, t in enumerate(idx)}
    tag = f"{run.id}-n{n}"
    clicked = hover_thumbnails(
        run, n, idx, labels, test.class_names, tag,
        "Hover a dot to see its image · drag a box or lasso to highlight the same images in all "
        "three views · click a dot for its nearest neighbours (below)",
    )  # fmt: skip
    if clicked is not None:
        st.session_state["emb_point"] = clicked["index"]
    point_idx = st.session_state.get("emb_point")
    if point_idx is not None and point_idx not in pos_of:
        st.warning(f"Image #{point_idx} is not in this sample of {n:,} test images: click another.")
        st.session_state["emb_point"] = point_idx = None
    point = pos_of.get(point_idx) if point_idx is not None else None
    url_state.write({"n": n, "point": point_idx})

    if c2.button(
        "Clear selection", disabled=not (st.session_state["emb_sel"] or point is not None)
    ):
        st.session_state["emb_sel"] = None
        st.session_state["emb_point"] = point = point_idx = None
        url_state.forget("point")
    sel = st.session_state["emb_sel"]
    if sel and sel[2] != tag:  # positions of another sample
        sel = st.session_state["emb_sel"] = None
    if sel:
        c3.markdown(f"**{len(sel[1]):,}** images selected in the **{proj.TITLES[sel[0]]}** view.")
    elif point is not None:
        c3.markdown(f"Clicked image **#{point_idx}** ({test.class_names[labels[point]]}).")

    # ---- the views: PCA and the model's at once, UMAP from the cache or a background process
    views: dict[str, proj.View | None] = {}
    with st.spinner("Projecting the sample with PCA and the model…"):
        for name in ("pca", "model"):
            views[name] = proj.compute_view(run, name, n, model=model)
    views["umap"] = proj.load_view(run, "umap", n, model.latent_dim)
    views = {k: views[k] for k in proj.VIEWS}
    ready = {k: v for k, v in views.items() if v is not None}  # drawn
    scored = {k: v for k, v in ready.items() if v.scored}  # UMAP's KNN score may come later

    near = {}
    if point is not None:
        near = {k: proj.neighbours(v, point, 8) for k, v in scored.items()}
    selected = sel[1] if sel else None
    st.markdown(legend_html(test.class_names, point is not None), unsafe_allow_html=True)
    cols = st.columns(3)
    for col, (name, view) in zip(cols, views.items(), strict=True):
        with col:
            st.subheader(proj.TITLES[name])
            if view is None:
                umap_progress(run, n, model.latent_dim)
                continue
            fig = scatter(view, labels, test.class_names, tag, selected, point, near.get(name))
            st.plotly_chart(
                fig, key=f"emb_chart_{name}",
                on_select=lambda v=name: on_select(v, idx, tag),
                selection_mode=("points", "box", "lasso"), config={"displaylogo": False},
            )  # fmt: skip
            if not view.scored:
                st.caption(f"2-D view in {view.seconds_2d:.2f} s · {view.how}")
                umap_score_progress(run, n, model.latent_dim)
                continue
            st.caption(f"KNN accuracy **{view.knn:.3f}** in {view.dim} dims · 2-D view in "
                       f"{view.seconds_2d:.2f} s · {view.how}")  # fmt: skip

    scores_section(run, model, views, scored, n)
    neighbours_section(test, labels, images, sel, point, point_idx, near)

    # ---- download
    if "model" in ready:
        st.download_button(
            "Download embeddings and labels (CSV)",
            lambda: proj.to_csv(ready, labels, test.class_names),  # made when clicked
            file_name=f"{run.id}-embeddings-n{n}.csv", mime="text/csv", on_click="ignore",
            help="test index, label, class, x and y of each view, the model's full embedding z",
        )  # fmt: skip
