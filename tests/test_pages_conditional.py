"""The Conditional sampling page headless (streamlit.testing.v1.AppTest over app/main.py, so
the sidebar run picker is real): a non-conditional run is no dead end (one click opens a
pretrained conditional model), the digits accuracy chart names every class, and the judge's
blur is told in pixels of the run's own images."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from app.common import PRETRAINED_DIR
from app.conditional_figures import judge_text
from core.runs import Run, list_runs, load_model
from tests.test_pages_app import open_page


def open_conditional(run_id: str, query: dict | None = None) -> AppTest:
    return open_page("conditional", query, run_id=run_id)


def plain(s: str) -> str:
    """Markdown-escaped text as a reader sees it (escapes and bold marks removed)."""
    return re.sub(r"\\(.)", r"\1", s).replace("**", "")


@pytest.fixture(scope="module")
def zoo_conditional() -> dict[str, Run]:
    """The pretrained runs whose model, loaded from its checkpoint, is conditional."""
    found = {}
    for run in list_runs(PRETRAINED_DIR):
        if run.has_checkpoint() and load_model(run.checkpoint_path)[0].conditional:
            found[run.id] = run
    assert len(found) >= 2, f"expected the conditional models of {PRETRAINED_DIR}"
    return found


def digits_one(zoo: dict[str, Run]) -> Run:
    """The digits CVAE with a prior per label (digits-cvae-l2)."""
    return next(
        r
        for r in zoo.values()
        if r.config()["train"]["dataset"] == "digits"
        and r.config()["model"]["config"]["class_prior"]
    )


def test_a_plain_run_opens_a_pretrained_conditional_model_in_one_click(
    runs_env, tiny_runs, zoo_conditional
):
    at = open_conditional(tiny_runs["mlp-vae"].id)
    assert "mlp-vae is not conditional" in plain("\n".join(i.value for i in at.info))
    offered = {
        b.key.removeprefix("cd_open."): plain(b.label)
        for b in at.button
        if str(b.key).startswith("cd_open.")
    }
    assert set(offered) == set(zoo_conditional)  # every conditional model of the zoo
    for run_id, label in offered.items():
        run = zoo_conditional[run_id]
        train = run.config()["train"]
        assert label == f"{run.name} ({train['model']} on {train['dataset']})"
    links = [link.proto.label for link in at.get("page_link")]
    assert "Train a conditional VAE (cvae)" in links  # training one is still offered

    target = digits_one(zoo_conditional)
    next(b for b in at.button if b.key == f"cd_open.{target.id}").click().run()
    assert not at.exception, at.exception
    assert at.session_state["run_id"] == target.id
    assert at.selectbox(key="run_id").value == target.id  # the sidebar follows
    assert at.query_params["run"] == target.id  # and the link
    assert not any("is not conditional" in i.value for i in at.info)
    assert at.title[0].value == "Conditional sampling"
    assert any(plain(c.value) == f"{target.name} · conditional on 10 labels" for c in at.caption)
    assert at.selectbox(key="cd_class").options == [str(k) for k in range(10)]


def test_digits_accuracy_chart_names_every_class(runs_env, zoo_conditional):
    run = digits_one(zoo_conditional)
    at = open_conditional(run.id)
    accuracy, variety = at.get("plotly_chart")[:2]
    digits = [str(k) for k in range(10)]
    for chart in (accuracy, variety):
        layout = json.loads(chart.proto.spec)["layout"]
        assert layout["xaxis"]["type"] == "category"
        assert layout["xaxis"]["tickvals"] == digits and layout["xaxis"]["ticktext"] == digits
    bars = json.loads(accuracy.proto.spec)["data"]
    # samples and real test images, each read by the shipped and the sharp judge
    assert [b["name"] for b in bars] == [
        "samples · shipped judge", "samples · sharp judge",
        "real · shipped judge", "real · sharp judge",
    ]  # fmt: skip
    assert all(b["x"] == digits for b in bars)
    cond = run.evaluation()["conditional"]
    assert json.loads(variety.proto.spec)["data"][0]["y"] == cond["variety"]["per_class"]


def test_judge_blur_is_told_in_pixels_of_the_runs_images(runs_env, zoo_conditional):
    run = digits_one(zoo_conditional)
    stored = run.evaluation()["conditional"]["judge"]
    assert "1.5 px of 28" in stored  # the recipe's words, for 28-pixel images
    at = open_conditional(run.id)
    judge = next(m for m in at.metric if m.label == "Real test images")
    shown = plain(judge.help)
    assert "sigma up to 0.43 px of these 8 × 8 images" in shown
    assert "28" not in shown


@pytest.mark.parametrize(
    "shape, words",
    [
        ((1, 28, 28), "sigma up to 1.5 px of these 28 × 28 images"),
        ((3, 32, 32), "sigma up to 1.7 px of these 32 × 32 images"),
        ((1, 8, 8), "sigma up to 0.43 px of these 8 × 8 images"),
    ],
)
def test_judge_text_scales_the_blur(shape, words):
    text = "CNN, about half of them blurred (sigma up to 1.5 px of 28)"
    assert judge_text(text, shape) == f"CNN, about half of them blurred ({words})"
    assert judge_text("a judge of another recipe", shape) == "a judge of another recipe"


def swap_urls(at) -> list[str]:
    """The class swap row's pictures (captions are the class names, ▸ on its own)."""
    return [
        i.url
        for img in at.get("image")
        for i in img.proto.imgs
        if re.fullmatch(r"(▸ )?\d", i.caption)
    ]


