"""Latent-space geometry of the explorer: coordinate systems (``Basis``: the latent
dimensions or the principal directions of an encoded set), 2-D planes through latent space
and their ranges and grids, straight and spherical interpolation paths, and the plane
settings a page keeps in its URL, with the one strict parser of each kind of value a
link holds (whole numbers, finite numbers, pairs, axes).

A point's basis coordinates are ``s = (z - center) @ vectors.T``; a plane lets two of them
(``i``, ``j``) follow the mouse and fixes the others (``fixed``), so
``z = center + s @ vectors``. Pure numpy: nothing here touches a model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Basis",
    "Plane",
    "dims_basis",
    "pca_basis",
    "plane_extent",
    "grid_uv",
    "lerp",
    "slerp",
    "parse_int",
    "parse_float",
    "parse_pair",
    "format_pair",
    "parse_axes",
    "format_axes",
]


# ----------------------------------------------------------------------------- bases
@dataclass(frozen=True, eq=False)
class Basis:
    """A coordinate system of latent space.

    Attributes:
        kind: "dims" (the latent dimensions) or "pca" (principal directions).
        center: (L,) origin of the coordinates.
        vectors: (L, L) orthonormal rows; row k is the direction of coordinate k.
        names: one short name per coordinate ("z3", "PC1").
        variance: (L,) variance of the encoded set along each coordinate, when known.
    """

    kind: str
    center: np.ndarray
    vectors: np.ndarray
    names: tuple[str, ...]
    variance: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return len(self.center)

    def scores(self, z) -> np.ndarray:
        """Coordinates of latent vectors z (N, L) in this basis, (N, L)."""
        z = np.asarray(z, dtype=np.float64)
        return (z - self.center) @ self.vectors.T

    def latent(self, scores) -> np.ndarray:
        """Latent vectors (N, L) of basis coordinates (N, L)."""
        return self.center + np.asarray(scores, dtype=np.float64) @ self.vectors


def dims_basis(latent_dim: int, z: np.ndarray | None = None) -> Basis:
    """The latent dimensions themselves: scores are the raw coordinates z_k."""
    var = None if z is None else np.asarray(z, dtype=np.float64).var(0)
    return Basis(
        "dims",
        np.zeros(latent_dim),
        np.eye(latent_dim),
        tuple(f"z{k}" for k in range(latent_dim)),
        var,
    )


def pca_basis(z: np.ndarray) -> Basis:
    """Principal directions of an encoded set z (N, L), by variance, largest first.

    Every direction's largest entry is made positive, so the same data gives the same
    axes. With fewer points than dimensions the trailing directions complete an
    orthonormal basis (their variance is 0).
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2:
        raise ValueError("Principal directions need at least two encoded points.")
    mean = z.mean(0)
    zc = z - mean
    var, vecs = np.linalg.eigh(zc.T @ zc / (len(z) - 1))  # ascending; (L,), (L, L) columns
    order = np.argsort(-var, kind="stable")
    var, vt = np.clip(var[order], 0, None), vecs[:, order].T  # rows = directions
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])
    vt = vt * np.where(signs == 0, 1.0, signs)[:, None]
    return Basis("pca", mean, vt, tuple(f"PC{k + 1}" for k in range(len(vt))), var)


