"""The conditional-sampling page's sections: what a conditional run is (for one that is
not), the class picker with its URL mirror, samples of a class, the class x z grid, the
class swap and the conditional-sample accuracy."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from app import url_state
from app.common import is_pretrained, set_current_run, usable_runs
from app.evaluation_ui import evaluation_job, start_evaluation
from app.explore_common import big_png, show_images
from app.text import html_escape, md_escape, one_line
from core import explore as ex
from core import jobs
from core.runs import Run

TRAIN_PAGE = Path(__file__).resolve().parent.parent / "pages" / "train.py"


def not_conditional(run: Run, model) -> None:
    """What a conditional run is, and the way to the train page with labels switched on."""
    family = str(run.config().get("train", {}).get("model", "mlp-vae"))
    st.info(
        f"**{md_escape(run.name)}** is not conditional: it was trained without labels, so it "
        "cannot be asked for a class."
    )
    st.markdown(
        "A **conditional** autoencoder (a CVAE, Sohn et al. 2015) also receives the label: "
        "the one-hot class joins the encoder's input and the decoder's input. The latent *z* "
        "is then free to hold what the label does not say, the *style* (slant, thickness, "
        "shape), and at sampling time you choose the class and draw *z* from the prior: "
        '"draw me a 7", or "this same style as a 3".'
    )
    ready = pretrained_conditional_runs()
    if ready:
        st.markdown("**Open a pretrained conditional model** (it becomes the current run):")
        bar = st.container(horizontal=True)
        for other in ready:
            bar.button(
                md_escape(one_line(f"{other.name} ({_trained_on(other)})", 80)),
                key=f"cd_open.{other.id}",
                icon=":material/category:",
                on_click=set_current_run,
                args=(other.id,),
            )
    st.markdown("**Or train your own:**" if ready else "**Train one:**")
    url_state.link(
        str(TRAIN_PAGE),
        "Train a conditional VAE (cvae)",
        {"model": "cvae"},
        icon=":material/model_training:",
    )
    if family not in ("cvae", "mlp-vae"):  # cvae is the conditional mlp-vae
        url_state.link(
            str(TRAIN_PAGE),
            f"Train a conditional {md_escape(family)}",
            {"model": family, "conditional": "1"},
            icon=":material/model_training:",
        )


def is_conditional(run: Run) -> bool:
    """Whether a run's model takes labels: its stored model config has classes (the
    ``LatentModel.conditional`` capability, read without loading the checkpoint)."""
    cfg = run.config_or_none() or {}
    classes = ((cfg.get("model") or {}).get("config") or {}).get("num_classes")
    return isinstance(classes, int) and not isinstance(classes, bool) and classes > 0


def pretrained_conditional_runs() -> list[Run]:
    """The pretrained zoo's conditional models, one click away from a non-conditional run."""
    return [
        r for r in usable_runs() if is_pretrained(r) and r.has_checkpoint() and is_conditional(r)
    ]


def _trained_on(run: Run) -> str:
    t = (run.config_or_none() or {}).get("train") or {}
    return f"{t.get('model', '?')} on {t.get('dataset', '?')}"


def judge_text(description: str, image_shape) -> str:
    """The judge's description with its blur given in pixels of these images: the recipe
    says "sigma up to 1.5 px of 28" and scales it with the image size, so on 8 x 8 digits
    it reads "sigma up to 0.43 px of these 8 x 8 images"."""
    h, w = int(image_shape[-2]), int(image_shape[-1])

    def scaled(m: re.Match) -> str:
        sigma = float(m.group(1)) * h / int(m.group(2))
        return f"sigma up to {sigma:.2g} px of these {h} × {w} images"

    return re.sub(r"sigma up to ([0-9.]+) px of (\d+)", scaled, str(description))


