"""Headless tests of the Home, Train and Runs pages (streamlit.testing.v1.AppTest).

AppTest drives the real entry, app/main.py (router and sidebar run picker), and switches
to a page with ``switch_page("../pages/<page>.py")`` (paths are relative to app/). Runs that
the pages start are real training processes (core.jobs) on the bundled digits; tests that
change runs work on copies in a temporary runs folder.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from app.common import FIRST_PRETRAINED, WARM_MODULES, run_label
from app.text import os_error_sentence
from app.train_form import DATASET_DEFAULTS, check, model_defaults, model_knobs
from core import data as datalib
from core import jobs
from core.models import FAMILIES
from core.runs import Run, RunError, list_runs, load_model
from core.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
MAIN = str(ROOT / "app" / "main.py")


def open_page(page: str, query: dict | None = None, **state) -> AppTest:
    """AppTest of app/main.py on ``page`` (home, train, runs, ...), with session state set
    and the link's ``query`` parameters."""
    at = AppTest.from_file(MAIN, default_timeout=180)
    for k, v in state.items():
        at.session_state[k] = v
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page != "home":
        at.switch_page(f"../pages/{page}.py")
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r} among {[b.label for b in at.button]}"
    return found[0]


def texts(elements) -> str:
    """The elements' text as a reader sees it (Markdown backslash escapes removed)."""
    return re.sub(r"\\(.)", r"\1", "\n".join(str(e.value) for e in elements))


@pytest.fixture
def own_runs(tmp_path, monkeypatch, tiny_runs):
    """A fresh runs folder holding copies of two tiny runs (safe to rename and delete)."""
    root = tmp_path / "runs"
    root.mkdir()
    for fam in ("mlp-vae", "ae"):
        shutil.copytree(tiny_runs[fam].path, root / tiny_runs[fam].path.name)
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(root))
    return root


@pytest.fixture
def empty_runs(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(root))
    return root


def run_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("_"))


# ----------------------------------------------------------------------------- rendering
@pytest.mark.parametrize("page", ["home", "train", "runs"])
def test_page_renders_with_the_tiny_runs(runs_env, tiny_runs, page):
    at = open_page(page)
    assert not at.error, texts(at.error)
    assert at.expander[0].label == "What am I looking at?"
    if page == "home":
        links = {e.proto.page for e in at.get("page_link")}
        assert {"train", "runs", "explore", "conditional", "embeddings", "compare"} <= links
        assert at.session_state["run_id"] in {r.id for r in tiny_runs.values()}
        assert any(m.label == "SSIM" for m in at.metric)  # the current run's card
    elif page == "train":
        watch = at.selectbox(key="train.watch")
        assert watch.value in {r.id for r in tiny_runs.values()}
        assert {o.split(" · ")[0] for o in watch.options} >= set(tiny_runs)  # "name · state…"
        assert "Finished" in texts(at.success)
    else:
        table = at.dataframe[0].value
        assert set(table["id"]) >= {r.id for r in tiny_runs.values()}
        assert {
            "name",
            "dataset",
            "model",
            "latent",
            "epochs",
            "state",
            "final loss",
            "SSIM",
            "KNN %",
            "created",
        } <= set(table.columns)


def test_runs_filters_and_sorting(runs_env, tiny_runs):
    at = open_page("runs")
    at.multiselect(key="runs.f_model").set_value(["ae", "cvae"]).run()
    table = at.dataframe[0].value
    assert set(table["model"]) == {"ae", "cvae"}
    assert {tiny_runs["ae"].id, tiny_runs["cvae"].id} <= set(table["id"])
    at.multiselect(key="runs.f_model").set_value([])
    at.selectbox(key="runs.sort").set_value("final loss").run()
    losses = list(at.dataframe[0].value["final loss"].dropna())
    assert len(losses) >= len(tiny_runs) and losses == sorted(losses)


