"""Tests of core.importer: a checkpoint of ours becomes a finished run every page can open
and the trainer can resume; anything else is refused with one sentence and leaves the runs
folder untouched."""

from __future__ import annotations

import io
import json

import pytest
import torch

from core.importer import import_checkpoint
from core.models import FAMILIES, build_model
from core.runs import CheckpointError, list_runs, load_model, read_checkpoint
from core.train import run_in_dir


@pytest.mark.parametrize("family", list(FAMILIES))
def test_import_bytes_rebuilds_the_same_model(tiny_runs, tmp_path, family):
    src = tiny_runs[family]
    data = src.checkpoint_path.read_bytes()
    run = import_checkpoint(data, f"{family}.pt", root=tmp_path)

    assert [r.id for r in list_runs(tmp_path)] == [run.id]
    assert run.name == family  # the file name without its extension
    st = run.status()
    assert st["state"] == "done" and st["epoch"] == 2
    cfg = run.config()
    assert cfg["train"]["model"] == family and cfg["train"]["dataset"] == "digits"
    assert cfg["imported_from"] == f"{family}.pt"
    assert cfg["dataset"]["image_shape"] == [1, 8, 8]
    assert run.checkpoint_path.read_bytes() == data
    assert [m["epoch"] for m in run.metrics()] == [m["epoch"] for m in src.metrics()] == [1, 2]

    a, _ = load_model(src.checkpoint_path)
    b, _ = load_model(run.checkpoint_path)
    z = a.prior_z(4, generator=torch.Generator().manual_seed(0))
    y = torch.arange(4) if a.conditional else None
    torch.testing.assert_close(a.decode(z, y), b.decode(z, y))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_imported_run_resumes(tiny_runs, tmp_path, family):
    """config.json written around the checkpoint is complete: the trainer rebuilds the same
    network from it and continues with the stored optimizer state."""
    run = import_checkpoint(tiny_runs[family].checkpoint_path, "upload.pt", root=tmp_path)
    run_in_dir(run, resume=True, epochs=3)
    assert run.status()["state"] == "done"
    assert read_checkpoint(run.checkpoint_path)["epoch"] == 3
    assert [m["epoch"] for m in run.metrics()] == [1, 2, 3]


def test_import_from_path_with_a_name(tiny_runs, tmp_path):
    run = import_checkpoint(tiny_runs["mlp-vae"].checkpoint_path, root=tmp_path, name=" mine ")
    assert run.name == "mine"
    assert run.path.parent == tmp_path
    assert json.loads((run.path / "status.json").read_text())["message"].startswith("imported")


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _refusals(tiny_runs):
    model, ckpt = load_model(tiny_runs["mlp-vae"].checkpoint_path)
    unknown = dict(ckpt, model_name="transformer")
    broken = dict(ckpt, state_dict={k: v[:1] for k, v in ckpt["state_dict"].items()})
    newer = dict(ckpt, format_version=99)
    return {
        "random bytes": (bytes(range(256)) * 8, "not the zip archive torch.save writes"),
        "empty file": (b"", "is empty"),
        "plain state_dict": (_torch_bytes(model.state_dict()), "not a latent-lab checkpoint"),
        "pickled module": (
            _torch_bytes(build_model("mlp-vae", image_shape=(1, 8, 8))),
            "not loaded for safety",
        ),  # fmt: skip
        "unknown model": (_torch_bytes(unknown), "could not be rebuilt"),
        "wrong shapes": (_torch_bytes(broken), "could not be rebuilt"),
        "newer format": (_torch_bytes(newer), "newer version"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "random bytes",
        "empty file",
        "plain state_dict",
        "pickled module",
        "unknown model",
        "wrong shapes",
        "newer format",
    ],
)
def test_refuses_what_is_not_ours(tiny_runs, tmp_path, case):
    data, words = _refusals(tiny_runs)[case]
    root = tmp_path / "runs"
    with pytest.raises(CheckpointError, match=words) as err:
        import_checkpoint(data, "upload.pt", root=root)
    msg = str(err.value)
    assert msg.startswith("upload.pt") and "\n" not in msg
    assert not root.exists() or list(root.iterdir()) == []


def test_refuses_a_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="No file at"):
        import_checkpoint(tmp_path / "nope.pt", root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
