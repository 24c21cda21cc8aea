"""The second judge, class swap and sample variety on the shipped digits CVAE, and on copies
of it whose decoder is cut off from z or from the label: a decoder that cannot see the
label cannot pass a class swap; one that cannot see z draws one image a label."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core import data as datalib
from core.conditional_eval import (
    class_swap_accuracy,
    get_sharp_judge,
    sample_variety,
    sharp_judge_file_name,
    temperature_tradeoff,
)
from core.runs import load_model

ROOT = Path(__file__).resolve().parent.parent
CVAE = ROOT / "pretrained" / "digits-cvae-l2" / "checkpoint.pt"


@pytest.fixture(scope="module")
def digits():
    return datalib.load("digits", "train"), datalib.load("digits", "test")


@pytest.fixture(scope="module")
def sharp(digits, tmp_path_factory):
    cache = tmp_path_factory.mktemp("judges")
    judge = get_sharp_judge(digits[0], cache)
    assert (cache / sharp_judge_file_name(digits[0])).exists()
    return judge, cache


def cut(part: str):
    """The shipped digits CVAE with the decoder's first-layer weights from z ("z") or from
    the one-hot label ("label") set to zero: that input no longer reaches the picture."""
    model, _ = load_model(CVAE)
    w = model.decoder.net[0].weight  # (hidden, latent_dim + num_classes)
    with torch.no_grad():
        if part == "z":
            w[:, : model.latent_dim] = 0
        else:
            w[:, model.latent_dim :] = 0
    return model.eval()


def test_the_sharp_judge_reads_real_digits_and_is_cached(digits, sharp):
    train, test = digits
    judge, cache = sharp
    acc = float((judge.predict(test.images) == test.labels).float().mean())
    assert acc >= 0.9, acc
    again = get_sharp_judge(train, cache)  # loaded from the cache, not trained again
    assert torch.equal(again.predict(test.images), judge.predict(test.images))


def test_a_decoder_that_cannot_see_the_label_fails_the_class_swap(digits, sharp):
    test, judge = digits[1], sharp[0]
    blind = class_swap_accuracy(cut("label"), test, judge)
    seeing = class_swap_accuracy(cut("z"), test, judge)
    assert len(blind["per_class"]) == 10
    assert blind["accuracy"] < 0.3 < 0.8 < seeing["accuracy"], (blind, seeing)
    assert blind["kept_old"] > blind["accuracy"]  # the code still draws the old class


def test_samples_that_ignore_z_have_no_variety(digits):
    test = digits[1]
    none = sample_variety(cut("z"), test)
    full = sample_variety(load_model(CVAE)[0].eval(), test)
    assert none["ratio"] < 0.01, none
    assert len(full["per_class"]) == 10 and full["ratio"] > 10 * none["ratio"], full


def test_swap_and_variety_refuse_a_model_without_labels(digits, sharp):
    model, _ = load_model(ROOT / "pretrained" / "digits-mlp-vae-2d" / "checkpoint.pt")
    for measure in (lambda: class_swap_accuracy(model, digits[1], sharp[0]),
                    lambda: sample_variety(model, digits[1])):  # fmt: skip
        with pytest.raises(ValueError, match="not conditional: it was trained without labels"):
            measure()


def test_the_shipped_digits_cvae_of_varied_samples_meets_the_targets(digits, sharp):
    """digits-cvae-l8 (prior N(0, I), beta 0.25): every class's samples vary at least 0.6
    as much as real digits of it, the sharp judge reads samples and swaps as asked, and
    the card holds the figures measured here again."""
    import json

    from core.metrics import conditional_sample_accuracy

    entry = ROOT / "pretrained" / "digits-cvae-l8"
    model, _ = load_model(entry / "checkpoint.pt")
    model.eval()
    _, test = digits
    judge, _ = sharp
    variety = sample_variety(model, test)
    assert variety["lowest"] >= 0.6 and len(variety["per_class"]) == 10, variety
    swap = class_swap_accuracy(model, test, judge)
    assert swap["accuracy"] >= 0.85, swap
    real = float((judge.predict(test.images) == test.labels).float().mean())
    acc = conditional_sample_accuracy(model, judge, model.num_classes, 1000)["accuracy"]
    assert acc >= 0.90 and acc >= 0.95 * real, (acc, real)
    card = json.loads((entry / "card.json").read_text())["metrics"]["conditional"]
    assert card["variety"]["ratio"] == pytest.approx(variety["ratio"], abs=0.005)
    assert card["sharp"]["swap"]["accuracy"] == pytest.approx(swap["accuracy"], abs=0.01)


def test_temperature_scales_the_spread_and_zero_draws_the_centre(digits):
    """t scales each draw's distance from its prior's centre: under N(0, I) the draws' sd is
    t; under a prior per label, t = 0 is that label's mean; lower t, less variety."""
    l8 = load_model(ROOT / "pretrained" / "digits-cvae-l8" / "checkpoint.pt")[0].eval()
    g = torch.Generator().manual_seed(0)
    assert float(l8.prior_z(20000, g, 3, temperature=0.5).std()) == pytest.approx(0.5, abs=0.01)
    per_label = load_model(CVAE)[0].eval()  # digits-cvae-l2: a learned prior per label
    centre = per_label.prior_z(4, None, torch.tensor(7), temperature=0.0)
    mean, _ = per_label._prior(torch.tensor([7]))
    assert torch.allclose(centre, mean.expand(4, -1))
    test = digits[1]
    v = {t: sample_variety(l8, test, 50, temperature=t)["ratio"] for t in (0.0, 0.5, 1.0)}
    assert v[0.0] < 1e-6 < v[0.5] < v[1.0], v


