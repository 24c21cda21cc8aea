"""core.metrics against independent computations: KNN accuracy (k=5, Euclidean, majority
vote) by brute force in numpy, active units by hand, and the judge's interface (the shipped
Fashion-MNIST judge is loaded, never trained here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core import data as datalib
from core.metrics import (
    ACTIVE_THRESHOLD,
    KNN_K,
    KNN_TRAIN,
    SHIPPED_JUDGES,
    Judge,
    active_units,
    get_judge,
    judge_file_name,
    knn_accuracy,
    knn_per_class_draws,
    knn_reference,
)


def brute_knn_accuracy(train_x, train_y, test_x, test_y, k: int = 5) -> float:
    """Euclidean distances to every training point, the k nearest, a majority vote; a tied
    vote goes to the smallest label (scikit-learn's rule: argmax over its sorted classes)."""
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    d2 = ((test_x[:, None, :] - train_x[None, :, :]) ** 2).sum(-1)
    nearest = np.argsort(d2, axis=1, kind="stable")[:, :k]
    labels = np.asarray(train_y)[nearest]
    n_classes = int(max(np.max(train_y), np.max(test_y))) + 1
    votes = np.stack([np.bincount(row, minlength=n_classes) for row in labels])
    pred = votes.argmax(1)  # first maximum: the smallest label among tied ones
    return float((pred == np.asarray(test_y)).mean())


def test_knn_defaults_are_the_stated_protocol():
    assert KNN_K == 5 and KNN_TRAIN == 10000


@pytest.mark.parametrize("seed, classes, dim", [(0, 3, 2), (1, 5, 4), (2, 10, 8), (3, 2, 3)])
def test_knn_accuracy_matches_brute_force_on_random_data(seed, classes, dim):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1.0, (classes, dim))
    train_y = rng.integers(0, classes, 300)
    test_y = rng.integers(0, classes, 120)
    train_x = centers[train_y] + rng.normal(0, 1.0, (300, dim))
    test_x = centers[test_y] + rng.normal(0, 1.0, (120, dim))
    got = knn_accuracy(train_x, train_y, test_x, test_y)
    want = brute_knn_accuracy(train_x, train_y, test_x, test_y, k=5)
    assert 0.0 < want < 1.0  # a case where the vote matters
    assert got == pytest.approx(want, abs=1e-12)


def test_knn_accuracy_breaks_tied_votes_like_brute_force():
    """Five neighbours voting 2-2-1: the prediction is the smallest tied label."""
    train_x = np.array([[0.0], [0.1], [0.2], [0.3], [0.4], [50.0]])
    train_y = np.array([2, 2, 1, 1, 0, 3])
    test_x = np.array([[0.2]])
    # the 5 nearest of 0.2 are labels 2, 2, 1, 1, 0: tie between 1 and 2 -> 1
    assert brute_knn_accuracy(train_x, train_y, test_x, np.array([1])) == 1.0
    assert knn_accuracy(train_x, train_y, test_x, np.array([1])) == 1.0
    assert knn_accuracy(train_x, train_y, test_x, np.array([2])) == 0.0


def test_knn_accuracy_is_one_on_well_separated_clusters():
    rng = np.random.default_rng(4)
    centers = np.eye(6) * 100.0
    train_y, test_y = rng.integers(0, 6, 200), rng.integers(0, 6, 100)
    train_x = centers[train_y] + rng.normal(0, 1, (200, 6))
    test_x = centers[test_y] + rng.normal(0, 1, (100, 6))
    assert knn_accuracy(train_x, train_y, test_x, test_y) == 1.0


def test_knn_accuracy_is_near_chance_when_labels_ignore_features():
    rng = np.random.default_rng(5)
    x_train, x_test = rng.normal(size=(2000, 5)), rng.normal(size=(2000, 5))
    y_train, y_test = rng.integers(0, 4, 2000), rng.integers(0, 4, 2000)
    acc = knn_accuracy(x_train, y_train, x_test, y_test)
    # chance is 1/4; the standard error over 2000 test points is about 0.01
    assert 0.20 < acc < 0.30, acc


def test_knn_accuracy_k_one_on_the_training_points_is_one():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(100, 3)), rng.integers(0, 3, 100)
    assert knn_accuracy(x, y, x, y, k=1) == 1.0


def test_knn_accuracy_on_real_digits_matches_brute_force():
    train, test = datalib.load("digits", "train"), datalib.load("digits", "test")
    tx, ty = train.images.flatten(1).numpy(), train.labels.numpy()
    vx, vy = test.images.flatten(1).numpy()[:200], test.labels.numpy()[:200]
    got = knn_accuracy(tx, ty, vx, vy)
    assert got == pytest.approx(brute_knn_accuracy(tx, ty, vx, vy), abs=1e-12)
    assert got > 0.9  # 8x8 digits are easy for a 5-NN on pixels