@dataclass(eq=False)
class Plane:
    """The 2-D slice ``z(u, v) = center + s @ vectors`` with ``s[i] = u``, ``s[j] = v`` and
    the other coordinates ``s[k] = fixed[k]``.

    Attributes:
        basis: the coordinate system.
        i, j: the coordinates on the horizontal and vertical axes.
        fixed: (L,) the other coordinates; None means the basis center (all zeros), i.e.
            for a PCA basis the mean of the encoded set.
    """

    basis: Basis
    i: int
    j: int
    fixed: np.ndarray | None = field(default=None)

    def __post_init__(self):
        n = self.basis.dim
        if n < 1:
            raise ValueError("A plane needs a latent space with at least one dimension.")
        if not (0 <= self.i < n and 0 <= self.j < n):
            raise ValueError(f"Axes must be coordinates 0..{n - 1}, got {self.i} and {self.j}.")
        if self.i == self.j and n > 1:
            raise ValueError("Pick two different axes for the plane.")
        self.fixed = (
            np.zeros(n) if self.fixed is None else np.asarray(self.fixed, np.float64).copy()
        )
        if self.fixed.shape != (n,):
            raise ValueError(f"fixed must hold {n} coordinates, got {self.fixed.shape}.")

    @property
    def names(self) -> tuple[str, str]:
        b = self.basis.names
        return b[self.i], (b[self.j] if self.j != self.i else "(none)")

    def to_z(self, uv) -> np.ndarray:
        """Plane coordinates (N, 2) -> latent vectors (N, L), float32."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        s = np.repeat(self.fixed[None, :], len(uv), 0)
        s[:, self.i] = uv[:, 0]
        if self.j != self.i:
            s[:, self.j] = uv[:, 1]
        return self.basis.latent(s).astype(np.float32)

    def affine(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(origin, du, dv)``, each (L,) float64, with ``to_z([(u, v)]) = origin + u du +
        v dv``: what a client needs to compute z at any point of the plane itself (the
        browser's decoder, ``app.explore_plane``)."""
        s = np.repeat(self.fixed[None, :], 3, 0).astype(np.float64)
        s[:, self.i] = 0.0
        s[:, self.j] = 0.0
        s[1, self.i] = 1.0
        if self.j != self.i:
            s[2, self.j] = 1.0
        z = self.basis.latent(s).astype(np.float64)
        return z[0], z[1] - z[0], z[2] - z[0]

    def to_uv(self, z) -> np.ndarray:
        """Latent vectors (N, L) -> their projection on the plane's axes, (N, 2)."""
        s = self.basis.scores(np.asarray(z).reshape(-1, self.basis.dim))
        v = s[:, self.j] if self.j != self.i else np.zeros(len(s))
        return np.stack([s[:, self.i], v], 1).astype(np.float32)


def plane_extent(plane: Plane, z: np.ndarray, n_std: float = 3.0) -> tuple[tuple, tuple]:
    """((u_min, u_max), (v_min, v_max)): the mean of the encoded set's plane coordinates
    plus or minus ``n_std`` standard deviations along each axis."""
    uv = plane.to_uv(z).astype(np.float64)
    mean, std = uv.mean(0), np.maximum(uv.std(0), 1e-3)
    lo, hi = mean - n_std * std, mean + n_std * std
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def grid_uv(extent, n: int) -> np.ndarray:
    """Plane coordinates of an n x n grid over ``extent``, row-major, (n*n, 2).

    Row 0 is the top of the picture (v = v_max), column 0 its left edge (u = u_min);
    both ends of each range are included."""
    if n < 1:
        raise ValueError("A grid needs at least one cell per side.")
    (u0, u1), (v0, v1) = extent
    us = np.linspace(u0, u1, n) if n > 1 else np.array([(u0 + u1) / 2])
    vs = np.linspace(v1, v0, n) if n > 1 else np.array([(v0 + v1) / 2])
    vv, uu = np.meshgrid(vs, us, indexing="ij")
    return np.stack([uu.ravel(), vv.ravel()], 1)


