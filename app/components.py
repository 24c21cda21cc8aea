"""The lab's custom browser components (``st.components.v2``: inline HTML, CSS and JS, no
build step, nothing downloaded). Their HTML, CSS and JavaScript live in ``app/js/`` and are
read once, at import time.

- ``latent_plane``: the latent plane on a canvas: encoded points coloured by label with a
  thumbnail of the image under the mouse, and the decoded image at the cursor, updated on
  every mouse move *in the browser*. By default the decoder itself runs there (its ONNX
  export, onnxruntime-web from ``app/static/ort``; ``app/js/ort.js``), with the label, up
  to eight other coordinates and the interpolation as controls beside the picture. The
  fallback, and the toggle's other side: Python sends, once per plane, a sprite of an n x n
  grid of decodings (one PNG) and the script blends the four cells around the cursor
  (bilinear). A click pins the point: the trigger ``pin`` = {"u", "v", and where the
  browser's differ from the page's, "label" and "others"} goes back to Python
  (``app.explore_plane.apply_pin``), which decodes it.
- ``decoder_preload``: nothing visible; starts loading the in-browser decoder early
  (``runtime_warmup``: every page starts the runtime alone, at idle).
- ``draw_pad``: a small drawing canvas; after every stroke its picture goes back to Python
  as a PNG data URL (state ``image``).
- ``category_grid``: N categorical variables x K categories; clicking a cell sends the
  trigger ``flip`` = {"v", "k"}.
- ``embedding_hover``: hover thumbnails and clicks on the Embeddings page's plotly charts
  (see ``app.embedding_charts``); the trigger ``clicked`` = {"tag", "index", "pos"}.

Each JS module records what it did in ``window.__latentlab`` (counts, timestamps, the last
mouse-to-image latency), which the browser tests and the interaction benchmark read.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import streamlit as st

ASSETS = Path(__file__).parent / "js"


def _asset(name: str) -> str:
    """The text of ``app/js/<name>``."""
    return (ASSETS / name).read_text(encoding="utf-8")


def _parts(stem: str) -> dict:
    """``html``, ``css`` and ``js`` of one component (``<stem>.html``, ``.css``, ``.js``)."""
    return {kind: _asset(f"{stem}.{kind}") for kind in ("html", "css", "js")}


ORT_DIR = Path(__file__).parent / "static" / "ort"


@functools.cache
def _ort_version() -> str | None:
    """The vendored onnxruntime-web's version (read once per process), None if missing."""
    try:
        return str(json.loads((ORT_DIR / "VERSION.json").read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return None


def _on_server(path: str) -> str:
    """``path`` (from the server's root) under ``server.baseUrlPath``."""
    base = "/" + (st.get_option("server.baseUrlPath") or "").strip("/")
    return base.rstrip("/") + path


def ort_runtime() -> tuple[str | None, str]:
    """(URL folder of the vendored onnxruntime-web, its version), or (None, why not): the
    files must be in ``app/static/ort`` and Streamlit must serve ``app/static`` (the
    repository's ``.streamlit/config.toml`` turns static serving on)."""
    version = _ort_version()
    if version is None:
        return None, "its runtime files are missing from app/static/ort (python -m app.vendor_ort)"
    if not st.get_option("server.enableStaticServing"):
        return None, (
            "static file serving is off: start the app from the repository root, or pass "
            "--server.enableStaticServing true"
        )
    return _on_server("/app/static/ort/"), version


def can_serve() -> bool:
    """Is there a running server to serve files from (not AppTest's or bare mode)?"""
    from streamlit import runtime

    return runtime.exists()


def served_bytes(data: bytes, slot: str) -> str | None:
    """A URL (on this server, for this session) from which the browser fetches ``data``;
    the same media store ``st.image`` uses, so it lives as long as the session shows it
    (call again on every rerun). ``slot`` names the file's place on the page. None outside
    a running server (AppTest, bare mode)."""
    from streamlit import runtime

    if not runtime.exists():
        return None
    return _on_server(
        runtime.get_instance().media_file_mgr.add(data, "application/octet-stream", slot)
    )


_plane = st.components.v2.component(
    "latentlab.latent_plane", **(_parts("plane") | {"js": _asset("ort.js") + _asset("plane.js")})
)
_preload = st.components.v2.component(
    "latentlab.decoder_preload",
    html='<div class="ll-preload"></div>',
    css=".ll-preload { width: 1px; height: 1px; opacity: 0; }",
    js=_asset("ort.js") + _asset("preload.js"),
)
_pad = st.components.v2.component("latentlab.draw_pad", **_parts("pad"))
_cats = st.components.v2.component("latentlab.category_grid", **_parts("cats"))
_HOVER = _parts("hover")


def _noop() -> None:
    pass


def latent_plane(data: dict, key: str, on_pin: Callable[[], None] | None = None):
    """Mount the latent plane.

    Args:
        data: {"sprite": {"src": PNG data URL, "id", "grid": n}, "cell": [C, H, W],
            "extent": {"u": [lo, hi], "v": [lo, hi]}, "axes": [x name, y name],
            "points": {"u", "v", "label", "index"}, "thumbs": {"src", "id", "cols"},
            "class_names", "markers": [{"u", "v", "kind": "pin"|"point", "color", "text"}],
            "path": [[u, v], ...], "start": [u, v], "size": the plane's largest side in
            pixels, "exact": the in-browser decoder (``app.explore_exact.exact_decoder``)}.
            In a narrower column the plane shrinks (down to 280 px) so that the
            decoded picture stays beside it; the canvases are redrawn when the width changes.
        on_pin: called (before the script reruns) when the user clicks the plane; the click
            is in ``st.session_state[key]["pin"]`` as {"u", "v"}.

    Returns:
        The component result; ``.pin`` holds the click of this run, else None.
    """
    return _plane(key=key, data=data, on_pin_change=on_pin or _noop, width="stretch")


def decoder_preload(files: dict, key: str) -> None:
    """Start loading the in-browser decoder (``files``: {"runtime", "model", "id"}, see
    ``app.explore_exact.decoder_files``) before the plane is drawn; shows nothing."""
    if files.get("runtime") and files.get("model"):
        with st.sidebar:  # out of the page's flow: no gap above the title
            _preload(key=key, data=files, width="content", height="content")


def runtime_warmup() -> None:
    """Every page: once the browser is idle, fetch, compile and start onnxruntime-web (not
    a decoder), so that the explorer's first exact picture in this tab does not wait for
    it (``app/js/preload.js``); shows nothing, does nothing outside a running server."""
    runtime, _ = ort_runtime()
    if runtime and can_serve():
        with st.sidebar:
            _preload(key="ort_warm", data={"runtime": runtime, "warm": True}, width="content",
                     height="content")  # fmt: skip


def draw_pad(key: str, dark: bool, rgb: bool = False, size: int = 224, brush: int = 18):
    """Mount the drawing pad; ``.image`` is the last stroke's PNG data URL (None if empty)."""
    return _pad(
        key=key,
        data={"dark": dark, "rgb": rgb, "size": size, "brush": brush},
        on_image_change=_noop,
        width="content",
    )


def category_grid(key: str, choice: list[int], categories: int, probs=None, on_flip=None):
    """Mount the N x K category picker (shade = ``probs`` (N, K), marked = ``choice``);
    ``.flip`` is {"v", "k"} in the run after a click."""
    data = {
        "vars": len(choice),
        "cats": int(categories),
        "choice": [int(c) for c in choice],
        "probs": None if probs is None else [[round(float(p), 4) for p in row] for row in probs],
    }
    return _cats(key=key, data=data, on_flip_change=on_flip or _noop, width="content")


@st.cache_resource
def _hover_component():
    return st.components.v2.component("latentlab.embedding_hover", **_HOVER)


def embedding_hover(data: dict, key: str):
    """Mount the hover-thumbnail component of the Embeddings page; ``.clicked`` is the dot
    clicked in this run ({"tag", "index", "pos"}), else None."""
    return _hover_component()(data=data, key=key, on_clicked_change=lambda: None)
