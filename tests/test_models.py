"""Every registry entry builds, runs forward/backward with a finite loss, saves and reloads
to identical outputs, and offers the shared verbs with the right shapes."""

from __future__ import annotations

import pytest
import torch

from core import data as datalib
from core.losses import parse_loss, total_loss
from core.models import FAMILIES, ConfigError, build_model, resolve_config
from core.models.wae import SCALES, imq_mmd
from core.runs import CheckpointError, load_model, read_checkpoint, save_checkpoint
from core.train import TrainConfig, train

SHAPES = [(1, 28, 28), (3, 32, 32), (1, 8, 8)]


def tiny(name, shape=(1, 28, 28), **kw):
    args = {"hidden_dim": 16, "num_classes": 10, "num_items": 8, "image_shape": shape}
    if name == "conv-vae":
        args["channels"] = (4, 8)
    return build_model(name, **{**args, **kw})


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", list(FAMILIES))
def test_forward_backward_shapes(name, shape):
    torch.manual_seed(0)
    m = tiny(name, shape)
    x, y, idx = torch.rand(4, *shape), torch.randint(0, 10, (4,)), torch.arange(4)
    out = m(x, y if m.conditional else None, idx=idx)
    assert out.logits.shape == (4, *shape)
    assert out.z.shape == (4, m.latent_dim)
    assert out.kl.shape == (4,)
    loss, parts = total_loss(out, x, parse_loss("bce+0.5*ssim"), ssim_window=5)
    assert torch.isfinite(loss)
    assert set(parts) >= {"bce", "ssim", "recon", "kl", "loss"}
    before = [p.detach().clone() for p in m.parameters()]
    loss.backward()
    torch.optim.SGD(m.parameters(), lr=0.1).step()
    changed = sum(not torch.equal(a, b) for a, b in zip(before, m.parameters(), strict=True))
    assert changed > 0, "one training step changed no weight"


