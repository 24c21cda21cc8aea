"""Bad invocations of ``python -m core.train`` and ``python -m core.evaluate``: each case is
refused with exit status 2 and one sentence on stderr ("error: ..."), no traceback, no new
run folder, and the earlier run in the runs folder untouched. Most cases call the CLI's
``main`` in-process (the same code ``python -m`` runs); a few run real processes."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core import data as datalib
from core.cli import main
from core.config import TrainConfig, validate_run
from core.evaluate import main as evaluate_main
from core.runs import Run, read_checkpoint

ROOT = Path(__file__).resolve().parents[2]
NAN_BOMB = "9" * 400  # a float literal that overflows to inf
HUGE_LOSS = "9" * 400 + "*bce"


# ----------------------------------------------------------------------------- helpers
def one_sentence(line: str) -> None:
    assert line.startswith("error: "), line
    assert "\n" not in line and "Traceback" not in line and len(line) < 600, line
    assert not re.search(r"[.!?]\s+[A-Z]", line), f"more than one sentence: {line}"
    assert line.rstrip().endswith("."), line


def only_earlier(root: Path, earlier: Run) -> None:
    assert sorted(p.name for p in root.iterdir()) == [earlier.path.name]


def refused(capsys, run_main, argv: list[str], fragment: str, root: Path, earlier: Run) -> str:
    code = run_main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, (code, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    one_sentence(lines[0])
    assert fragment.lower() in lines[0].lower(), lines[0]
    only_earlier(root, earlier)
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def idx_bytes(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def idx_folder(folder: Path, n_train=30, n_test=9, shape=(12, 10)) -> Path:
    """A valid idx:<folder>: the four files, the train images gzipped."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        labels = rng.integers(0, 3, n, dtype=np.uint8)
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
        blob = idx_bytes(images)
        if prefix == "train":
            (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(blob))
        else:
            (folder / f"{prefix}-images-idx3-ubyte").write_bytes(blob)
    return folder


def bomb_member_file(path: Path, header: bytes, payload: int) -> None:
    """A gzip file that inflates to ``header`` plus ``payload`` zero bytes, made of
    concatenated gzip members (each 1 MiB of zeros compresses to about 1 KB), so a 1 GiB
    bomb is written in milliseconds and weighs about 1 MB."""
    chunk = gzip.compress(b"\0" * (1 << 20), compresslevel=9)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(header))
        for _ in range(payload >> 20):
            fh.write(chunk)
        fh.write(gzip.compress(b"\0" * (payload & ((1 << 20) - 1))))


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """No case may reach the network or read a developer's data folder."""
    monkeypatch.setenv("LATENTLAB_MIRROR", f"http://127.0.0.1:{closed_port()}/")
    monkeypatch.setenv("LATENTLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LATENTLAB_FMNIST_SYSTEM_DIR", str(tmp_path / "no-system-copy"))
    monkeypatch.delenv("LATENTLAB_MAX_PARAMS", raising=False)
    monkeypatch.delenv("LATENTLAB_MAX_IDX_BYTES", raising=False)
    datalib.clear_cache()
    yield
    datalib.clear_cache()


def new_run(root: Path, *extra: str) -> list[str]:
    return ["--dataset", "digits", "--epochs", "1", "--quiet", "--runs-dir", str(root), *extra]