# ----------------------------------------------------------------------------- train page
@pytest.mark.parametrize(
    "knob, value, words",
    [
        ("train.lr", 0.0, "Learning rate must be a positive number"),
        ("train.latent_dim", 0, "Latent size 0 is too small"),
        ("train.batch_size", 0, "Batch size must be at least 1"),
        ("train.epochs", 0, "Epochs must be at least 1"),
    ],
)
def test_train_rejects_bad_values(empty_runs, knob, value, words):
    at = open_page("train")
    at.number_input(key=knob).set_value(value).run()
    button(at, "Start training").click().run()
    assert not at.exception
    assert words in texts(at.error)
    assert run_dirs(empty_runs) == []


def test_train_rejects_an_unknown_loss(empty_runs):
    at = open_page("train")
    at.selectbox(key="train.loss").set_value("custom mix…").run()
    at.text_input(key="train.loss_custom").set_value("l1").run()
    button(at, "Start training").click().run()
    assert len(at.error) == 1 and "l1" in at.error[0].value
    assert run_dirs(empty_runs) == []


def test_model_choice_sets_its_defaults(empty_runs):
    at = open_page("train")
    assert at.selectbox(key="train.model").value == "fcconv-vae"
    assert at.number_input(key="train.latent_dim").value == 10
    assert at.number_input(key="train.batch_size").value == 512
    at.selectbox(key="train.dataset").set_value("digits").run()
    assert at.number_input(key="train.batch_size").value == 64
    at.selectbox(key="train.model").set_value("gumbel-vae").run()
    assert at.number_input(key="train.categories").value == 10
    assert "Categorical variables N" in [w.label for w in at.number_input]
    at.selectbox(key="train.model").set_value("cvae").run()
    assert at.checkbox(key="train.conditional").value is True
    assert at.checkbox(key="train.class_prior").value is True
    assert at.number_input(key="train.latent_dim").value == 2
    at.checkbox(key="train.conditional").uncheck().run()  # no labels: no prior per label
    assert at.checkbox(key="train.class_prior").disabled
    at.selectbox(key="train.model").set_value("mlp-vae").run()
    assert at.checkbox(key="train.class_prior").value is False


def test_every_family_is_offered_with_its_knobs(empty_runs):
    """The model select box lists every registry family; choosing one shows exactly the
    knobs its spec marks for the form, at the spec's defaults."""
    at = open_page("train")
    assert at.selectbox(key="train.model").options == list(FAMILIES)
    numbers = {k.name for s in FAMILIES.values() for k in s.knobs if k.kind in ("int", "float")}
    for name, spec in FAMILIES.items():
        at.selectbox(key="train.model").set_value(name).run()
        assert not at.exception, [e.message for e in at.exception]
        d = spec.defaults()
        for k in spec.form_knobs():
            widgets = at.checkbox if k.kind == "bool" else at.number_input
            assert widgets(key=f"train.{k.name}").value == d[k.name], (name, k.name)
        shown = {w.key.removeprefix("train.") for w in at.number_input} & numbers
        assert shown == {k.name for k in spec.form_knobs() if k.kind != "bool"}, name
        assert spec.description in texts(at.caption)


def test_class_prior_reaches_the_run_config(own_runs):
    """The form's "Learned prior per label" box is what the run is built with."""
    at = open_page("train")
    at.selectbox(key="train.dataset").set_value("digits").run()
    at.selectbox(key="train.model").set_value("cvae").run()
    at.checkbox(key="train.class_prior").uncheck()
    at.number_input(key="train.epochs").set_value(1)
    at.text_input(key="train.name").set_value("no-class-prior").run()
    button(at, "Start training").click().run()
    assert not at.error, texts(at.error)
    [run] = [r for r in list_runs(own_runs) if r.name == "no-class-prior"]
    assert jobs.wait(run, timeout=300)["state"] == "done"
    model, _ = load_model(run.checkpoint_path)
    assert model.conditional and not model.config.class_prior


