"""core.losses against independent computations: each reconstruction term, weighted mixes,
the loss-spec parser's refusals, the KL warm-up rule and the Gaussian KL of the VAEs."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from core import data as datalib
from core.losses import (
    fit_window,
    kl_weight,
    parse_loss,
    reconstruction_terms,
    ssim_padded_per_image,
    ssim_per_image,
    total_loss,
)
from core.models import ConfigError, Output, build_model


def digits(n: int = 6) -> torch.Tensor:
    """The first ``n`` real 8x8 digit images, (n, 1, 8, 8) in [0, 1]."""
    return datalib.load("digits", "train").images[:n].clone()


def logits_and_targets(seed: int = 0, n: int = 5):
    g = torch.Generator().manual_seed(seed)
    x = digits(n)
    logits = torch.randn(x.shape, generator=g) * 3
    return logits, x


def one_sentence(msg: str) -> None:
    assert "\n" not in msg and msg.endswith("."), msg
    assert len(re.findall(r"[.!?](?:\s|$)", msg)) == 1, msg


# ----------------------------------------------------------------------------- numpy SSIM
def gauss_window(size: int, sigma: float = 1.5) -> np.ndarray:
    r = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def numpy_ssim(a: np.ndarray, b: np.ndarray, window: int, pad: bool = False) -> float:
    """Mean SSIM of two single-channel images, Gaussian window (sigma 1.5), data range 1,
    valid positions only (or zero-padded borders when ``pad``), by explicit loops."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    if pad:
        p = window // 2
        a, b = np.pad(a, p), np.pad(b, p)
    w = gauss_window(window)
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for i in range(a.shape[0] - window + 1):
        for j in range(a.shape[1] - window + 1):
            pa, pb = a[i : i + window, j : j + window], b[i : i + window, j : j + window]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va = (w * pa * pa).sum() - ma**2
            vb = (w * pb * pb).sum() - mb**2
            cov = (w * pa * pb).sum() - ma * mb
            vals.append(
                ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return float(np.mean(vals))


# ----------------------------------------------------------------------------- terms
def test_bce_is_the_binary_cross_entropy_summed_over_pixels():
    logits, x = logits_and_targets()
    got = reconstruction_terms(logits, x, {"bce": 1.0})["bce"]
    p = 1 / (1 + np.exp(-logits.double().numpy()))
    t = x.double().numpy()
    by_hand = -(t * np.log(p) + (1 - t) * np.log(1 - p)).reshape(len(t), -1).sum(1)
    assert got.shape == (len(x),)
    np.testing.assert_allclose(got.numpy(), by_hand, rtol=1e-5)


def test_bce_is_stable_for_large_logits():
    x = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    logits = torch.tensor([[[[-200.0, 200.0], [-200.0, 200.0]]]])  # two right, two wrong by 200
    got = reconstruction_terms(logits, x, {"bce": 1.0})["bce"]
    assert torch.isfinite(got).all()
    assert float(got[0]) == pytest.approx(400.0, rel=1e-6)  # -log(sigmoid(-200)) ~ 200, twice


def test_mse_is_the_squared_error_of_the_sigmoid_summed_over_pixels():
    logits, x = logits_and_targets(1)
    got = reconstruction_terms(logits, x, {"mse": 1.0})["mse"]
    xhat = 1 / (1 + np.exp(-logits.double().numpy()))
    by_hand = ((xhat - x.double().numpy()) ** 2).reshape(len(x), -1).sum(1)
    np.testing.assert_allclose(got.numpy(), by_hand, rtol=1e-5)


@pytest.mark.parametrize("window", [3, 5, 7])
def test_ssim_matches_a_loop_implementation(window):
    x = digits(4)
    g = torch.Generator().manual_seed(2)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    got = ssim_per_image(x, y, window)
    want = [numpy_ssim(a[0].numpy(), b[0].numpy(), window) for a, b in zip(x, y, strict=True)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)


def test_ssim_of_identical_images_is_one_and_of_the_negative_is_below_zero():
    x = digits(6)
    assert torch.allclose(ssim_per_image(x, x, 7), torch.ones(6), atol=1e-5)
    neg = ssim_per_image(x, 1 - x, 7)
    assert (neg < 0).all(), neg


def test_padded_ssim_matches_a_loop_implementation_with_zero_borders():
    x = digits(3)
    g = torch.Generator().manual_seed(3)
    y = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    got = ssim_padded_per_image(x, y, window=5)
    want = [numpy_ssim(a[0].numpy(), b[0].numpy(), 5, pad=True) for a, b in zip(x, y, strict=True)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)
    assert torch.allclose(ssim_padded_per_image(x, x, 5), torch.ones(3), atol=1e-5)


def test_ssim_term_is_one_minus_ssim_times_the_pixel_count():
    logits, x = logits_and_targets(4)
    got = reconstruction_terms(logits, x, {"ssim": 1.0}, ssim_window=7)["ssim"]
    xhat = torch.sigmoid(logits)
    want = [
        (1 - numpy_ssim(a[0].numpy(), b[0].numpy(), 7)) * 64 for a, b in zip(xhat, x, strict=True)
    ]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-3)


