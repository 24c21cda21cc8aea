"""The pretrained zoo: complete, small, loadable with weights_only, read-only, and every
card's numbers reproduced by core.evaluate on its checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from core import data as datalib
from core.evaluate import evaluate
from core.models import MODELS
from core.runs import Run, RunError, load_model

ZOO = Path(__file__).resolve().parent.parent / "pretrained"
ENTRIES = sorted(p for p in ZOO.iterdir() if (p / "card.json").is_file())


def test_zoo_covers_every_family_and_the_digits_pair():
    cards = [json.loads((p / "card.json").read_text()) for p in ENTRIES]
    fmnist = {c["model"] for c in cards if c["dataset"] == "fashion-mnist"}
    assert fmnist >= set(MODELS), set(MODELS) - fmnist
    digits = {(c["model"], c["metrics"]["latent_dim"]) for c in cards if c["dataset"] == "digits"}
    assert ("mlp-vae", 2) in digits and any(m == "cvae" for m, _ in digits)
    assert any(c["model"] == "mlp-vae" and c["metrics"]["latent_dim"] == 2 for c in cards)


def test_zoo_is_small_and_read_only():
    total = sum(f.stat().st_size for f in ZOO.rglob("*") if f.is_file())
    assert total <= 40 * 2**20, f"pretrained/ is {total / 2**20:.1f} MB"
    for p in ENTRIES:
        run = Run(p)
        assert run.readonly and run.status()["state"] == "done"
        with pytest.raises(RunError, match="read-only"):
            run.delete()
        model, ck = load_model(run.checkpoint_path)  # weights_only=True inside
        assert "optimizer" not in ck and ck["model_name"] == model.name


def test_bundled_sample():
    s = datalib.bundled_sample("fashion-mnist")
    assert s is not None and len(s) == 2000 and s.image_shape == (1, 28, 28)
    assert s.class_names[0] == "T-shirt/top" and set(s.labels.tolist()) == set(range(10))


def have(dataset: str) -> bool:
    if os.environ.get("CI"):
        return True  # CI installs dataset-fashion-mnist: never skip there
    try:
        datalib.load(dataset, "test", download=False)
        return True
    except datalib.DatasetError:
        return False


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda p: p.name)
def test_card_numbers_are_reproduced(entry):
    card = json.loads((entry / "card.json").read_text())
    if not have(card["dataset"]):
        pytest.skip(f"{card['dataset']} is not available here")
    got = evaluate(entry, save=False)
    want = card["metrics"]
    for k, v in want["loss"].items():
        assert got["loss"][k] == pytest.approx(v, abs=2e-3 * max(1, abs(v))), k
    assert got["ssim"] == pytest.approx(want["ssim"], abs=2e-3)
    assert got["knn"]["model"] == pytest.approx(want["knn"]["model"], abs=2e-3)
    assert got["knn"]["pca"] == pytest.approx(want["knn"]["pca"], abs=2e-3)
    if "conditional" in want:
        for k in ("sample_accuracy", "recon_accuracy", "judge_test_accuracy"):
            assert got["conditional"][k] == pytest.approx(want["conditional"][k], abs=0.02), k


def test_fashion_mnist_judge_is_shipped():
    """Conditional samples are scored by the shipped judge of the current recipe, so every
    machine gets the same figures and none trains one first."""
    from core.metrics import SHIPPED_JUDGES, Judge, judge_file_name

    if not have("fashion-mnist"):
        pytest.skip("fashion-mnist is not available here")
    train = datalib.load("fashion-mnist", "train")
    path = SHIPPED_JUDGES / judge_file_name(train)
    assert path.exists(), "the judge recipe changed: run python pretrained/build.py --judge"
    judge = Judge(train.image_shape, train.num_classes)
    judge.load_state_dict(torch.load(path, weights_only=True))
    test = datalib.load("fashion-mnist", "test")
    assert (judge.predict(test.images) == test.labels).float().mean() > 0.9


@pytest.mark.parametrize("offline", [False, True], ids=["dataset", "offline"])
def test_entries_ship_their_umap_view(offline, monkeypatch, tmp_path):
    # the slow view of the Embeddings page is read from <entry>/cache/, never recomputed
    from core import projections as proj

    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(tmp_path / "runs"))
    if offline:
        monkeypatch.setenv("LATENTLAB_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("LATENTLAB_FMNIST_SYSTEM_DIR", str(tmp_path / "no-debian-package"))
        monkeypatch.setenv("LATENTLAB_MIRROR", "http://127.0.0.1:9/{name}/")  # closed port
    elif not have("fashion-mnist"):
        pytest.skip("fashion-mnist is not available here")
    for p in ENTRIES:
        run = Run(p)
        model, _ = load_model(run.checkpoint_path)
        view = proj.load_view(run, "umap", proj.DEFAULT_N, model.latent_dim)
        assert view is not None, f"{p.name}: run python pretrained/ship_projections.py"
        assert len(view.xy) == proj.sample_size(None, len(proj.test_split(run)))
        assert 0.1 < view.knn <= 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.npz"))