def safe_file_part(text: str) -> str:
    """A piece of a download's file name: letters, digits, dot, dash and underscore."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")[:60] or "class"


def class_label(k: int, names: list[str]) -> str:
    """ "3 · Dress", or just "3" when the class is named by its index (digits)."""
    return names[k] if names[k] == str(k) else f"{k} · {names[k]}"


def class_picker(names: list[str]) -> int:
    """The class to sample, mirrored in the URL as ?class=<index>."""
    if not st.session_state.get("cd_url_done"):
        st.session_state["cd_url_done"] = True
        wanted = url_state.read_int("class", None, 0, len(names) - 1, warn=False)
        if wanted is not None:
            st.session_state["cd_class"] = wanted
    label = st.selectbox(
        "Class",
        list(range(len(names))),
        key="cd_class",
        format_func=lambda c: class_label(c, names),
    )
    url_state.write({"class": label})
    return int(label)


def _seed_button(key: str, label: str = "New draw") -> int:
    st.session_state.setdefault(key, 0)
    if st.button(label, key=f"{key}_btn", icon=":material/casino:"):
        st.session_state[key] += 1
    return int(st.session_state[key])


def samples_section(model, names: list[str], label: int) -> None:
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    with c1:
        n = st.slider("Samples", 4, 64, 16, 4, key="cd_n")
    with c2:
        seed = _seed_button("cd_seed")
    imgs = ex.conditional_samples(model, label, n, seed)
    prior = model.prior_description
    png = show_images(
        imgs,
        nrow=min(n, 8),
        scale=max(1, 64 // model.image_shape[-1]),
        caption=f"{n} draws of z from the {prior}, decoded as “{md_escape(names[label])}”",
    )
    st.download_button(
        "Download PNG",
        png,
        file_name=f"samples_{safe_file_part(names[label])}.png",
        mime="image/png",
        key="cd_dl_samples",
        on_click="ignore",
    )


def class_grid_section(model, names: list[str]) -> None:
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    with c1:
        n_z = st.slider("Columns (one z each)", 2, 12, 8, key="cd_nz")
    with c2:
        seed = _seed_button("cd_grid_seed")
    imgs = ex.class_z_grid(model, n_z, seed)
    h = model.image_shape[-1]
    scale = max(1, 48 // h)
    arr = ex.sprite(imgs, n_z, pad=2)
    arr = np.repeat(np.repeat(arr, scale, 0), scale, 1)
    png = ex.png_bytes(ex.label_rows(arr, [class_label(k, names) for k in range(len(names))]))
    st.image(
        png,
        caption="Each column shares one z across all classes: the z carries the "
        "style, the label the class.",
    )
    st.download_button(
        "Download PNG",
        png,
        file_name="class_by_z.png",
        mime="image/png",
        key="cd_dl_grid",
        on_click="ignore",
    )


def class_swap_section(model, test, names: list[str], label: int) -> None:
    labels = test.labels
    first = int(torch.nonzero(labels == label)[0]) if (labels == label).any() else 0
    c1, c2 = st.columns([2, 1])
    with c1:
        idx = st.number_input(
            "Test image",
            0,
            len(test) - 1,
            first,
            key="cd_swap_img",
            help="Defaults to the first test image of the chosen class.",
        )
    with c2:
        own = int(labels[idx])
        st.image(
            big_png(test.images[idx], 112), width=84, caption=f"#{idx} · {md_escape(names[own])}"
        )
    keep = st.toggle(
        "Keep the code as it is",
        key="cd_swap_keep",
        help="Off: under a prior per label, the code is first moved to the same place in "
        "each label's Gaussian, so the code carries the class too. On: the same code under "
        "every label, so only the label can change the class. A model whose prior ignores "
        "the label draws the same either way.",
    )
    res = ex.class_swap(model, test.images[int(idx)], own, move=not keep)
    scale = max(1, 64 // model.image_shape[-1])
    arr = ex.sprite(res["images"], len(names), pad=2)
    png = ex.png_bytes(arr, scale)
    st.image(
        [big_png(im, 96) for im in res["images"]],
        width=72,
        caption=[("▸ " if k == own else "") + md_escape(n) for k, n in enumerate(names)],
    )
    st.caption(
        f"The image is encoded with its own label ({md_escape(names[own])}); its latent z is "
        "then decoded under every label. ▸ marks its own class. The Sample accuracy tab says "
        "how often judges read the new label."
    )
    st.download_button(
        "Download PNG",
        png,
        file_name=f"class_swap_{idx}.png",
        mime="image/png",
        key="cd_dl_swap",
        on_click="ignore",
    )


def accuracy_section(run: Run, names: list[str], image_shape) -> None:
    ev = run.evaluation() or {}
    cond = ev.get("conditional")
    st.markdown(
        "**Conditional-sample accuracy** asks whether the model draws the class you asked "
        "for. Two independent judges classify 1,000 prior samples per class; the score is the "
        "share given the asked class. The *shipped* judge is a CNN trained on the real "
        "training images, some of them blurred so that it reads a blurry image by its shape; "
        "the *sharp* judge, a smaller CNN trained on the sharp images only, was fixed before "
        "any sample was scored with it. Read each beside the judge's own accuracy on real "
        "test images: a model cannot look more recognisable than the judge can recognise."
    )
    if not cond:
        st.info(
            "Not computed for this run yet. It scores the whole test split (``core.evaluate``) "
            "with the judge shipped for Fashion-MNIST; for other datasets it first trains one "
            "(once: about 8 minutes on two CPU cores for 60,000 images)."
        )
        if evaluation_job(run)["state"] not in jobs.EVAL_LIVE and st.button(
            "Compute it", key="cd_eval", icon=":material/fact_check:"
        ):
            start_evaluation(run)  # in the background; its progress shows here
        return
    judges = [(JUDGE_TITLES[0], cond)]
    if cond.get("sharp"):
        judges.append((JUDGE_TITLES[1], cond["sharp"]))
    for col, (title, j) in zip(st.columns(len(judges)), judges, strict=True):
        with col:
            st.markdown(f"**{title}**")
            c1, c2, c3 = st.columns(3)
            c1.metric(
                "Samples as asked",
                f"{j['sample_accuracy']:.1%}",
                help=f"{j.get('samples_per_class', 100)} prior samples per class",
            )
            c2.metric(
                "Real test images",
                f"{j['judge_test_accuracy']:.1%}",
                help=md_escape(judge_text(j.get("judge", ""), image_shape)),
            )
            if "recon_accuracy" in j:
                c3.metric(
                    "Its reconstructions",
                    f"{j['recon_accuracy']:.1%}",
                    help="The model's reconstructions of the real test images, each with its "
                    "true label: what the decoder can draw. A gap between this and the sample "
                    "accuracy is where the prior puts the samples.",
                )
    st.caption(f"Chance level: {1 / len(names):.0%} (a model that ignored the label).")
    xs = [html_escape(class_label(k, names)) for k in range(len(names))]
    bars = [(f"samples · {t.split()[0].lower()} judge", j.get("per_class"), c)
            for (t, j), c in zip(judges, ("#1f77b4", "#ff7f0e"), strict=False)]  # fmt: skip
    bars += [(f"real · {t.split()[0].lower()} judge", j.get("judge_per_class"), c)
             for (t, j), c in zip(judges, ("#bbbbbb", "#dddddd"), strict=False)]  # fmt: skip
    per_class_chart([b for b in bars if b[1]], xs, "cd_acc_chart", "per class")
    swap_and_variety(cond, xs)


JUDGE_TITLES = ("Shipped judge", "Sharp judge")


def per_class_chart(bars, xs: list[str], key: str, title: str, line: float | None = None):
    """Grouped bars per class, each (name, values, colour); ``line`` a dashed reference."""
    if not bars:
        return
    fig = go.Figure()
    for name, values, colour in bars:
        fig.add_bar(x=xs, y=values, name=name, marker_color=colour)
    if line is not None:
        fig.add_hline(y=line, line_dash="dash", line_color="#888888")
    top = max([1.0] + [max(v) for _, v, _ in bars if v])
    fig.update_layout(
        height=260,
        barmode="group",
        # every class labelled: digits' "0".."9" would otherwise read as numbers, and
        # plotly would label every other one
        xaxis=dict(type="category", tickmode="array", tickvals=xs, ticktext=xs),
        legend=dict(orientation="h", y=1.15, x=1, xanchor="right"),
        margin=dict(l=10, r=10, t=30, b=10),
        yaxis=dict(range=[0, top * 1.05], tickformat=".0%"),
        title=dict(text=title, font=dict(size=13)),
    )
    st.plotly_chart(fig, key=key, config={"displayModeBar": False})


def swap_and_variety(cond: dict, xs: list[str]) -> None:
    """Does the label steer the decoder (class swap read by both judges), and do samples of
    one label differ as much as real images of it do (variety)?"""
    swap, variety = cond.get("swap"), cond.get("variety")
    if not swap or not variety:
        st.info("Class swap and sample variety are not in this evaluation yet: evaluate the "
                "run again to add them.")  # fmt: skip
        return
    st.markdown(
        "**Class swap**: each test image is encoded with its own label, and its code is "
        "decoded with every other label. The share the judges read as the *new* label says "
        "whether the label steers the decoder; the share still read as the old label says "
        "the code, not the label, holds the class."
    )
    sharp = cond.get("sharp") or {}
    c1, c2, c3 = st.columns(3)
    c1.metric("Read as the new label · shipped judge", f"{swap['accuracy']:.1%}")
    if sharp.get("swap"):
        c2.metric("Read as the new label · sharp judge", f"{sharp['swap']['accuracy']:.1%}")
    c3.metric("Still the old label · shipped judge", f"{swap['kept_old']:.1%}")
    moved = cond.get("swap_moved")
    if moved and abs(moved["accuracy"] - swap["accuracy"]) > 0.005:
        st.caption(
            f"This model has a prior per label: with the code first moved to the same place "
            f"in the new label's Gaussian (what the Class swap tab draws), the shipped judge "
            f"reads the new label {moved['accuracy']:.1%} of the time. The label alone "
            f"steers {swap['accuracy']:.1%}."
        )
    st.markdown(
        "**Sample variety**: the mean distance between two samples of a label over that "
        "between two real test images of it. 100% is as varied as real images; a prior "
        "that has collapsed draws near copies."
    )
    c1, c2, _ = st.columns(3)
    c1.metric("Variety, mean over labels", f"{variety['ratio']:.0%}")
    c2.metric("Lowest label", f"{variety['lowest']:.0%}")
    per_class_chart(
        [("samples / real images", variety["per_class"], "#2ca02c")], xs, "cd_variety_chart",
        "variety per class (dashed: real images)", line=1.0,
    )  # fmt: skip