def test_ssim_term_of_a_perfect_reconstruction_is_zero():
    x = digits(4).clamp(1e-4, 1 - 1e-4)
    logits = torch.log(x) - torch.log1p(-x)  # sigmoid(logits) == x
    got = reconstruction_terms(logits, x, {"ssim": 1.0}, ssim_window=7)["ssim"]
    assert torch.allclose(got, torch.zeros(4), atol=1e-3), got


@pytest.mark.parametrize(
    "window, shape, want",
    [(11, (1, 8, 8), 7), (5, (1, 8, 8), 5), (4, (1, 8, 8), 3), (11, (1, 28, 28), 11),
     (7, (3, 5, 9), 5)],
)  # fmt: skip
def test_fit_window_is_the_largest_odd_window_that_fits(window, shape, want):
    assert fit_window(window, shape) == want


def test_fit_window_refuses_a_window_below_one():
    with pytest.raises(ConfigError) as e:
        fit_window(0, (1, 8, 8))
    one_sentence(str(e.value))


@pytest.mark.parametrize(
    "spec, weights",
    [
        ("bce", {"bce": 1.0}),
        ("mse", {"mse": 1.0}),
        ("ssim", {"ssim": 1.0}),
        ("bce+0.5*ssim", {"bce": 1.0, "ssim": 0.5}),
        (" 2 * mse + .25*bce ", {"mse": 2.0, "bce": 0.25}),
        ("bce+bce", {"bce": 2.0}),
        ("3.*ssim", {"ssim": 3.0}),
    ],
)
def test_parse_loss_reads_terms_and_weights(spec, weights):
    assert parse_loss(spec) == weights


@pytest.mark.parametrize(
    "spec", ["bce+xyz", "", "   ", "bce+", "+bce", "bce*0.5", "nan*bce", "inf*mse", "-1*bce",
             "0.5**bce", "bce-ssim", "kl"],
)  # fmt: skip
def test_parse_loss_refuses_bad_specs_in_one_sentence(spec):
    with pytest.raises(ConfigError) as e:
        parse_loss(spec)
    msg = str(e.value)
    one_sentence(msg)
    assert "bce, mse, ssim" in msg


@pytest.mark.parametrize("spec", ["0*bce", "0*bce+0.0*ssim"])
def test_parse_loss_refuses_a_mix_of_zero_weights(spec):
    with pytest.raises(ConfigError):
        parse_loss(spec)


@pytest.mark.parametrize(
    "spec",
    ["x" * 5000, "bce+" * 3000, "0*bce+" * 1000 + "0*mse"],
    ids=["unreadable", "trailing-plus", "zero-weights"],
)
def test_a_refused_loss_repeats_only_its_start(spec):
    with pytest.raises(ConfigError) as e:
        parse_loss(spec)
    msg = str(e.value)
    one_sentence(msg)
    assert f"'{spec[:40]}…'" in msg and len(msg) < 200, msg


def test_weights_are_read_in_exponent_notation():
    assert parse_loss("bce+1e-3*ssim") == {"bce": 1.0, "ssim": 0.001}
    assert parse_loss("2.5E2*mse") == {"mse": 250.0}


@pytest.mark.parametrize(
    "spec", ["1e308*bce+1e308*bce", "9" * 400 + "*bce", "1e999*mse"], ids=["sum", "digits", "exp"]
)
def test_weights_too_large_are_told_as_such(spec):
    with pytest.raises(ConfigError) as e:
        parse_loss(spec)
    msg = str(e.value)
    one_sentence(msg)
    assert "too large" in msg and "Cannot read" not in msg, msg


@pytest.mark.parametrize("spec", ["bce+0.5*ssim", "2*mse+0.25*bce", "0.3*bce+1.5*mse+2*ssim"])
def test_a_mix_equals_the_weighted_sum_of_its_parts(spec):
    logits, x = logits_and_targets(5)
    weights = parse_loss(spec)
    parts = reconstruction_terms(logits, x, weights, ssim_window=7)
    alone = {
        t: reconstruction_terms(logits, x, {t: 1.0}, ssim_window=7)[t]
        for t in ("bce", "mse", "ssim")
    }
    for t in weights:  # each part is the unweighted term, the same as computed alone
        assert torch.allclose(parts[t], alone[t])
    kl = torch.rand(len(x), generator=torch.Generator().manual_seed(6)) * 10

    out = Output(logits, torch.zeros(len(x), 2), kl)
    loss, got = total_loss(out, x, weights, recon_weight=0.7, beta=2.5, ssim_window=7)
    recon = sum(w * alone[t] for t, w in weights.items())
    assert torch.allclose(got["recon"], recon, rtol=1e-6)
    assert torch.allclose(got["loss"], 0.7 * recon + 2.5 * kl, rtol=1e-6)
    assert float(loss) == pytest.approx(float((0.7 * recon + 2.5 * kl).mean()), rel=1e-6)


