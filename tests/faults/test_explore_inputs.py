"""Everything a visitor hands the latent explorer and the conditional page is hostile: the
link's query parameters, the pictures uploaded or drawn, the browser components' values,
and the run and class names a checkpoint brings. Each case drives the real pages headless
(AppTest through the app's router) on tiny real runs: no traceback, a refusal in one
sentence where there is something to refuse, the hostile value ignored otherwise, and
user text shown as text (never Markdown that would make the browser fetch a URL)."""

from __future__ import annotations

import base64
import io
import re
import struct
import zlib

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from app.text import md_escape, one_line
from core import explore as ex
from core.importer import import_checkpoint
from tests.conftest import ROOT

MD_KINDS = ("caption", "markdown", "info", "warning", "error", "success", "title")


def open_page(run, page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
    at.session_state["run_id"] = run.id
    at.run()
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.switch_page(f"../pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def one_sentence(msg: str) -> None:
    assert "\n" not in msg and "Traceback" not in msg and len(msg) < 400, msg
    assert not re.search(r"[.!?]\s+[A-Z]", msg), f"more than one sentence: {msg}"


def markdown_sources(at) -> list[str]:
    """The Markdown source of every element that renders Markdown, image captions too."""
    out = [str(e.value) for kind in MD_KINDS for e in at.get(kind)]
    return out + [c for img in at.get("image") for c in img.captions]


# ----------------------------------------------------------------------------- link parameters
HOSTILE_EXPLORER_LINKS = {
    "label=² (a superscript digit)": {"label": "²"},
    "label=٣ (an Arabic-Indic digit)": {"label": "٣"},
    "label=-1": {"label": "-1"},
    "label=10 (no such class)": {"label": "10"},
    "label=10**23": {"label": "99999999999999999999999"},
    "label=3.0": {"label": "3.0"},
    "label=' 3'": {"label": " 3"},
    "label=''": {"label": ""},
    "fix=img:²": {"fix": "img:²"},
    "fix=img:٣": {"fix": "img:٣"},
    "fix=img:-1": {"fix": "img:-1"},
    "fix=img:999999": {"fix": "img:999999"},
    "fix=img:1e3": {"fix": "img:1e3"},
    "pin=nan,nan": {"pin": "nan,nan"},
    "pin=inf,0": {"pin": "inf,0"},
    "pin=1e308,1e308": {"pin": "1e308,1e308"},
    "pin=5000,0 (far off the plane)": {"pin": "5000,0"},
    "pin=²,1": {"pin": "²,1"},
    "pin with three numbers": {"pin": "0.1,0.2,0.3"},
    "pin of 10000 characters": {"pin": "1" * 10_000 + ",1"},
    "axes=z²,z0": {"axes": "z²,z0"},
    "axes=z٣,z0": {"axes": "z٣,z0"},
    "axes=z10**20,z0": {"axes": "z99999999999999999999,z0"},
    "axes=pc0,pc1": {"axes": "pc0,pc1"},
    "axes=z0,z0": {"axes": "z0,z0"},
    "axes=<script>": {"axes": "<script>alert(1)</script>"},
    "everything hostile at once": {
        "label": "²",
        "fix": "img:²",
        "pin": "nan,²",
        "axes": "z²,z٣",
        "class": "²",
        "run": "../../etc",
    },
}


@pytest.mark.parametrize("case", list(HOSTILE_EXPLORER_LINKS))
def test_hostile_explorer_links_are_ignored(case, tiny_runs, runs_env):
    at = open_page(tiny_runs["cvae"], "explore", HOSTILE_EXPLORER_LINKS[case])
    assert [t.value for t in at.title] == ["Latent explorer"]
    assert not at.error, errors(at)
    ss = at.session_state
    assert ss["ex_label"] == 0  # the default class, not the link's
    assert "ex_pin" not in ss or ss["ex_pin"] is None
    assert ss["ex_fix"] == "the mean" if "ex_fix" in ss else True
    assert at.query_params["axes"] == "z0,z1" and at.query_params["label"] == "0"
    assert "pin" not in at.query_params and "fix" not in at.query_params


def test_a_valid_link_is_still_honoured(tiny_runs, runs_env):
    """The control case: the same parameters, well formed, are applied."""
    at = open_page(tiny_runs["cvae"], "explore", {"label": "3", "pin": "0.1,-0.2",
                                                  "axes": "z1,z0"})  # fmt: skip
    assert at.session_state["ex_label"] == 3
    assert at.query_params["pin"] == "0.1,-0.2" and at.query_params["axes"] == "z1,z0"


HOSTILE_CLASSES = ["²", "٣", "-1", "10", "1e1", " 3", "3 ", "0x3"]


@pytest.mark.parametrize("value", HOSTILE_CLASSES)
def test_hostile_class_links_are_ignored(value, tiny_runs, runs_env):
    at = open_page(tiny_runs["cvae"], "conditional", {"class": value})
    assert [t.value for t in at.title] == ["Conditional sampling"]
    assert not at.error, errors(at)
    assert at.session_state["cd_class"] == 0 and at.query_params["class"] == "0"


# ----------------------------------------------------------------------------- pictures
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(w: int, h: int, idat: bytes | None = None) -> bytes:
    """A 1-bit grayscale PNG (a 20000x20000 one is about 50 KB); ``idat`` replaces the
    pixel data (a header that only declares the size)."""
    if idat is None:
        z = zlib.compressobj(9)
        row = b"\x00" * (1 + (w + 7) // 8)
        idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _jpeg_claiming(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (16, 16), 0).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def _real_png() -> bytes:
    pic = np.zeros((64, 64, 1), np.uint8)
    pic[10:54, 28:36] = 255
    return ex.png_bytes(pic)


UPLOADS = {
    "20000x20000 PNG": (lambda: png(20000, 20000), "scale it down"),
    "12000x12000 PNG": (lambda: png(12000, 12000), "12000x12000 pixels"),
    "header declaring 100000x100000": (lambda: png(100_000, 100_000, b""), "scale it down"),
    "JPEG declaring 60000x60000": (lambda: _jpeg_claiming(60000, 60000), "scale it down"),
    "PNG cut short": (lambda: _real_png()[:50], "damaged or cut short"),
    "empty file": (lambda: b"", "empty"),
    "a checkpoint named .png": (lambda: b"PK\x03\x04" + b"\x00" * 100, "not a picture"),
}


@pytest.mark.parametrize("case", list(UPLOADS))
def test_hostile_uploads_on_the_explorer(case, tiny_runs, runs_env):
    make, fragment = UPLOADS[case]
    at = open_page(tiny_runs["mlp-vae"], "explore")
    at.get("file_uploader")[0].upload("picture.png", make(), "image/png")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(errors(at)) == 1, errors(at)
    one_sentence(errors(at)[0])
    assert fragment in errors(at)[0]
    assert not any(c.value.startswith("◆ upload") for c in at.caption)


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


DRAWINGS = {
    "a 20000x20000 drawing": ({"image": _data_url(png(20000, 20000, b""))}, "scale it down"),
    "a drawing that is not a data URL": ({"image": "http://example.invalid/x.png"}, "draw it"),
    "a drawing that is a number": ({"image": 12345}, "did not arrive as an image"),
    "garbled base64": ({"image": "data:image/png;base64,%%%"}, "garbled"),
    "a drawing of text": ({"image": _data_url(b"hello")}, "not a picture"),
}


@pytest.mark.parametrize("case", list(DRAWINGS))
def test_hostile_drawings_on_the_explorer(case, tiny_runs, runs_env):
    value, fragment = DRAWINGS[case]
    at = open_page(tiny_runs["mlp-vae"], "explore")
    at.session_state["explore_pad"] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(errors(at)) == 1 and fragment in errors(at)[0], errors(at)
    one_sentence(errors(at)[0])


@pytest.mark.parametrize("value", ["a string", 42, ["image"], {"image": None}])
def test_drawing_pad_values_of_the_wrong_shape_are_ignored(value, tiny_runs, runs_env):
    at = open_page(tiny_runs["mlp-vae"], "explore")
    at.session_state["explore_pad"] = value
    at.run()
    assert not at.exception and not at.error, errors(at)
    assert not any(c.value.startswith("◆ drawing") for c in at.caption)


@pytest.mark.parametrize(
    "flip",
    [{"v": "²", "k": 1}, {"v": 0, "k": 10**30}, {"v": -1, "k": 0}, {"v": 0.5, "k": "x"}, "flip"],
)
def test_hostile_category_clicks_are_ignored(flip, tiny_runs, runs_env):
    at = open_page(tiny_runs["gumbel-vae"], "explore")
    before = list(at.session_state["ex_choice"])
    at.session_state["explore_cats"] = {"flip": flip}
    at.run()
    assert not at.exception and not at.error, errors(at)
    assert at.session_state["ex_choice"] == before


# ----------------------------------------------------------------------------- names as text
HOSTILE_NAMES = [
    "![x](http://example.invalid/x.png)",
    '<img src="http://example.invalid/y.png">',
    "[click](javascript:alert(1))",
    ":red[big] $x^2$ :material/warning:",
    "# heading\n\n* list",
]


def _raw_markdown(source: str, name: str) -> bool:
    """Does ``source`` hold ``name`` unescaped (a link, image, tag or directive that
    Markdown would act on)?"""
    return any(
        bit in source
        for bit in ("![x](", "<img", "](javascript", ":red[", "$x^2$", ":material/")
        if bit in name
    )


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_run_names_are_shown_as_text(name, tiny_runs, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    run = import_checkpoint(tiny_runs["mlp-vae"].checkpoint_path, "x.pt", root=root, name=name)
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(root))
    at = open_page(run, "explore")
    sources = markdown_sources(at)
    assert any(md_escape(run.name) in s for s in sources), sources  # the name is shown
    assert not any(_raw_markdown(s, name) for s in sources), sources
    at = open_page(run, "conditional")  # not conditional: the page names the run
    sources = markdown_sources(at)
    assert any(md_escape(run.name) in s for s in sources), sources
    assert not any(_raw_markdown(s, name) for s in sources), sources


def test_class_names_from_a_checkpoint_are_shown_as_text(tiny_runs, tmp_path, monkeypatch):
    ck = torch.load(tiny_runs["cvae"].checkpoint_path, weights_only=True)
    ck["dataset"]["class_names"] = [f"![x](http://example.invalid/{k}.png)" for k in range(10)]
    buf = io.BytesIO()
    torch.save(ck, buf)
    root = tmp_path / "runs"
    run = import_checkpoint(buf.getvalue(), "cvae.pt", root=root)
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(root))
    for page in ("conditional", "explore"):
        at = open_page(run, page)
        sources = markdown_sources(at)
        assert any("example\\.invalid" in s for s in sources), (page, sources)
        assert not any("![x](" in s for s in sources), (page, sources)


def test_a_checkpoint_with_too_few_class_names_still_opens(tiny_runs, tmp_path, monkeypatch):
    ck = torch.load(tiny_runs["cvae"].checkpoint_path, weights_only=True)
    ck["dataset"]["class_names"] = ["only one"]
    buf = io.BytesIO()
    torch.save(ck, buf)
    root = tmp_path / "runs"
    run = import_checkpoint(buf.getvalue(), "cvae.pt", root=root)
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(root))
    for page in ("conditional", "explore"):
        at = open_page(run, page, {"label": "9", "class": "9"})
        assert not at.error, errors(at)


_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:=&\"'^%@,;?/")


