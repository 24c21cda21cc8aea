"""The latent explorer and conditional-sampling pages, headless (AppTest through the
app's router), on a tiny real run of every model family. The browser components' own
behaviour (scrubbing, clicks, drawing with the mouse) is covered by
tests/test_browser_explore.py; here their state is set the way the browser sets it.

The tests check what the page shows (texts, captions, metric values, images, chart data)
and that it changes when the input does: pictures are compared by their bytes (an
st.image's URL names a hash of its bytes; a download button's PNG is read back exactly),
and decoded pixels are checked against the model's own ``decode``."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from core import data as datalib
from core import explore as ex
from core import jobs
from core.runs import load_model
from tests.conftest import ROOT, TINY

FAMILIES = list(TINY)


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


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def labels(at, kind: str) -> list[str]:
    return [e.label for e in at.get(kind)]


def captions(at) -> list[str]:
    """Captions of every st.image on the page."""
    return [c for img in at.get("image") for c in img.captions]


def images(at) -> dict[str, str]:
    """Caption -> URL of every picture on the page; the URL names a hash of its bytes, so
    two equal URLs are two equal pictures."""
    return {i.caption: i.url for img in at.get("image") for i in img.proto.imgs}


def image_count(at) -> int:
    return sum(len(img.proto.imgs) for img in at.get("image"))


@pytest.fixture
def media(monkeypatch) -> dict:
    """The bytes of every media file the app hands Streamlit, by file id."""
    files: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        fid = original(self, path_or_data, mimetype, kind, filename)
        files[fid] = self._files_by_id[fid].content
        return fid

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return files


def download(at, media: dict, key: str) -> bytes:
    """The exact bytes a download button serves."""
    [button] = [b for b in at.get("download_button") if b.key == key]
    fid = button.proto.url.rsplit("/", 1)[-1].split(".")[0]
    return media[fid]


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)


def as_uint8(img: torch.Tensor) -> np.ndarray:
    """A decoded image (1, H, W) in [0, 1] as the 0..255 grey levels of a picture."""
    return np.asarray(img[0].detach().numpy() * 255, dtype=np.float64)


def chart_data(at, key: str) -> dict:
    [chart] = [c for c in at.get("plotly_chart") if c.proto.id.endswith(key)]
    return json.loads(chart.proto.spec)["data"]


def model_of(run):
    model, _ = load_model(run.checkpoint_path)
    return model.eval()


def digits_test():
    return datalib.load("digits", "test")


# ----------------------------------------------------------------------------- explorer
def unit_figures(model) -> tuple[list[float], int]:
    """What the collapse panel should show, computed here from the model's own verbs: the
    mean KL per unit (or, without a KL, the variance per unit) and how many units are
    active (their codes vary across images by more than 0.01; for categorical variables
    the summed variance of the category probabilities)."""
    with torch.no_grad():
        if not model.encodes:  # a latent table: its rows are the encoded set
            z = model.stored_codes().float()
            var = z.var(0)
            return var.tolist(), int((var > 0.01).sum())
        test = digits_test()
        q = model.encode(test.images, test.labels if model.conditional else None)
        if not model.continuous_latent:
            spread = q.logits.softmax(-1).var(0).sum(-1)
            return q.kl_per_dim().mean(0).tolist(), int((spread > 0.01).sum())
        var = q.point.float().var(0)
        values = q.kl_per_dim().mean(0) if model.has_kl else var
        return values.tolist(), int((var > 0.01).sum())


@pytest.mark.parametrize("family", FAMILIES)
def test_explorer_page(family, tiny_runs, runs_env):
    run = tiny_runs[family]
    model = model_of(run)
    at = open_page(run, "explore")
    assert texts(at.title) == ["Latent explorer"]
    assert not at.error
    header = at.caption[0].value
    assert "on digits" in header and model.latent_description in header
    assert ("conditional on 10 labels" in header) == (family == "cvae")
    tabs = [t.label for t in at.tabs]
    assert {"Decoded grid", "Interpolation"} <= set(tabs)
    assert ("Categories" in tabs) == (family == "gumbel-vae")
    assert ("Place an image" in tabs) == (family == "autodecoder")
    assert {"Horizontal axis", "Vertical axis"} <= set(labels(at, "selectbox"))
    downloads = labels(at, "download_button")
    assert {"Download grid PNG", "Download strip PNG", "Download animated GIF"} <= set(downloads)
    assert len(at.get("bidi_component")) >= 2  # the plane and the drawing pad
    # the plane's caption counts what it shows: the test images (or the table's rows,
    # at most 1,000 of them)
    n = len(model.stored_codes()) if not model.encodes else len(digits_test())
    what = "training items (the latent table)" if not model.encodes else "test images"
    assert any(c.value.startswith(f"{min(n, 1000)} of {n} {what}") for c in at.caption)

    # the collapse panel: one bar per unit with the KL (or variance) computed here, and
    # the active count the same rule gives
    values, active = unit_figures(model)
    [bars] = chart_data(at, "ex_diag_chart")
    assert len(bars["x"]) == len(values)
    np.testing.assert_allclose(bars["y"], values, rtol=2e-3, atol=1e-5)
    [metric] = [m for m in at.metric if m.label.startswith("Active ")]
    assert metric.value == f"{active} / {len(values)}"
    blue = sum(c == "#1f77b4" for c in bars["marker"]["color"])
    assert blue == active

    # the decoded grid, the interpolation strip and its two end images are drawn
    shown = images(at)
    assert any(c.endswith("(bottom)") for c in shown)  # the grid, its axes' ranges
    assert sum(bool(re.fullmatch(r"#\d+ · .+", c)) for c in shown) >= 2  # strip's ends
    assert "axes" in at.query_params
    assert ("label" in at.query_params) == (family == "cvae")
    assert len(list(run.cache_dir.glob("explore-space-*.npz"))) == 1  # for the next server
    # a rerun draws the same pictures
    at.run()
    assert not at.exception
    assert images(at) == shown


@pytest.mark.parametrize("family", ["fcconv-vae", "gumbel-vae"])
def test_explorer_axes_and_other_coordinates(family, tiny_runs, runs_env):
    at = open_page(tiny_runs[family], "explore")
    assert at.query_params["axes"] == "pc1,pc2"
    grid = [c for c in images(at) if c.endswith("(bottom)")]
    assert len(grid) == 1 and grid[0].startswith("PC1 from ") and "; PC2 from " in grid[0]
    at.segmented_control(key="ex_kind").set_value("dims").run()
    assert not at.exception
    axes = at.query_params["axes"]
    assert re.fullmatch(r"z\d+,z\d+", axes)
    a, b = axes.split(",")
    [grid] = [c for c in images(at) if c.endswith("(bottom)")]
    assert grid.startswith(f"{a} from ") and f"; {b} from " in grid  # the grid's new axes
    at_mean = images(at)[grid]
    assert "At the mean of the encoded points." in texts(at.caption)

    # the other coordinates from a test image: the grid is another slice
    at.radio(key="ex_fix").set_value("a test image").run()
    at.number_input(key="ex_fix_img").set_value(5).run()
    assert not at.exception
    assert at.query_params["fix"] == "img:5"
    fixed5 = images(at)[grid]
    assert fixed5 != at_mean
    assert f"#5 · {int(digits_test().labels[5])}" in images(at)  # its thumbnail
    at.number_input(key="ex_fix_img").set_value(6).run()
    assert at.query_params["fix"] == "img:6"
    assert images(at)[grid] not in (fixed5, at_mean)

    # by hand: one slider per coordinate off the plane, and moving one moves the grid
    at.radio(key="ex_fix").set_value("sliders").run()
    assert not at.exception
    assert "fix" not in at.query_params
    sliders = [s for s in at.slider if s.key and s.key.startswith("ex_fix_dims_")]
    dim = model_of(tiny_runs[family]).embed(digits_test().images[:1]).shape[1]
    assert len(sliders) == min(24, dim - 2)
    assert images(at)[grid] == at_mean  # the sliders start at the mean
    s = sliders[0]
    s.set_value(s.max).run()
    assert images(at)[grid] != at_mean


def test_explorer_plane_controls_wrap_instead_of_clipping(tiny_runs, runs_env):
    """The controls above the plane share one row that wraps: in a narrow window a
    control moves to the next line instead of being cut off (the pixels are checked at
    1024, 1280 and 1920 px in tests/test_browser_explore.py)."""
    at = open_page(tiny_runs["cvae"], "explore")

    def row_of(node):
        for child in getattr(node, "children", {}).values():
            if getattr(child, "key", None) == "ex_kind":
                return node
            found = row_of(child)
            if found is not None:
                return found
        return None

    row = row_of(at.main)
    flex = row.proto.flex_container
    assert flex.direction == flex.Direction.HORIZONTAL and flex.wrap
    keys = [getattr(c, "key", None) for c in row.children.values()]
    assert keys == ["ex_kind", "ex_dims_i", "ex_dims_j", "ex_range", "ex_label"]


def test_explorer_pin_from_the_link(tiny_runs, runs_env, media):
    run = tiny_runs["mlp-vae"]
    at = open_page(run, "explore", {"pin": "0.1,-0.2", "axes": "z1,z0"})
    assert "z1 = 0.100, z0 = -0.200" in captions(at)
    assert at.query_params["pin"] == "0.1,-0.2" and at.query_params["axes"] == "z1,z0"
    assert at.selectbox(key="ex_dims_i").value == 1
    assert at.selectbox(key="ex_dims_j").value == 0
    assert texts(at.code) == ["[-0.2,  0.1]"]  # its full latent vector: z0 = -0.2, z1 = 0.1
    # the pinned picture is the model's decoding of that z, pixel for pixel
    png = download(at, media, "ex_dl_pin")
    shown = pixels(png)[::32, ::32]  # 8x8 digits upscaled 32 times
    want = as_uint8(model_of(run).decode(torch.tensor([[-0.2, 0.1]]))[0])
    assert shown.shape == want.shape == (8, 8)
    assert np.abs(shown - want).max() <= 1
    # another pin is another picture
    other = open_page(run, "explore", {"pin": "1.5,0.7", "axes": "z1,z0"})
    assert "z1 = 1.500, z0 = 0.700" in captions(other)
    assert download(other, media, "ex_dl_pin") != png
    at.button(key="ex_unpin").click().run()
    assert "pin" not in at.query_params
    assert not any(re.fullmatch(r"z1 = .*, z0 = .*", c) for c in captions(at))
    assert "Download PNG" not in labels(at, "download_button")
    assert any("Click the plane to pin" in i for i in texts(at.info))


def test_explorer_forgets_the_pin_of_another_run(tiny_runs, runs_env):
    at = open_page(tiny_runs["mlp-vae"], "explore", {"pin": "0.1,-0.2"})
    assert "z0 = 0.100, z1 = -0.200" in captions(at)
    at.selectbox(key="run_id").set_value(tiny_runs["ae"].id).run()
    assert not at.exception
    assert "pin" not in at.query_params
    assert "**ae** · ae on digits" in at.caption[0].value  # the other run is shown
    assert not any(c.startswith("z0 = ") for c in captions(at))  # and no pinned picture
    assert any("Click the plane to pin" in i for i in texts(at.info))


@pytest.mark.parametrize(
    "query",
    [
        {"pin": "oops", "axes": "z9,z0"},  # malformed pin, axis out of range
        {"pin": "5000,0", "axes": "z0,z0"},  # pin beyond the largest coordinate, same axis
        {"pin": "nan,1", "axes": "pc1,z0"},  # not finite, mixed kinds
    ],
    ids=["malformed", "out-of-range", "mixed"],
)
def test_explorer_bad_link_values_are_ignored(query, tiny_runs, runs_env):
    """Values a link may not ask for are dropped: the page shows its defaults (the two
    dimensions z0 and z1, nothing pinned) and no error."""
    at = open_page(tiny_runs["mlp-vae"], "explore", query)
    assert not at.error
    assert at.query_params["axes"] == "z0,z1"
    assert (at.selectbox(key="ex_dims_i").value, at.selectbox(key="ex_dims_j").value) == (0, 1)
    [grid] = [c for c in images(at) if c.endswith("(bottom)")]
    assert grid.startswith("z0 from ") and "; z1 from " in grid
    assert "pin" not in at.query_params
    assert not any(c.startswith("z0 = ") for c in captions(at))
    assert any("Click the plane to pin" in i for i in texts(at.info))


def test_explorer_label_from_the_link(tiny_runs, runs_env):
    """A conditional run's ?label= picks the decoder's label (and so the pictures); one out
    of range is dropped for the default label 0."""
    run = tiny_runs["cvae"]
    at3 = open_page(run, "explore", {"label": "3"})
    assert at3.selectbox(key="ex_label").value == 3 and at3.query_params["label"] == "3"
    at0 = open_page(run, "explore", {"label": "12"})
    assert not at0.error
    assert at0.selectbox(key="ex_label").value == 0 and at0.query_params["label"] == "0"
    [grid] = [c for c in images(at0) if c.endswith("(bottom)")]
    assert images(at3)[grid] != images(at0)[grid]  # another label, another grid
    at0.selectbox(key="ex_label").set_value(3).run()
    assert images(at0)[grid] == images(at3)[grid]


@pytest.mark.parametrize("family", ["mlp-vae", "cvae", "gumbel-vae", "autodecoder"])
def test_explorer_drawing_and_upload(family, tiny_runs, runs_env, media):
    at = open_page(tiny_runs[family], "explore")
    assert not any(c.startswith("◆ ") for c in texts(at.caption))
    pic = np.zeros((64, 64, 1), np.uint8)
    pic[10:54, 28:36] = 255  # a "1", white on black like the pad draws for digits
    at.session_state["explore_pad"] = {"image": ex.data_url(ex.png_bytes(pic))}
    at.run()
    assert not at.exception
    drawn = [t for t in texts(at.caption) if t.startswith("◆ drawing on the plane at (")]
    assert len(drawn) == 1
    assert drawn[0].endswith("after latent optimisation") == (family == "autodecoder")
    assert {"drawing, as the model sees it", "its reconstruction"} <= set(images(at))
    drawing_rec = download(at, media, "ex_dl_drawn")

    # an upload of another picture (a bar across) is placed elsewhere and drawn otherwise
    bar = np.zeros((64, 64, 1), np.uint8)
    bar[28:36, 10:54] = 255
    upload = at.get("file_uploader")[0]
    upload.upload("bar.png", ex.png_bytes(255 - bar), "image/png")  # black on white
    at.run()
    assert not at.exception
    placed = [t for t in texts(at.caption) if t.startswith("◆ upload on the plane at (")]
    assert len(placed) == 1
    assert "Download the upload's reconstruction" in labels(at, "download_button")
    if family != "gumbel-vae":  # a 2-epoch model's hard one-hot codes may coincide
        assert download(at, media, "ex_dl_upload") != drawing_rec
    assert placed[0].split("(")[1] != drawn[0].split("(")[1]  # another place on the plane
    assert captions(at).count("its reconstruction") == 2
    if family == "autodecoder":  # placed by optimisation: its loss per step is drawn
        assert len(at.get("arrow_line_chart")) + len(at.get("vega_lite_chart")) >= 3


def test_explorer_upload_that_is_not_an_image(tiny_runs, runs_env):
    at = open_page(tiny_runs["mlp-vae"], "explore")
    at.get("file_uploader")[0].upload("notes.png", b"not a picture", "image/png")
    at.run()
    assert not at.exception
    assert texts(at.error) == ["That file is not a picture Pillow can read: upload a PNG or JPEG."]
    assert not any(t.startswith("◆ upload") for t in texts(at.caption))
    assert "its reconstruction" not in captions(at)


def test_explorer_gumbel_categories_and_temperature(tiny_runs, runs_env, media):
    run = tiny_runs["gumbel-vae"]
    model = model_of(run)
    at = open_page(run, "explore")
    nv = TINY["gumbel-vae"][1]["latent_dim"]
    k = TINY["gumbel-vae"][1]["categories"]
    # the grid starts at the encoder's choice for test image 0
    test = digits_test()
    encoder_choice = model.encode(test.images[:1]).logits[0].argmax(-1).tolist()
    assert at.session_state["ex_choice"] == encoder_choice
    assert f"**{nv} variables × {k} categories**" in texts(at.markdown)[-1] or any(
        f"**{nv} variables × {k} categories**" in t for t in texts(at.markdown)
    )
    decoded = images(at)["decoded from the chosen categories"]
    first = download(at, media, "ex_dl_cat")

    def decoding_of(choice):  # the model's own decoding of a one-hot choice, 0..255
        z = torch.nn.functional.one_hot(torch.tensor(choice), k).float().flatten()[None]
        return as_uint8(model.decode(z)[0])

    assert np.abs(pixels(first)[::32, ::32] - decoding_of(encoder_choice)).max() <= 1
    flipped = [(c + 1) % k for c in encoder_choice]  # what clicking the grid's cells does
    at.session_state["ex_choice"] = flipped
    at.run()
    assert images(at)["decoded from the chosen categories"] != decoded
    assert np.abs(pixels(download(at, media, "ex_dl_cat"))[::32, ::32]
                  - decoding_of(flipped)).max() <= 1  # fmt: skip

    # relaxed samples at a temperature: drawn, and another temperature draws others
    at.toggle(key="ex_cat_sample").set_value(True).run()
    assert not at.exception
    tau = at.slider(key="ex_cat_tau").value
    assert tau == pytest.approx(round(float(model.tau), 2))
    relaxed = [c for c in images(at) if c.startswith("8 relaxed samples at τ = ")]
    assert relaxed == [f"8 relaxed samples at τ = {tau:.2f}: low τ gives nearly one-hot codes, "
                       "high τ blends categories."]  # fmt: skip
    samples = download(at, media, "ex_dl_relaxed")
    at.slider(key="ex_cat_tau").set_value(4.0).run()
    assert any(c.startswith("8 relaxed samples at τ = 4.00") for c in images(at))
    assert download(at, media, "ex_dl_relaxed") != samples

    # another image: its own encoder choice; the reset button returns to it
    at.number_input(key="ex_cat_img").set_value(3).run()
    assert not at.exception
    choice3 = model.encode(test.images[3:4]).logits[0].argmax(-1).tolist()
    assert at.session_state["ex_choice"] == choice3
    at.session_state["ex_choice"] = [(c + 1) % k for c in choice3]
    at.run()
    at.button(key="ex_cat_reset").click().run()
    assert at.session_state["ex_choice"] == choice3
    assert np.abs(pixels(download(at, media, "ex_dl_cat"))[::32, ::32]
                  - decoding_of(choice3)).max() <= 1  # fmt: skip


def test_explorer_autodecoder_places_by_optimisation(tiny_runs, runs_env):
    at = open_page(tiny_runs["autodecoder"], "explore")
    shown = images(at)
    assert "target" in shown and "decoded at the found z" in shown
    assert len(at.get("arrow_line_chart")) + len(at.get("vega_lite_chart")) >= 1
    at.slider(key="ex_place_steps").set_value(20).run()
    assert not at.exception
    # fewer steps of the optimisation end elsewhere: another decoding of the same target
    assert images(at)["target"] == shown["target"]
    assert images(at)["decoded at the found z"] != shown["decoded at the found z"]


def test_explorer_interpolation_between_pins(tiny_runs, runs_env, media):
    run = tiny_runs["mlp-vae"]
    at = open_page(run, "explore")
    between_images = download(at, media, "ex_dl_strip")
    at.radio(key="ex_int_src").set_value("the last two pins").run()
    assert any("Pin two points" in i for i in texts(at.info))
    assert "Download strip PNG" not in labels(at, "download_button")
    z0, z1 = [0.3, 0.1], [-0.5, 0.4]
    at.session_state["ex_pins"] = [{"z": z0}, {"z": z1}]  # two clicks
    at.run()
    assert not any("Pin two points" in i for i in texts(at.info))
    linear = download(at, media, "ex_dl_strip")
    assert linear != between_images
    # the strip runs from the first pin's decoding to the second's: 10 steps of 8x8
    # images with 2-pixel gaps, upscaled 7 times (56 // 8)
    strip = pixels(linear)[::7, ::7]
    assert strip.shape == (8, 10 * 10 - 2)
    model = model_of(run)
    ends = model.decode(torch.tensor([z0, z1]))
    assert np.abs(strip[:, :8] - as_uint8(ends[0])).max() <= 1
    assert np.abs(strip[:, -8:] - as_uint8(ends[1])).max() <= 1
    at.radio(key="ex_int_method").set_value("spherical").run()
    assert not at.exception
    spherical = download(at, media, "ex_dl_strip")
    assert spherical != linear  # another path between the same two ends
    sp = pixels(spherical)[::7, ::7]
    assert np.abs(sp[:, :8] - strip[:, :8]).max() <= 1
    assert np.abs(sp[:, -8:] - strip[:, -8:]).max() <= 1
    assert "Download animated GIF" in labels(at, "download_button")


# ----------------------------------------------------------------------------- conditional
def test_conditional_page_on_a_conditional_run(tiny_runs, runs_env, media):
    run = tiny_runs["cvae"]
    at = open_page(run, "conditional", {"class": "3"})
    assert texts(at.title) == ["Conditional sampling"]
    assert [t.label for t in at.tabs] == ["Samples", "Class × z grid", "Class swap",
                                          "Sample accuracy"]  # fmt: skip
    assert at.selectbox(key="cd_class").value == 3
    assert at.query_params["class"] == "3"
    assert labels(at, "download_button").count("Download PNG") == 3
    model = model_of(run)
    samples = [c for c in images(at) if " draws of z from the " in c]
    assert samples == [f"16 draws of z from the {model.prior_description}, decoded as “3”"]
    three = download(at, media, "cd_dl_samples")

    # another class: other samples, and the link follows
    at.selectbox(key="cd_class").set_value(5).run()
    assert at.query_params["class"] == "5"
    assert any(c.endswith("decoded as “5”") for c in images(at))
    five = download(at, media, "cd_dl_samples")
    assert five != three
    # a new draw: other samples of the same class
    at.button(key="cd_seed_btn").click().run()
    assert at.session_state["cd_seed"] == 1
    assert download(at, media, "cd_dl_samples") not in (three, five)

    # the class x z grid: one row per class, as many columns as asked
    grid = download(at, media, "cd_dl_grid")
    at.slider(key="cd_nz").set_value(4).run()
    narrow = download(at, media, "cd_dl_grid")
    w8, w4 = Image.open(io.BytesIO(grid)).width, Image.open(io.BytesIO(narrow)).width
    assert w4 < w8
    assert Image.open(io.BytesIO(narrow)).height == Image.open(io.BytesIO(grid)).height

    # the class swap: the chosen test image, its own class marked, one image per class
    test = digits_test()
    at.number_input(key="cd_swap_img").set_value(7).run()
    assert not at.exception
    own = int(test.labels[7])
    assert f"#7 · {own}" in images(at)
    swap = [c for img in at.get("image") for c in img.captions if re.fullmatch(r"(▸ )?\d", c)]
    assert len(swap) == 10 and swap[own] == f"▸ {own}"
    assert sum(c.startswith("▸ ") for c in swap) == 1
    ev = run.evaluation()
    if ev is None or "conditional" not in ev:
        assert "Compute it" in labels(at, "button")
    else:
        m = [m for m in at.metric if m.label == "Samples as asked"][0]  # shipped judge
        assert m.value == f"{ev['conditional']['sample_accuracy']:.1%}"


def test_conditional_class_out_of_range_in_the_link(tiny_runs, runs_env):
    at = open_page(tiny_runs["cvae"], "conditional", {"class": "10"})
    assert not at.error
    assert at.selectbox(key="cd_class").value == 0 and at.query_params["class"] == "0"
    assert any(c.endswith("decoded as “0”") for c in images(at))


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "cvae"])
def test_conditional_page_explains_and_links_to_training(family, tiny_runs, runs_env):
    run = tiny_runs[family]
    at = open_page(run, "conditional")
    assert texts(at.info) == [
        f"**{run.name.replace('-', chr(92) + '-')}** is not conditional: it was trained "
        "without labels, so it cannot be asked for a class."
    ]
    links = at.get("page_link")
    assert links, "no link to the train page"
    assert links[0].proto.label == "Train a conditional VAE (cvae)"
    assert not at.tabs
    assert not at.get("image")


@pytest.mark.slow
def test_conditional_sample_accuracy_is_computed_on_demand(tiny_runs, runs_env):
    at = open_page(tiny_runs["cvae"], "conditional")
    if tiny_runs["cvae"].evaluation() is None:
        at.button(key="cd_eval").click().run()  # starts the background evaluation
        assert not at.exception and not at.error
        assert jobs.wait_evaluation(tiny_runs["cvae"], timeout=1800)["state"] == "done"
        at.run()  # what the progress fragment does when the job ends
    assert not at.exception
    cond = tiny_runs["cvae"].evaluation()["conditional"]
    shown = [(m.label, m.value) for m in at.metric]
    assert ("Samples as asked", f"{cond['sample_accuracy']:.1%}") == shown[0]
    assert ("Real test images", f"{cond['judge_test_accuracy']:.1%}") == shown[1]
    sharp = cond["sharp"]
    assert ("Samples as asked", f"{sharp['sample_accuracy']:.1%}") in shown[3:]
    assert ("Read as the new label · shipped judge", f"{cond['swap']['accuracy']:.1%}") in shown
    assert "Chance level: 10% (a model that ignored the label)." in texts(at.caption)
