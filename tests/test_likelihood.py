"""The likelihood estimators (core.likelihood) against an independent computation: on the
shipped 2-D digits models, -log p(x) by numerical integration over a grid of the latent
plane (no sampling, no encoder density) must match the importance-weighted bound at large
k, and the estimators must order as theory says: IWAE(k=1) >= IWAE(k=50) >= -log p(x),
sampled -ELBO about IWAE(k=1)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from core import data as datalib
from core.evaluate import evaluate
from core.likelihood import iwae_nll_per_image, sampled_neg_elbo, supports
from core.runs import load_model

ZOO = Path(__file__).resolve().parent.parent / "pretrained"


def exact_nll(model, x, y, half_width=10.0, n=400) -> torch.Tensor:
    """-log p(x) = -log ∫ p(x|z) p(z) dz by a Riemann sum on an n x n grid spanning
    ±half_width posterior sds around each image's posterior mean (2-D latents only). The
    prior's density is written out here from the model's prior parameters; the decoder's
    Bernoulli log-likelihood is computed here too."""
    out = []
    with torch.no_grad():
        q = model.encode(x, y)
        for i in range(len(x)):
            mu, sd = q.mu[i].float(), (0.5 * q.logvar[i].float()).exp()
            g = torch.linspace(-1, 1, n)
            gx, gy = mu[0] + half_width * sd[0] * g, mu[1] + half_width * sd[1] * g
            z = torch.stack(torch.meshgrid(gx, gy, indexing="ij"), -1).reshape(-1, 2)
            log_cell = math.log(float((gx[1] - gx[0]) * (gy[1] - gy[0])))
            yi = None if y is None else y[i].repeat(len(z))
            logits = model.decode_logits(z, yi).float().flatten(1)
            target = x[i].flatten().expand_as(logits)
            log_px = (target * torch.nn.functional.logsigmoid(logits)
                      + (1 - target) * torch.nn.functional.logsigmoid(-logits)).sum(1)  # fmt: skip
            pm = torch.zeros(2) if q.prior_mu is None else q.prior_mu[i].float()
            plv = torch.zeros(2) if q.prior_logvar is None else q.prior_logvar[i].float()
            log_pz = (-0.5 * (math.log(2 * math.pi) + plv + (z - pm) ** 2 / plv.exp())).sum(1)
            out.append(-(torch.logsumexp(log_px + log_pz, 0) + log_cell).item())
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("entry", ["digits-mlp-vae-2d", "digits-cvae-l2"])
def test_estimators_agree_with_numerical_integration(entry):
    torch.set_num_threads(1)
    model, _ = load_model(ZOO / entry / "checkpoint.pt", "cpu")
    assert supports(model)
    test = datalib.load("digits", "test")
    x, y = test.images[:10], (test.labels[:10] if model.conditional else None)
    exact = exact_nll(model, x, y).mean().item()
    big = iwae_nll_per_image(model, x, y, k=5000).mean().item()
    k50 = iwae_nll_per_image(model, x, y, k=50).mean().item()
    k1 = torch.stack([iwae_nll_per_image(model, x, y, k=1, seed=s) for s in range(20)])
    elbo = sampled_neg_elbo(model, x, y, draws=20)
    assert abs(big - exact) < 0.1, (big, exact)
    assert k1.mean().item() > k50 > exact - 0.1
    # one draw's IWAE is a -ELBO with a sampled KL: the same expectation as the analytic KL
    spread = elbo["sd"] / 20**0.5 + k1.mean(1).std().item() / 20**0.5
    assert abs(elbo["mean"] - k1.mean().item()) < 4 * spread, (elbo, k1.mean())
    assert elbo["mean"] > exact and elbo["sd"] > 0 and len(elbo["per_draw"]) == 20


def test_models_without_a_density_have_no_bound(tiny_runs):
    for name in ("ae", "gumbel-vae", "autodecoder", "wae"):
        model, _ = load_model(tiny_runs[name].checkpoint_path, "cpu")
        assert not supports(model), name
    model, _ = load_model(tiny_runs["fcconv-vae"].checkpoint_path, "cpu")
    assert supports(model)
    with pytest.raises(ValueError, match="k must be at least 1"):
        iwae_nll_per_image(model, torch.zeros(2, 1, 8, 8), k=0)


def test_evaluate_reports_the_seeds_protocols_beside_z_mean(tiny_runs, capsys):
    from core.evaluate import main

    r = evaluate(tiny_runs["cvae"].path, save=False, judge=False, test_size=200)
    lik = r["likelihood"]
    assert (lik["draws"], lik["iwae_k"]) == (5, 50)
    # three different estimators (z = mean, one draw, 50 weighted draws); the bound is
    # tighter than one draw's -ELBO
    assert len({r["loss"]["bce_kl"], lik["neg_elbo_sampled"], lik["iwae_nll"]}) == 3
    assert lik["iwae_nll"] < lik["neg_elbo_sampled"] and lik["neg_elbo_sampled_sd"] > 0
    assert r["knn"]["snakers4"] is None  # the 8x8 digits have < 500 training images a class
    assert "likelihood" not in evaluate(tiny_runs["ae"].path, save=False, test_size=50)
    assert "likelihood" not in evaluate(tiny_runs["cvae"].path, save=False, judge=False,
                                        test_size=50, iwae_k=0)  # fmt: skip
    assert main([str(tiny_runs["cvae"].path), "--iwae-k", "-1"]) == 2
    assert capsys.readouterr().err == (
        "error: --iwae-k must be 0 (skip) to 100000 draws per image, got -1.\n"
    )