@pytest.mark.parametrize("name", list(FAMILIES))
def test_verbs(name):
    m = tiny(name).eval()
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([0, 1, 2])
    yc = y if m.conditional else None
    imgs = m.sample(5, torch.tensor(3) if m.conditional else None)
    assert imgs.shape == (5, 1, 28, 28) and imgs.min() >= 0 and imgs.max() <= 1
    rec = m.reconstruct(x, yc)
    assert rec.shape == x.shape
    assert m.embed(x, yc).shape[0] == 3
    assert m.decode(m.prior_z(2), y[:2] if m.conditional else None).shape == (2, 1, 28, 28)
    assert m.latent_kind in ("gaussian", "deterministic", "categorical", "table")

    # values, each computed from the other verbs rather than from recorded numbers
    torch.manual_seed(0)  # an autodecoder's placement is an optimisation: the same each call
    q = m.encode(x, yc)
    assert torch.equal(m.embed(x, yc), q.point)  # the embedding is the posterior's point
    # eval mode reconstructs from the posterior's code, decoded as decode() does it
    assert torch.allclose(m.reconstruct(x, yc), m.decode(q.code, yc), atol=1e-6)
    assert torch.allclose(m.decode(q.code, yc), torch.sigmoid(m.decode_logits(q.code, yc)))
    assert torch.allclose(rec, m.decode(q.code, yc), atol=1e-6)
    assert torch.allclose(torch.sigmoid(m(x, yc).logits.float()), rec, atol=1e-6)  # forward
    assert rec.min() >= 0 and rec.max() <= 1
    # a different image gets a different reconstruction
    assert not torch.allclose(m.reconstruct(1 - x, yc), rec)

    # sampling: in [0, 1]; one generator seed gives one draw, two seeds two draws
    lab = torch.tensor(3) if m.conditional else None

    def draw(seed, label=lab):
        return m.sample(6, label, generator=torch.Generator().manual_seed(seed))

    a, b, c = draw(0), draw(0), draw(1)
    assert a.min() >= 0 and a.max() <= 1 and c.min() >= 0 and c.max() <= 1
    assert torch.equal(a, b), "the same generator seed drew different samples"
    assert not torch.equal(a, c), "two generator seeds drew the same samples"
    # sample() is decode() of the prior's draw for that seed
    z = m.prior_z(6, torch.Generator().manual_seed(0), lab)
    assert torch.equal(a, m.decode(z, lab))
    if m.conditional:  # the same codes decoded under another label give other images
        assert not torch.allclose(draw(0, torch.tensor(7)), a, atol=1e-4)
        assert not torch.allclose(m.decode(q.code, (yc + 1) % 10), m.decode(q.code, yc))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_save_reload_identical(name, tmp_path):
    torch.manual_seed(1)
    m = tiny(name).eval()
    z = m.prior_z(4, torch.Generator().manual_seed(0))
    y = torch.arange(4) if m.conditional else None
    save_checkpoint(tmp_path / "c.pt", m, epoch=3)
    m2, ck = load_model(tmp_path / "c.pt")
    assert ck["epoch"] == 3 and ck["model_name"] == name
    assert m2.config == m.config
    assert torch.equal(m.decode(z, y), m2.decode(z, y))
    for a, b in zip(m.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_fcconv_matches_snakers4_size():
    m = build_model("fcconv-vae", image_shape=(1, 28, 28), latent_dim=10)
    assert 115_000 <= m.num_parameters() <= 125_000  # about 120k at L=10


def test_fcconv_decoder_uses_pytorch04_init():
    # snakers4 trained under PyTorch 0.4, which scaled a transposed convolution's init by
    # in_channels * kernel area; today's default scales by out_channels (10x larger here).
    torch.manual_seed(0)
    m = build_model("fcconv-vae", image_shape=(1, 28, 28), latent_dim=10)
    first, last = m.decoder.net[0], m.decoder.net[2]
    for layer, fan in ((first, 10), (last, 118 * 28 * 28)):
        bound = 1 / fan**0.5
        assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
        assert layer.weight.abs().max() > 0.9 * bound  # uniform over the whole range
    assert m.decoder.net[2].weight.abs().max() < 0.004  # today's default: up to 0.036


def test_cvae_preset_is_conditional_mlp():
    m = build_model("cvae", image_shape=(1, 28, 28), num_classes=10)
    assert m.conditional and m.config.arch == "mlp" and m.num_classes == 10
    with pytest.raises(ValueError, match="labels"):
        m(torch.rand(2, 1, 28, 28))


def test_class_prior_kl_and_samples():
    """The cvae's learned prior per label: the KL is taken to N(m_y, s_y^2) (checked against
    torch.distributions) and samples for label y are drawn from it."""
    torch.manual_seed(0)
    m = build_model("cvae", image_shape=(1, 8, 8), num_classes=3, latent_dim=4, hidden_dim=8)
    assert m.config.class_prior
    with torch.no_grad():
        m.prior_mu.copy_(torch.tensor([[0.0] * 4, [5.0] * 4, [-3.0] * 4]))
        m.prior_logvar.copy_(torch.log(torch.tensor([[1.0] * 4, [0.25] * 4, [4.0] * 4])))
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 2, 1, 0])
    m.eval()
    out = m(x, y)
    q = m.encode(x, y)
    post = torch.distributions.Normal(q.mu, torch.exp(0.5 * q.logvar))
    prior = torch.distributions.Normal(m.prior_mu[y], torch.exp(0.5 * m.prior_logvar[y]))
    want = torch.distributions.kl_divergence(post, prior)
    assert torch.allclose(out.kl, want.sum(1), atol=1e-5)
    assert torch.allclose(q.kl_per_dim(), want, atol=1e-5)  # the posterior owns the maths
    assert torch.equal(q["mu"], q.mu)  # the old dictionary access still works
    g = torch.Generator().manual_seed(0)
    z = m.prior_z(4000, g, torch.tensor(1))
    assert torch.allclose(z.mean(0), torch.full((4,), 5.0), atol=0.05)
    assert torch.allclose(z.std(0), torch.full((4,), 0.5), atol=0.05)
    mix = m.prior_z(6000, g)  # no label: the mixture of the three
    assert abs(float(mix.mean()) - (0 + 5 - 3) / 3) < 0.1
    # without labels there is no class prior; asking for one says why in one sentence
    assert not build_model(
        "cvae", image_shape=(1, 8, 8), num_classes=3, conditional=False
    ).config.class_prior
    with pytest.raises(ConfigError, match="A class prior needs labels"):
        resolve_config("mlp-vae", image_shape=(1, 8, 8), class_prior=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"latent_dim": 0}, "Latent size 0"),
        ({"arch": "transformer"}, "Unknown backbone"),
        ({"categories": 3}, "no setting categories"),
    ],
)
def test_bad_config_one_sentence(kwargs, match):
    with pytest.raises(ConfigError, match=match) as e:
        resolve_config("mlp-vae", image_shape=(1, 28, 28), **kwargs)
    assert "\n" not in str(e.value)


def test_unknown_model():
    with pytest.raises(ConfigError, match="Unknown model 'nope'"):
        build_model("nope", image_shape=(1, 28, 28))


