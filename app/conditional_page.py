"""The conditional-sampling page's sections: what a conditional run is (for one that is
not), samples of a class, the class x z grid and the class swap (of a test image or an
upload). The controls above them (class, temperature, where z is drawn from) are in
``app.conditional_controls``. The Sample accuracy tab's figures are in
``app.conditional_figures``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from app import url_state
from app.common import is_pretrained, set_current_run, usable_runs
from app.explore_common import big_png, show_images
from app.text import md_escape, one_line
from core import explore as ex
from core.runs import Run
from core.uploads import PictureError, open_picture

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


def safe_file_part(text: str) -> str:
    """A piece of a download's file name: letters, digits, dot, dash and underscore."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")[:60] or "class"


def class_label(k: int, names: list[str]) -> str:
    """ "3 · Dress", or just "3" when the class is named by its index (digits)."""
    return names[k] if names[k] == str(k) else f"{k} · {names[k]}"


def _prior_words(model, t: float) -> str:
    prior = model.prior_description
    return prior if t == 1.0 else f"{prior} at temperature {t:g}"


def _seed_button(key: str, label: str = "New draw") -> int:
    st.session_state.setdefault(key, 0)
    if st.button(label, key=f"{key}_btn", icon=":material/casino:"):
        st.session_state[key] += 1
    return int(st.session_state[key])


def measured_at(
    tradeoff: list[dict] | None, temperature: float, label: int, source: str = ""
) -> str | None:
    """What the evaluation measured at this temperature, for this label, in one line (None
    where it was not measured there). ``source``: where z was drawn from, when not the
    prior (words ending in a space)."""
    row = next((r for r in tradeoff or [] if abs(r["temperature"] - temperature) < 1e-9), None)
    if row is None:
        return None
    read = " and ".join(
        f"the {name} judge {per[label]:.0%}" for name, per in row["per_class"].items()
    )
    return (
        f"Measured {source}at temperature {temperature:g} for this label: {read} read as "
        f"asked; variety {row['variety_per_class'][label]:.0%} of real images'. The Sample "
        "accuracy tab has every label and temperature."
    )


def own_codes_rows(own: dict | None) -> list[dict]:
    """The evaluation's ``own_codes`` block as rows of ``temperature_tradeoff``'s format:
    t = 1 (the block's own figures) first, then its other temperatures."""
    if not own:
        return []
    judges = [n for n in ("shipped", "sharp") if n in own]
    variety = own.get("variety") or {}
    first = {
        "temperature": 1.0,
        "accuracy": {n: own[n]["sample_accuracy"] for n in judges},
        "per_class": {n: own[n]["per_class"] for n in judges},
        "variety": variety.get("ratio"),
        "variety_lowest": variety.get("lowest"),
        "variety_per_class": variety.get("per_class"),
    }
    return [first] + [r for r in own.get("temperature") or [] if r["temperature"] != 1.0]