# ----------------------------------------------------------------------------- bad values
GUMBEL = ("--model", "gumbel-vae", "--hidden-dim", "16")
MLP = ("--model", "mlp-vae", "--hidden-dim", "16")
BAD_VALUES = {
    # every float setting must be finite and in range
    "kl-weight nan": (("--kl-weight", "nan"), "finite"),
    "kl-weight inf": (("--kl-weight", "inf"), "finite"),
    "kl-weight overflow": (("--kl-weight", NAN_BOMB), "finite"),
    "kl-weight negative": (("--kl-weight", "-1"), "zero or positive"),
    "recon-weight nan": (("--recon-weight", "nan"), "finite"),
    "recon-weight -inf": (("--recon-weight=-inf",), "zero or positive"),
    "kl-warmup nan": (("--kl-warmup", "nan"), "finite"),
    "kl-warmup negative": (("--kl-warmup", "-2"), "zero or positive"),
    "kl-warmup inf": (("--kl-warmup", "inf"), "finite"),
    "lr nan": (("--lr", "nan"), "Learning rate"),
    "lr inf": (("--lr", "inf"), "Learning rate"),
    "lr zero": (("--lr", "0"), "Learning rate"),
    "lr absurd": (("--lr", "1e6"), "at most 10"),
    "lr-gamma nan": (("--lr-gamma", "nan", "--milestones", "1"), "lr_gamma"),
    "lr-gamma zero": (("--lr-gamma", "0", "--milestones", "1"), "lr_gamma"),
    "lr-gamma above 1": (("--lr-gamma", "5", "--milestones", "1"), "at most 1"),
    "weight-decay nan": (("--weight-decay", "nan"), "Weight decay"),
    "weight-decay negative": (("--weight-decay", "-0.1"), "Weight decay"),
    "weight-decay inf": (("--weight-decay", "inf"), "finite"),
    "temperature nan": ((*GUMBEL, "--temperature", "nan"), "finite"),
    "temperature inf": ((*GUMBEL, "--temperature", "inf"), "finite"),
    "temperature zero": ((*GUMBEL, "--temperature", "0"), "positive"),
    "min-temperature nan": ((*GUMBEL, "--min-temperature", "nan"), "finite"),
    "min-temperature negative": ((*GUMBEL, "--min-temperature", "-1"), "positive"),
    "min above initial temperature": (
        (*GUMBEL, "--temperature", "0.5", "--min-temperature", "1"),
        "floor",
    ),
    "anneal-rate nan": ((*GUMBEL, "--anneal-rate", "nan"), "finite"),
    "anneal-rate negative": ((*GUMBEL, "--anneal-rate", "-0.1"), "anneal_rate"),
    "anneal-rate inf": ((*GUMBEL, "--anneal-rate", "inf"), "finite"),
    "loss weight overflows": (("--loss", HUGE_LOSS), "too large to compute with"),
    # absurd integers are capped before anything is built
    "latent-dim a billion": ((*MLP, "--latent-dim", "1000000000"), "too large"),
    "latent-dim zero": ((*MLP, "--latent-dim", "0"), "Latent size 0"),
    "latent-dim negative": ((*MLP, "--latent-dim", "-5"), "Latent size -5"),
    "latent-dim over the parameter cap": ((*MLP, "--latent-dim", "1000000"), "parameters"),
    "hidden-dim a hundred million": (("--model", "mlp-vae", "--hidden-dim", "100000000"), "large"),
    "hidden-dim zero": (("--model", "mlp-vae", "--hidden-dim", "0"), "positive"),
    "hidden-dim over the parameter cap": (
        ("--model", "mlp-vae", "--hidden-dim", "1000000"),
        "parameters",
    ),
    "batch-size zero": (("--batch-size", "0"), "Batch size"),
    "batch-size a trillion": (("--batch-size", str(10**12)), "Batch size"),
    "batch-size above the training images": (("--batch-size", "5000"), "1437 training images"),
    "epochs zero": (("--epochs", "0"), "Epochs"),
    "epochs a billion": (("--epochs", str(10**9)), "Epochs"),
    "categories one": ((*GUMBEL, "--categories", "1"), "2 categories"),
    "categories a billion": ((*GUMBEL, "--categories", str(10**9)), "categories"),
    "gumbel code too wide": ((*GUMBEL, "--latent-dim", "5000", "--categories", "5000"), "code"),
    "seed negative": (("--seed", "-1"), "seed"),
    "seed beyond 64 bits": (("--seed", str(2**64)), "seed"),
    "ssim-window even": (("--loss", "ssim", "--ssim-window", "4"), "odd"),
    "ssim-window huge": (("--loss", "ssim", "--ssim-window", "10001"), "SSIM window"),
    "train-size negative": (("--train-size", "-1"), "train_size"),
    "train-size above the dataset": (("--train-size", "5000"), "1,437 training images"),
    "val-size negative": (("--val-size", "-1"), "val_size"),
    "milestone zero": (("--milestones", "0"), "milestones"),
    "milestone a billion": (("--milestones", str(10**9)), "milestone"),
    # devices: auto, cpu, cuda, cuda:N and mps only
    "device meta": (("--device", "meta"), "Unknown device 'meta'"),
    "device tpu": (("--device", "tpu"), "Unknown device 'tpu'"),
    "device empty": (("--device", ""), "Unknown device"),
    "device cpu:0": (("--device", "cpu:0"), "Unknown device"),
    "device cuda:99": (("--device", "cuda:99"), "GPU"),
    # names and unreadable command lines
    "unknown dataset": (("--dataset", "nope"), "Unknown dataset 'nope'"),
    "unknown model": (("--model", "nope"), "Unknown model 'nope'"),
    "unknown loss": (("--loss", "l1"), "Cannot read loss 'l1'"),
    "unknown optimizer": (("--optimizer", "rmsprop"), "invalid choice"),
    "epochs not a number": (("--epochs=abc",), "invalid int value"),
    "unknown flag": (("--frobnicate",), "unrecognized arguments"),
}


