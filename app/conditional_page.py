"""The conditional-sampling page's sections: what a conditional run is (for one that is
not), the class picker with its URL mirror, samples of a class, the class x z grid and the
class swap (of a test image or an upload). The Sample accuracy tab's figures are in
``app.conditional_figures``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from app import url_state
from app.common import get_dataset, is_pretrained, set_current_run, usable_runs
from app.explore_common import big_png, show_images
from app.text import md_escape, one_line
from core import explore as ex
from core import label_density
from core.conditional_eval import TRADEOFF_TEMPERATURES
from core.models import MAX_SAMPLING_TEMPERATURE
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


def _parse_temperature(v: str) -> float | None:
    t = url_state.parse_float(v, MAX_SAMPLING_TEMPERATURE)
    return t if t is not None and t >= 0 else None


def temperature_picker(model) -> float:
    """The sampling temperature for the Samples and Class × z tabs (1: the prior itself),
    mirrored in the URL as ?temperature=<t> when it is not 1. A categorical latent has no
    spread to scale: 1, and no slider."""
    if not model.continuous_latent:
        url_state.forget("temperature")
        return 1.0
    if not st.session_state.get("cd_temp_url_done"):
        st.session_state["cd_temp_url_done"] = True
        wanted = url_state.read("temperature", _parse_temperature)  # refused: ignored
        if wanted is not None:
            st.session_state["cd_temp"] = round(round(wanted / 0.05) * 0.05, 2)
    st.session_state.setdefault("cd_temp", 1.0)
    t = st.slider(
        "Temperature",
        min_value=0.0,
        max_value=MAX_SAMPLING_TEMPERATURE,
        step=0.05,
        key="cd_temp",
        help="Draw z at t times its distance from the prior's centre. Below 1 the samples "
        "are more typical of their class and less varied; 0 draws the centre itself, one "
        "image per label. The Sample accuracy tab measures both at "
        + ", ".join(f"{t:g}" for t in TRADEOFF_TEMPERATURES)
        + ".",
    )
    url_state.write({"temperature": None if t == 1.0 else f"{t:g}"})
    return float(t)


DRAW_CHOICES = {"prior": "the prior", "codes": "each label's own codes"}


def z_source_picker(model) -> str:
    """Where the Samples tab draws z from: the model's prior, or (a conditional model with
    a continuous latent and an encoder) each label's own codes (``core.label_density``),
    mirrored in the URL as ?draw=codes."""
    if not label_density.supports(model):
        url_state.forget("draw")
        return "prior"
    if not st.session_state.get("cd_draw_url_done"):
        st.session_state["cd_draw_url_done"] = True
        wanted = url_state.read("draw", lambda v: v if v in DRAW_CHOICES else None)
        if wanted is not None:
            st.session_state["cd_draw"] = wanted
    choice = st.radio(
        "Draw z from",
        list(DRAW_CHOICES),
        key="cd_draw",
        horizontal=True,
        format_func=DRAW_CHOICES.get,
        help="The prior is what the model was trained with. Each label's own codes: a "
        "mixture of Gaussians fitted, after training, to where the encoder puts that label's "
        "training images, so a draw lands where real images of the label do (fitted once "
        "per model and kept in the run's cache).",
    )
    url_state.write({"draw": None if choice == "prior" else choice})
    return str(choice)


@st.cache_resource(max_entries=4, show_spinner=False)
def _density(path: str, mtime: float, _run: Run, _model):
    from core import data as datalib

    try:
        return label_density.get(_run, _model, get_dataset(*_train_split(_run)))
    except (datalib.DatasetError, ValueError) as e:  # no training images; a label without
        return str(e)  # two of them: one sentence each


def _train_split(run: Run) -> tuple[str, str, str | None]:
    t = (run.config_or_none() or {}).get("train") or {}
    return str(t.get("dataset", "digits")), "train", t.get("data_dir")


def label_density_for(run: Run, model):
    """The run's ``core.label_density`` density (read from its cache, or fitted to its
    training split once, with a spinner), or None after one sentence saying why not."""
    p = run.checkpoint_path
    try:
        mtime = p.stat().st_mtime
    except OSError:
        st.warning("The run's checkpoint cannot be read, so z is drawn from the prior.")
        return None
    with st.spinner("Fitting where each label's training images lie in z (once per model)…"):
        got = _density(str(p), mtime, run, model)
    if isinstance(got, str):
        st.warning(
            f"{md_escape(got.rstrip('.'))}; without the training images z is drawn from the prior."
        )
        return None
    return got


def _prior_words(model, t: float) -> str:
    prior = model.prior_description
    return prior if t == 1.0 else f"{prior} at temperature {t:g}"


def _seed_button(key: str, label: str = "New draw") -> int:
    st.session_state.setdefault(key, 0)
    if st.button(label, key=f"{key}_btn", icon=":material/casino:"):
        st.session_state[key] += 1
    return int(st.session_state[key])


def measured_at(tradeoff: list[dict] | None, temperature: float, label: int) -> str | None:
    """What the evaluation measured at this temperature, for this label, in one line (None
    where it was not measured there)."""
    row = next((r for r in tradeoff or [] if abs(r["temperature"] - temperature) < 1e-9), None)
    if row is None:
        return None
    read = " and ".join(
        f"the {name} judge {per[label]:.0%}" for name, per in row["per_class"].items()
    )
    return (
        f"Measured at temperature {temperature:g} for this label: {read} read as asked; "
        f"variety {row['variety_per_class'][label]:.0%} of real images'. The Sample accuracy "
        "tab has every label and temperature."
    )


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
        said = measured_own_codes(cond.get("own_codes"), temperature, label)
    if said:
        st.caption(said)


def measured_own_codes(own: dict | None, temperature: float, label: int) -> str | None:
    """What the evaluation measured with z from each label's own codes at this temperature,
    for this label, in one line (None where it was not measured)."""
    if not own:
        return None
    if temperature == 1.0:
        per = {n: own[n]["per_class"] for n in ("shipped", "sharp") if n in own}
        variety = own["variety"]["per_class"]
    else:
        rows = own.get("temperature") or []
        row = next((r for r in rows if abs(r["temperature"] - temperature) < 1e-9), None)
        if row is None:
            return None
        per, variety = row["per_class"], row["variety_per_class"]
    read = " and ".join(f"the {name} judge {p[label]:.0%}" for name, p in per.items())
    at = "" if temperature == 1.0 else f" at temperature {temperature:g}"
    return (
        f"Measured with z from this label's own codes{at}: {read} read as asked; variety "
        f"{variety[label]:.0%} of real images'. The Sample accuracy tab compares it with the "
        "prior."
    )


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
