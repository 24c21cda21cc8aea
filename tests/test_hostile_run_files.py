"""Hostile files inside a run folder, on real files and the real pages (AppTest): a link
planted for checkpoint.pt, cache/ or a JSON file is never followed (nothing outside the
runs folder is read, written or deleted); a cache/evaluation.json of the wrong shape reads
as absent; a time or count no page can show makes its file damaged, as any bad field does.
Each case once took a page down or reached outside the runs folder."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from core.runs import NOWHERE, Run, RunDamaged, RunError, inside, list_runs
from core.store import atomic, schema
from core.store.schema import Damaged
from core.train import TrainConfig, train
from tests.conftest import TINY
from tests.test_pages_app import open_page

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"SECRET-OUTSIDE-RUNS"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Run:
    """One finished 1-epoch mlp-vae run on the bundled digits."""
    model, args = TINY["mlp-vae"]
    cfg = TrainConfig(dataset="digits", model=model, epochs=1, batch_size=128, val_size=200)
    root = tmp_path_factory.mktemp("runs")
    return train(cfg, {k: v for k, v in args.items() if v is not None}, name="mlp", root=root)


@pytest.fixture
def world(tmp_path, trained, monkeypatch) -> tuple[Path, Path, Run]:
    """(runs folder, a folder outside it, a copy of the trained run in the runs folder);
    the app points at that runs folder."""
    root, outside = tmp_path / "runs", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    shutil.copytree(trained.path, root / trained.id)
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(root))
    return root, outside, Run(root / trained.id)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def errors(at) -> list[str]:
    return [e.message for e in at.exception]


# ----------------------------------------------------------------------------- links
def test_inside_refuses_any_link_on_the_way_and_climbing_out(tmp_path):
    run = tmp_path / "run"
    (run / "cache").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (run / "linked").symlink_to(tmp_path / "elsewhere")
    assert inside(run / "cache" / "x.npz", run)  # not there yet: still inside
    assert not inside(run / "linked", run)
    assert not inside(run / "linked" / "x.npz", run)
    assert not inside(run / ".." / "elsewhere", run)
    assert not inside(tmp_path / "elsewhere", run)


def test_a_linked_checkpoint_counts_as_none_is_never_read_and_says_why(world):
    root, outside, run = world
    (outside / "secret.pt").write_bytes(SECRET)
    run.checkpoint_path.unlink()
    run.checkpoint_path.symlink_to(outside / "secret.pt")
    assert not run.has_checkpoint()
    st = run.state()
    assert not st["resumable"]
    assert any(p.startswith("checkpoint.pt is a link") for p in st["problems"])
    with pytest.raises(RunError, match="checkpoint.pt is a link"):
        run.repair()
    assert (outside / "secret.pt").read_bytes() == SECRET


def test_the_runs_page_offers_no_download_of_a_linked_checkpoint(world):
    root, outside, run = world
    (outside / "secret.pt").write_bytes(SECRET)
    run.checkpoint_path.unlink()
    run.checkpoint_path.symlink_to(outside / "secret.pt")
    at = open_page("runs", {"run": run.id})
    assert not at.exception, errors(at)
    assert not [b for b in at.get("download_button") if "checkpoint" in str(b.proto.label)]
    shown = re.sub(r"\\(.)", r"\1", " ".join(str(c.value) for c in at.caption))
    assert "No checkpoint yet." in shown and "checkpoint.pt is a link" in shown


def test_a_linked_cache_is_not_followed_its_files_go_to_the_runs_folders_cache(world):
    root, outside, run = world
    shutil.rmtree(run.path / "cache", ignore_errors=True)
    (outside / "evaluation.json").write_text(json.dumps({"test_images": 5, "ssim": 0.5}))
    (run.path / "cache").symlink_to(outside)
    before = snapshot(outside)
    assert run.own_cache is None
    assert run.cache_dir == root / "_cache" / run.id and run.cache_dir.is_dir()
    assert run.evaluation() is None  # the outside file is not read
    assert any(p.startswith("cache is a link") for p in run.problems())
    assert snapshot(outside) == before


def test_a_linked_runs_cache_folder_is_not_followed_either(world):
    root, outside, run = world
    shutil.rmtree(run.path / "cache", ignore_errors=True)
    (run.path / "cache").symlink_to(outside)
    (root / "_cache").symlink_to(outside)
    assert run.cache_dir == NOWHERE and not NOWHERE.exists()
    assert os.listdir(outside) == []


def test_the_explorer_writes_and_deletes_nothing_through_a_linked_cache(world):
    root, outside, run = world
    shutil.rmtree(run.path / "cache", ignore_errors=True)
    (outside / "explore-space-victim.npz").write_bytes(b"keep me")
    (run.path / "cache").symlink_to(outside)
    at = open_page("explore", {"run": run.id})
    assert not at.exception, errors(at)
    assert snapshot(outside) == {"explore-space-victim.npz": b"keep me"}
    assert any(p.name.startswith("explore-space-") for p in (root / "_cache" / run.id).iterdir())


@pytest.mark.parametrize("name", ["config.json", "status.json", "metrics.jsonl"])
def test_linked_json_files_read_as_damaged_and_are_not_written_through(world, name):
    root, outside, run = world
    target = outside / name
    shutil.copy(run.path / name, target)
    before = target.read_bytes()
    (run.path / name).unlink()
    (run.path / name).symlink_to(target)
    if name == "config.json":
        with pytest.raises(RunDamaged, match="config.json is a link"):
            run.config()
        assert run.state()["state"] == "damaged"
    else:
        assert any(p.startswith(f"{name} is a link") for p in run.problems())
    if name == "metrics.jsonl":
        with pytest.raises(OSError):
            run.append_metrics({"epoch": 9, "train_loss": 1.0})
    if name == "status.json":
        run.lock = None
        run.set_status("done")  # an atomic write replaces the link, not its target
        assert not (run.path / name).is_symlink()
    assert target.read_bytes() == before


def test_log_cancel_and_recon_links_are_not_followed(world):
    """log.txt (appended by every process the lab starts for a run), CANCEL (touched by
    Cancel) and recon.png (drawn on the Train page) planted as links: nothing outside is
    written, created or shown, and the process's output lands in the run's own log."""
    from app.common import recon_image
    from app.train_monitor import _log_tail
    from core import jobs
    from core.store import proc as procs

    _, outside, run = world
    secret = outside / "secret.txt"
    secret.write_bytes(SECRET)
    before = secret.stat().st_mtime_ns
    png = outside / "recon.png"
    shutil.copy(run.path / "recon.png", png)  # a real picture, outside the run

    run.log_path.unlink(missing_ok=True)
    run.log_path.symlink_to(secret)
    assert _log_tail(run) == ""  # the page shows nothing read through the link
    procs.spawn("platform", [], run.log_path).wait(60)
    assert secret.read_bytes() == SECRET and secret.stat().st_mtime_ns == before
    assert not run.log_path.is_symlink() and run.log_path.stat().st_size > 0  # its own log

    (run.path / "recon.png").unlink()
    (run.path / "recon.png").symlink_to(png)
    assert recon_image(run) is None

    run.cancel_flag.symlink_to(outside / "planted")
    jobs.cancel(run)
    assert not (outside / "planted").exists()  # nothing created outside
    assert sorted(p.name for p in outside.iterdir()) == ["recon.png", "secret.txt"]


def test_read_json_refuses_a_link_a_folder_and_a_pipe_without_blocking(tmp_path):
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    (tmp_path / "dir.json").mkdir()
    os.mkfifo(tmp_path / "pipe.json")
    for name, words in [("link.json", "is a link"), ("dir.json", "is not a file"),
                        ("pipe.json", "is not a file")]:  # fmt: skip
        with pytest.raises(Damaged, match=words):
            schema.read_json(tmp_path / name)


# ----------------------------------------------------------------------------- evaluation
JUDGED = {"sample_accuracy": 0.9, "judge_test_accuracy": 0.9}
TEMPERATURE_ROW = {"temperature": 1.0, "accuracy": {"shipped": 0.9}, "per_class": {},
                   "variety_per_class": [1.0] * 10}  # fmt: skip
GOOD_EVALUATION = {
    "test_images": 360,
    "epoch": 1,
    "parameters": 1000,
    "loss": {"bce": 1.0, "kl": 0.5, "bce_kl": 1.5},
    "ssim": 0.5,
    "knn": {"k": 5, "model": 0.8, "pca": 0.7, "model_dim": 2, "snakers4": None},
    "active_units": 2,
    "latent_dim": 2,
    "future_field": {"anything": [1, "x"]},
}


@pytest.mark.parametrize(
    "bad",
    [
        {"loss": [1], "knn": 5, "ssim": "x", "conditional": 3},  # the reviewer's file
        {"knn": 5},
        {"loss": [1]},
        {"loss": {"bce": "x"}},
        {"ssim": "x"},
        {"ssim": True},
        {"ssim": 1e400},  # parsed as infinity
        {"active_units": 2.5},
        {"test_images": "many"},
        {"test_images": None},
        {"knn": {"model": [0.5]}},
        {"knn": {"snakers4": 3}},
        {"conditional": 3},
        {"conditional": {"sample_accuracy": None, "judge_test_accuracy": 0.9}},
        {"conditional": {"sample_accuracy": 0.9}},
        {"conditional": {**JUDGED, "swap": []}},
        {
            "conditional": {
                **JUDGED,
                "temperature": [TEMPERATURE_ROW, {**TEMPERATURE_ROW, "accuracy": {}}],
            }
        },  # temperature rows naming other judges
        {"conditional": {**JUDGED, "per_class": [0.9] * 3}},  # a 10-class model
    ],
)
def test_an_evaluation_of_the_wrong_shape_reads_as_absent(tmp_path, bad):
    run = Run(tmp_path / "run")
    (run.path / "cache").mkdir(parents=True)
    cfg = {"train": {"model": "cvae", "dataset": "digits"},
           "model": {"name": "cvae", "config": {"num_classes": 10}}}  # fmt: skip
    atomic.write_json(run.config_path, cfg)
    atomic.write_json(run.path / "cache" / "evaluation.json", GOOD_EVALUATION)
    assert run.evaluation() == GOOD_EVALUATION
    ev = {**GOOD_EVALUATION, **bad}
    (run.path / "cache" / "evaluation.json").write_text(json.dumps(ev).replace("Infinity", "1e400"))
    assert run.evaluation() is None


def test_every_shipped_evaluation_has_the_shape_the_pages_read():
    runs = list_runs(ROOT / "pretrained")
    assert runs
    for run in runs:
        assert run.evaluation() is not None, run.id


def test_pages_show_a_run_with_a_malformed_evaluation_and_it_can_be_deleted(world):
    root, outside, run = world
    bad = {"loss": [1], "knn": 5, "ssim": "x", "conditional": 3, "active_units": "x"}
    (run.path / "cache").mkdir(exist_ok=True)
    (run.path / "cache" / "evaluation.json").write_text(json.dumps(bad))
    for page in ("home", "runs", "train", "compare"):
        at = open_page(page, {"run": run.id})
        assert not at.exception, (page, errors(at))
    at = open_page("runs", {"run": run.id})
    assert [b for b in at.button if b.label.startswith("Delete")], [b.label for b in at.button]


# ----------------------------------------------------------------------------- ranges
@pytest.mark.parametrize("created_at", [1e18, -1.0, 2.6e11])
def test_a_creation_time_no_date_can_show_is_a_damaged_field(created_at):
    cfg = {"train": {"model": "mlp-vae", "dataset": "digits"}, "model": {"name": "mlp-vae"},
           "created_at": created_at}  # fmt: skip
    with pytest.raises(Damaged, match="created_at is not a time"):
        schema.check_config(cfg)


@pytest.mark.parametrize(
    "field, value",
    [("epoch", 10**30), ("step", 2**53), ("total", 10**16), ("epochs", 10**30),
     ("updated_at", 1e18), ("started_at", -5.0)],
)  # fmt: skip
def test_a_count_or_time_out_of_range_is_a_damaged_status(field, value):
    with pytest.raises(Damaged, match=f"status.json: {field} is not a"):
        schema.check_status({"state": "done", field: value})


def test_a_huge_epoch_in_metrics_or_config_is_refused(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"epoch": 1, "loss": 1}\n{"epoch": 1000000000000000000000000000000}\n')
    rows, problems = schema.read_metrics(p)
    assert rows == [{"epoch": 1, "loss": 1}] and problems == [
        "metrics.jsonl line 2 has no epoch number"
    ]
    with pytest.raises(Damaged, match="train.epochs is larger than"):
        schema.check_train_section({"model": "ae", "dataset": "digits", "epochs": 10**30})
    assert schema.check_train_section({"model": "ae", "dataset": "digits", "seed": 2**62})


def test_pages_show_runs_with_a_far_future_date_and_a_huge_epoch(world):
    root, outside, run = world
    cfg = json.loads(run.config_path.read_text())
    cfg["created_at"] = 1e18
    atomic.write_json(run.config_path, cfg)
    other = Path(shutil.copytree(run.path, root / "zz-huge-epoch"))
    cfg["created_at"] = 1.0
    atomic.write_json(other / "config.json", cfg)
    st = json.loads((other / "status.json").read_text())
    st.update(epoch=10**30, step=10**30)
    atomic.write_json(other / "status.json", st)
    for current in (run.id, other.name):
        for page in ("home", "runs", "train"):
            at = open_page(page, {"run": current}, run_id=current)
            assert not at.exception, (page, current, errors(at))
    assert Run(run.path).state()["state"] == "damaged"  # it can be deleted on Runs