def samples_section(
    model,
    names: list[str],
    label: int,
    temperature: float = 1.0,
    evaluation=None,
    density=None,
) -> None:
    """``density`` (``core.label_density``): draw z from the label's own codes."""
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    with c1:
        n = st.slider("Samples", 4, 64, 16, 4, key="cd_n")
    with c2:
        seed = _seed_button("cd_seed")
    imgs = ex.conditional_samples(model, label, n, seed, temperature, density)
    if density is None:
        source = f"the {_prior_words(model, temperature)}"
    else:
        k = density.components[label]
        source = f"the codes of this label's training images ({k} Gaussian{'s' * (k > 1)})"
        source += "" if temperature == 1.0 else f" at temperature {temperature:g}"
    png = show_images(
        imgs,
        nrow=min(n, 8),
        scale=max(1, 64 // model.image_shape[-1]),
        caption=f"{n} draws of z from {source}, decoded as “{md_escape(names[label])}”",
    )
    st.download_button(
        "Download PNG",
        png,
        file_name=f"samples_{safe_file_part(names[label])}.png",
        mime="image/png",
        key="cd_dl_samples",
        on_click="ignore",
    )
    cond = (evaluation or {}).get("conditional") or {}
    if density is None:
        said = measured_at(cond.get("temperature"), temperature, label)
    else:
        rows = own_codes_rows(cond.get("own_codes"))
        said = measured_at(rows, temperature, label, "with z from this label's own codes ")
    if said:
        st.caption(said)


def class_grid_section(model, names: list[str], temperature: float = 1.0) -> None:
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    with c1:
        n_z = st.slider("Columns (one z each)", 2, 12, 8, key="cd_nz")
    with c2:
        seed = _seed_button("cd_grid_seed")
    imgs = ex.class_z_grid(model, n_z, seed, temperature)
    h = model.image_shape[-1]
    scale = max(1, 48 // h)
    arr = ex.sprite(imgs, n_z, pad=2)
    arr = np.repeat(np.repeat(arr, scale, 0), scale, 1)
    png = ex.png_bytes(ex.label_rows(arr, [class_label(k, names) for k in range(len(names))]))
    st.image(
        png,
        caption="Each column shares one z across all classes: the z carries the "
        "style, the label the class."
        + ("" if temperature == 1.0 else f" Drawn at temperature {temperature:g}."),
    )
    st.download_button(
        "Download PNG",
        png,
        file_name="class_by_z.png",
        mime="image/png",
        key="cd_dl_grid",
        on_click="ignore",
    )


def class_swap_section(model, test, names: list[str], label: int, density=None) -> None:
    """``density`` (the Samples tab drew from each label's own codes): the code is moved
    to the same place among each label's own codes, unless kept as it is."""
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
    x, name, what = test.images[int(idx)], str(idx), "The image"
    uploaded = uploaded_picture(model, test, names, own)
    if uploaded is not None:
        x, own, name, what = uploaded[0], uploaded[1], "upload", "Your picture"
    keep = st.toggle(
        "Keep the code as it is",
        key="cd_swap_keep",
        help="Off: under a prior per label, the code is first moved to the same place in "
        "each label's Gaussian, so the code carries the class too; with z drawn from each "
        "label's own codes, to the same place among that label's codes. On: the same code "
        "under every label, so only the label can change the class. A model whose prior "
        "ignores the label draws the same either way under the prior.",
    )
    res = ex.class_swap(model, x, own, move=not keep, density=density)
    scale = max(1, 64 // model.image_shape[-1])
    arr = ex.sprite(res["images"], len(names), pad=2)
    png = ex.png_bytes(arr, scale)
    st.image(
        [big_png(im, 96) for im in res["images"]],
        width=72,
        caption=[("▸ " if k == own else "") + md_escape(n) for k, n in enumerate(names)],
    )
    moved = (
        " moved to the same place among each label's own codes and"
        if density is not None and not keep
        else ""
    )
    st.caption(
        f"{what} is encoded with its own label ({md_escape(names[own])}); its latent z is"
        f"{moved} then decoded under every label. ▸ marks its own class. The Sample accuracy "
        "tab says how often judges read the new label."
    )
    st.download_button(
        "Download PNG",
        png,
        file_name=f"class_swap_{name}.png",
        mime="image/png",
        key="cd_dl_swap",
        on_click="ignore",
    )


def uploaded_picture(model, test, names: list[str], default: int):
    """A picture the user uploads for the swap, prepared like the dataset, and the label it
    is encoded with (the user says which); None without one or when it cannot be read (one
    sentence says why)."""
    with st.expander("…or upload a picture of your own"):
        up = st.file_uploader(
            "Picture", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"], key="cd_swap_upload"
        )
        own = st.selectbox(
            "What it shows (the label it is encoded with)",
            range(len(names)),
            index=default,
            format_func=lambda k: class_label(k, names),
            key="cd_swap_upload_label",
        )
        if up is None:
            return None
        style = ex.dataset_style(test.images)
        try:  # the pixel cap is checked on the header, before anything is decoded
            pic = open_picture(up.getvalue())
            x = ex.prepare_image(
                pic, model.image_shape, style["dark_background"], style["ink_extent"]
            )
        except PictureError as e:
            st.error(str(e))
            return None
        except (ValueError, OSError):
            st.error("That picture could not be prepared for the model: upload a PNG or JPEG.")
            return None
        st.image(big_png(x, 112), width=84, caption="as the model sees it")
    return x, int(own)