# ----------------------------------------------------------------------------- warm-up
@pytest.mark.parametrize(
    "beta, warmup, epoch, want",
    [
        (1.0, 0, 0, 1.0),  # no warm-up: the target from the first epoch
        (4.0, 0, 7, 4.0),
        (4.0, 4, 0, 0.0),  # ramps linearly from 0 ...
        (4.0, 4, 1, 1.0),
        (4.0, 4, 2, 2.0),
        (4.0, 4, 3, 3.0),
        (4.0, 4, 4, 4.0),  # ... to the target after the warm-up epochs
        (4.0, 4, 9, 4.0),  # and stays there
        (2.0, 2.5, 1, 0.8),  # fractional warm-up and epoch
        (2.0, 2.5, 1.25, 1.0),
        (0.0, 3, 2, 0.0),
    ],
)
def test_kl_weight_ramps_linearly_over_the_warmup(beta, warmup, epoch, want):
    assert kl_weight(beta, warmup, epoch) == pytest.approx(want)


# ----------------------------------------------------------------------------- Gaussian KL
def _vae(name: str, **args):
    torch.manual_seed(0)
    return build_model(name, image_shape=(1, 8, 8), num_classes=10, latent_dim=3, hidden_dim=16,
                       **args)  # fmt: skip


def test_vae_kl_to_the_standard_normal_is_the_closed_form():
    model = _vae("mlp-vae").eval()
    x = digits(8)
    with torch.no_grad():
        q = model.encode(x)
        mu, logvar = q["mu"].double(), q["logvar"].double()
        out = model(x)
    sigma = torch.exp(0.5 * logvar)
    want = kl_divergence(Normal(mu, sigma), Normal(torch.zeros_like(mu), 1.0)).sum(1)
    # and again from the textbook formula, in numpy
    m, s2 = mu.numpy(), sigma.numpy() ** 2
    by_hand = (0.5 * (s2 + m**2 - 1 - np.log(s2))).sum(1)
    assert out.kl.shape == (8,)
    np.testing.assert_allclose(out.kl.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.kl.numpy(), by_hand, rtol=1e-4, atol=1e-6)
    assert (out.kl > 0).all()


def test_vae_kl_for_shifted_posteriors_is_the_closed_form():
    """Push mu and logvar far from the prior through the heads' biases."""
    model = _vae("mlp-vae").eval()
    with torch.no_grad():
        model.mu.fc.bias.add_(torch.tensor([2.0, -1.0, 0.5]))
        model.logvar.fc.bias.add_(-1.5)
        x = digits(8)
        q = model.encode(x)
        out = model(x)
    mu, sigma = q["mu"].double(), torch.exp(0.5 * q["logvar"].double())
    want = kl_divergence(Normal(mu, sigma), Normal(0.0, 1.0)).sum(1)
    assert float(want.min()) > 0.5
    np.testing.assert_allclose(out.kl.numpy(), want.numpy(), rtol=1e-4)


def test_cvae_kl_to_its_class_prior_is_the_closed_form():
    model = _vae("cvae").eval()
    with torch.no_grad():
        model.prior_mu.copy_(torch.linspace(-2, 2, 30).reshape(10, 3))
        model.prior_logvar.copy_(torch.linspace(-1, 1, 30).reshape(10, 3).flip(0))
        x, y = digits(10), torch.arange(10)
        q = model.encode(x, y)
        out = model(x, y)
    mu, sigma = q["mu"].double(), torch.exp(0.5 * q["logvar"].double())
    pm = model.prior_mu.detach().double()[y]
    ps = torch.exp(0.5 * model.prior_logvar.detach().double()[y])
    want = kl_divergence(Normal(mu, sigma), Normal(pm, ps)).sum(1)
    np.testing.assert_allclose(out.kl.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)


def test_kl_of_a_posterior_equal_to_the_prior_is_zero():
    model = _vae("mlp-vae").eval()
    with torch.no_grad():  # zero heads: mu = 0 and logvar = 0 for every image
        for head in (model.mu, model.logvar):
            for p in head.parameters():
                p.zero_()
        out = model(digits(4))
    assert torch.allclose(out.kl, torch.zeros(4), atol=1e-7)
    assert math.isclose(float(out.kl.sum()), 0.0, abs_tol=1e-6)
