"""Training settings take effect in real (tiny) training on the bundled 8x8 digits: beta,
the KL warm-up, the loss weights, the learning-rate milestones, the optimizer, the seed and
the training-set size."""

from __future__ import annotations

import math

import pytest
import torch

from core import data as datalib
from core.train import TrainConfig, Trainer

ARGS = {"latent_dim": 2, "hidden_dim": 16}
TIMING = ("seconds", "samples_per_s")  # wall-clock fields of a metrics row


def cfg(**kw) -> TrainConfig:
    base = dict(dataset="digits", model="mlp-vae", epochs=2, batch_size=128, val_size=0,
                device="cpu")  # fmt: skip
    return TrainConfig(**{**base, **kw})


def fit(c: TrainConfig, args: dict | None = None) -> tuple[Trainer, list[dict]]:
    """Train without a run folder; returns the trainer and its metrics rows."""
    trainer = Trainer(c, args or ARGS)
    rows: list[dict] = []
    trainer.add_callback("on_epoch_end", lambda t: rows.append(dict(t.last_row)))
    trainer.fit()
    return trainer, rows


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


# ----------------------------------------------------------------------------- beta
@pytest.mark.parametrize("seed", [0, 1])
def test_beta_zero_leaves_a_larger_kl_than_beta_four(seed):
    common = dict(epochs=3, batch_size=64, lr=1e-2, seed=seed)
    _, free = fit(cfg(kl_weight=0.0, **common))
    _, tight = fit(cfg(kl_weight=4.0, **common))
    assert [r["beta"] for r in free] == [0.0] * 3 and [r["beta"] for r in tight] == [4.0] * 3
    assert free[-1]["train_kl"] > 10 * tight[-1]["train_kl"], (free[-1], tight[-1])
    assert free[-1]["train_kl"] > 1.0  # unpenalised, the posterior moves off the prior


# ----------------------------------------------------------------------------- warm-up
@pytest.mark.parametrize(
    "beta, warmup, epochs, want",
    [
        (2.0, 2, 4, [0.0, 1.0, 2.0, 2.0]),  # epoch e (1-based) trains at beta*(e-1)/warmup
        (3.0, 1.5, 3, [0.0, 2.0, 3.0]),
        (1.0, 0, 2, [1.0, 1.0]),  # no warm-up
    ],
)
def test_kl_warmup_ramps_the_recorded_beta(beta, warmup, epochs, want):
    _, rows = fit(cfg(kl_weight=beta, kl_warmup=warmup, epochs=epochs))
    assert [r["beta"] for r in rows] == pytest.approx(want)
    for r in rows:  # the beta recorded is the one the loss was trained with
        assert r["train_loss"] == pytest.approx(r["train_recon"] + r["beta"] * r["train_kl"])


def test_loss_weights_and_terms_take_effect():
    _, rows = fit(cfg(loss="mse+0.5*ssim", recon_weight=0.25, kl_weight=3.0, ssim_window=7))
    for r in rows:
        assert "train_bce" not in r
        assert r["train_recon"] == pytest.approx(r["train_mse"] + 0.5 * r["train_ssim"])
        assert r["train_loss"] == pytest.approx(0.25 * r["train_recon"] + 3.0 * r["train_kl"])


# ----------------------------------------------------------------------------- lr schedule
def test_lr_milestones_multiply_the_rate_by_gamma():
    c = cfg(epochs=4, lr=1e-2, milestones=[3, 2], lr_gamma=0.5)
    trainer = Trainer(c, ARGS)
    used: dict[int, set] = {}  # epoch (1-based) -> learning rates its batches stepped with
    rows: list[dict] = []
    trainer.add_callback(
        "on_batch_end",
        lambda t: used.setdefault(t.epoch + 1, set()).add(t.opt.param_groups[0]["lr"]),
    )
    trainer.add_callback("on_epoch_end", lambda t: rows.append(dict(t.last_row)))
    trainer.fit()
    # PyTorch's convention (REPRODUCTION.md relies on it): after m finished epochs the rate
    # drops, so epochs 1-2 train at lr, epoch 3 at lr*gamma, epoch 4 at lr*gamma^2
    assert {e: sorted(v) for e, v in used.items()} == {
        1: [pytest.approx(1e-2)],
        2: [pytest.approx(1e-2)],
        3: [pytest.approx(5e-3)],
        4: [pytest.approx(2.5e-3)],
    }
    # a metrics row records the rate its epoch trained with (like its beta)
    lrs = [r["lr"] for r in rows]
    assert lrs == pytest.approx([1e-2, 1e-2, 5e-3, 2.5e-3])


