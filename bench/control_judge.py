"""A third judge of conditional samples, to tell the blur's effect apart from the network's:
the shipped judge's network and schedule (``core.metrics.train_judge``), trained on the sharp
real training images only. Its recipe was fixed on 2026-12-04 after the sharp judge had
scored the shipped conv CVAE, and before it scored any sample itself. It is not part of
``core.evaluate``: REPRODUCTION.md ("A third judge") reports what this prints.

    python -m bench.control_judge [RUN_OR_ENTRY ...]   # default: pretrained/fmnist-conv-cvae-l10

About 10 minutes on two CPU cores the first time (the judge is then cached in the data
folder's judges/), then about a minute a model. For each run it prints, as one JSON line,
``core.evaluate``'s reading of this judge (``judge_reading``: 1,000 prior samples a label,
the real test images, the model's reconstructions of them) and the class swap (100 test
images a label), overall and per class; for a model that supports it, also the samples
with z drawn from each label's own codes (``own_codes``, ``core.label_density``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from core import data as datalib
from core import label_density
from core.conditional_eval import class_swap_accuracy
from core.evaluate import judge_reading
from core.metrics import Judge, conditional_sample_accuracy, judge_file_name, load_or_train
from core.metrics import train_judge as _train
from core.runs import Run, load_model

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [ROOT / "pretrained" / "fmnist-conv-cvae-l10"]
RECIPE = "control: shipped judge's network and schedule, sharp images only, seed 0"


def control_judge(train, cache: Path) -> Judge:
    return load_or_train(
        judge_file_name(train, RECIPE, "control"),
        lambda: Judge(train.image_shape, train.num_classes),
        lambda: _train(train, blur=False),
        cache,
    )


@torch.no_grad()
def score(target: Path, judge: Judge, test) -> dict:
    """``core.evaluate``'s reading of one judge (samples, real test images, reconstructions)
    and the class swap, for one run."""
    ckpt = target / "checkpoint.pt" if target.is_dir() else target
    model, meta = load_model(ckpt)
    name = meta.get("dataset", {}).get("name") or meta.get("train_config", {}).get("dataset")
    if name != "fashion-mnist" or not model.conditional:
        raise SystemExit(f"{target}: this bench scores conditional Fashion-MNIST runs only.")
    model.eval()
    recon = torch.cat(
        [
            model.reconstruct(test.images[i : i + 1000], test.labels[i : i + 1000])
            for i in range(0, len(test), 1000)
        ]
    )
    swap = class_swap_accuracy(model, test, judge)
    out = {
        "run": str(target),
        **judge_reading(model, judge, test, recon, 1000),
        "swap": swap["accuracy"],
        "swap_per_class": swap["per_class"],
    }
    if label_density.supports(model):  # z from each label's own codes, the same seeds
        train = datalib.load("fashion-mnist", "train")
        density = (
            label_density.get(Run(target), model, train)
            if target.is_dir()
            else label_density.fit(model, train.images, train.labels)
        )
        own = conditional_sample_accuracy(model, judge, model.num_classes, 1000, density=density)
        out["own_codes"] = round(own["accuracy"], 4)
        out["own_codes_per_class"] = [round(v, 3) for v in own["per_class"]]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", type=Path, default=DEFAULT)
    a = p.parse_args(argv)
    train = datalib.load("fashion-mnist", "train")
    test = datalib.load("fashion-mnist", "test")
    t0 = time.perf_counter()
    judge = control_judge(train, datalib.default_data_dir() / "judges")
    print(json.dumps({"judge": RECIPE, "seconds": round(time.perf_counter() - t0, 1)}))
    for target in a.runs:
        print(json.dumps(score(target, judge, test)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