@pytest.mark.parametrize(
    "text",
    HOSTILE_NAMES
    + ["a\\b", "http://example.invalid/x.png", "<script>x</script>", "~~s~~ `c` **b** _i_"],
)
def test_md_escape_leaves_no_markdown(text):
    out = md_escape(text)
    assert "\n" not in out
    i, plain = 0, []
    while i < len(out):  # every special character is escaped, and unescaping gives the text
        if out[i] == "\\":
            assert out[i + 1] in _SPECIAL, out
            plain.append(out[i + 1])
            i += 2
            continue
        assert out[i] not in _SPECIAL, (out, i)
        plain.append(out[i])
        i += 1
    assert "".join(plain) == one_line(text, 10_000)


# --------------------------------------------------------------------- pins from the browser
HOSTILE_PINS = {
    "not a dict": "pin",
    "no numbers": {"u": "a", "v": None},
    "nan": {"u": float("nan"), "v": 0.0},
    "label 10**30": {"u": 0.1, "v": 0.2, "label": 10**30},
    "label 9999 (beyond the model's labels)": {"u": 0.1, "v": 0.2, "label": 9999},
    "label -1": {"u": 0.1, "v": 0.2, "label": -1},
    "label true": {"u": 0.1, "v": 0.2, "label": True},
    "label '3'": {"u": 0.1, "v": 0.2, "label": "3"},
    "others a list": {"u": 0.1, "v": 0.2, "others": [1, 2]},
    "others key ²": {"u": 0.1, "v": 0.2, "others": {"²": 1.0}},
    "others key ٣": {"u": 0.1, "v": 0.2, "others": {"٣": 1.0}},
    "others key -1": {"u": 0.1, "v": 0.2, "others": {"-1": 1.0}},
    "others key 10**30": {"u": 0.1, "v": 0.2, "others": {str(10**30): 1.0}},
    "others value inf": {"u": 0.1, "v": 0.2, "others": {"2": float("inf")}},
    "others value far out": {"u": 0.1, "v": 0.2, "others": {"2": 999.0}},
    "others value text": {"u": 0.1, "v": 0.2, "others": {"2": "1e2"}},
    "others on an axis": {"u": 0.1, "v": 0.2, "others": {"0": 1.0}},
    "others beyond the latent": {"u": 0.1, "v": 0.2, "others": {"99999": 1.0}},
    "others of 100000 keys": {"u": 0.1, "v": 0.2, "others": {str(k): 0.0 for k in range(10**5)}},
}