@pytest.mark.parametrize(
    "bad, words",
    [(-0.1, "between 0 and 2"), (float("nan"), "between 0 and 2"), (2.5, "between 0 and 2"),
     ("warm", "must be a number"), (None, "must be a number")],
)  # fmt: skip
def test_a_bad_temperature_is_refused_in_one_sentence(bad, words):
    model = load_model(CVAE)[0]
    with pytest.raises(ValueError, match=words):
        model.sample(2, torch.tensor(1), temperature=bad)


def test_a_categorical_latent_samples_only_at_temperature_one(digits, sharp):
    from core.models import build_model

    model = build_model("gumbel-vae", image_shape=(1, 8, 8), num_classes=10, conditional=True)
    model.eval()
    assert model.sample(3, torch.tensor(2)).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="categorical, so there is no spread to scale"):
        model.sample(3, torch.tensor(2), temperature=0.8)
    assert temperature_tradeoff(model, digits[1], {"sharp": sharp[0]}) is None


def test_the_tradeoff_at_one_is_the_main_figures_and_lower_is_read_better(digits, sharp):
    """On the shipped digits CVAE: the row at t = 1 repeats conditional_sample_accuracy and
    sample_variety exactly; at 0.7 the sharp judge reads more samples as asked, and they
    vary less."""
    from core.metrics import conditional_sample_accuracy

    model = load_model(ROOT / "pretrained" / "digits-cvae-l8" / "checkpoint.pt")[0].eval()
    test, judge = digits[1], sharp[0]
    rows = temperature_tradeoff(model, test, {"sharp": judge}, (1.0, 0.7), per_class=300)
    assert [r["temperature"] for r in rows] == [1.0, 0.7]
    main = conditional_sample_accuracy(model, judge, 10, per_class=300)
    assert rows[0]["accuracy"]["sharp"] == round(main["accuracy"], 4)
    assert rows[0]["variety"] == sample_variety(model, test)["ratio"]
    assert rows[1]["accuracy"]["sharp"] > rows[0]["accuracy"]["sharp"]
    assert rows[1]["variety"] < rows[0]["variety"] and len(rows[1]["variety_per_class"]) == 10


def test_the_tradeoff_takes_the_figures_at_one_it_is_given(digits, sharp):
    """core.evaluate hands over its own t = 1 figures instead of drawing them again."""
    model = load_model(ROOT / "pretrained" / "digits-cvae-l8" / "checkpoint.pt")[0].eval()
    given = {
        "sharp": {"sample_accuracy": 0.5, "per_class": [0.5] * 10},
        "variety": {"ratio": 0.25, "lowest": 0.125, "per_class": [0.25] * 10},
    }
    (row,) = temperature_tradeoff(model, digits[1], {"sharp": sharp[0]}, (1.0,), at_one=given)
    assert row["accuracy"] == {"sharp": 0.5} and row["per_class"] == {"sharp": [0.5] * 10}
    assert (row["variety"], row["variety_lowest"]) == (0.25, 0.125)