def test_start_a_digits_run_from_the_train_page(own_runs):
    before = list_runs(own_runs)
    at = open_page("train", run_id=before[0].id)
    at.selectbox(key="train.dataset").set_value("digits").run()
    at.selectbox(key="train.model").set_value("mlp-vae").run()
    at.number_input(key="train.epochs").set_value(1)
    at.number_input(key="train.hidden_dim").set_value(32)
    at.text_input(key="train.name").set_value("page-run").run()
    button(at, "Start training").click().run()
    assert not at.error, texts(at.error)
    [run] = [r for r in list_runs(own_runs) if r.id not in {b.id for b in before}]
    assert run.name == "page-run"
    assert run.config()["train"]["epochs"] == 1
    assert run.config()["model"]["args"]["hidden_dim"] == 32
    assert at.selectbox(key="train.watch").value == run.id
    assert jobs.wait(run, timeout=300)["state"] == "done"

    at.run()  # the finished view
    assert "Finished: 1 epoch" in texts(at.success)
    button(at, "Make it the current run").click().run()
    assert at.session_state["run_id"] == run.id
    button(at, "Evaluate").click().run()  # starts the background evaluation
    assert not at.error, texts(at.error)
    assert jobs.wait_evaluation(run, timeout=600)["state"] == "done"
    at.run()  # what the progress fragment does when the job ends
    assert not at.error, texts(at.error)
    labels = [m.label for m in at.metric]
    assert {"BCE + KL", "SSIM", "KNN, latent", "KNN, PCA"} <= set(labels)
    assert run.evaluation()["epoch"] == 1


def test_train_page_finds_a_running_run_and_cancels_it(empty_runs):
    """A run started elsewhere (another tab, before a server restart) is found in the runs
    folder; its Cancel button stops it."""
    cfg = TrainConfig(dataset="digits", model="mlp-vae", epochs=2000, batch_size=64, val_size=100)
    run = jobs.start(cfg, {"latent_dim": 2, "hidden_dim": 16}, "long", root=empty_runs)
    try:
        t0 = time.time()
        while jobs.refresh(run)["state"] != "running" or not run.metrics():
            assert time.time() - t0 < 180, run.status()
            time.sleep(0.5)
        at = open_page("train")
        assert at.selectbox(key="train.watch").value == run.id
        [bar] = at.get("progress")
        assert "Epoch" in bar.proto.text and "ETA" in bar.proto.text
        assert len(at.get("plotly_chart")) == 1
        button(at, "Cancel").click().run()
        assert jobs.wait(run, timeout=60)["state"] == "cancelled"
        at.run()
        assert "Cancelled" in texts(at.warning)
    finally:
        jobs.cancel(run)
        jobs.wait(run, timeout=60)


def test_resume_a_finished_run_for_more_epochs(own_runs):
    run = list_runs(own_runs)[0]
    at = open_page("train", **{"train.requested": run.id})
    assert at.selectbox(key="train.watch").value == run.id
    at.number_input(key=f"resume-to-{run.id}").set_value(3)
    button(at, "Resume").click().run()
    assert not at.error, texts(at.error)
    assert jobs.wait(run, timeout=300)["state"] == "done"
    assert [m["epoch"] for m in run.metrics()] == [1, 2, 3]


def test_home_quick_start_trains_on_digits(empty_runs):
    at = open_page("home")
    button(at, "Train a VAE on digits").click().run()
    assert not at.exception
    [run] = list_runs(empty_runs)
    assert at.title[0].value == "Train a model"  # switched to the Train page
    assert at.selectbox(key="train.watch").value == run.id
    assert run.config()["train"]["dataset"] == "digits"
    # the form shows what was just started (folded under its progress), not the defaults
    assert at.selectbox(key="train.dataset").value == "digits"
    assert at.selectbox(key="train.model").value == "mlp-vae"
    assert at.number_input(key="train.latent_dim").value == 2
    assert at.number_input(key="train.epochs").value == 20
    assert at.number_input(key="train.batch_size").value == 64
    assert "New run" in [e.label for e in at.expander]
    [bar] = at.get("progress")
    assert bar.proto.text.startswith(("Starting", "Loading", "Epoch 1/20 · ")), bar.proto.text
    try:  # it trains: wait for its first epoch, then stop it
        t0 = time.time()
        while not run.metrics():
            assert jobs.refresh(run)["state"] in ("queued", "running"), run.status()
            assert time.time() - t0 < 300
            time.sleep(0.5)
    finally:
        jobs.cancel(run)
        jobs.wait(run, timeout=60)


