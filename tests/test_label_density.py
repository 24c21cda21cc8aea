"""Each label's own codes (``core.label_density``) on the shipped digits CVAE: the mixtures
sit where each label's training codes are, draws are reproducible and scale with the
temperature, the cache survives a round trip and a hostile or damaged file is fitted
again, never trusted; and samples drawn this way are read as their label."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from core import data as datalib
from core import label_density as ld
from core.conditional_eval import sample_variety
from core.metrics import conditional_sample_accuracy, get_judge
from core.runs import Run, load_model

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "pretrained" / "digits-cvae-l8"


@pytest.fixture(scope="module")
def digits():
    return datalib.load("digits", "train"), datalib.load("digits", "test")


@pytest.fixture(scope="module")
def model():
    return load_model(ENTRY / "checkpoint.pt")[0].eval()


@pytest.fixture(scope="module")
def density(model, digits):
    train = digits[0]
    return ld.fit(model, train.images, train.labels)


def test_each_label_mixture_sits_on_its_own_codes(model, digits, density):
    train = digits[0]
    codes = model._codes(train.images, train.labels)
    assert density.num_classes == 10 and density.latent_dim == model.latent_dim
    assert all(k in ld.K_CHOICES for k in density.components)
    means = []
    for c in range(10):
        w, m = density.weights[c], density.means[c]
        assert float(w.sum()) == pytest.approx(1, abs=1e-5)
        mean = (w[:, None] * m).sum(0)  # the mixture's mean: that of the label's codes
        assert torch.allclose(mean, codes[train.labels == c].mean(0), atol=0.02), c
        means.append(mean)
    # the labels' codes are not all in one place: the mixtures differ between labels
    assert torch.cdist(torch.stack(means), torch.stack(means)).max() > 0.1


def test_draws_are_reproducible_labelled_and_scaled_by_temperature(density):
    y = torch.tensor([3] * 500 + [7] * 500)
    a = density.sample(y, torch.Generator().manual_seed(5))
    b = density.sample(y, torch.Generator().manual_seed(5))
    assert a.shape == (1000, density.latent_dim) and torch.equal(a, b)
    three = (density.weights[3][:, None] * density.means[3]).sum(0)
    seven = (density.weights[7][:, None] * density.means[7]).sum(0)
    # each draw comes from its own label's mixture
    assert (a[:500].mean(0) - three).norm() < (a[:500].mean(0) - seven).norm()
    assert (a[500:].mean(0) - seven).norm() < (a[500:].mean(0) - three).norm()
    # at t = 0 every draw is one of its label's component means
    z0 = density.sample(torch.full((50,), 3), torch.Generator().manual_seed(1), 0.0)
    assert torch.cdist(z0, density.means[3]).min(1).values.max() < 1e-6
    half = density.sample(y, torch.Generator().manual_seed(5), 0.5)
    assert half[:500].std(0).sum() < a[:500].std(0).sum()
    with pytest.raises(ValueError, match="Label 12 is not one of this model's 10"):
        density.sample(torch.tensor([12]))


def test_carry_moves_a_code_to_the_same_place_among_another_labels_codes(density):
    y3 = torch.full((2000,), 3)
    z3 = density.sample(y3, torch.Generator().manual_seed(2))
    moved = density.carry(z3, 3, 7)
    mu7, l7 = density.gaussian(7)
    # label 3's codes land where label 7's are: its mean and covariance
    assert torch.allclose(moved.double().mean(0), mu7, atol=0.1)
    cov = torch.cov(moved.double().T)
    assert torch.allclose(cov, l7 @ l7.T, atol=0.1 * float((l7 @ l7.T).diagonal().max()))
    back = density.carry(moved, 7, 3)  # and back again: the same codes
    assert torch.allclose(back, z3, atol=1e-4)
    assert torch.allclose(density.carry(z3, 3, 3), z3, atol=1e-5)
    # one label per row, in any order
    rows = density.carry(z3[:4], torch.tensor([3, 3, 3, 3]), torch.tensor([7, 3, 7, 3]))
    assert torch.allclose(rows[0], moved[0]) and torch.allclose(rows[1], z3[1], atol=1e-5)


def test_samples_from_own_codes_are_read_as_their_label(model, digits, density, tmp_path):
    train, test = digits
    judge = get_judge(train, tmp_path)
    acc = conditional_sample_accuracy(model, judge, 10, 200, density=density)
    assert acc["accuracy"] >= 0.9 and len(acc["per_class"]) == 10, acc
    variety = sample_variety(model, test, density=density)
    assert 0.3 < variety["ratio"] < 1.5, variety
    # the same seed gives the same images; another sampler gives other ones
    again = conditional_sample_accuracy(model, judge, 10, 200, density=density)
    assert again == acc
    imgs = ld.draw_images(model, 8, 4, torch.Generator().manual_seed(0), 1.0, density)
    assert imgs.shape == (8, *model.image_shape) and imgs.min() >= 0 and imgs.max() <= 1


def test_a_saved_density_round_trips(density, model, tmp_path):
    path = tmp_path / ld.FILE_NAME
    ld.save(density, path)
    back = ld.load(path, model)
    assert back.components == density.components
    y = torch.arange(10).repeat(20)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(back.sample(y, g1), density.sample(y, g2))


def _hostile(density) -> dict:
    d = density.to_dict()
    return {
        "garbage bytes": b"not a torch file at all",
        "wrong format": {**d, "format": 99},
        "too few labels": {**d, "weights": d["weights"][:3]},
        "nan mean": {**d, "means": [m.clone().fill_(float("nan")) for m in d["means"]]},
        "negative diagonal": {**d, "scale_tril": [-s for s in d["scale_tril"]]},
        "upper triangle": {**d, "scale_tril": [s.transpose(-1, -2) + 1 for s in d["scale_tril"]]},
        "weights not summing to one": {**d, "weights": [w * 3 for w in d["weights"]]},
        "wrong dtype": {**d, "means": [m.double() for m in d["means"]]},
        "a list": [1, 2, 3],
    }


HOSTILE = [
    "garbage bytes", "wrong format", "too few labels", "nan mean", "negative diagonal",
    "upper triangle", "weights not summing to one", "wrong dtype", "a list",
]  # fmt: skip


@pytest.mark.parametrize("case", HOSTILE)
def test_a_damaged_or_hostile_file_is_refused_and_fitted_again(
    case, density, model, digits, tmp_path, monkeypatch
):
    bad = _hostile(density)[case]
    path = tmp_path / ld.FILE_NAME
    if isinstance(bad, bytes):
        path.write_bytes(bad)
    else:
        torch.save(bad, path)
    refused = "^The saved label density is not one this model can use.$"
    with pytest.raises(ValueError, match=refused):
        ld.load(path, model)
    # get() on a run whose cache holds it: fitted again and the cache replaced
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(tmp_path / "runs"))
    run_dir = tmp_path / "runs" / "a-run"
    shutil.copytree(ENTRY, run_dir, ignore=shutil.ignore_patterns("READONLY", "cache"))
    (run_dir / "cache").mkdir()
    shutil.copy(path, run_dir / "cache" / ld.FILE_NAME)
    got = ld.get(Run(run_dir), model, digits[0])
    assert got.components == density.components
    assert ld.load(run_dir / "cache" / ld.FILE_NAME, model).components == density.components


def test_a_link_or_a_pipe_in_its_place_is_not_read(density, model, tmp_path):
    import os

    outside = tmp_path / "outside.pt"
    ld.save(density, outside)  # a valid density, but not the run's own file
    link = tmp_path / "cache" / ld.FILE_NAME
    link.parent.mkdir()
    link.symlink_to(outside)
    with pytest.raises(ValueError, match="not one this model can use"):
        ld.load(link, model)
    pipe = tmp_path / "pipe.pt"
    os.mkfifo(pipe)  # opening it for reading would wait for a writer forever
    with pytest.raises(ValueError, match="not one this model can use"):
        ld.load(pipe, model)


def test_a_pickle_that_would_run_code_is_not_run(model, tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "ran",))

    path = tmp_path / ld.FILE_NAME
    with open(path, "wb") as f:
        pickle.dump({"format": 1, "weights": Boom()}, f)
    with pytest.raises(ValueError, match="not one this model can use"):
        ld.load(path, model)
    assert not (tmp_path / "ran").exists()


def test_a_model_without_labels_is_refused_in_one_sentence(digits):
    plain, _ = load_model(ROOT / "pretrained" / "digits-mlp-vae-2d" / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"needs a conditional model .* has no labels\.$"):
        ld.fit(plain, digits[0].images, digits[0].labels)
    assert not ld.supports(plain)
