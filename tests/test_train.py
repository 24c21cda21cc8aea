"""The trainer, run directories, resume, the CLI's errors, background jobs and evaluate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from app.train_monitor import progress
from core import data as datalib
from core import jobs
from core.evaluate import evaluate
from core.evaluate import main as evaluate_main
from core.runs import Run, list_runs, load_model
from core.train import TrainConfig, main, new_run_config, run_in_dir, train
from core.train import _attach_run as attach_run
from core.trainer import STRIP, Trainer, strip_index

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def cfg(**kw):
    base = dict(dataset="digits", model="mlp-vae", epochs=4, batch_size=64, val_size=200)
    return TrainConfig(**{**base, **kw})


def losses(run):
    return [r["train_loss"] for r in run.metrics()]


def test_training_on_digits_lowers_the_loss_and_fills_the_run_dir(tmp_path):
    run = train(cfg(epochs=5), {"latent_dim": 2, "hidden_dim": 64}, root=tmp_path)
    tl = losses(run)
    assert len(tl) == 5 and tl[-1] < 0.85 * tl[0], tl
    val = [r["val_loss"] for r in run.metrics()]
    assert val[-1] < val[0]
    assert run.status()["state"] == "done" and run.status()["epoch"] == 5
    for f in ("config.json", "status.json", "metrics.jsonl", "checkpoint.pt", "recon.png"):
        assert (run.path / f).is_file(), f
    assert run.cache_dir.is_dir()
    conf = run.config()
    assert conf["model"]["config"]["latent_dim"] == 2
    assert conf["dataset"]["image_shape"] == [1, 8, 8]
    assert [r.id for r in list_runs(tmp_path)] == [run.id]


@pytest.mark.parametrize("loss", ["ssim", "mse", "bce+0.5*ssim"])
def test_other_losses_train(tmp_path, loss):
    run = train(cfg(loss=loss, epochs=4, ssim_window=7), {"hidden_dim": 64}, root=tmp_path)
    tl = losses(run)
    assert tl[-1] < tl[0], (loss, tl)
    assert run.metrics()[-1]["val_ssim"] > run.metrics()[0]["val_ssim"] - 0.02


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    torch.use_deterministic_algorithms(True)
    try:
        straight = train(cfg(epochs=4), {"hidden_dim": 32}, root=tmp_path / "a")
        part = train(cfg(epochs=2), {"hidden_dim": 32}, root=tmp_path / "b")
        run_in_dir(part, resume=True, epochs=4)
    finally:
        torch.use_deterministic_algorithms(False)
    assert [r["epoch"] for r in part.metrics()] == [1, 2, 3, 4]
    assert part.status()["epoch"] == 4
    a, _ = load_model(straight.checkpoint_path)
    b, _ = load_model(part.checkpoint_path)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(va, vb, atol=1e-6), k
    assert losses(part)[2:] == pytest.approx(losses(straight)[2:], rel=1e-5)


def test_resume_needs_more_epochs(tmp_path):
    run = train(cfg(epochs=1), {"hidden_dim": 16}, root=tmp_path)
    with pytest.raises(ValueError, match="already has 1 epoch: "):
        run_in_dir(run, resume=True, epochs=1)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--latent-dim", "0"], "Latent size 0"),
        (["--lr", "-0.1"], "Learning rate must be a positive number"),
        (["--dataset", "nope"], "Unknown dataset 'nope'"),
        (["--model", "nope"], "Unknown model 'nope'"),
        (["--batch-size", "5000"], "larger than the 1437 training images"),
        (["--categories", "4"], "does not apply to mlp-vae"),
        (["--loss", "l1"], "Cannot read loss 'l1'"),
    ],
)
def test_bad_flags_exit_nonzero_with_one_sentence(tmp_path, capsys, argv, words):
    code = main(["--dataset", "digits", "--model", "mlp-vae", "--epochs", "1",
                 "--runs-dir", str(tmp_path), *argv])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and words in err and "\n" not in err, err


def test_cli_end_to_end_prints_run_dir(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "core.train", "--dataset", "digits", "--model", "fcconv-vae",
         "--epochs", "1", "--batch-size", "128", "--runs-dir", str(tmp_path), "--name", "cli"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().startswith("done: ") and "cli" in p.stdout
    bad = subprocess.run([sys.executable, "-m", "core.train", "--latent-dim", "0"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "Latent size 0" in bad.stderr


def test_help_explains_flags():
    p = subprocess.run([sys.executable, "-m", "core.train", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    for flag in ("--dataset", "--model", "--latent-dim", "--epochs", "--batch-size", "--lr",
                 "--optimizer", "--milestones", "--loss", "--ssim-window", "--recon-weight",
                 "--kl-weight", "--seed", "--device", "--resume", "--runs-dir", "--name",
                 "--conditional", "--no-conditional", "--categories", "--temperature"):  # fmt: skip
        assert flag in p.stdout, flag


def test_background_job_finishes_and_cancel_keeps_checkpoint(tmp_path):
    run = jobs.start(cfg(epochs=1), {"hidden_dim": 16}, name="bg", root=tmp_path)
    st = jobs.wait(run, timeout=180)
    assert st["state"] == "done", (st, run.log_path.read_text()[-2000:])
    long = jobs.start(cfg(epochs=400, val_size=0), {"hidden_dim": 16}, name="long",
                      root=tmp_path)  # fmt: skip
    for _ in range(600):
        if long.has_checkpoint():
            break
        __import__("time").sleep(0.1)
    jobs.cancel(long)
    st = jobs.wait(long, timeout=60)
    assert st["state"] == "cancelled", st
    assert long.has_checkpoint() and 1 <= st["epoch"] < 400
    resumed = jobs.resume(long, epochs=st["epoch"] + 1)
    assert jobs.wait(resumed, timeout=180)["state"] == "done"
    assert resumed.metrics()[-1]["epoch"] == st["epoch"] + 1


def test_run_whose_owner_is_gone_is_interrupted_whatever_pid_it_names(tmp_path):
    run = Run.create(new_run_config(cfg(), {}), tmp_path)
    assert jobs.refresh(run)["state"] == "queued"  # this process owns it
    run.release()  # as if the owner had been killed: the kernel drops its lock
    for pid in (2**22 + 12345, os.getpid(), 1):  # gone, alive but not the owner, init
        run.set_status("running", pid=pid)
        st = jobs.refresh(run)
        assert st["state"] == "interrupted" and st["restartable"], st
        assert "no checkpoint yet: restart it" in st["message"]


def test_evaluate_reports_the_protocol(tmp_path, capsys):
    run = train(cfg(model="cvae", epochs=3), {"hidden_dim": 64}, root=tmp_path)
    res = evaluate(run.path)
    for k in ("loss", "ssim", "ssim_padded", "knn", "kl_per_dim", "active_units"):
        assert k in res, k
    assert res["loss"]["bce_kl"] == pytest.approx(res["loss"]["bce"] + res["loss"]["kl"], 1e-3)
    assert 0 < res["ssim"] < 1 and res["knn"]["k"] == 5 and res["knn"]["model_dim"] == 10
    assert 0 <= res["conditional"]["sample_accuracy"] <= 1
    assert res["conditional"]["samples_per_class"] == 1000
    assert 0 <= res["conditional"]["recon_accuracy"] <= 1  # 3 epochs: may still be chance
    assert res["conditional"]["judge_test_accuracy"] > 0.85
    real = res["conditional"]["judge_per_class"]  # digits: 10 classes in the test split
    assert len(real) == 10 and min(real) > 0.5
    assert sum(real) / 10 == pytest.approx(res["conditional"]["judge_test_accuracy"], abs=0.03)
    assert run.evaluation() == json.loads(json.dumps(res))
    assert evaluate_main([str(run.path), "--json", "--no-judge"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "cvae"
    assert evaluate_main([str(tmp_path / "nothing")]) == 2


def test_cancel_before_training_starts_marks_cancelled(tmp_path):
    run = jobs.start(cfg(epochs=50), {"hidden_dim": 16}, name="early", root=tmp_path)
    assert run.status()["state"] == "queued"
    jobs.cancel(run)
    st = jobs.wait(run, timeout=30)
    assert st["state"] == "cancelled", st


def test_the_strip_shows_the_first_test_image_of_each_class(tmp_path):
    """digits has ten classes: the strip is the first test image of 0, 1, ..., 9 (the first
    ten test images hold only 0s and 5s), on top of their reconstructions."""
    test = datalib.load("digits", "test")
    assert set(test.labels[:8].tolist()) == {0, 5}  # what the strip showed before
    index = strip_index(test.labels)
    assert STRIP == 10 and test.labels[index].tolist() == list(range(10))
    for c, i in enumerate(index.tolist()):
        assert int(test.labels[i]) == c and c not in test.labels[:i].tolist()
    assert strip_index(test.labels).tolist() == index.tolist()  # the same every time
    two = torch.tensor([1, 1, 0, 1, 0, 1])  # fewer classes than the strip: file order fills
    assert strip_index(two, 4).tolist() == [2, 0, 1, 3]

    run = train(cfg(epochs=1), {"hidden_dim": 16}, root=tmp_path)
    png = Image.open(run.path / "recon.png").convert("L")
    pixels = torch.from_numpy(np.array(png)).float() / 255
    assert pixels.shape == (2 + 2 * 10, 2 + 10 * 10)  # 2 rows of 10 tiles of 8x8, padded
    for c, i in enumerate(index.tolist()):  # the top row is those test images, in order
        tile = pixels[2:10, 2 + 10 * c : 10 + 10 * c]
        assert torch.allclose(tile, test.images[i, 0], atol=1 / 255 + 1e-6), c


def test_the_status_says_which_epoch_and_phase_is_running(tmp_path):
    """status.json counts committed epochs; the page shows the epoch in progress ("Epoch
    1/2" during the first) and the validation phase with its number of test images."""
    run = Run.create(new_run_config(cfg(epochs=2, val_size=200), {"hidden_dim": 16}), tmp_path)
    try:
        trainer = Trainer(cfg(epochs=2, val_size=200), {"hidden_dim": 16}, run)
        attach_run(trainer, run)
        seen: dict[str, list[dict]] = {"setup": [], "batch": [], "validation": []}
        trainer.add_callback("on_setup", lambda t: seen["setup"].append(run.status()))
        trainer.add_callback("on_batch_end", lambda t: seen["batch"].append(run.status()))
        trainer.add_callback(
            "on_validation_start", lambda t: seen["validation"].append(run.status())
        )
        trainer.fit()
    finally:
        run.release()
    [loading] = seen["setup"]
    assert loading["state"] == "queued" and loading["phase"] == "loading"
    assert progress(loading, [])[1].startswith("Loading the dataset")
    first = seen["batch"][0]  # written at the first batch of epoch 1
    assert first["state"] == "running" and first["epoch"] == 0
    assert progress(first, [])[1].startswith("Epoch 1/2 · ")
    one, two = seen["validation"]
    assert (one["phase"], one["val_images"], one["epoch"]) == ("validating", 200, 0)
    assert two["epoch"] == 1 and two["step"] == two["total"]
    assert progress(one, [])[1].startswith("Epoch 1/2 · 50% · validating on 200 test images")
    assert progress(two, [])[1] == "Epoch 2/2 · 100% · validating on 200 test images"
    assert run.status()["phase"] == "training" and run.status()["epoch"] == 2
