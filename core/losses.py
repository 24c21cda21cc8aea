"""Losses, reported per sample and by part.

Reconstruction terms (all per image, summed over pixels so they weigh against the KL
term in comparable units):
- ``bce``: binary cross-entropy of the decoder logits, in nats per image.
- ``mse``: sum of squared errors per image.
- ``ssim``: (1 - SSIM) times the number of pixels, SSIM from pytorch-msssim with a
  Gaussian window of ``ssim_window`` pixels (sigma 1.5). Scaling by the pixel count keeps
  it from being swamped by the KL term, so an SSIM-only VAE really trains.
A loss spec is one term or a weighted mix, e.g. ``"bce"``, ``"ssim"``, ``"bce+0.5*ssim"``.

The total is ``recon_weight * sum(w_i * term_i) + beta * kl``, with beta ramped linearly
from 0 over ``kl_warmup`` epochs when warm-up is on.
"""

from __future__ import annotations

import math
import re
import warnings

import torch
from pytorch_msssim import ssim as _ssim
from torch.nn import functional as F

from core.models.base import ConfigError

RECON_TERMS = ("bce", "mse", "ssim")
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"  # 2, 0.5, .5, 1e-3
_TERM = re.compile(rf"^\s*(?:({_NUMBER})\s*\*\s*)?([a-z]+)\s*$")
SHOWN = 40  # characters of a refused spec repeated in its error


def _shown(spec) -> str:
    """The start of a loss spec, as an error sentence repeats it."""
    text = str(spec)
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


def parse_loss(spec: str) -> dict[str, float]:
    """``"bce+0.5*ssim"`` -> {"bce": 1.0, "ssim": 0.5}; raises ConfigError on bad input."""
    terms: dict[str, float] = {}
    for part in str(spec).split("+"):
        m = _TERM.match(part)
        if not m or m.group(2) not in RECON_TERMS:
            raise ConfigError(
                f"Cannot read loss '{_shown(spec)}': use bce, mse, ssim or a weighted mix such "
                "as 'bce+0.5*ssim'."
            )
        terms[m.group(2)] = terms.get(m.group(2), 0.0) + float(m.group(1) or 1.0)
    if not all(math.isfinite(w) for w in terms.values()):
        raise ConfigError(
            f"The weights in loss '{_shown(spec)}' are too large to compute with: use weights "
            "such as 0.5 or 2."
        )
    if not any(w > 0 for w in terms.values()):
        raise ConfigError(
            f"Loss '{_shown(spec)}' weighs every term by zero, so nothing would be learned: "
            "give one term a positive weight, such as 'bce'."
        )
    return terms


def fit_window(window: int, image_shape) -> int:
    """The largest odd SSIM window <= ``window`` that fits the image (8x8 digits: 7)."""
    side = min(image_shape[-2:])
    w = min(int(window), side if side % 2 else side - 1)
    if w < 1:
        raise ConfigError("The SSIM window must be a positive odd number of pixels.")
    return w if w % 2 else w - 1


def ssim_per_image(x: torch.Tensor, y: torch.Tensor, window: int = 11) -> torch.Tensor:
    """SSIM (pytorch-msssim, valid convolution, sigma 1.5, data range 1) per image, (B,)."""
    w = fit_window(window, x.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pytorch-msssim warns when it skips tiny dims
        return _ssim(x.float(), y.float(), data_range=1.0, win_size=w, size_average=False)


def ssim_padded_per_image(
    x: torch.Tensor, y: torch.Tensor, window: int = 5, sigma: float = 1.5
) -> torch.Tensor:
    """SSIM with zero-padded borders (the pytorch-ssim variant that snakers4 logged).

    The Gaussian window is convolved with padding window // 2, so border pixels see zeros;
    on Fashion-MNIST's black borders this scores higher than the valid-convolution SSIM.
    """
    c = x.shape[1]
    g = torch.exp(
        -((torch.arange(window, dtype=torch.float32) - window // 2) ** 2) / (2 * sigma**2)
    )
    g = (g / g.sum()).to(x.device)
    k = (g[:, None] @ g[None, :]).expand(c, 1, window, window).contiguous()

    def blur(t):
        return F.conv2d(t, k, padding=window // 2, groups=c)

    x, y = x.float(), y.float()
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return m.flatten(1).mean(1)


def reconstruction_terms(
    logits: torch.Tensor, x: torch.Tensor, terms: dict[str, float], ssim_window: int = 11
) -> dict[str, torch.Tensor]:
    """Each requested reconstruction term per image (B,), unweighted."""
    out = {}
    logits = logits.float()
    if "bce" in terms:
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        out["bce"] = bce.flatten(1).sum(1)
    if "mse" in terms or "ssim" in terms:
        xhat = torch.sigmoid(logits)
        if "mse" in terms:
            out["mse"] = (xhat - x).pow(2).flatten(1).sum(1)
        if "ssim" in terms:
            pixels = x[0].numel()
            out["ssim"] = (1 - ssim_per_image(xhat, x, ssim_window)) * pixels
    return out


def kl_weight(beta: float, warmup_epochs: float, epoch: float) -> float:
    """beta ramped linearly from 0 to ``beta`` over ``warmup_epochs`` (0 = no warm-up)."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, epoch / warmup_epochs)


def total_loss(
    out,
    x: torch.Tensor,
    terms: dict[str, float],
    recon_weight: float = 1.0,
    beta: float = 1.0,
    ssim_window: int = 11,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Batch-mean loss to minimise, and the parts per image (B,) for reporting.

    Args:
        out: the model's ``Output`` (logits, z, kl).
        terms: parsed loss spec (``parse_loss``).
    Returns:
        (scalar loss, {"recon": (B,), "kl": (B,), "loss": (B,), and each term (B,)})
    """
    parts = reconstruction_terms(out.logits, x, terms, ssim_window)
    recon = sum(w * parts[name] for name, w in terms.items())
    per = recon_weight * recon + beta * out.kl
    parts.update(recon=recon, kl=out.kl, loss=per)
    return per.mean(), parts
