"""The progress of a precomputation of a run's views (``core.projections.precompute``):
its phases in order with their prior costs (:func:`plan`), and the :class:`Tracker` that
writes ``<run cache>/progress-n<n>-s<seed>.json`` as the job goes, with estimates that
update from what it measured.

A record holds ``state`` (running, done, failed), ``phase`` and ``stage`` (in words, with
``epoch k/N`` during umap-learn's optimisation), ``step``/``steps`` (the phase's place),
``started_at`` and ``elapsed``, ``fraction`` (of the whole job; never goes back) and
``estimate_s`` (the whole job's seconds as now estimated), and for UMAP's 2-D view (what
the page waits for) ``fraction_2d``, ``estimate_2d_s`` and ``ready_2d``; ``phases`` lists
the seconds of each phase that ran; ``pid`` and ``updated_at`` close it. Each epoch record
written passes the fault point ``projection-epoch`` (``core.store.faults``), where a test
can hold the worker.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from core.embed import PCA_DIMS
from core.projection_views import TITLES, VIEWS
from core.store import atomic, faults


def write_progress(path: Path, pid: int | None = None, **fields) -> None:
    atomic.write_json(path, dict(fields, pid=pid or os.getpid(), updated_at=time.time()))


@dataclass
class Phase:
    key: str
    text: str
    prior: float  # seconds on 2 idle cores, one thread, numba's cache warm (+ cold)
    first: bool = False  # part of UMAP's 2-D view (what the page waits for)


def plan(views, n: int, m: int, dim: int, cold: bool = False) -> list[Phase]:
    """The phases of a precomputation of ``views`` on ``n`` test images (``m`` training
    images for the KNN scores, UMAP scored in ``dim`` dimensions), in the order they run:
    UMAP's 2-D view first, then the thumbnail sheet, PCA and the model's views, and
    UMAP's full-dimensional KNN score last. Priors from ``python -m bench.embedding_timing``
    (its phase times divided by the load factor, :func:`load_factor`, they ran under)."""
    k, km = n / 1000, m / 1000
    epochs, fit_epochs = (500 if n <= 10000 else 200), (500 if m <= 10000 else 200)
    out = [Phase("start", "starting Python and loading the test images", 2.5)]
    if "umap" in views:
        out += [
            # cold: pynndescent and umap-learn compile their numba functions on import
            Phase("libraries", "loading umap-learn", 0.5 + cold * 9.0),
            Phase("load", "loading the model", 0.1, first=True),
            Phase("2d-pca", f"PCA of the pixels to {PCA_DIMS} dimensions", 0.05 + 0.02 * k, True),
            Phase("2d-neighbours", "exact neighbour search", 0.05 + 0.01 * k * k, True),
            Phase("2d-graph", "UMAP's neighbour graph and spectral start",
                  0.05 + 0.02 * k + cold * 2.5, True),  # fmt: skip
            Phase("2d-epochs", "UMAP optimisation", epochs * n * 1e-6 + cold * 1.0, True),
        ]  # fmt: skip
    else:
        out.append(Phase("load", "loading the model", 0.1))
    out.append(Phase("sheet", "the thumbnail sheet", 0.1 + 0.03 * k))
    out += [Phase(v, f"{TITLES[v]} and its KNN score", 0.3 + 0.15 * km) for v in VIEWS
            if v in views and v != "umap"]  # fmt: skip
    if "umap" in views:
        out += [
            Phase(
                "knn-fit",
                f"UMAP to {dim}-D of {m:,} training images: neighbours",
                1 + 0.7 * km + cold * 40.0,
            ),  # fmt: skip
            Phase(
                "knn-fit-epochs",
                f"UMAP to {dim}-D: optimisation",
                fit_epochs * m * 1e-6 * (1 + dim / 10),
            ),  # fmt: skip
            Phase("knn-transform", "UMAP of the test images: neighbours", 0.3 + 0.15 * k),
            Phase(
                "knn-transform-epochs",
                "UMAP of the test images: optimisation",
                epochs // 5 * n * 1e-6 * (1 + dim / 10),
            ),  # fmt: skip
        ]
    return out


def load_factor() -> float:
    """How much slower than on idle cores a job runs now: the run queue (1-minute load
    average) per core, at least 1."""
    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except OSError:
        return 1.0


class Tracker:
    """Writes a precomputation's progress file as it goes: the phase, its epochs, the
    share done, and estimates (of the whole job and of UMAP's 2-D view) that update from
    what was measured: phases that ran tell how fast this machine is against the priors,
    and a phase's optimisation epochs tell how long its remaining epochs take."""

    def __init__(self, path: Path, phases: list[Phase], started_at: float, listener=None,
                 clock=time.time, speed0: float = 1.0, **fields):  # fmt: skip
        self.path, self.phases, self.started, self.clock = path, phases, started_at, clock
        self.speed0 = speed0  # seconds per prior second before any phase was measured
        self.fields, self.listener = fields, listener
        self.i, self.entered, self.ran = 0, started_at, {}  # ran: key -> seconds
        self.last_2d = max((i for i, p in enumerate(phases) if p.first), default=-1)
        self.sub = None  # (k, total) of the current phase's epochs
        self.anchor = None  # (time, k) of its first epoch report after the first epoch
        self.seconds_2d = None
        self.fraction = self.fraction_2d = 0.0
        self.written = 0.0

    def _index(self, key: str) -> int | None:
        return next((i for i, p in enumerate(self.phases) if p.key == key), None)

    def enter(self, key: str, k: int | None = None, total: int | None = None) -> None:
        """Phase ``key`` has started (or, with ``k`` and ``total``: is at epoch k of total).
        Phases left out were cache hits; a phase before the current one is ignored."""
        now, i = self.clock(), self._index(key)
        if i is None or i < self.i:
            return
        moved = i > self.i
        if moved:
            self.ran[self.phases[self.i].key] = now - self.entered
            self.i, self.entered, self.sub, self.anchor = i, now, None, None
            if self.seconds_2d is None and 0 <= self.last_2d < i:
                self.seconds_2d = now - self.started
        anchored = False
        if k is not None and total:
            self.sub = (k, total)
            if self.anchor is None and k >= 1:
                self.anchor, anchored = (now, k), True  # the first epoch also compiled
        rec = self.write(force=moved or anchored or k is None or k >= (total or 0))
        if rec and k is not None:
            faults.point("projection-epoch")  # the tests hold a worker at an epoch written

    def _speed(self) -> float:
        """Measured seconds per prior second over the phases that ran (``speed0`` before
        they add up to half a prior second)."""
        pairs = [(s, p.prior) for p in self.phases if (s := self.ran.get(p.key)) is not None]
        prior = sum(b for _, b in pairs)
        if prior <= 0.5:
            return self.speed0
        return min(max(sum(a for a, _ in pairs) / prior, 0.3), 10.0)

    def estimates(self, now: float) -> tuple[float, float | None]:
        """(seconds the whole job takes, seconds until UMAP's 2-D view is ready), from the
        start, as now estimated."""
        speed, cur = self._speed(), self.phases[self.i]
        spent = now - self.entered
        if self.sub and self.anchor and self.sub[0] > self.anchor[1]:
            k, total = self.sub
            left = (total - k) * (now - self.anchor[0]) / (k - self.anchor[1])
        else:
            left = max(cur.prior * speed - spent, 0.25 * spent)
        elapsed = now - self.started
        later = self.phases[self.i + 1 :]
        whole = elapsed + left + speed * sum(p.prior for p in later)
        if self.seconds_2d is not None or self.last_2d < 0:
            return whole, self.seconds_2d
        to_2d = self.phases[self.i + 1 : self.last_2d + 1]
        return whole, elapsed + left + speed * sum(p.prior for p in to_2d)

    def write(self, force: bool = True, **extra) -> dict:
        now = self.clock()
        if not force and now - self.written < 0.5:
            return {}
        self.written = now
        cur = self.phases[self.i]
        whole, first = self.estimates(now)
        elapsed = now - self.started
        done = extra.get("state") == "done"
        self.fraction = 1.0 if done else max(self.fraction, min(elapsed / whole, 0.99))
        stage = cur.text
        if self.sub:
            stage += f", epoch {self.sub[0]}/{self.sub[1]}"
        rec = dict(self.fields, state="running", phase=cur.key, stage=stage, step=self.i,
                   steps=len(self.phases), started_at=self.started, elapsed=elapsed,
                   fraction=self.fraction, estimate_s=elapsed if done else whole,
                   phases=[[k, round(v, 3)] for k, v in self.ran.items()])  # fmt: skip
        if first is not None:
            ready = self.seconds_2d is not None
            self.fraction_2d = 1.0 if ready else max(self.fraction_2d, min(elapsed / first, 0.99))
            rec.update(fraction_2d=self.fraction_2d, estimate_2d_s=first, ready_2d=ready)
        rec.update(extra)
        write_progress(self.path, **rec)
        if self.listener:
            self.listener(rec)
        return rec

    def finish(self) -> dict:
        now = self.clock()
        self.ran[self.phases[self.i].key] = now - self.entered
        if self.seconds_2d is None and self.last_2d >= 0:
            self.seconds_2d = now - self.started
        self.i, self.sub = len(self.phases) - 1, None
        return self.write(state="done", stage="done", step=len(self.phases),
                          seconds=now - self.started)  # fmt: skip
