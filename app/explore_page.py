"""The latent explorer page's own pieces: the link's view read once (``?axes=``, ``?pin=``,
``?label=``, ``?fix=``), the values mirrored back into the URL, and the page's explanation.

The sections live in ``app.explore_plane`` (controls and the plane), ``app.explore_pinned``
(pinned point, decoded grid, interpolation), ``app.explore_draw`` (drawing, uploads,
placement), ``app.explore_categories`` and ``app.explore_collapse``.
"""

from __future__ import annotations

import streamlit as st

from app import url_state
from app.explore_common import MAX_PIN
from app.explore_context import Ctx
from app.explore_plane import View
from core import explore as ex


# ----------------------------------------------------------------------------- URL mirror
def apply_url_once(ctx: Ctx) -> None:
    """On the first run of a session (per run), set the plane from the link's ?axes=,
    ?pin=, ?label= and ?fix=."""
    flag = f"ex_url_done_{ctx.run.id}"
    if st.session_state.get(flag):
        return
    st.session_state[flag] = True
    for key, value in parse_url(ctx).items():
        st.session_state[key] = value


def parse_url(ctx: Ctx) -> dict:
    """The session-state values a link asks for: each query parameter parsed strictly
    (``app.url_state``: ASCII digits, finite numbers, ranges checked); anything else is
    ignored."""
    out: dict = {}
    axes = url_state.read("axes", lambda v: url_state.parse_axes(v, ctx.dim))
    if axes:
        kind, i, j = axes
        out["ex_kind"] = kind
        out[f"ex_{kind}_i"], out[f"ex_{kind}_j"] = int(i), int(j)
    pin = url_state.read("pin", lambda v: url_state.parse_pair(v, MAX_PIN))
    if pin:
        out["ex_pin"] = pin
    if ctx.conditional:
        n = int(ctx.model.num_classes)
        lab = url_state.read_int("label", None, 0, n - 1, warn=False)
        if lab is not None:
            out["ex_label"] = lab
    last = len(ctx.test) - 1
    idx = url_state.read(
        "fix", lambda v: url_state.parse_int(v[4:], 0, last) if v.startswith("img:") else None
    )
    if idx is not None:
        out["ex_fix"] = "a test image"
        out["ex_fix_img"] = idx
    return out


EXPLORE_URL_KEYS = ("axes", "pin", "label", "fix")


def url_values(ctx: Ctx, view: View) -> dict:
    pin = st.session_state.get("ex_pin")
    plane = view.plane
    return {
        "axes": ex.format_axes(plane.basis.kind, plane.i, plane.j) if ctx.dim > 1 else None,
        "pin": ex.format_pair(pin) if pin else None,
        "label": str(view.label) if view.label is not None else None,
        "fix": view.fix_note[4:] if view.fix_note.startswith("fix=") else None,
    }


def explain_text(ctx: Ctx) -> str:
    m = ctx.model
    if not m.continuous_latent:
        extra = (
            "\n\nThis model's latent is **categorical**: each variable picks one "
            "of K categories. The plane is a slice through the space of category probabilities; "
            "the *Categories* tab lets you set the categories directly."
        )
    elif not m.encodes:
        extra = (
            "\n\nThis is an **autodecoder**: the points are its learned latent table, one "
            "row per training image. New images are placed by optimisation (*Place an image*)."
        )
    elif not m.has_kl:
        extra = (
            "\n\nThis is a plain **autoencoder**: there is no prior, so regions "
            "between the points may decode to nonsense."
        )
    else:
        extra = ""
    return (
        "Every image the model knows is a point *z* in its latent space; the decoder turns any "
        "point into an image. The plane is a 2-D slice through that space: each dot is a "
        "test image encoded by the model, coloured by its label. Move the mouse over the "
        "plane to see what the decoder draws there; click to pin a point.\n\n"
        "With more than two latent dimensions, pick two axes (two coordinates of *z*, or "
        "the two principal directions along which the encoded images vary most) and fix the "
        "others. **Posterior collapse**: dimensions that the encoder stopped using show a KL "
        "near zero." + extra
    )