def test_gumbel_temperature_anneals_and_latent_is_categorical():
    m = build_model("gumbel-vae", image_shape=(1, 8, 8), latent_dim=3, categories=4,
                    temperature=1.0, min_temperature=0.5, anneal_rate=1.0)  # fmt: skip
    m.on_progress(0.0)
    assert float(m.tau) == pytest.approx(1.0)
    m.on_progress(10.0)
    assert float(m.tau) == pytest.approx(0.5)
    z = m.prior_z(5)
    assert z.shape == (5, 12) and torch.equal(z.view(5, 3, 4).sum(-1), torch.ones(5, 3))
    m.eval()
    out = m(torch.rand(2, 1, 8, 8))
    assert torch.equal(out.z.view(2, 3, 4).sum(-1), torch.ones(2, 3))  # hard one-hot at eval


def test_autodecoder_infers_unseen_latents():
    torch.manual_seed(0)
    m = tiny("autodecoder", latent_dim=2)
    x = torch.rand(3, 1, 28, 28)
    res = m.infer(x, steps=30)
    assert res["z"].shape == (3, 2) and len(res["trace"]) == 30
    assert res["trace"][-1] < res["trace"][0], "latent optimisation did not lower the loss"
    assert all(p.requires_grad for p in m.decoder.parameters()), "decoder left frozen"
    q = m.place(x, steps=30)  # the contract's placement: the same optimisation
    assert torch.equal(q.code, res["z"]) and q.trace == res["trace"]
    assert q.kl() is None and not m.encodes
    assert torch.equal(m.stored_codes(), m.table.weight.detach())


def test_foreign_checkpoints_refused(tmp_path):
    m = tiny("mlp-vae")
    torch.save(m.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="not a latent-lab checkpoint"):
        read_checkpoint(tmp_path / "bare.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="not a latent-lab checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="No checkpoint"):
        read_checkpoint(tmp_path / "missing.pt")


def test_wae_mmd_is_the_unbiased_imq_estimate():
    """The WAE's penalty: the unbiased MMD^2 under the inverse multiquadratics kernel over
    the paper's scales, checked against a direct double loop; near 0 for codes drawn from
    the prior, large for codes far from it; every image carries the batch's MMD."""
    torch.manual_seed(0)
    z, p = torch.randn(7, 3) + 0.5, torch.randn(7, 3)
    n, dim = z.shape

    def k(a, b, c):
        return c / (c + float((a - b).pow(2).sum()))

    want = 0.0
    for s in SCALES:
        c = 2 * dim * s
        zz = sum(k(z[i], z[j], c) for i in range(n) for j in range(n) if i != j)
        pp = sum(k(p[i], p[j], c) for i in range(n) for j in range(n) if i != j)
        zp = sum(k(z[i], p[j], c) for i in range(n) for j in range(n))
        want += (zz + pp) / (n * (n - 1)) - 2 * zp / n**2
    assert float(imq_mmd(z, p)) == pytest.approx(want, rel=1e-5)
    near = imq_mmd(torch.randn(500, 4), torch.randn(500, 4))
    far = imq_mmd(torch.randn(500, 4) + 3, torch.randn(500, 4))
    assert abs(float(near)) < 0.02 < float(far)
    m = build_model("wae", image_shape=(1, 8, 8), latent_dim=3, hidden_dim=8).eval()
    out = m(torch.rand(5, 1, 8, 8))
    assert out.kl.shape == (5,) and torch.equal(out.kl, out.kl[:1].expand(5))
    assert out.posterior.kl() is None and not m.has_kl and m.has_regulariser


def test_wae_trains_on_digits_and_its_mmd_falls(tmp_path):
    """A real run: the loss and the MMD to N(0, I) fall over a few epochs, and samples
    decoded from the prior are images in [0, 1]."""
    cfg = TrainConfig(dataset="digits", model="wae", epochs=6, batch_size=64, val_size=200,
                      seed=0)  # fmt: skip
    run = train(cfg, {"latent_dim": 2}, root=tmp_path)
    assert run.status()["state"] == "done"
    rows = run.metrics()
    first, last = rows[0], rows[-1]
    assert last["train_loss"] < first["train_loss"]
    assert last["train_kl"] < 0.5 * first["train_kl"], (first["train_kl"], last["train_kl"])
    assert last["val_kl"] < first["val_kl"]
    m, _ = load_model(run.checkpoint_path)
    s = m.sample(32, generator=torch.Generator().manual_seed(0))
    assert s.shape == (32, 1, 8, 8) and float(s.min()) >= 0 and float(s.max()) <= 1
    codes = m.embed(datalib.load("digits", "test").images[:300]).detach()
    assert abs(float(codes.mean())) < 0.5 and 0.3 < float(codes.std()) < 2  # near N(0, I)
