"""The Conditional page's Sample accuracy tab: both judges' readings of the samples (per
class, beside real test images), the class swap read by both, and sample variety per class,
from the run's evaluation (``core.evaluate``; computed in the background on demand)."""

from __future__ import annotations

import re

import plotly.graph_objects as go
import streamlit as st

from app.conditional_page import class_label, own_codes_rows
from app.evaluation_ui import evaluation_job, start_evaluation
from app.text import html_escape, md_escape
from core import jobs
from core.runs import Run


def judge_text(description: str, image_shape) -> str:
    """The judge's description with its blur given in pixels of these images: the recipe
    says "sigma up to 1.5 px of 28" and scales it with the image size, so on 8 x 8 digits
    it reads "sigma up to 0.43 px of these 8 x 8 images"."""
    h, w = int(image_shape[-2]), int(image_shape[-1])

    def scaled(m: re.Match) -> str:
        sigma = float(m.group(1)) * h / int(m.group(2))
        return f"sigma up to {sigma:.2g} px of these {h} × {w} images"

    return re.sub(r"sigma up to ([0-9.]+) px of (\d+)", scaled, str(description))


def accuracy_section(run: Run, names: list[str], image_shape, evaluation: dict | None) -> None:
    ev = evaluation or {}
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
    temperature_section(cond)
    own_codes_section(cond, xs)


JUDGE_TITLES = ("Shipped judge", "Sharp judge")


def share(v, fmt: str) -> str:
    return "–" if v is None or v != v else format(v, fmt)  # None or NaN: not measured


def per_class_chart(bars, xs: list[str], key: str, title: str, line: float | None = None):
    """Grouped bars per class, each (name, values, colour); ``line`` a dashed reference."""
    if not bars:
        return
    fig = go.Figure()
    for name, values, colour in bars:
        fig.add_bar(x=xs, y=values, name=name, marker_color=colour)
    if line is not None:
        fig.add_hline(y=line, line_dash="dash", line_color="#888888")
    top = max([1.0] + [x for _, v, _ in bars for x in v if x is not None and x == x])  # no NaN
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
    c3.metric("Still the old label · shipped judge", share(swap.get("kept_old"), ".1%"))
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
    c1.metric("Variety, mean over labels", share(variety.get("ratio"), ".0%"))
    c2.metric("Lowest label", share(variety.get("lowest"), ".0%"))
    per_class_chart(
        [("samples / real images", variety["per_class"], "#2ca02c")], xs, "cd_variety_chart",
        "variety per class (dashed: real images)", line=1.0,
    )  # fmt: skip


def temperature_section(cond: dict) -> None:
    """What sampling at a temperature below 1 (the Samples tab's slider) buys and costs:
    both judges' sample accuracy and the variety, at each temperature evaluated."""
    if "temperature" in cond and cond["temperature"] is None:
        return  # a categorical latent: no spread to scale
    rows = cond.get("temperature")
    st.markdown(
        "**Temperature**: z drawn at *t* times its distance from the prior's centre. "
        "Below 1 the samples are more typical of their label, so the judges read more of "
        "them as asked, and they vary less. Read the two together: a temperature that "
        "raises the accuracy by drawing near copies is a trade, not a better model."
    )
    if not rows:
        st.info("Not in this evaluation yet: evaluate the run again to add it.")
        return
    ts = [r["temperature"] for r in rows]
    fig = go.Figure()
    judges = list(rows[0]["accuracy"])
    colours = {"shipped": "#1f77b4", "sharp": "#ff7f0e"}
    for name in judges:
        fig.add_scatter(
            x=ts, y=[r["accuracy"][name] for r in rows], mode="lines+markers",
            name=f"samples as asked · {name} judge", line_color=colours.get(name),
        )  # fmt: skip
    for key, name, dash in (("variety", "mean", None), ("variety_lowest", "lowest label", "dot")):
        fig.add_scatter(
            x=ts, y=[r[key] for r in rows], mode="lines+markers", name=f"variety, {name}",
            line=dict(color="#2ca02c", dash=dash),
        )  # fmt: skip
    fig.update_layout(
        height=300,
        xaxis=dict(title="temperature", tickvals=ts, autorange="reversed"),
        yaxis=dict(tickformat=".0%"),
        legend=dict(orientation="h", y=1.2, x=1, xanchor="right"),
        margin=dict(l=10, r=10, t=40, b=10),
    )
    st.plotly_chart(fig, key="cd_temp_chart", config={"displayModeBar": False})
    table = {"temperature": [f"{t:g}" for t in ts]}
    for name in judges:
        table[f"{name} judge"] = [share(r["accuracy"][name], ".1%") for r in rows]
    table["variety (lowest label)"] = [
        f"{share(r['variety'], '.0%')} ({share(r['variety_lowest'], '.0%')})" for r in rows
    ]
    st.dataframe(table, hide_index=True, key="cd_temp_table")


def own_codes_section(cond: dict, xs: list[str]) -> None:
    """The same judges and variety with z drawn from each label's own codes (the Samples
    tab's "Draw z from" choice; ``core.label_density``) beside the prior's figures."""
    own = cond.get("own_codes")
    if not own:
        return
    st.markdown(
        "**z from each label's own codes**: instead of the prior, z is drawn from a mixture "
        "of Gaussians fitted, after training, to where the encoder puts that label's training "
        "images (the number of Gaussians per label chosen by BIC on the codes alone), and at "
        "a temperature below 1 each draw nearer its Gaussian's centre. Same number of samples "
        "and seeds as above."
    )
    sharp = cond.get("sharp") or {}
    variety = cond.get("variety") or {}
    rows = [("Prior", 1.0, cond.get("sample_accuracy"), sharp.get("sample_accuracy"),
             variety.get("ratio"), variety.get("lowest"))]  # fmt: skip
    rows += [("Own codes", r["temperature"], r["accuracy"].get("shipped"),
              r["accuracy"].get("sharp"), r.get("variety"), r.get("variety_lowest"))
             for r in own_codes_rows(own)]  # fmt: skip
    table = {
        "z drawn from": [r[0] for r in rows],
        "temperature": [f"{r[1]:g}" for r in rows],
        "shipped judge": [share(r[2], ".1%") for r in rows],
        "sharp judge": [share(r[3], ".1%") for r in rows],
        "variety (lowest label)": [f"{share(r[4], '.0%')} ({share(r[5], '.0%')})" for r in rows],
    }
    st.dataframe(table, hide_index=True, key="cd_own_table")
    swap = own.get("swap") or {}
    if swap:
        kept = {
            "shipped": (cond.get("swap") or {}).get("accuracy"),
            "sharp": (sharp.get("swap") or {}).get("accuracy"),
        }
        st.caption(
            "Class swap with each code moved from its label's own codes to the same place "
            "among the new label's (the Class swap tab with own codes, the code not kept): "
            + "; ".join(
                f"the {name} judge reads the new label {share(r.get('accuracy'), '.1%')} "
                f"(the code kept as it is: {share(kept.get(name), '.1%')}), the old one "
                f"{share(r.get('kept_old'), '.1%')}"
                for name, r in swap.items()
            )
            + "."
        )
    bars = [
        (f"own codes · {name} judge", own[name].get("per_class"), colour)
        for name, colour in (("shipped", "#1f77b4"), ("sharp", "#ff7f0e"))
        if name in own
    ]
    per_class_chart(bars, xs, "cd_own_chart", "own codes, per class")