def test_without_milestones_the_rate_stays():
    _, rows = fit(cfg(epochs=3, lr=3e-3, lr_gamma=0.1))
    assert [r["lr"] for r in rows] == pytest.approx([3e-3] * 3)


# ----------------------------------------------------------------------------- optimizer
@pytest.mark.parametrize(
    "name, cls",
    [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)],
)
def test_optimizer_choice_builds_that_optimizer(name, cls):
    trainer = Trainer(cfg(optimizer=name, weight_decay=0.03, lr=2e-3, milestones=[5]), ARGS)
    trainer.setup()
    opt = trainer.opt
    assert type(opt) is cls
    assert len(opt.param_groups) >= 1
    for g in opt.param_groups:
        assert g["weight_decay"] == 0.03 and g["lr"] == pytest.approx(2e-3)
    if name == "sgd":
        assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    params = {id(p) for g in opt.param_groups for p in g["params"]}
    assert params == {id(p) for p in trainer.model.parameters()}
    assert isinstance(trainer.sched, torch.optim.lr_scheduler.MultiStepLR)
    assert dict(trainer.sched.milestones) == {5: 1}


def test_adamw_weight_decay_shrinks_the_weights():
    def weight_norm(wd: float) -> float:
        trainer, _ = fit(cfg(optimizer="adamw", weight_decay=wd, lr=1e-2, epochs=3, seed=3))
        return float(torch.cat([p.detach().flatten() for p in trainer.model.parameters()]).norm())

    assert weight_norm(0.5) < 0.95 * weight_norm(0.0)


# ----------------------------------------------------------------------------- seed
def test_the_same_seed_gives_identical_rows_and_another_seed_does_not():
    a, rows_a = fit(cfg(seed=7, val_size=100))
    b, rows_b = fit(cfg(seed=7, val_size=100))
    _, rows_c = fit(cfg(seed=8, val_size=100))
    assert without_timing(rows_a) == without_timing(rows_b)
    assert "val_loss" in rows_a[-1]
    for (k, pa), pb in zip(
        a.model.state_dict().items(), b.model.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb), k
    assert rows_a[-1]["train_loss"] != rows_c[-1]["train_loss"]
    assert rows_a[-1]["val_loss"] != rows_c[-1]["val_loss"]


# ----------------------------------------------------------------------------- train_size
def test_train_size_trains_on_that_many_images():
    full = datalib.load("digits", "train")
    trainer, rows = fit(cfg(train_size=300, batch_size=128, epochs=2, seed=5))
    assert trainer.x.shape == (300, 1, 8, 8) and trainer.y.shape == (300,)
    per_epoch = math.ceil(300 / 128)
    assert trainer.batches_per_epoch == per_epoch
    assert [r["step"] for r in rows] == [per_epoch, 2 * per_epoch]
    # every image is one of the training split's, none twice
    flat = full.images.flatten(1)
    idx = [int(torch.nonzero((flat == x).all(1))[0]) for x in trainer.x.cpu().flatten(1)]
    assert len(set(idx)) == 300
    assert torch.equal(full.labels[idx], trainer.y.cpu())
    # and the whole split when train_size is 0
    whole, rows_all = fit(cfg(train_size=0, epochs=1))
    assert len(whole.x) == len(full) == 1437
    assert rows_all[0]["step"] == math.ceil(1437 / 128)


def test_train_size_subsets_differ_by_seed():
    a = Trainer(cfg(train_size=200, seed=1), ARGS)
    b = Trainer(cfg(train_size=200, seed=2), ARGS)
    a.setup()
    b.setup()
    assert a.x.shape == b.x.shape == (200, 1, 8, 8)
    assert not torch.equal(a.x, b.x)