@pytest.mark.parametrize("argv, fragment", BAD_VALUES.values(), ids=list(BAD_VALUES))
def test_bad_value_is_refused_before_a_run_folder(capsys, fault_root, earlier_run, argv, fragment):
    refused(capsys, main, new_run(fault_root, *argv), fragment, fault_root, earlier_run)


# ----------------------------------------------------------------------------- conflicts
CONFLICTS = {
    "cvae without labels": (("--model", "cvae", "--no-conditional"), "conditional by definition"),
    "hidden-dim on fcconv-vae": (("--model", "fcconv-vae", "--hidden-dim", "64"), "--hidden-dim"),
    "arch on mlp-vae": (("--model", "mlp-vae", "--arch", "conv"), "--arch does not apply"),
    "arch on conv-vae": (("--model", "conv-vae", "--arch", "fcconv"), "--arch does not apply"),
    "categories on mlp-vae": (("--model", "mlp-vae", "--categories", "4"), "--categories"),
    "temperature on ae": (("--model", "ae", "--temperature", "2"), "--temperature"),
    "anneal-rate on cvae": (("--model", "cvae", "--anneal-rate", "1"), "--anneal-rate"),
    "class prior on ae": (("--model", "ae", "--class-prior"), "--class-prior"),
    "class prior without labels": (("--model", "mlp-vae", "--class-prior"), "needs labels"),
    "kl-weight on ae": (("--model", "ae", "--kl-weight", "2"), "no KL term"),
    "kl-warmup on ae": (("--model", "ae", "--kl-warmup", "3"), "no KL term"),
    "hidden-dim on gumbel with fcconv": ((*GUMBEL, "--arch", "fcconv"), "--hidden-dim"),
    "lr-gamma without milestones": (("--lr-gamma", "0.5"), "--milestones"),
    "ssim-window without an ssim loss": (("--ssim-window", "7"), "no ssim term"),
    "amp on the cpu": (("--amp", "--device", "cpu"), "CUDA only"),
    "data-dir for digits": (("--data-dir", "/tmp"), "--data-dir does not apply"),
}


@pytest.mark.parametrize("argv, fragment", CONFLICTS.values(), ids=list(CONFLICTS))
def test_conflicting_flags_are_refused(capsys, fault_root, earlier_run, argv, fragment):
    refused(capsys, main, new_run(fault_root, *argv), fragment, fault_root, earlier_run)