def test_home_quick_start_says_what_is_in_the_way(tmp_path, monkeypatch):
    """A file where the runs folder should be: one sentence, no "[Errno 17]", no server
    path, and the file is left as it was."""
    blocker = tmp_path / "runs"
    blocker.write_text("someone's notes")
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(blocker))
    at = open_page("home")
    button(at, "Train a VAE on digits").click().run()
    assert not at.exception
    assert len(at.error) == 1, texts(at.error)
    msg = texts(at.error)
    assert msg == (
        'The run could not be started: a file named "runs" is in the way of a folder. Move '
        "it, then try again."
    )
    assert at.title[0].value != "Train a model"  # stayed on Home
    assert blocker.read_text() == "someone's notes"


@pytest.mark.parametrize(
    ("err", "says"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
        (PermissionError(errno.EACCES, "Permission denied", "/srv/x/runs"), "may not write"),
        (OSError(errno.EROFS, "Read-only file system"), "may not write"),
        (FileExistsError(errno.EEXIST, "File exists", "/srv/x/runs/a"), 'named "a"'),
        (OSError(errno.EIO, "Input/output error"), "input/output error. Try again."),
        (OSError("no errno at all"), "(OSError). Try again."),
    ],
)
def test_os_error_sentences(err, says):
    msg = os_error_sentence(err, "It failed")
    assert msg.startswith("It failed") and says in msg, msg
    assert "Errno" not in msg and "/srv" not in msg and msg.count("\n") == 0


def cancelled_after_one_epoch(root: Path, monkeypatch, tmp_path) -> Run:
    """A real run asked for 5 epochs and cancelled after its first: its trainer pauses after
    epoch 1's metrics (core.store.faults), is cancelled there, and is let go."""
    mark = tmp_path / "paused"
    with monkeypatch.context() as env:  # only this trainer pauses
        env.setenv("LATENTLAB_FAULT_PAUSE", "after-metrics")
        env.setenv("LATENTLAB_FAULT_MARK", str(mark))
        cfg = TrainConfig(dataset="digits", model="mlp-vae", epochs=5, batch_size=64, val_size=100)
        run = jobs.start(cfg, {"hidden_dim": 16}, "stopped", root=root)
    t0 = time.time()
    while not mark.exists():
        assert time.time() - t0 < 180 and jobs.refresh(run)["state"] in ("queued", "running")
        time.sleep(0.1)
    jobs.cancel(run)
    mark.unlink()
    assert jobs.wait(run, timeout=60)["state"] == "cancelled"
    return run


def test_a_cancelled_run_offers_to_finish_its_epochs(empty_runs, monkeypatch, tmp_path):
    run = cancelled_after_one_epoch(empty_runs, monkeypatch, tmp_path)
    at = open_page("train", **{"train.requested": run.id})
    [warning] = at.warning
    assert texts([warning]).startswith("Cancelled after 1 of 5 epochs, validation loss ")
    assert "1 epochs" not in texts(at.warning)
    assert at.number_input(key=f"resume-to-{run.id}").value == 5  # finish what was asked
    assert "It was asked for 5 epochs and has 1." in texts(at.caption)
    assert at.number_input(key="train.epochs").value == 5  # the form shows that run
    button(at, "Resume").click().run()
    assert not at.error, texts(at.error)
    assert jobs.wait(run, timeout=300)["state"] == "done"
    assert [m["epoch"] for m in run.metrics()] == [1, 2, 3, 4, 5]


