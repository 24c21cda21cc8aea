"""Each label's own codes: a Gaussian mixture per label, fitted after training to where the
encoder puts that label's training images, to draw a conditional model's z from.

A CVAE is trained with one prior for every label (N(0, I), or a learned Gaussian per
label), and its encoder then places each label's images somewhere inside it. Where the
codes of a label do not fill their prior evenly, a draw from the prior lands where that
label's images never do, and the decoder draws an image of the label that no real one
resembles. Drawing z from a density fitted to the codes themselves (the "ex-post density
estimation" of Ghosh et al., 2020, here one density per label) samples what the encoder
actually uses. ``fit`` fits it: for each label a scikit-learn ``GaussianMixture`` with full
covariances on the posterior means of every training image of the label (encoded with the
label), the number of components K picked by the lowest BIC among ``K_CHOICES``: a
criterion on the codes alone, which never looks at a sample or a judge. REPRODUCTION.md
gives what it changes and when the rule was fixed.

The fit is a cache of the model and its training set: ``get`` reads it from
``<run>/cache/label-density.pt`` (for a read-only run, the shipped file or the runs folder's
``_cache``), and fits and writes it when it is missing or unreadable. A file that is not
exactly what ``save`` writes (shapes, finite numbers, a positive diagonal) is fitted again,
never trusted.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.models.base import check_temperature
from core.store import atomic, schema

K_CHOICES = (1, 2, 3, 4, 5, 6, 8, 10)
"""The numbers of components tried for each label; BIC picks one."""

REG_COVAR = 1e-4
"""Added to each covariance's diagonal (codes in unused dimensions barely move)."""

FILE_NAME = "label-density.pt"
FORMAT = 1
MAX_FILE_BYTES = 64 << 20  # a larger file is not read (fitted again instead)


def supports(model) -> bool:
    """True for a model whose z can be drawn from its labels' codes: conditional, a real
    vector latent, and an encoder that places an image in one pass."""
    return bool(model.conditional and model.continuous_latent and model.encodes)


def _need(model) -> None:
    if not supports(model):
        raise ValueError(
            "Drawing z from each label's own codes needs a conditional model with a "
            f"continuous latent and an encoder; this {model.family} model has "
            + ("no labels." if not model.conditional else "none.")
        )


