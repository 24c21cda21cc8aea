"""The model contract, for every family in the registry (``core.models.FAMILIES``) and its
conditional variant: ``encode`` returns one ``Posterior`` whose KL (to the model's own prior)
is the KL in ``forward``'s loss and the KL the explorer and ``core.evaluate`` report; each
declared capability works; a checkpoint round trip gives identical outputs; and the trainer
needs no family-specific code. Tiny models on 8x8 digits-shaped data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core import data as datalib
from core import explore as ex
from core.evaluate import evaluate
from core.models import FAMILIES, LatentModel, Posterior, build_model, model_class
from core.runs import load_model
from core.store.checkpoint import save_checkpoint
from core.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
SHAPE = (1, 8, 8)
CLASSES = 10
ITEMS = 24  # rows of an autodecoder's latent table
VARIANTS = [(name, cond) for name in FAMILIES for cond in (False, True)]
IDS = [f"{name}-{'cond' if cond else 'plain'}" for name, cond in VARIANTS]


def tiny(name: str, conditional: bool, seed: int = 0) -> LatentModel:
    """A small model of family ``name`` whose parameters have all moved away from their
    initial values (as after training), so a learned prior per label is not N(0, I)."""
    torch.manual_seed(seed)
    kw = {"hidden_dim": 16, "latent_dim": 3, "num_classes": CLASSES, "num_items": ITEMS}
    if FAMILIES[name].knob("infer_steps"):
        kw["infer_steps"] = 5  # quick placement by optimisation
    m = build_model(name, image_shape=SHAPE, conditional=conditional, **kw)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m.eval()


@pytest.fixture(scope="module")
def digits():
    test = datalib.load("digits", "test")
    return test.images[:48], test.labels[:48]


def labels_for(m, y):
    return y if m.conditional else None


@pytest.mark.parametrize("name, cond", VARIANTS, ids=IDS)
def test_explorer_kl_is_forwards_kl(name, cond, digits):
    m = tiny(name, cond)
    x, y = digits
    yc = labels_for(m, y)
    with torch.no_grad():
        out = m(x, yc)
    q = out.posterior
    assert isinstance(q, Posterior) and isinstance(m.encode(x[:2], labels_for(m, y[:2])), Posterior)
    enc = ex.encode_set(m, x, y, batch=20)
    diag = ex.diagnostics(m.latent_kind, enc)
    if m.has_kl:
        kd = out.stats["kl_dims"].numpy()
        assert kd.shape == (len(x), len(diag["values"]))
        np.testing.assert_allclose(enc["kl_dims"], kd, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(q.kl(), out.kl)
        torch.testing.assert_close(q.kl_per_dim().sum(1), out.kl)
        np.testing.assert_allclose(diag["values"], kd.mean(0), rtol=1e-5, atol=1e-6)
        assert float(out.kl.min()) >= -1e-5
    else:
        assert "kl_dims" not in enc and q.kl() is None and q.kl_per_dim() is None
        assert diag["measure"].startswith("variance")
    if not m.has_regulariser:
        assert torch.equal(out.kl, torch.zeros(len(x)))
    # the explorer's points are the posterior's point, the model's embedding
    np.testing.assert_allclose(enc["z"], m.embed(x, yc).detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, cond", VARIANTS, ids=IDS)
def test_evaluate_kl_is_forwards_kl(name, cond, tmp_path):
    m = tiny(name, cond)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, m, train_config={"dataset": "digits", "loss": "bce"}, epoch=1)
    res = evaluate(path, judge=False, test_size=40, knn_train=200, save=False)
    test = datalib.load("digits", "test").subset(40, seed=0)
    with torch.no_grad():
        out = m(test.images, labels_for(m, test.labels))
    assert res["has_kl"] is m.has_kl
    assert res["loss"]["kl"] == pytest.approx(float(out.kl.mean()), abs=1e-4)
    if m.has_kl:
        want = out.stats["kl_dims"].mean(0).numpy()
        np.testing.assert_allclose(res["kl_per_dim"], want, atol=1e-4)
    else:
        assert "kl_per_dim" not in res
    assert ("active_units" in res) is m.continuous_latent
    assert (
        res["knn"]["model_dim"] == m.embed(test.images[:1], labels_for(m, test.labels[:1])).shape[1]
    )


@pytest.mark.parametrize("name, cond", VARIANTS, ids=IDS)
def test_save_load_round_trip(name, cond, tmp_path, digits):
    m = tiny(name, cond, seed=1)
    save_checkpoint(tmp_path / "c.pt", m, epoch=2)
    m2, ck = load_model(tmp_path / "c.pt")
    assert ck["model_name"] == name and m2.config == m.config
    assert m2.state_dict().keys() == m.state_dict().keys()
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    x, y = digits
    yc = labels_for(m, y)
    with torch.no_grad():
        a, b = m(x, yc), m2(x, yc)
    for f in ("logits", "z", "kl"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    assert torch.equal(m.embed(x, yc), m2.embed(x, yc))
    ys = torch.arange(4) if m.conditional else None
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(m.sample(4, ys, generator=g1), m2.sample(4, ys, generator=g2))


@pytest.mark.parametrize("name, cond", VARIANTS, ids=IDS)
def test_shapes_and_declared_capabilities(name, cond, digits):
    m = tiny(name, cond)
    x, y = digits[0][:6], digits[1][:6]
    yc = labels_for(m, y)
    assert m.conditional is cond
    for cap in ("has_kl", "has_regulariser", "can_sample", "encodes", "continuous_latent"):
        assert getattr(model_class(name), cap) is getattr(m, cap)  # known before building
    assert m.has_regulariser or not m.has_kl  # a KL is a regulariser
    q = m.encode(x, yc)
    emb = m.embed(x, yc)
    assert emb.shape[0] == 6 and q.point.shape == emb.shape
    assert q.code.shape == (6, m.latent_dim) and m.posterior_mean(x, yc).shape == (6, m.latent_dim)
    assert m.decode(q.code, yc).shape == (6, *SHAPE)
    assert m.reconstruct(x, yc).shape == (6, *SHAPE)
    # placement returns codes of latent size; by optimisation it reports its steps
    p = m.place(x[:2], labels_for(m, y[:2]), steps=3)
    assert p.code.shape == (2, m.latent_dim) and p.point.shape == (2, emb.shape[1])
    if m.encodes:
        assert p.trace is None and m.stored_codes() is None
        torch.testing.assert_close(p.code, q.code[:2])
    else:
        assert len(p.trace) == 3
        codes = m.stored_codes()
        assert codes.shape == (ITEMS, m.latent_dim)
        with torch.no_grad():  # a training item's code is its stored one
            out = m(x[:4], labels_for(m, y[:4]), idx=torch.arange(4))
        assert torch.equal(out.z, codes[:4])
    placed = ex.place_image(m, x[0], int(y[0]) if m.conditional else None, steps=3)
    assert placed["latent"].shape == (m.latent_dim,) and placed["recon"].shape == SHAPE
    assert (placed["trace"] is None) is m.encodes
    # the KL capability
    if m.has_kl:
        assert q.kl().shape == (6,) and q.kl_per_dim().shape[0] == 6
    else:
        assert q.kl() is None and q.kl_per_dim() is None
    if not m.continuous_latent:  # categorical: logits, and codes that are one-hots
        v, k = m.latent_shape
        assert q.logits.shape == (6, v, k)
        assert torch.equal(q.code.view(6, v, k).sum(-1), torch.ones(6, v))
    else:
        assert q.logits is None and m.latent_shape == (m.latent_dim,)
    # sampling
    ys = torch.full((5,), 3) if m.conditional else None
    if m.can_sample:
        s = m.sample(5, ys, generator=torch.Generator().manual_seed(0))
        assert s.shape == (5, *SHAPE) and float(s.min()) >= 0 and float(s.max()) <= 1
    else:
        with pytest.raises(ValueError):
            m.sample(5, ys)
    # a training step: the draw has the code's shape and the loss term is finite
    m.train()
    idx = None if m.encodes else torch.arange(6)
    out = m(x, yc, idx=idx)
    assert out.z.shape == (6, m.latent_dim) and torch.isfinite(out.kl).all()
    assert m.validation_limit is None or m.validation_limit >= 1
    assert m.latent_description and m.prior_description


@pytest.mark.parametrize("name, cond", VARIANTS, ids=IDS)
def test_every_prior_takes_a_temperature(name, cond):
    """``prior_z`` at temperature t moves each draw t of the way from the prior's centre
    (t = 0: the centre, the same for every draw); a categorical latent refuses t != 1."""
    m = tiny(name, cond)
    y = torch.tensor(4) if m.conditional else None

    def draws(t):
        return m.prior_z(6, torch.Generator().manual_seed(1), y, temperature=t)

    if not m.continuous_latent:
        assert draws(1.0).shape == (6, m.latent_dim)
        with pytest.raises(ValueError, match="no spread to scale"):
            draws(0.5)
        return
    if hasattr(m, "fit_prior"):  # a Gaussian fitted to codes: one off the origin
        m.fit_prior(torch.randn(200, m.latent_dim, generator=torch.Generator().manual_seed(2)) + 3)
    centre, one, half = draws(0.0), draws(1.0), draws(0.5)
    assert torch.allclose(centre, centre[:1].expand(6, -1))
    assert not torch.allclose(one, centre)
    torch.testing.assert_close(half - centre, 0.5 * (one - centre))
    # the centre is the prior's own: the mean of many draws at t = 1, not the origin
    many = m.prior_z(40000, torch.Generator().manual_seed(3), y)
    torch.testing.assert_close(centre[0], many.mean(0), atol=0.05, rtol=0)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_trainer_needs_no_family_specific_code(name, tmp_path):
    """One epoch of the real trainer for every family; the post-training hook has run on
    the training images before the final checkpoint (running it again changes nothing)."""
    args = {"latent_dim": 2}
    if FAMILIES[name].knob("infer_steps"):
        args["infer_steps"] = 5
    cfg = TrainConfig(dataset="digits", model=name, epochs=1, batch_size=256, val_size=50)
    run = train(cfg, args, root=tmp_path)
    assert run.status()["state"] == "done"
    row = run.metrics()[-1]
    assert np.isfinite(row["val_loss"]) and np.isfinite(row["train_loss"])
    m, _ = load_model(run.checkpoint_path)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    tr = datalib.load("digits", "train")
    m.after_training(tr.images, tr.labels if m.conditional else None)
    for k, v in m.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=1e-4, atol=1e-5, msg=k)


def test_shipped_cvae_explorer_kl_is_forwards_kl():
    """Regression: the explorer took the KL to N(0, I) even under a learned prior per label
    (0.56 vs 0.51 nats per dimension on this checkpoint)."""
    m, _ = load_model(ROOT / "pretrained/digits-cvae-l2/checkpoint.pt")
    test = datalib.load("digits", "test")
    enc = ex.encode_set(m, test.images, test.labels)
    with torch.no_grad():
        out = m(test.images, test.labels)
    want = out.stats["kl_dims"].mean(0).numpy()
    got = enc["kl_dims"].mean(0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ex.diagnostics(m.latent_kind, enc)["values"], want, rtol=1e-5)
    assert float(enc["kl_dims"].sum(1).mean()) == pytest.approx(float(out.kl.mean()), rel=1e-5)
    # the prior matters here: the KL to N(0, I) is visibly different
    q = m.encode(test.images, test.labels)
    standard = (-0.5 * (1 + q.logvar - q.mu.pow(2) - q.logvar.exp())).mean(0).detach().numpy()
    assert np.abs(standard - want).max() > 0.03
