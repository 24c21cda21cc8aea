"""A run summarised: one row of the runs table (plain values, damaged runs included), the
table of all runs, and the bordered run card that Home shows."""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd
import streamlit as st

from app.common import find_run, is_pretrained, recon_image
from app.text import md_escape, one_line
from core.runs import Run


# ----------------------------------------------------------------------------- run card
def run_summary(run: Run) -> dict:
    """One row of the runs table (plain values; a damaged run gets a row too)."""
    status = run.state()
    cfg = run.config_or_none() or {}
    t = cfg.get("train", {})
    m = cfg.get("model", {})
    metrics = run.metrics()
    last = metrics[-1] if metrics else {}
    ev = run.evaluation() or {}
    latent = (m.get("config") or {}).get("latent_dim", (m.get("args") or {}).get("latent_dim"))
    final = last.get("val_loss", last.get("train_loss"))
    ssim = ev.get("ssim", last.get("val_ssim"))
    knn = (ev.get("knn") or {}).get("model")
    created = cfg.get("created_at")
    return {
        "name": one_line(run.name, 80),
        "dataset": t.get("dataset"),
        "model": t.get("model") or m.get("name"),
        "latent": latent if isinstance(latent, int) else None,
        "epochs": status.get("epoch", last.get("epoch")),
        "state": status.get("state", "unknown"),
        "final loss": _num(final, 3),
        "SSIM": _num(ssim, 3),
        "KNN acc": _num(knn, 4),
        "created": datetime.fromtimestamp(created) if created else None,
        "source": "pretrained"
        if is_pretrained(run)
        else ("imported" if cfg.get("imported_from") else "trained"),
        "id": run.id,
    }


def _num(v, digits: int) -> float | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    return round(float(v), digits) if ok else None


def runs_table(runs: list[Run]) -> pd.DataFrame:
    rows = [run_summary(r) for r in runs]
    cols = [
        "name",
        "dataset",
        "model",
        "latent",
        "epochs",
        "state",
        "final loss",
        "SSIM",
        "KNN acc",
        "created",
        "source",
        "id",
    ]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("latent", "epochs", "final loss", "SSIM", "KNN acc"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def _epochs(n) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "no epochs yet"
    return f"{int(n)} epoch{'s' if int(n) != 1 else ''}"


def run_card(run: Run) -> None:
    """A bordered summary of a run: what it is, how far it got, its reconstructions."""
    s = run_summary(run)
    with st.container(border=True):
        left, right = st.columns([3, 2])
        left.markdown(f"#### {md_escape(s['name'])}")
        left.caption(
            md_escape(
                f"{s['model']} on {s['dataset']} · latent size {s['latent']} · "
                f"{_epochs(s['epochs'])} · {s['state']} · {s['source']}"
            )
        )
        c = left.columns(3)
        c[0].metric("Final loss", "–" if s["final loss"] is None else f"{s['final loss']:.2f}")
        c[1].metric("SSIM", "–" if s["SSIM"] is None else f"{s['SSIM']:.3f}")
        c[2].metric("KNN accuracy", "–" if s["KNN acc"] is None else f"{100 * s['KNN acc']:.1f}%")
        img = recon_image(run, width=420)
        if img is not None:
            right.image(img, caption="Test images (top) and reconstructions (bottom).")


def find_user_run(run_id: str | None) -> Run | None:
    return find_run(run_id)
