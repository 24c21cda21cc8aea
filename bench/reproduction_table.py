"""Print the measured table of the pretrained zoo (from each card's core.evaluate result)
as Markdown (mean ± sd where the figure rests on random draws), for REPRODUCTION.md:
``python -m bench.reproduction_table``.

Re-measure a card with ``python -m core.evaluate pretrained/<entry> --json`` or rebuild it
from scratch with ``python pretrained/build.py --only <entry>``."""

from __future__ import annotations

import json
from pathlib import Path

ZOO = Path(__file__).resolve().parent.parent / "pretrained"


def fmt(v, nd=3):
    return "–" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def main() -> None:
    cols = ["entry", "model", "data", "epochs", "train s", "BCE+KL (z = mean)",
            "-ELBO (z sampled)", "IWAE-50", "MSE/px", "SSIM", "SSIM pad", "KNN model",
            "KNN PCA", "KNN snakers4 (model)", "active", "cond. acc", "judge acc"]  # fmt: skip
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for card_path in sorted(ZOO.glob("*/card.json")):
        c = json.loads(card_path.read_text())
        m = c["metrics"]
        cond = m.get("conditional", {})
        lik = m.get("likelihood") or {}
        sampled = lik.get("neg_elbo_sampled")
        sampled = "–" if sampled is None else f"{sampled:.1f} ± {lik['neg_elbo_sampled_sd']:.2f}"
        snk = (m["knn"].get("snakers4") or {}).get("model")
        snk = "–" if snk is None else f"{snk['mean']:.3f} ± {snk['sd']:.3f}"
        row = [
            c["name"], c["model"], c["dataset"], c["train_config"]["epochs"], c["train_seconds"],
            fmt(m["loss"].get("bce_kl"), 1), sampled, fmt(lik.get("iwae_nll"), 1),
            fmt(m["loss"].get("mse_per_pixel"), 4),
            fmt(m["ssim"]), fmt(m["ssim_padded"]), fmt(m["knn"]["model"]), fmt(m["knn"]["pca"]),
            snk,
            fmt(m.get("active_units")), fmt(cond.get("sample_accuracy")),
            fmt(cond.get("judge_test_accuracy")),
        ]  # fmt: skip
        print("| " + " | ".join(str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