# ----------------------------------------------------------------------------- interpolation
def lerp(z0, z1, steps: int) -> np.ndarray:
    """``steps`` points on the straight line from z0 to z1 (both included), (steps, L)."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    return ((1 - t) * z0 + t * z1).astype(np.float32)


def slerp(z0, z1, steps: int) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985; White 2016 for latent spaces): the great
    arc between the directions of z0 and z1 with the norm interpolated linearly, so the
    path stays where a Gaussian prior has its mass instead of cutting through the
    low-norm middle. Parallel or zero vectors fall back to ``lerp``."""
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if n0 < 1e-8 or n1 < 1e-8:
        return lerp(z0, z1, steps)
    cos = float(np.clip(np.dot(z0 / n0, z1 / n1), -1.0, 1.0))
    omega = math.acos(cos)
    if omega < 1e-4 or math.pi - omega < 1e-4:
        return lerp(z0, z1, steps)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    a = np.sin((1 - t) * omega) / math.sin(omega)
    b = np.sin(t * omega) / math.sin(omega)
    direction = a * (z0 / n0) + b * (z1 / n1)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    norm = (1 - t) * n0 + t * n1
    out = direction * norm
    out[0], out[-1] = z0, z1
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- URL values
# The one parser of each kind of value a link (or a browser component) hands the pages:
# strict, ASCII only (no superscripts or other scripts' digits, no underscores, no nan/inf),
# None for anything else. ``app.url_state`` reads the query string with them.
MAX_TEXT = 200  # characters of a value that are parsed at all
_INT = re.compile(r"[0-9]{1,18}")
_NUM = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_PAIR = re.compile(rf" *({_NUM}) *, *({_NUM}) *")
_AXES = re.compile(r" *(z|pc)([0-9]{1,18}) *, *(z|pc)([0-9]{1,18}) *")


def _text(text) -> str | None:
    return text if isinstance(text, str) and text.isascii() and len(text) <= MAX_TEXT else None


def parse_int(text, lo: int | None = None, hi: int | None = None) -> int | None:
    """ "42" -> 42: ASCII digits only (no spaces, underscores, decimal point or other
    scripts' digits; a leading minus only where ``lo`` allows negatives), in [lo, hi]."""
    text = _text(text)
    if text is None:
        return None
    negative = text.startswith("-") and (lo is None or lo < 0)
    digits = text[1:] if negative else text
    if not _INT.fullmatch(digits):
        return None
    v = -int(digits) if negative else int(digits)
    return v if (lo is None or v >= lo) and (hi is None or v <= hi) else None


def parse_float(value, limit: float = math.inf) -> float | None:
    """A number (or a decimal text such as "-1.5e3") as a finite float of magnitude at most
    ``limit``; None for anything else (bools, nan, inf, "1_0", other scripts' digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if _text(value) is None or not re.fullmatch(_NUM, value):
            return None
    elif not isinstance(value, int | float | np.integer | np.floating):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) and abs(f) <= limit else None


def parse_pair(text, limit: float = math.inf) -> tuple[float, float] | None:
    """ "0.5,-1.2" -> (0.5, -1.2), each finite and at most ``limit`` in magnitude; None for
    anything else."""
    m = _PAIR.fullmatch(_text(text) or "")
    if not m:
        return None
    u, v = parse_float(m.group(1), limit), parse_float(m.group(2), limit)
    return (u, v) if u is not None and v is not None else None


def format_pair(uv) -> str:
    return f"{float(uv[0]):.4g},{float(uv[1]):.4g}"


def parse_axes(text, latent_dim: int) -> tuple[str, int, int] | None:
    """ "z0,z3" -> ("dims", 0, 3); "pc1,pc2" -> ("pca", 0, 1); None when malformed or out
    of range."""
    m = _AXES.fullmatch((_text(text) or "").lower())
    if not m or m.group(1) != m.group(3):
        return None
    kind = "dims" if m.group(1) == "z" else "pca"
    off = 0 if kind == "dims" else 1
    i = parse_int(m.group(2), off, latent_dim - 1 + off)
    j = parse_int(m.group(4), off, latent_dim - 1 + off)
    if i is None or j is None or (i == j and latent_dim > 1):
        return None
    return kind, i - off, j - off


def format_axes(kind: str, i: int, j: int) -> str:
    return f"z{i},z{j}" if kind == "dims" else f"pc{i + 1},pc{j + 1}"