@pytest.fixture
def no_network(tmp_path, monkeypatch):
    """An empty data folder and a mirror nobody answers at: (data folder, mirror URL)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the socket is: connections are refused
    data_dir = tmp_path / "data"
    monkeypatch.setenv("LATENTLAB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("LATENTLAB_MIRROR", f"http://127.0.0.1:{port}/{{name}}/")
    datalib.clear_cache()
    return data_dir, f"http://127.0.0.1:{port}/mnist/"


def test_a_dataset_that_cannot_download_is_refused_before_a_run(empty_runs, no_network):
    data_dir, mirror = no_network
    at = open_page("train")
    at.selectbox(key="train.dataset").set_value("mnist").run()
    note = texts(at.caption)
    assert "MNIST is not downloaded yet: about 12 MB will be downloaded from " + mirror in note
    assert not at.warning
    button(at, "Start training").click().run()
    [err] = at.error
    msg = texts([err])
    assert msg.startswith("MNIST is not in ") and "cannot be downloaded from here" in msg, msg
    assert "streamlit run app/main.py -- --data-dir DIR" in msg
    assert "pass --data-dir" not in msg and "train on digits" in msg
    assert run_dirs(empty_runs) == []  # no run was created to fail
    with pytest.raises(datalib.DatasetError):  # a real download fails and is remembered
        datalib.load("mnist", "train", data_dir)
    at.run()
    [warning] = at.warning  # said before Start this time
    assert "MNIST is not in " in warning.value and "last download failed" in texts([warning])


def test_a_failed_run_says_why(empty_runs, no_network):
    """A run whose download fails (core.jobs does not ask the mirror first, the form does)
    shows the reason, said for the app (its own --data-dir), and no empty curves."""
    cfg = TrainConfig(dataset="mnist", model="mlp-vae", epochs=1, batch_size=64)
    run = jobs.start(cfg, {"hidden_dim": 16}, "doomed", root=empty_runs)
    assert jobs.wait(run, timeout=180)["state"] == "failed"
    at = open_page("train", **{"train.requested": run.id})
    [err] = at.error
    msg = texts([err])
    assert msg.startswith("Failed: MNIST is not in ") and "could not be downloaded" in msg, msg
    assert "streamlit run app/main.py -- --data-dir DIR" in msg
    assert "pass --data-dir" not in msg and "DatasetError" not in msg
    assert not at.get("plotly_chart")  # no "the curves appear after the first epoch"


def test_train_on_an_idx_folder(empty_runs, tmp_path, monkeypatch):
    """An IDX folder is typed by the user: only folders inside the data folder are read,
    with one sentence for anything else; a good one trains."""
    from tests.test_data import write_idx_folder

    data_dir = tmp_path / "data"
    monkeypatch.setenv("LATENTLAB_DATA_DIR", str(data_dir))
    splits = {}
    for split in ("train", "test"):
        d = datalib.load("digits", split)
        pixels = (d.images[:, 0] * 255).round().to(torch.uint8).numpy()
        splits[split] = (pixels, d.labels.to(torch.uint8).numpy())
    write_idx_folder(data_dir / "my-digits", splits)
    outside = tmp_path / "outside"
    write_idx_folder(outside, splits)
    (data_dir / "sneaky").symlink_to(outside)  # a link out of the data folder
    at = open_page("train")
    at.selectbox(key="train.dataset").set_value("idx").run()
    at.selectbox(key="train.model").set_value("mlp-vae").run()
    for bad, words in [
        ("../outside", "is not inside"),
        ("sneaky", "is not inside"),
        (str(outside), "is not inside"),
        ("nope", "There is no folder 'nope' under "),
        ("", "Type the folder that holds the IDX files"),
    ]:
        at.text_input(key="train.idx_folder").set_value(bad).run()
        if bad:
            assert words in texts(at.warning), (bad, texts(at.warning))
        button(at, "Start training").click().run()
        assert words in texts(at.error), (bad, texts(at.error))
        assert run_dirs(empty_runs) == []
    at.text_input(key="train.idx_folder").set_value("my-digits").run()
    assert "1,437 training and 360 test images of 8×8 pixels, 10 classes" in texts(at.caption)
    at.number_input(key="train.epochs").set_value(1)
    at.number_input(key="train.batch_size").set_value(64)
    at.text_input(key="train.name").set_value("own-idx").run()
    button(at, "Start training").click().run()
    assert not at.error, texts(at.error)
    [run] = list_runs(empty_runs)
    assert run.config()["train"]["dataset"] == f"idx:{(data_dir / 'my-digits').resolve()}"
    assert jobs.wait(run, timeout=300)["state"] == "done"
    assert run.config()["dataset"]["image_shape"] == [1, 8, 8]


# ----------------------------------------------------------------------------- runs page
def test_rename_a_run(own_runs):
    run = list_runs(own_runs)[0]
    at = open_page("runs")
    at.selectbox(key="runs.target").set_value(run.id).run()
    at.text_input(key=f"runs.name.{run.id}").set_value("my best run")
    button(at, "Rename").click().run()
    assert Run(run.path).name == "my best run"
    assert "Renamed to my best run." in texts(at.success)
    assert "my best run" in list(at.dataframe[0].value["name"])


def test_delete_asks_first(own_runs):
    run, other = list_runs(own_runs)
    at = open_page("runs")
    at.selectbox(key="runs.target").set_value(run.id).run()
    button(at, "Delete…").click().run()
    assert "cannot be undone" in texts(at.warning)
    assert run.path.exists()
    button(at, "Keep it").click().run()
    assert run.path.exists() and not at.warning

    name = run.name  # read while its config.json is there
    button(at, "Delete…").click().run()
    button(at, "Yes, delete it").click().run()
    assert not run.path.exists() and other.path.exists()
    assert f"Deleted {name}." in texts(at.success)
    ids = list(at.dataframe[0].value["id"])
    assert run.id not in ids and other.id in ids


def test_read_only_runs_are_refused(own_runs):
    run = list_runs(own_runs)[0]
    (run.path / "READONLY").touch()
    at = open_page("runs")
    at.selectbox(key="runs.target").set_value(run.id).run()
    # the page offers no way to change it (and the store refuses if asked anyway)
    assert button(at, "Delete…").disabled and button(at, "Rename").disabled
    assert at.text_input(key=f"runs.name.{run.id}").disabled
    assert "read-only" in button(at, "Delete…").help
    with pytest.raises(RunError, match="read-only"):
        Run(run.path).delete()
    with pytest.raises(RunError, match="read-only"):
        Run(run.path).rename("hijacked")
    assert run.path.exists() and Run(run.path).name != "hijacked"


def test_download_button_offers_the_checkpoint(own_runs):
    at = open_page("runs")
    [dl] = at.get("download_button")
    assert dl.proto.label == "Download checkpoint"


def _state_dict_bytes(run: Run) -> bytes:
    model, _ = load_model(run.checkpoint_path)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["random bytes", "plain state_dict"])
def test_bad_upload_is_refused(own_runs, tiny_runs, kind):
    data = (
        bytes(range(256)) * 40
        if kind == "random bytes"
        else _state_dict_bytes(tiny_runs["mlp-vae"])
    )
    before = run_dirs(own_runs)
    at = open_page("runs")
    at.file_uploader[0].upload("weights.pt", data).run()
    assert not at.exception
    [err] = at.error
    msg = texts([err])
    assert msg.startswith("weights.pt") and re.search("not a (PyTorch|latent-lab) checkpoint", msg)
    assert "upload a checkpoint.pt saved by this lab" in msg
    assert run_dirs(own_runs) == before


def test_good_upload_becomes_a_run(own_runs, tiny_runs):
    data = tiny_runs["gumbel-vae"].checkpoint_path.read_bytes()
    at = open_page("runs")
    at.file_uploader[0].upload("gumbel.pt", data).run()
    assert not at.error, texts(at.error)
    new = [r for r in list_runs(own_runs) if r.name == "gumbel"]
    assert len(new) == 1 and new[0].status()["state"] == "done"
    assert "Imported" in texts(at.success)
    assert at.selectbox(key="runs.target").value == new[0].id
    button(at, "Open it").click().run()
    assert at.session_state["run_id"] == new[0].id


@pytest.mark.parametrize("dataset", ["fashion-mnist", "digits", "cifar10"])
@pytest.mark.parametrize("model", list(FAMILIES))
def test_every_family_default_passes_validation(dataset, model):
    """The form's defaults for each family and dataset are launchable as they stand."""
    d = model_defaults(model)
    args = {k: d[k] for k in model_knobs(model)}
    args["conditional"] = d["conditional"]
    cfg = TrainConfig(
        dataset=dataset, model=model, **DATASET_DEFAULTS.get(dataset, DATASET_DEFAULTS["_"])
    )
    assert check(cfg, args) is None


