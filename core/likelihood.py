"""Likelihood estimators of a model with a Gaussian posterior, in nats per image, with a
Bernoulli decoder (the summed binary cross-entropy of the logits, the seeds' unit):

- ``sampled_neg_elbo``: BCE of the image decoded from one draw z ~ q(z|x), plus the KL to
  the model's own prior: the loss a training loop reports, and DLA_interview's test
  protocol (its test loop calls the model in the mode that samples z). Repeated over
  ``draws`` independent draws of the whole set: mean and sd.
- ``iwae_nll``: the importance-weighted bound of Burda et al. (2016) with ``k`` draws,
  -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x) >= -log p(x); it tightens as k grows.

The z = posterior-mean figure of ``core.evaluate`` (``loss.bce_kl``) is neither: decoding
the mean scores lower than decoding draws, so it is not compared with a sampled figure.
The densities come from the posterior itself (``Posterior.log_prior_ratio``); families
without one (``has_density`` False: autoencoders, the discrete VAE, the auto-decoder)
have no figure here.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

DECODES = 20_000  # images decoded at once by the IWAE bound (memory: DECODES x pixels)


def supports(model) -> bool:
    """Whether the estimators apply: a model with an encoder and a Gaussian posterior."""
    if not (model.encodes and model.has_kl):
        return False
    x = torch.zeros((1, *model.image_shape), device=model.device)
    y = torch.zeros(1, dtype=torch.long, device=model.device) if model.conditional else None
    with torch.no_grad():
        return model.encode(x, y).has_density


def _log_px_given_z(model, z: torch.Tensor, x: torch.Tensor, y) -> torch.Tensor:
    """log p(x|z) of a Bernoulli decoder, per image: minus the summed BCE of its logits."""
    logits = model.decode_logits(z, y).float()
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def _batches(images, labels, batch, device, conditional):
    for i in range(0, len(images), batch):
        x = images[i : i + batch].to(device).float()
        y = labels[i : i + batch].to(device) if conditional else None
        yield x, y


@torch.no_grad()
def sampled_neg_elbo(model, images, labels=None, draws: int = 5, seed: int = 0,
                     batch: int = 1000) -> dict:  # fmt: skip
    """-ELBO with z drawn from q (BCE of one draw + KL), averaged over the images, for each
    of ``draws`` passes: {"mean", "sd", "draws", "per_draw"}."""
    model.eval()
    totals = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(draws):
            total = 0.0
            for x, y in _batches(images, labels, batch, model.device, model.conditional):
                q = model.encode(x, y)
                z = q.sample(1)[0]
                total += float((-_log_px_given_z(model, z, x, y) + q.kl()).sum())
            totals.append(total / len(images))
    t = torch.tensor(totals, dtype=torch.float64)
    sd = float(t.std()) if draws > 1 else 0.0
    return {"mean": float(t.mean()), "sd": sd, "draws": draws, "per_draw": totals}


@torch.no_grad()
def iwae_nll_per_image(model, images, labels=None, k: int = 50, seed: int = 0,
                       batch: int | None = None) -> torch.Tensor:  # fmt: skip
    """(N,) the importance-weighted upper bound on -log p(x) of each image, k draws each.
    At most about ``DECODES`` images are decoded at once: few images a batch for a large
    k, and the draws of one batch in chunks when k alone is larger."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    model.eval()
    batch = batch or max(1, DECODES // k)
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for x, y in _batches(images, labels, batch, model.device, model.conditional):
            q = model.encode(x, y)
            b = len(x)
            chunk = max(1, DECODES // b)
            log_w = []
            for j in range(0, k, chunk):
                n = min(chunk, k - j)
                z = q.sample(n)  # (n, B, L)
                xk = x.unsqueeze(0).expand(n, *x.shape).reshape(n * b, *x.shape[1:])
                yk = None if y is None else y.repeat(n)
                log_px = _log_px_given_z(model, z.reshape(n * b, -1), xk, yk).view(n, b)
                log_w.append(log_px + q.log_prior_ratio(z))
            out.append(-(torch.logsumexp(torch.cat(log_w), 0) - math.log(k)).cpu())
    return torch.cat(out).double()


def iwae_nll(model, images, labels=None, k: int = 50, seed: int = 0) -> dict:
    """The IWAE bound averaged over the images: {"mean", "k"} (nats per image)."""
    nll = iwae_nll_per_image(model, images, labels, k, seed)
    return {"mean": float(nll.mean()), "k": k}
