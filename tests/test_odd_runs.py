"""Runs whose contents the lab did not write itself (uploaded checkpoints, files edited on
disk, runs imported or repaired by earlier versions): the pages show them with one sentence
where something is missing, never a traceback, and they resume like runs trained here."""

from __future__ import annotations

import io
import json
import shutil
import socket
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from app.train_monitor import progress
from core import data as datalib
from core import jobs
from core.cli import main as cli_main
from core.config import validate_run
from core.importer import import_checkpoint
from core.runs import Run, read_checkpoint
from core.train import TrainConfig, train
from tests.test_pages_app import open_page, texts  # open_page: no exception on opening

ROOT = Path(__file__).resolve().parent.parent
PRETRAINED_FMNIST = ROOT / "pretrained" / "fmnist-mlp-vae-2d" / "checkpoint.pt"
# what earlier versions wrote as an imported or repaired mlp-vae's settings: every field of
# its config, with the conv and fcconv backbones' widths that the mlp backbone does not use
OLD_IMPORTED_ARGS = {"arch": "mlp", "channels": [32, 64], "class_prior": False,
                     "conditional": False, "dec_channels": 118, "enc_channels": 32,
                     "hidden_dim": 16, "latent_dim": 2}  # fmt: skip


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Run:
    """A finished 2-epoch mlp-vae run on the bundled digits."""
    cfg = TrainConfig(dataset="digits", model="mlp-vae", epochs=2, batch_size=128, val_size=100)
    return train(cfg, {"latent_dim": 2, "hidden_dim": 16}, root=tmp_path_factory.mktemp("src"),
                 name="tiny")  # fmt: skip


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(root))
    return root


def uploaded(source: Run | Path, root: Path, change=None, name: str = "upload.pt") -> Run:
    """A run's checkpoint (or a checkpoint file), changed by ``change`` and uploaded as the
    Runs page does."""
    path = source.checkpoint_path if isinstance(source, Run) else source
    ck = torch.load(path, weights_only=True)
    if change:
        change(ck)
    buf = io.BytesIO()
    torch.save(ck, buf)
    return import_checkpoint(buf.getvalue(), name, root=root)


# ----------------------------------------------------------------------------- null losses
def nan_val_loss(ck: dict) -> None:
    for row in ck["history"]:
        row["val_loss"] = float("nan")


def test_train_page_shows_an_upload_whose_validation_loss_is_nan(trained, runs):
    run = uploaded(trained, runs, nan_val_loss)
    assert all(m["val_loss"] is None for m in run.metrics())  # stored as null
    at = open_page("train")  # the newest run is watched by default
    no_exception(at)
    assert at.selectbox(key="train.watch").value == run.id
    assert texts(at.success) == "Finished: 2 epochs."  # no loss to show, and no "nan"