def test_knn_reference_is_the_first_ten_thousand_in_file_order():
    train = datalib.load("digits", "train")
    ref = knn_reference(train)
    assert len(ref) == min(len(train), KNN_TRAIN)
    assert torch.equal(ref.images, train.images[: len(ref)])


# ----------------------------------------------------------------------------- active units
def test_active_units_counts_dimensions_whose_mean_varies_above_the_threshold():
    rng = np.random.default_rng(7)
    scales = np.array([0.0, 0.05, 0.09, 0.11, 0.5, 2.0])  # variance ~ scale**2
    mu = rng.normal(size=(500, 6)) * scales + rng.normal(size=6) * 3  # offsets do not matter
    count, per_dim = active_units(torch.tensor(mu, dtype=torch.float32))
    var = mu.var(axis=0, ddof=1)  # the unbiased variance over images
    assert count == int((var > ACTIVE_THRESHOLD).sum())
    assert per_dim == pytest.approx(np.round(var, 5).tolist(), abs=2e-5)
    assert count == 3  # 0.11**2, 0.5**2 and 2**2 are above 0.01; 0.09**2 is not


def test_active_units_with_a_custom_threshold_and_a_dead_code():
    mu = torch.zeros(50, 4)
    mu[:, 2] = torch.arange(50, dtype=torch.float32)  # variance 212.5 by hand
    count, per_dim = active_units(mu, threshold=100.0)
    assert count == 1
    assert per_dim == [0.0, 0.0, pytest.approx(212.5), 0.0]
    assert active_units(mu, threshold=300.0)[0] == 0


# ----------------------------------------------------------------------------- the judge
def test_judge_predicts_one_label_per_image_in_batches():
    torch.manual_seed(0)
    judge = Judge((1, 8, 8), 10)
    x = torch.rand(4100, 1, 8, 8)  # more than one 4096 chunk
    pred = judge.predict(x)
    assert pred.shape == (4100,) and pred.dtype == torch.int64
    assert int(pred.min()) >= 0 and int(pred.max()) < 10
    with torch.no_grad():
        assert torch.equal(pred, judge(x).argmax(1))  # predict is eval mode: no dropout


def test_get_judge_loads_a_cached_judge_without_training(tmp_path):
    train = datalib.load("digits", "train")
    torch.manual_seed(1)
    saved = Judge(train.image_shape, train.num_classes)
    name = judge_file_name(train)
    assert name.startswith(f"judge-digits-{len(train)}-") and name.endswith(".pt")
    assert judge_file_name(train) == name  # the same key every call
    torch.save(saved.state_dict(), tmp_path / name)
    judge = get_judge(train, tmp_path)
    assert not judge.training
    for (k, a), b in zip(saved.state_dict().items(), judge.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


FMNIST = Path(datalib.FMNIST_SYSTEM_DIR)


@pytest.mark.skipif(not FMNIST.is_dir(), reason="Debian's dataset-fashion-mnist is missing")
def test_the_shipped_fashion_mnist_judge_is_found_and_labels_real_images_right():
    train = datalib.load("fashion-mnist", "train")
    name = judge_file_name(train)
    assert (SHIPPED_JUDGES / name).is_file(), f"no shipped judge named {name}"
    judge = get_judge(train, None)  # loaded from pretrained/judges, not trained
    test = datalib.load("fashion-mnist", "test")
    acc = float((judge.predict(test.images[:1000]) == test.labels[:1000]).float().mean())
    assert acc > 0.85, acc  # REPRODUCTION.md: 0.913 on all 10,000 test images


def test_snakers4_knn_protocol_draws_per_class_and_reports_the_spread():
    """500 training points a class drawn anew each time: the draws' scores are the brute
    force KNN (k=10) of what the transform saw, their mean and sd are reported, and a class
    with fewer points than asked is refused."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 600)
    x = rng.normal(size=(1800, 4)) + y[:, None] * 1.0  # overlapping clusters: draws differ
    ty = np.repeat(np.arange(3), 30)
    tx = rng.normal(size=(90, 4)) + ty[:, None] * 1.0
    seen = []

    def record(tr, te):
        seen.append((tr, te))
        return tr, te

    r = knn_per_class_draws(x, y, tx, ty, per_class=500, k=10, draws=4, transform=record)
    assert (r["per_class"], r["k"], r["draws"]) == (500, 10, 4) and len(seen) == 4
    scores = []
    for tr, _ in seen:
        assert len(tr) == 1500
        rows = [np.flatnonzero((x == row).all(1))[0] for row in tr]  # which points were drawn
        assert np.bincount(y[rows]).tolist() == [500, 500, 500]
        scores.append(brute_knn_accuracy(tr, y[rows], tx, ty, k=10))
    assert r["mean"] == pytest.approx(np.mean(scores))
    assert r["sd"] == pytest.approx(np.std(scores, ddof=1)) and r["sd"] > 0
    with pytest.raises(ValueError):
        knn_per_class_draws(x, y, tx, ty, per_class=601)
