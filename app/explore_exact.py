"""The explorer's decoder in the browser: the decoder exported to ONNX and served by this
server, loaded early (``preload_decoder``), and what the plane component needs to decode
its exact points, the other coordinates, the label and the interpolation without a server
round trip (``exact_decoder``). The plane itself is ``app.explore_plane``; the browser side
is ``app/js/ort.js`` and ``app/js/plane.js``.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import components
from app.common import get_model
from app.explore_context import Ctx, _short, model_key
from app.explore_plane import BROWSER_SLIDERS, View, slider_ranges
from core import explore as ex
from core.onnx_decoder import decoder_onnx


@st.cache_resource(max_entries=8, show_spinner=False)
def _decoder_onnx(_model, key: str, cache_dir: str) -> bytes | None:
    return decoder_onnx(_model, key, cache_dir)


def decoder_files(model, key: str, run) -> dict:
    """The in-browser decoder's files: {"runtime": URL folder of onnxruntime-web, "version",
    "model": URL of this decoder as ONNX (served by this server), "id"}, or {"error": why
    not} (the plane then blends its grid and says why)."""
    runtime, version = components.ort_runtime()
    if runtime is None:
        return {"error": version}
    if not components.can_serve():
        return {"error": "no server to serve the decoder from"}
    onnx = _decoder_onnx(model, key, str(run.cache_dir))
    if onnx is None:
        return {"error": "this model's decoder could not be exported to ONNX"}
    url = components.served_bytes(onnx, "latentlab.plane.decoder")
    return {"runtime": runtime, "version": version, "model": url, "id": _short(key)}


def preload_decoder(run) -> dict:
    """Start the browser on the decoder while the page computes the plane (the encoded
    test set and the sprite take seconds on a first visit); returns ``decoder_files``,
    which the page hands on to ``plane_component``."""
    model, _ = get_model(run)
    files = decoder_files(model, model_key(run), run)
    components.decoder_preload(files, key="ex_preload")
    return files


def exact_decoder(ctx: Ctx, view: View, files: dict, interp: dict | None = None) -> dict:
    """What the browser needs to decode the plane's exact points itself: the decoder's
    ``files`` (``decoder_files``), the plane as ``z = origin + u du + v dv``, the label's
    one-hot, the other coordinates' sliders, the projection onto the plane, and the
    interpolation's ends (``interp``, from ``app.explore_pinned.interpolation_section``)."""
    if "error" in files:
        return files
    origin, du, dv = view.plane.affine()
    onehot = None
    if ctx.conditional:
        onehot = [0.0] * ctx.model.num_classes
        onehot[int(view.label)] = 1.0
    plane = {"origin": origin.tolist(), "du": du.tolist(), "dv": dv.tolist()}
    b, i, j = view.plane.basis, view.plane.i, view.plane.j
    proj = {  # (u, v) of a latent vector z: ((z - center) . e_i, (z - center) . e_j)
        "center": b.center.tolist(),
        "ei": b.vectors[i].tolist(),
        "ej": (b.vectors[j] if j != i else np.zeros(b.dim)).tolist(),
    }
    extra = {"onehot": onehot, "others": browser_sliders(ctx, view.plane), "proj": proj}
    return files | plane | extra | {"interp": interp}


def browser_sliders(ctx: Ctx, plane: ex.Plane) -> list[dict]:
    """The other coordinates the browser offers as sliders (the first ``BROWSER_SLIDERS``
    in the basis' order: for principal directions, by variance): their value on the page,
    range (as the page's sliders) and direction in latent space, so that the browser adds
    ``(value - fixed) * dir`` to z."""
    b, others = plane.basis, [k for k in range(plane.basis.dim) if k not in (plane.i, plane.j)]
    lo, hi = slider_ranges(ctx, b)
    return [
        {
            "k": k,
            "name": b.names[k],
            "value": float(plane.fixed[k]),
            "lo": min(lo[k], float(plane.fixed[k])),  # a test image's value may lie outside
            "hi": max(hi[k], float(plane.fixed[k])),
            "dir": b.vectors[k].tolist(),
        }
        for k in others[:BROWSER_SLIDERS]
    ]
