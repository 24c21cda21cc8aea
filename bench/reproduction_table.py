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
    conditional_tables()


def conditional_tables() -> None:
    """Per class, for each conditional entry: samples and real test images read by both
    judges, class swap (the label alone) by both, and sample variety."""
    for card_path in sorted(ZOO.glob("*/card.json")):
        c = json.loads(card_path.read_text())
        cond = c["metrics"].get("conditional")
        if not cond or "sharp" not in cond:
            continue
        config = json.loads((card_path.parent / "config.json").read_text())
        names = config["dataset"].get("class_names") or list(range(len(cond["per_class"])))
        sharp = cond["sharp"]
        rows = [
            ("samples, shipped judge", cond["per_class"]),
            ("samples, sharp judge", sharp["per_class"]),
            ("real test images, shipped judge", cond["judge_per_class"]),
            ("real test images, sharp judge", sharp["judge_per_class"]),
            ("swap, shipped judge", cond["swap"]["per_class"]),
            ("swap, sharp judge", sharp["swap"]["per_class"]),
            ("variety (samples / real)", cond["variety"]["per_class"]),
        ]
        print(f"\n`{c['name']}`, per class:\n")
        print("| | " + " | ".join(names) + " |")
        print("|" + "---|" * (len(names) + 1))
        for label, values in rows:
            print(f"| {label} | " + " | ".join(f"{v:.2f}" for v in values) + " |")


if __name__ == "__main__":
    main()