RESUME_CONFLICTS = {
    "dataset": (("--dataset", "digits"), "--dataset cannot be given with --resume"),
    "model": (("--model", "ae"), "--model cannot"),
    "latent-dim": (("--latent-dim", "3"), "--latent-dim cannot"),
    "lr": (("--lr", "0.1"), "--lr cannot"),
    "device": (("--device", "cpu"), "--device cannot"),
    "name": (("--name", "other"), "--name cannot"),
    "runs-dir": (("--runs-dir", "elsewhere"), "--runs-dir cannot"),
    "milestones": (("--milestones",), "--milestones cannot"),
    "run-dir too": (("--run-dir", "{run}"), "not both"),
    "epochs not above the run's": (("--epochs", "2"), "already has 2 epochs"),
    "epochs= not above the run's": (("--epochs=1",), "already has 2 epochs"),
    "no epochs": ((), "already has 2 epochs"),
    "epochs zero": (("--epochs=0",), "Epochs"),
}


@pytest.mark.parametrize("extra, fragment", RESUME_CONFLICTS.values(), ids=list(RESUME_CONFLICTS))
def test_resume_takes_only_epochs(capsys, fault_root, earlier_run, extra, fragment):
    run = str(earlier_run.path)
    argv = ["--resume", run, *(a.replace("{run}", run) for a in extra)]
    refused(capsys, main, argv, fragment, fault_root, earlier_run)


def test_run_dir_takes_no_settings(capsys, fault_root, earlier_run):
    argv = ["--run-dir", str(earlier_run.path), "--dataset", "digits"]
    refused(capsys, main, argv, "--dataset cannot be given with --run-dir", fault_root, earlier_run)


def test_resume_of_a_missing_run(capsys, fault_root, earlier_run):
    argv = ["--resume", str(fault_root / "nothing"), "--epochs", "3"]
    refused(capsys, main, argv, "not a run directory", fault_root, earlier_run)


def test_resume_of_a_run_without_checkpoint(capsys, fault_root, earlier_run, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(earlier_run.path, bare)
    (bare / "checkpoint.pt").unlink()
    before = sorted(p.name for p in bare.iterdir())
    refused(capsys, main, ["--resume", str(bare), "--epochs", "3"], "checkpoint", fault_root,
            earlier_run)  # fmt: skip
    assert sorted(p.name for p in bare.iterdir()) == before


def test_resume_with_epochs_equals_form_continues(finished_run, tmp_path, capsys):
    """The reported fault: ``--epochs=3`` was ignored when resuming (argv string match)."""
    for i, form in enumerate((["--epochs=3"], ["--epochs", "4"])):
        copy = tmp_path / f"copy{i}"
        shutil.copytree(finished_run.path, copy, ignore=shutil.ignore_patterns(".lock"))
        assert main(["--resume", str(copy), *form, "--quiet"]) == 0, capsys.readouterr().err
        want = 3 if i == 0 else 4
        assert read_checkpoint(copy / "checkpoint.pt")["epoch"] == want
        assert Run(copy).config()["train"]["epochs"] == want


# ----------------------------------------------------------------------------- datasets
def test_missing_mnist_is_refused_before_a_run_folder(capsys, fault_root, earlier_run):
    argv = new_run(fault_root, "--dataset", "mnist", "--batch-size", "64")
    refused(capsys, main, argv, "could not be downloaded", fault_root, earlier_run)


def test_missing_cifar10_is_refused_before_a_run_folder(capsys, fault_root, earlier_run):
    argv = new_run(fault_root, "--dataset", "cifar10", "--model", "conv-vae")
    refused(capsys, main, argv, "could not be downloaded", fault_root, earlier_run)


def test_missing_idx_folder(capsys, fault_root, earlier_run, tmp_path):
    argv = new_run(fault_root, "--dataset", f"idx:{tmp_path / 'nowhere'}")
    refused(capsys, main, argv, "does not exist", fault_root, earlier_run)


def _break_bomb(folder: Path) -> str:
    path = folder / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (1024, 1024, 1024))
    bomb_member_file(path, header, 1 << 30)
    assert path.stat().st_size < 4 << 20
    return "decompression bomb"