# ----------------------------------------------------------------------------- ?run= links
def open_link(run: str) -> AppTest:
    """AppTest of a fresh session opened on Home by a link carrying ``?run=<run>``."""
    at = AppTest.from_file(MAIN, default_timeout=180)
    at.query_params["run"] = run
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_a_run_link_opens_that_run(own_runs):
    older = list_runs(own_runs)[-1]
    at = open_link(older.id)
    assert at.session_state["run_id"] == older.id
    assert not at.warning, texts(at.warning)
    assert at.query_params["run"] == older.id


def test_a_train_link_watches_that_run_and_the_picker_still_works(own_runs):
    """?run= on the Train page watches that run (the page used to keep the run watched
    before, or the newest), once per link: picking another run in the picker sticks."""
    newest, older = list_runs(own_runs)
    at = open_link(older.id)
    at.switch_page("../pages/train.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.selectbox(key="train.watch").value == older.id
    at.selectbox(key="train.watch").set_value(newest.id).run()
    at.run()
    assert at.selectbox(key="train.watch").value == newest.id


def test_the_train_page_keeps_watching_a_run_just_started(own_runs):
    """The sidebar's run (written into ?run= on every page) is not a link: a run just
    started stays watched through later reruns."""
    newest, older = list_runs(own_runs)
    at = open_page("train", run_id=older.id, **{"train.requested": newest.id})
    assert at.selectbox(key="train.watch").value == newest.id
    at.run()
    at.run()
    assert at.selectbox(key="train.watch").value == newest.id


@pytest.mark.parametrize("how", ["mistyped", "deleted"])
def test_a_link_to_no_run_says_which_run_opened_instead(own_runs, how):
    newest, older = list_runs(own_runs)
    wanted = older.id + "x" if how == "mistyped" else older.id
    if how == "deleted":
        older.delete()
    at = open_link(wanted)
    assert at.session_state["run_id"] == newest.id
    assert at.query_params["run"] == newest.id  # the link now names the run shown
    [warning] = at.warning
    assert texts([warning]) == (
        f"There is no run '{wanted}' (from ?run=, mistyped or deleted), so "
        f"**{run_label(newest)}** is open instead: pick another run in the sidebar or on the "
        "Runs page."
    )


def test_a_link_to_a_damaged_run_says_so(own_runs):
    newest, older = list_runs(own_runs)
    (older.path / "config.json").write_text("{not json")
    at = open_link(older.id)
    assert at.session_state["run_id"] == newest.id
    said = texts(at.warning)
    assert f"Run '{older.id}' (from ?run=) cannot be opened (its config.json is damaged)" in said
    assert "repair or delete it on the Runs page" in said


def test_a_hostile_run_link_is_shown_as_short_text(own_runs):
    newest = list_runs(own_runs)[0]
    evil = "[pwn](http://example.invalid/x.png) <img src=x onerror=alert(1)> :red[**b**] $x$"
    at = open_link(evil + "A" * 5000)
    assert at.session_state["run_id"] == newest.id
    [warning] = at.warning
    source = warning.value  # the Markdown Streamlit renders
    value = source[len("There is no run ") : source.index(" (from ?run=")]
    assert r"\[pwn\]\(http\:" in value and r"\<img" in value
    assert not re.search(r"(?<!\\)[][()<>*:$'`]", value)  # each special character escaped
    said = texts([warning])
    shown = said[len("There is no run ") : said.index(" (from ?run=")]
    assert shown.startswith("'[pwn](http://example.invalid/x.png) <img")
    assert len(shown) == 60 and shown.endswith("…")
    assert "A" * 100 not in said


def test_the_current_run_vanishing_says_so(own_runs):
    newest, older = list_runs(own_runs)
    at = open_link(older.id)
    assert not at.warning
    older.delete()  # say, from another tab or a shell
    at.run()
    assert at.session_state["run_id"] == newest.id
    assert texts(at.warning) == (
        f"Run '{older.id}' is no longer in the runs folder, so **{run_label(newest)}** is "
        "open instead: pick another run in the sidebar or on the Runs page."
    )


# ----------------------------------------------------------------------------- light Home
HOME_ALONE = """
import json, sys, time
from streamlit.testing.v1 import AppTest
main, query, warm = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3].split(",")
at = AppTest.from_file(main, default_timeout=120)
at.query_params.update(query)
at.run()
heavy = [m for m in ("torch", "torchvision", "sklearn", "umap") if m in sys.modules]
deadline = time.monotonic() + 240
while warm != [""] and not all(m in sys.modules for m in warm) and time.monotonic() < deadline:
    time.sleep(0.2)
print(json.dumps({
    "heavy": heavy, "exceptions": [e.message for e in at.exception],
    "titles": [t.value for t in at.title], "metrics": [m.label for m in at.metric],
    "warnings": [w.value for w in at.warning], "run_id": at.session_state["run_id"],
    "warmed": [m for m in warm if m in sys.modules],
}))
"""


def home_alone(runs: Path, pretrained: Path | None = None, warm: bool = False, **query):
    """Home drawn by AppTest in a fresh Python process (nothing imported beforehand): what
    it showed, which heavy modules it had imported when drawn, and (``warm``) which of
    ``WARM_MODULES`` the background warm-up had imported afterwards."""
    env = dict(os.environ, LATENTLAB_RUNS_DIR=str(runs), OMP_NUM_THREADS="1")
    env.pop("LATENTLAB_WARM", None)
    if not warm:
        env["LATENTLAB_WARM"] = "0"
    if pretrained is not None:
        env["LATENTLAB_PRETRAINED_DIR"] = str(pretrained)
    wait_for = ",".join(WARM_MODULES) if warm else ""
    cmd = [sys.executable, "-c", HOME_ALONE, MAIN, json.dumps(query), wait_for]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["exceptions"] == []
    return out


def test_home_and_the_sidebar_import_no_torch(runs_env, tiny_runs):
    """Home's script run (the sidebar's run list and a real run's card included) imports
    neither torch, torchvision, scikit-learn nor umap: the first page draws fast."""
    out = home_alone(runs_env)
    assert out["titles"][:1] == ["Latent lab"]
    assert out["run_id"] in {r.id for r in tiny_runs.values()}
    assert {"Final loss", "SSIM", "KNN accuracy"} <= set(out["metrics"])  # the run card
    assert out["heavy"] == []


def test_the_warm_up_imports_the_model_pages_modules_after_home(runs_env):
    out = home_alone(runs_env, warm=True)
    assert out["titles"][:1] == ["Latent lab"]
    assert out["warmed"] == list(WARM_MODULES)


def test_a_fresh_lab_opens_the_2d_entry_whose_plane_can_be_scrubbed(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    out = home_alone(runs)
    assert out["run_id"] == FIRST_PRETRAINED == "fmnist-mlp-vae-2d"


def test_a_run_link_with_no_runs_at_all(tmp_path):
    runs, zoo = tmp_path / "runs", tmp_path / "zoo"
    runs.mkdir()
    zoo.mkdir()
    out = home_alone(runs, pretrained=zoo, run="gone")
    assert out["run_id"] is None
    assert [re.sub(r"\\(.)", r"\1", w) for w in out["warnings"]] == [
        "There is no run 'gone' (from ?run=, mistyped or deleted), and there is no other run "
        "yet: train one on the Train page."
    ]
    assert out["heavy"] == []


# ----------------------------------------------------------------------------- self-hosted
def test_streamlit_finds_the_self_hosted_config_from_the_repository_root():
    """`streamlit run app/main.py` from the root (the README's command, the Docker image's
    CMD in its WORKDIR) reads .streamlit/config.toml: no usage statistics, no Deploy button
    or developer menu, no error links to web searches, no file watcher, no full garbage
    collection after every script run (it took most of a busy server's time)."""
    p = subprocess.run([sys.executable, "-m", "streamlit", "config", "show"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    source = f"# The value below was set in {ROOT / '.streamlit' / 'config.toml'}\n"
    for line in ("gatherUsageStats = false", 'toolbarMode = "viewer"', "showErrorLinks = false",
                 "headless = true", 'fileWatcherType = "none"'):  # fmt: skip
        assert source + line in p.stdout, line
    # a hidden option (not in `config show`): read it as the server does
    gc = subprocess.run([sys.executable, "-c", "from streamlit import config; "
                         "print(config.get_option('runner.postScriptGC'))"],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert gc.stdout.strip() == "False", gc.stderr
    assert "COPY .streamlit/ .streamlit/" in (ROOT / "Dockerfile").read_text()