@dataclass
class LabelDensity:
    """One Gaussian mixture over z per label: ``weights[c]`` (K,), ``means[c]`` (K, D) and
    ``scale_tril[c]`` (K, D, D), the Cholesky factors of the covariances."""

    weights: list[torch.Tensor]
    means: list[torch.Tensor]
    scale_tril: list[torch.Tensor]
    fit_seconds: float = 0.0

    @property
    def components(self) -> list[int]:
        return [len(w) for w in self.weights]

    @property
    def num_classes(self) -> int:
        return len(self.weights)

    @property
    def latent_dim(self) -> int:
        return int(self.means[0].shape[1])

    def sample(
        self,
        y: torch.Tensor,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """One z per label in ``y`` (n,), (n, D) on the CPU: a component by its weight,
        then a draw from it, ``temperature`` times as far from the component's mean."""
        y = torch.as_tensor(y).reshape(-1).cpu()
        z = torch.empty(len(y), self.latent_dim)
        for c in torch.unique(y).tolist():
            if not 0 <= c < self.num_classes:
                raise ValueError(f"Label {c} is not one of this model's {self.num_classes}.")
            rows = torch.nonzero(y == c).flatten()
            k = torch.multinomial(self.weights[c], len(rows), True, generator=generator)
            eps = torch.randn(len(rows), self.latent_dim, 1, generator=generator)
            z[rows] = self.means[c][k] + temperature * (self.scale_tril[c][k] @ eps).squeeze(-1)
        return z

    def gaussian(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Label ``c``'s mixture as one Gaussian: its mean (D,) and the Cholesky factor
        (D, D) of its covariance (within and between components)."""
        w, m, s = self.weights[c].double(), self.means[c].double(), self.scale_tril[c].double()
        mu = (w[:, None] * m).sum(0)
        within = (w[:, None, None] * (s @ s.transpose(-1, -2))).sum(0)
        between = ((m - mu).T * w) @ (m - mu)
        cov = within + between + 1e-9 * torch.eye(self.latent_dim, dtype=torch.float64)
        return mu, torch.linalg.cholesky(cov)

    def carry(self, z: torch.Tensor, y_from, y_to) -> torch.Tensor:
        """Each code (n, D) of label ``y_from`` moved to the same place in label ``y_to``'s
        codes: whitened by ``y_from``'s Gaussian (``gaussian``), coloured by ``y_to``'s (a
        style as far from the label's typical code, in the same directions). Labels: one
        or one per row."""
        z = torch.as_tensor(z).double().cpu()
        n = len(z)
        a = torch.as_tensor(y_from).reshape(-1).cpu().expand(n)
        b = torch.as_tensor(y_to).reshape(-1).cpu().expand(n)
        out = torch.empty_like(z)
        fits = {c: self.gaussian(c) for c in torch.unique(torch.cat([a, b])).tolist()}
        for pair in torch.unique(torch.stack([a, b], 1), dim=0).tolist():
            rows = torch.nonzero((a == pair[0]) & (b == pair[1])).flatten()
            (mu_a, l_a), (mu_b, l_b) = fits[pair[0]], fits[pair[1]]
            e = torch.linalg.solve_triangular(l_a, (z[rows] - mu_a).T, upper=False)
            out[rows] = mu_b + (l_b @ e).T
        return out.float()

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "weights": self.weights,
            "means": self.means,
            "scale_tril": self.scale_tril,
            "fit_seconds": float(self.fit_seconds),
        }

    @classmethod
    def from_dict(cls, d, num_classes: int, latent_dim: int) -> LabelDensity:
        """Check everything ``save`` writes; ValueError (one sentence) on anything else."""
        bad = ValueError("The saved label density is not one this model can use.")
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise bad
        parts = [d.get(k) for k in ("weights", "means", "scale_tril")]
        if not all(isinstance(p, list) and len(p) == num_classes for p in parts):
            raise bad
        for w, m, s in zip(*parts, strict=True):
            if not all(isinstance(t, torch.Tensor) and t.dtype == torch.float32 for t in (w, m, s)):
                raise bad
            k = len(w)
            if not (1 <= k <= max(K_CHOICES)) or w.shape != (k,):
                raise bad
            if m.shape != (k, latent_dim) or s.shape != (k, latent_dim, latent_dim):
                raise bad
            if not all(bool(torch.isfinite(t).all()) for t in (w, m, s)):
                raise bad
            if (w < 0).any() or abs(float(w.sum()) - 1) > 1e-3:
                raise bad
            if not bool((torch.diagonal(s, dim1=-2, dim2=-1) > 0).all()):
                raise bad
            if not torch.equal(s, torch.tril(s)):
                raise bad
        seconds = d.get("fit_seconds", 0.0)
        seconds = float(seconds) if isinstance(seconds, (int, float)) else 0.0
        return cls(*parts, fit_seconds=seconds if math.isfinite(seconds) else 0.0)


@torch.no_grad()
def fit(model, images: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> LabelDensity:
    """Fit each label's mixture to the posterior means of ``images`` (its training images)
    encoded with their ``labels``; K per label by the lowest BIC over ``K_CHOICES``."""
    _need(model)
    from sklearn.mixture import GaussianMixture

    t0 = time.perf_counter()
    codes = model._codes(images, labels).double().cpu().numpy()
    labels = torch.as_tensor(labels).cpu().numpy()
    weights, means, trils = [], [], []
    for c in range(model.num_classes):
        x = codes[labels == c]
        if len(x) < 2:
            raise ValueError(
                f"Label {c} has {len(x)} training image(s); each label needs at least 2 to "
                "fit where its codes lie."
            )
        best, best_bic = None, math.inf
        for k in K_CHOICES:
            if k > len(x):
                break
            gm = GaussianMixture(
                k, covariance_type="full", reg_covar=REG_COVAR, random_state=seed
            ).fit(x)
            bic = gm.bic(x)
            if bic < best_bic:
                best, best_bic = gm, bic
        weights.append(torch.tensor(best.weights_ / best.weights_.sum(), dtype=torch.float32))
        means.append(torch.tensor(best.means_, dtype=torch.float32))
        trils.append(torch.tensor(np.linalg.cholesky(best.covariances_), dtype=torch.float32))
    return LabelDensity(weights, means, trils, fit_seconds=time.perf_counter() - t0)


def save(density: LabelDensity, path: Path) -> None:
    atomic.write_with(path, lambda tmp: torch.save(density.to_dict(), tmp))


def load(path: Path, model) -> LabelDensity:
    """Read a saved density for ``model``. Raises OSError (unreadable) or ValueError (not
    a density for this model), each one sentence."""
    try:  # a plain file only: never through a link, never a pipe that would block
        raw = schema.read_bytes(Path(path), MAX_FILE_BYTES)
    except schema.Damaged as exc:
        raise ValueError("The saved label density is not one this model can use.") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError("The saved label density is not one this model can use.")
    try:
        d = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch's own errors alike
        raise ValueError("The saved label density is not one this model can use.") from exc
    return LabelDensity.from_dict(d, model.num_classes, model.latent_dim)


def get(run, model, train) -> LabelDensity:
    """The density of ``run``'s ``model``: read from the run's cache when a valid one is
    there, else fitted to ``train`` (its training split) and written to the cache (a disk
    that refuses it only loses the cache)."""
    _need(model)
    for p in run.cached(FILE_NAME):  # shipped first; never through a link
        try:
            return load(p, model)
        except (OSError, ValueError):
            continue
    density = fit(model, train.images, train.labels)
    try:
        save(density, run.cache_dir / FILE_NAME)
    except OSError:
        pass
    return density


@torch.no_grad()
def draw_images(
    model,
    n: int,
    y,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    density: LabelDensity | None = None,
) -> torch.Tensor:
    """``n`` images of labels ``y`` (one label or n): z from ``density`` when given (each
    label's own codes), else from the model's prior (``model.sample``)."""
    if density is None:
        return model.sample(n, y, generator=generator, temperature=temperature)
    t = check_temperature(temperature, model)
    y = torch.as_tensor(y).reshape(-1)
    if len(y) == 1:
        y = y.expand(n)
    z = density.sample(y, generator, t).to(model.device)
    return model.decode(z, y.to(model.device))