def _break_truncated_plain(folder: Path) -> str:
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-50])
    return "header announces"


def _break_truncated_gzip(folder: Path) -> str:
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    return "Could not read"


def _break_label_count(folder: Path) -> str:
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(29, np.uint8)))
    return "announces 30 images but"


def _break_magic(folder: Path) -> str:
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros((30, 2, 2), np.uint8)))
    return "not an IDX label file"


def _break_test_shape(folder: Path) -> str:
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((9, 8, 8), np.uint8)))
    return "test images are 8x8"


def _break_missing_test(folder: Path) -> str:
    (folder / "t10k-labels-idx1-ubyte").unlink()
    return "has no t10k-labels-idx1-ubyte"


IDX_BREAKS = {
    "gzip bomb of 1 GiB": _break_bomb,
    "truncated plain file": _break_truncated_plain,
    "truncated gzip": _break_truncated_gzip,
    "labels fewer than images": _break_label_count,
    "labels with the image magic": _break_magic,
    "test images of another size": _break_test_shape,
    "test labels missing": _break_missing_test,
}


@pytest.mark.parametrize("break_it", IDX_BREAKS.values(), ids=list(IDX_BREAKS))
def test_bad_idx_dataset_is_refused_before_a_run_folder(
    capsys, fault_root, earlier_run, tmp_path, break_it
):
    folder = idx_folder(tmp_path / "idx")
    fragment = break_it(folder)
    argv = new_run(fault_root, "--dataset", f"idx:{folder}", "--model", "mlp-vae",
                   "--hidden-dim", "16", "--batch-size", "8", "--val-size", "5")  # fmt: skip
    refused(capsys, main, argv, fragment, fault_root, earlier_run)


# ----------------------------------------------------------------------------- memory and folders
def test_parameter_cap_from_the_environment(capsys, fault_root, earlier_run, monkeypatch):
    monkeypatch.setenv("LATENTLAB_MAX_PARAMS", "1000")
    argv = new_run(fault_root, *MLP)
    refused(capsys, main, argv, "LATENTLAB_MAX_PARAMS", fault_root, earlier_run)


def test_more_memory_than_is_free(capsys, fault_root, earlier_run, monkeypatch):
    monkeypatch.setattr("core.config.available_memory", lambda: 1_000_000)
    refused(capsys, main, new_run(fault_root, *MLP), "is free", fault_root, earlier_run)


