"""Data that ships with the lab: scikit-learn's 8x8 digits and the bundled test samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.data.registry import _SPECS, ImageData


def _load_digits(split: str) -> ImageData:
    from sklearn.datasets import load_digits

    pixels, targets = load_digits(return_X_y=True)  # (1797, 64) in 0..16, (1797,)
    test = np.arange(len(targets)) % 5 == 0
    keep = test if split == "test" else ~test
    images = torch.from_numpy(pixels[keep].reshape(-1, 1, 8, 8) / 16.0).to(torch.float32)
    labels = torch.from_numpy(targets[keep].astype(np.int64))
    return ImageData("digits", split, images.contiguous(), labels, [str(d) for d in range(10)])


# ----------------------------------------------------------------------------- bundled sample
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "pretrained" / "samples"
"""Small test-split samples shipped in the repository (pretrained/build.py writes them)."""


def bundled_sample(name: str) -> ImageData | None:
    """The bundled sample of a dataset's test split (e.g. 2,000 Fashion-MNIST test images),
    or None when the repository ships none for ``name``."""
    files = sorted(SAMPLES_DIR.glob(f"{name}-test-*.npz")) if name in _SPECS else []
    if not files:
        return None
    with np.load(files[-1]) as f:
        images = torch.from_numpy(f["images"].astype(np.float32) / 255.0)
        return ImageData(
            name=name,
            split="test",
            images=images.contiguous(),
            labels=torch.from_numpy(f["labels"].astype(np.int64)),
            class_names=[str(c) for c in f["class_names"]],
        )