def test_the_swap_and_variety_figures_and_the_keep_the_code_toggle(runs_env, zoo_conditional):
    """The accuracy tab shows the evaluation's class swap and variety; on the digits CVAE,
    whose prior is per label, keeping the code as it is draws another row than moving it
    with the label's Gaussian."""
    run = digits_one(zoo_conditional)
    cond = run.evaluation()["conditional"]
    at = open_conditional(run.id)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Read as the new label · shipped judge"] == f"{cond['swap']['accuracy']:.1%}"
    sharp = cond["sharp"]["swap"]["accuracy"]
    assert shown["Read as the new label · sharp judge"] == f"{sharp:.1%}"
    assert shown["Variety, mean over labels"] == f"{cond['variety']['ratio']:.0%}"
    moved = swap_urls(at)
    assert len(moved) == 10
    at.toggle(key="cd_swap_keep").set_value(True).run()
    assert not at.exception
    kept = swap_urls(at)
    assert len(kept) == 10 and kept[0] == moved[0]  # its own label: the same code
    assert kept[1:] != moved[1:]


def sample_urls(at) -> list[str]:
    """The Samples tab's picture (its caption names the prior it drew from)."""
    return [i.url for img in at.get("image") for i in img.proto.imgs if "draws of z" in i.caption]


def sample_caption(at) -> str:
    return next(
        i.caption for img in at.get("image") for i in img.proto.imgs if "draws of z" in i.caption
    )


def test_the_temperature_slider_draws_nearer_the_centre_and_is_in_the_link(
    runs_env, zoo_conditional
):
    run = digits_one(zoo_conditional)
    at = open_conditional(run.id)
    assert at.slider(key="cd_temp").value == 1.0
    assert "temperature" not in at.query_params
    at1 = sample_urls(at)
    assert "at temperature" not in sample_caption(at)
    at.slider(key="cd_temp").set_value(0.5).run()
    assert not at.exception
    assert at.query_params["temperature"] == "0.5"
    assert sample_urls(at) != at1
    assert "label's learned prior at temperature 0.5" in sample_caption(at)
    grid = next(
        i.caption for img in at.get("image") for i in img.proto.imgs if "one z" in i.caption
    )
    assert grid.endswith("Drawn at temperature 0.5.")
    assert not any("Measured at temperature" in c.value for c in at.caption)  # not at 0.5
    at.slider(key="cd_temp").set_value(0.9).run()
    row = next(r for r in run.evaluation()["conditional"]["temperature"] if r["temperature"] == 0.9)
    label = at.selectbox(key="cd_class").value
    said = next(c.value for c in at.caption if "Measured at temperature" in c.value)
    assert f"the sharp judge {row['per_class']['sharp'][label]:.0%}" in said
    assert f"variety {row['variety_per_class'][label]:.0%}" in said
    at.slider(key="cd_temp").set_value(0.5).run()
    # a shared link opens at its temperature
    again = open_conditional(run.id, {"temperature": "0.5"})
    assert again.slider(key="cd_temp").value == 0.5
    assert sample_urls(again) == sample_urls(at)


@pytest.mark.parametrize("hostile", ["nan", "5", "-1", "0x1", "1e400", "½", "0.5" * 100])
def test_a_hostile_temperature_in_the_link_is_ignored(runs_env, zoo_conditional, hostile):
    at = open_conditional(digits_one(zoo_conditional).id, {"temperature": hostile})
    assert at.slider(key="cd_temp").value == 1.0
    assert "at temperature" not in sample_caption(at)


def test_the_temperature_tradeoff_shows_the_evaluations_figures(runs_env, zoo_conditional):
    """The Sample accuracy tab's temperature chart and table hold the evaluation's rows:
    both judges' accuracy and the variety at each temperature, t = 1 first."""
    run = digits_one(zoo_conditional)
    rows = run.evaluation()["conditional"]["temperature"]
    assert [r["temperature"] for r in rows] == [1.0, 0.9, 0.8, 0.7]
    at = open_conditional(run.id)
    chart = json.loads(at.get("plotly_chart")[2].proto.spec)
    lines = {d["name"]: d["y"] for d in chart["data"]}
    assert lines["samples as asked · sharp judge"] == [r["accuracy"]["sharp"] for r in rows]
    assert lines["variety, lowest label"] == [r["variety_lowest"] for r in rows]
    table = next(d.value for d in at.dataframe if "temperature" in d.value)
    assert list(table["temperature"]) == ["1", "0.9", "0.8", "0.7"]
    assert list(table["shipped judge"]) == [f"{r['accuracy']['shipped']:.1%}" for r in rows]