def test_train_page_shows_a_run_whose_metrics_were_edited_to_null(trained, runs):
    dst = runs / trained.id
    shutil.copytree(trained.path, dst)
    rows = [json.loads(line) for line in (dst / "metrics.jsonl").read_text().splitlines()]
    rows[-1].update(val_loss=None, seconds=None)
    (dst / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    at = open_page("train", **{"train.requested": trained.id})
    no_exception(at)
    assert texts(at.success) == "Finished: 2 epochs."


def test_progress_skips_epochs_without_a_time():
    status = {"state": "running", "step": 5, "total": 20, "epoch": 1, "epochs": 4}
    metrics = [{"epoch": 1, "seconds": None}, {"epoch": 2, "seconds": 1e308},
               {"epoch": 3, "seconds": 1e308}]  # fmt: skip
    frac, text = progress(status, metrics)  # no TypeError, no OverflowError
    assert frac == 0.25 and text.startswith("Epoch 2/4 · 25%") and "ETA" not in text
    _, text = progress(status, [{"epoch": 1, "seconds": None}, {"epoch": 2, "seconds": 4.0}])
    assert text.endswith("ETA 0:12")  # 4 s an epoch, 3 epochs' worth of steps left


# ----------------------------------------------------------------------------- no dataset
@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty data folder and a mirror nobody answers at."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the socket is: connections are refused
    monkeypatch.setenv("LATENTLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LATENTLAB_MIRROR", f"http://127.0.0.1:{port}/{{name}}/")
    datalib.clear_cache()
    yield
    datalib.clear_cache()


def relabelled_as_kmnist(ck: dict) -> None:
    ck["train_config"]["dataset"] = "kmnist"
    ck["dataset"]["name"] = "kmnist"
    ck["dataset"].pop("class_names", None)


@pytest.mark.parametrize("page", ["explore", "embeddings"])
def test_a_run_whose_dataset_is_not_here_is_told_in_one_sentence(runs, offline, page):
    """An upload relabelled as KMNIST, which is neither on disk, nor downloadable, nor
    bundled: the model pages say so and stop."""
    run = uploaded(PRETRAINED_FMNIST, runs, relabelled_as_kmnist, "kmnist.pt")
    at = open_page(page, {"run": run.id})
    no_exception(at)
    [err] = at.error
    msg = texts([err])
    assert msg.startswith("KMNIST is not in ") and "could not be downloaded" in msg, msg
    assert "DatasetError" not in msg and "Traceback" not in msg


# ----------------------------------------------------------------------------- resume
def test_an_imported_mlp_vae_keeps_only_the_settings_its_backbone_uses(trained, runs):
    run = uploaded(trained, runs)
    conf = run.config()
    args = conf["model"]["args"]
    assert not {"channels", "enc_channels", "dec_channels"} & set(args), args
    validate_run(TrainConfig(**conf["train"]), args)  # what the trainer checks: no refusal


def test_an_imported_mlp_vae_resumes_in_the_background(trained, runs):
    run = uploaded(trained, runs)
    jobs.resume(run, 3)
    st = jobs.wait(run, timeout=180)
    assert st["state"] == "done", (st, (run.path / "log.txt").read_text()[-500:])
    assert read_checkpoint(run.checkpoint_path)["epoch"] == 3
    assert [m["epoch"] for m in run.metrics()] == [1, 2, 3]


def test_a_run_imported_by_an_earlier_version_still_resumes(trained, runs):
    """Runs already on users' disks hold settings their backbone does not use: they are
    dropped on resume (they do not change the network), not refused."""
    run = uploaded(trained, runs)
    run.update_config(model={**run.config()["model"], "args": OLD_IMPORTED_ARGS})
    jobs.resume(run, 3)
    st = jobs.wait(run, timeout=180)
    assert st["state"] == "done", (st, (run.path / "log.txt").read_text()[-500:])
    assert [m["epoch"] for m in run.metrics()] == [1, 2, 3]
    # the command line resumes it as well
    run.update_config(model={**run.config()["model"], "args": OLD_IMPORTED_ARGS})
    assert cli_main(["--resume", str(run.path), "--epochs", "4", "--quiet"]) == 0
    assert [m["epoch"] for m in run.metrics()] == [1, 2, 3, 4]


def unusable(run: Run) -> None:
    """Settings the trainer refuses (a training size beyond the dataset's)."""
    run.update_config(train={**run.config()["train"], "train_size": 10**6})


def test_a_resume_the_trainer_would_refuse_is_refused_on_the_page(trained, runs):
    run = uploaded(trained, runs)
    unusable(run)
    at = open_page("train", **{"train.requested": run.id})
    no_exception(at)
    at.number_input(key=f"resume-to-{run.id}").set_value(3)
    [b] = [b for b in at.button if b.label == "Resume"]
    b.click().run()
    no_exception(at)
    msg = texts(at.error)
    assert msg.startswith("train_size 1,000,000 is more than the "), msg
    assert msg.count("\n") == 0
    assert run.state()["state"] == "done"  # no process was started to die
    assert not (run.path / "log.txt").exists()


def test_a_refused_resume_on_the_command_line_marks_the_queued_run_failed(trained, runs):
    """The training process refuses a run queued for it: the run says why, instead of
    staying queued (the page would call it interrupted and offer the same resume)."""
    run = uploaded(trained, runs)
    unusable(run)
    run.set_status("queued", message="resuming to 3 epochs")  # as core.jobs leaves it
    assert cli_main(["--resume", str(run.path), "--epochs", "3", "--quiet"]) == 2
    st = run.state()
    assert st["state"] == "failed"
    assert st["message"].startswith("train_size 1,000,000 is more than the ")
    assert read_checkpoint(run.checkpoint_path)["epoch"] == 2  # the checkpoint is kept
    assert [m["epoch"] for m in run.metrics()] == [1, 2]


def test_the_loss_mix_field_is_capped(runs):
    at = open_page("train")
    at.selectbox(key="train.loss").set_value("custom mix…").run()
    at.text_input(key="train.loss_custom").set_value("bce+" * 1000).run()
    no_exception(at)
    assert len(at.text_input(key="train.loss_custom").value) <= 100