@pytest.mark.parametrize("pin", HOSTILE_PINS.values(), ids=HOSTILE_PINS.keys())
def test_hostile_pins_from_the_browser_leave_a_working_page(pin, runs_env):
    """A pin with the label and other coordinates the browser decoded it with (issue 15),
    on digits-cvae-l8 (zoo: conditional, L = 8, so sliders exist): the page reruns without
    a traceback or an error box, its label stays one of the model's, and every slider value
    stays in its range."""
    from app.common import PRETRAINED_DIR
    from app.explore_plane import apply_pin
    from core.runs import Run

    at = open_page(Run(PRETRAINED_DIR / "digits-cvae-l8"), "explore")
    mode = at.session_state["ex_fix"]
    apply_pin(at.session_state, pin)
    at.run()
    assert not at.exception and not at.error, errors(at) + [e.value for e in at.exception]
    assert at.session_state["ex_label"] in range(10)
    # values it can use (in range after clamping, a decimal text, the first 8 keys of many)
    # switch the page to its sliders; nothing usable leaves the mode as it was
    usable = ("others value far out", "others value text", "others of 100000 keys")
    if all(pin is not HOSTILE_PINS[k] for k in usable):
        assert at.session_state["ex_fix"] == mode
    for s in at.slider:
        if s.key and s.key.startswith("ex_fix_"):
            assert s.min <= s.value <= s.max, (s.key, s.value)


def test_a_pin_from_the_browser_sets_the_label_and_the_sliders(runs_env):
    from app.common import PRETRAINED_DIR
    from app.explore_plane import apply_pin
    from core.runs import Run

    at = open_page(Run(PRETRAINED_DIR / "digits-cvae-l8"), "explore")
    apply_pin(at.session_state, {"u": 0.25, "v": -0.5, "label": 7, "others": {"3": 0.5}})
    at.run()
    assert not at.exception and not at.error
    assert at.session_state["ex_pin"] == (0.25, -0.5) and at.session_state["ex_label"] == 7
    kind = at.session_state["ex_kind"]
    assert at.session_state["ex_fix"] == "sliders"
    assert at.slider(key=f"ex_fix_{kind}_3").value == pytest.approx(0.5)
    assert not at.warning  # no "set through Session State and a default value" warning