def test_drawing_z_from_each_labels_own_codes_is_a_choice_in_the_link(runs_env, zoo_conditional):
    """The Samples tab draws z from the prior or from each label's own codes (the mixtures
    shipped in the entry's cache); the choice is in the link, the caption says where z came
    from and what the evaluation measured for the label, and the Sample accuracy tab sets
    both samplers' figures side by side."""
    run = digits_one(zoo_conditional)
    own = run.evaluation()["conditional"]["own_codes"]
    at = open_conditional(run.id)
    assert at.radio(key="cd_draw").value == "prior" and "draw" not in at.query_params
    prior = sample_urls(at)
    at.radio(key="cd_draw").set_value("codes").run()
    assert not at.exception
    assert at.query_params["draw"] == "codes"
    assert sample_urls(at) != prior
    label = at.selectbox(key="cd_class").value
    k = own["components"][label]
    assert f"from the codes of this label's training images ({k} Gaussian" in sample_caption(at)
    said = next(c.value for c in at.caption if "this label's own codes" in c.value)
    assert f"the sharp judge {own['sharp']['per_class'][label]:.0%}" in said
    table = next(d.value for d in at.dataframe if "z drawn from" in d.value)
    rows = own["temperature"]  # t = 1 first: the block's own figures
    assert list(table["z drawn from"]) == ["Prior"] + ["Own codes"] * len(rows)
    assert list(table["temperature"]) == ["1"] + [f"{r['temperature']:g}" for r in rows]
    assert table["sharp judge"][1] == f"{own['sharp']['sample_accuracy']:.1%}"
    assert table["variety (lowest label)"][1] == (
        f"{own['variety']['ratio']:.0%} ({own['variety']['lowest']:.0%})"
    )
    assert list(table["shipped judge"][2:]) == [f"{r['accuracy']['shipped']:.1%}" for r in rows[1:]]
    # at a measured temperature the caption says what was measured there
    at.slider(key="cd_temp").set_value(0.8).run()
    row = next(r for r in rows if r["temperature"] == 0.8)
    said = next(c.value for c in at.caption if "own codes at temperature 0.8" in c.value)
    assert f"the sharp judge {row['per_class']['sharp'][label]:.0%}" in said
    assert "at temperature 0.8" in sample_caption(at)
    at.slider(key="cd_temp").set_value(1.0).run()
    # the swap's code is carried among the labels' own codes (unless kept as it is)
    moved = swap_urls(at)
    assert any("moved to the same place among each label's own codes" in c.value
               for c in at.caption)  # fmt: skip
    said = next(c.value for c in at.caption if c.value.startswith("Class swap with each code"))
    assert f"reads the new label {own['swap']['sharp']['accuracy']:.1%}" in said
    at.toggle(key="cd_swap_keep").set_value(True).run()
    assert swap_urls(at)[1:] != moved[1:]
    at.toggle(key="cd_swap_keep").set_value(False).run()
    # a shared link opens on the same draws; a hostile value is ignored
    again = open_conditional(run.id, {"draw": "codes"})
    assert again.radio(key="cd_draw").value == "codes"
    assert sample_urls(again) == sample_urls(at)
    for hostile in ("../../etc/passwd", "CODES", "codes" * 300, ""):
        bad = open_conditional(run.id, {"draw": hostile})
        assert bad.radio(key="cd_draw").value == "prior"


def test_a_users_cvae_fits_its_own_codes_once_into_its_cache(tmp_path, monkeypatch, tiny_runs):
    """A run of the user's own has no mixtures shipped: the first draw fits them to its
    training split and keeps them in the run's cache; a damaged cache file is fitted again."""
    import shutil

    from core import label_density

    root = tmp_path / "runs"
    src = tiny_runs["cvae"].path
    dst = root / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".*lock"))
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(root))
    cached = dst / "cache" / label_density.FILE_NAME
    assert not cached.exists()
    at = open_conditional(dst.name, {"draw": "codes"})
    assert at.radio(key="cd_draw").value == "codes"
    assert "from the codes of this label's training images" in sample_caption(at)
    assert cached.is_file()
    model = load_model(dst / "checkpoint.pt")[0]
    assert label_density.load(cached, model).num_classes == 10
    # a conditional model whose latent is categorical cannot: no choice, and the link's
    # ?draw=codes is dropped
    from core.train import TrainConfig, train

    cfg = TrainConfig(dataset="digits", model="gumbel-vae", epochs=1, batch_size=128, val_size=200)
    args = {"latent_dim": 4, "categories": 5, "hidden_dim": 32, "conditional": True}
    gumbel = train(cfg, args, name="gumbel", root=root)
    assert load_model(gumbel.checkpoint_path)[0].conditional
    at = open_conditional(gumbel.id, {"draw": "codes"})
    assert at.title[0].value == "Conditional sampling"
    assert not [r for r in at.radio if r.key == "cd_draw"]
    assert "draw" not in at.query_params
    assert "from the codes" not in sample_caption(at)