def test_runs_dir_that_is_a_file(capsys, fault_root, earlier_run, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = new_run(fault_root, *MLP, "--runs-dir", str(blocker / "runs"))
    refused(capsys, main, argv, "not a folder", fault_root, earlier_run)
    assert blocker.read_text() == "not a folder"


def test_validate_run_uses_the_real_image_shape():
    """The reported false refusal: a conv-vae with three strided layers on CIFAR-10 (32x32)
    was checked against 28x28 and refused. Validated without the CIFAR files."""
    cfg = TrainConfig(dataset="cifar10", model="conv-vae", epochs=1, batch_size=64)
    mc = validate_run(cfg, {"channels": (8, 16, 32), "latent_dim": 8})
    assert mc.image_shape == (3, 32, 32) and mc.channels == (8, 16, 32)
    with pytest.raises(ValueError, match="divisible by 8, got 28x28"):
        validate_run(TrainConfig(dataset="mnist", model="conv-vae"), {"channels": (8, 16, 32)})


# ----------------------------------------------------------------------------- real processes
def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env["LATENTLAB_MIRROR"] = f"http://127.0.0.1:{closed_port()}/"
    return env


PROCESS_CASES = {
    "train device meta": (["core.train", "--device", "meta"], "Unknown device"),
    "train latent-dim a billion": (["core.train", "--latent-dim", "1000000000"], "too large"),
    "train kl-weight nan": (["core.train", "--kl-weight", "nan"], "finite"),
    "train resume epochs=": (["core.train", "--resume", "{run}", "--epochs=1"], "already has"),
    "evaluate device tpu": (["core.evaluate", "{run}", "--json", "--device", "tpu"], "tpu"),
    "evaluate missing run": (["core.evaluate", "{root}/nothing", "--json"], "does not exist"),
}


@pytest.mark.parametrize("argv, fragment", PROCESS_CASES.values(), ids=list(PROCESS_CASES))
def test_real_process_says_one_sentence(fault_root, earlier_run, argv, fragment):
    argv = [a.replace("{run}", str(earlier_run.path)).replace("{root}", str(fault_root))
            for a in argv]  # fmt: skip
    if argv[0] == "core.train" and "--resume" not in argv:
        argv += ["--dataset", "digits", "--runs-dir", str(fault_root)]
    p = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    one_sentence(lines[0])
    assert fragment in lines[0], lines[0]
    only_earlier(fault_root, earlier_run)


# ----------------------------------------------------------------------------- evaluate
def _junk(run: Path) -> str:
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    return "checkpoint"


def _cut(run: Path) -> str:
    ck = run / "checkpoint.pt"
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    return "checkpoint"


def _empty(run: Path) -> str:
    (run / "checkpoint.pt").write_bytes(b"")
    return "empty"


def _no_checkpoint(run: Path) -> str:
    (run / "checkpoint.pt").unlink()
    return "no checkpoint.pt"


def _other_dataset(run: Path) -> str:
    """A checkpoint that names a dataset of another image size than its network's."""
    folder = idx_folder(run.parent / "idx-12x10")
    ck = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    ck["dataset"]["name"] = f"idx:{folder}"
    ck["train_config"]["dataset"] = f"idx:{folder}"
    torch.save(ck, run / "checkpoint.pt")
    return "dataset"


EVALUATE_CASES = {
    "junk checkpoint": (_junk, []),
    "checkpoint cut in half": (_cut, []),
    "empty checkpoint": (_empty, []),
    "run without checkpoint": (_no_checkpoint, []),
    "checkpoint on another dataset": (_other_dataset, ["--no-judge"]),
    "device tpu": (lambda run: "Unknown device 'tpu'", ["--device", "tpu"]),
    "device meta": (lambda run: "Unknown device 'meta'", ["--device", "meta"]),
    "device cuda:7": (lambda run: "GPU", ["--device", "cuda:7"]),
    "negative test size": (lambda run: "--test-size", ["--test-size", "-1"]),
    "test size not a number": (lambda run: "invalid int", ["--test-size", "many"]),
    "unknown flag": (lambda run: "unrecognized", ["--epochs", "3"]),
}


@pytest.mark.parametrize("damage, extra", EVALUATE_CASES.values(), ids=list(EVALUATE_CASES))
def test_evaluate_refuses_bad_input(capsys, fault_root, earlier_run, tmp_path, damage, extra):
    target = tmp_path / "target"
    shutil.copytree(earlier_run.path, target, ignore=shutil.ignore_patterns(".lock"))
    fragment = damage(target)
    code = evaluate_main([str(target), "--json", "--test-size", "50", *extra])
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and not out, err
    one_sentence(lines[0])
    assert fragment.lower() in lines[0].lower(), lines[0]
    only_earlier(fault_root, earlier_run)


def test_evaluate_of_a_missing_run(capsys, fault_root, earlier_run):
    assert evaluate_main([str(fault_root / "nothing"), "--json"]) == 2
    one_sentence(capsys.readouterr().err.strip())
    only_earlier(fault_root, earlier_run)
