"""The run store: core.runs and core.store (atomic writes, the run lock, the schema checks),
on real files, real processes and a real tiny training run."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from core.models import resolve_config
from core.runs import (
    MAX_NAME,
    CheckpointError,
    Run,
    RunBusyError,
    RunDamaged,
    RunError,
    clean_name,
    list_runs,
    read_checkpoint,
)
from core.store import atomic, schema
from core.store.lock import (
    DELEGATE_ENV,
    LockLost,
    RunLock,
    delegate_token,
    is_locked,
    owner,
)
from core.store.schema import Damaged
from core.train import Cancelled, TrainConfig, Trainer, run_in_dir, train

ROOT = Path(__file__).resolve().parent.parent
CONFIG = {
    "train": {"model": "mlp-vae", "dataset": "digits", "epochs": 2},
    "model": {"name": "mlp-vae", "args": {}},
}


def one_sentence(msg: str) -> None:
    assert "\n" not in msg and msg.rstrip().endswith("."), msg
    assert len(re.findall(r"[.!?](?:\s|$)", msg)) == 1, msg


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(atomic.TEMP_SUFFIX))


def new_run(root: Path, name: str | None = None) -> Run:
    """A queued run that this process no longer owns."""
    run = Run.create(CONFIG, root, name)
    run.release()
    return run


HOLDER = """
import sys, time
from core.store.lock import RunLock
lk = RunLock(sys.argv[1])
if not lk.acquire():
    sys.exit(3)
lk.write_owner()
if len(sys.argv) > 2:
    lk.grant_delegate(sys.argv[2])
print("locked", flush=True)
time.sleep(600)
"""


@contextlib.contextmanager
def held_by_other_process(run_path: Path, *delegate: str):
    """A real second process that holds the run's lock until the block ends (killed); it
    grants ``delegate`` when given (a Ray launcher's token, ``<run>/.delegate``)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_path), *delegate],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # blocks until the lock is held (or the child ends)
        assert line.strip() == "locked", (line, proc.poll())
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=60)
        proc.stdout.close()


def test_a_delegate_trains_only_under_its_launchers_lock(tmp_path, monkeypatch):
    """A Ray worker trains under the lock its launcher holds, only with the launcher's
    token, never takes or frees the lock itself, and leaves the launcher's record."""
    run = new_run(tmp_path)
    token = "ab" * 16
    assert not RunLock(run.path).delegate(token)  # nobody holds it: nothing to train under
    with held_by_other_process(run.path, token):
        # core.jobs rewrites the lock's record with the launcher's pid after the spawn, at
        # any moment (late under load): the token does not live there
        (run.path / ".lock").write_text(json.dumps({"pid": 12345}))
        gone = RunLock(run.path)
        assert gone.delegate(token)
        gone.check_delegate()  # its launcher holds the run: nothing happens
    with pytest.raises(LockLost):  # the launcher has ended: the delegate must stop
        gone.check_delegate()
    with held_by_other_process(run.path, token):
        assert not RunLock(run.path).delegate("cd" * 16)  # another launcher's token
        assert not RunLock(run.path).delegate(token[:8])  # too short to be one
        monkeypatch.setenv(DELEGATE_ENV, token)
        run.acquire()
        assert run.lock.delegated and run.lock.held
        before = owner(run.path)
        run.lock.write_owner()  # a delegate writes no record: the launcher's stays
        assert owner(run.path) == before and delegate_token(run.path) == token
        run.release()
        assert is_locked(run.path)  # a delegate's release never unlocks the launcher's lock
        monkeypatch.setenv(DELEGATE_ENV, "cd" * 16)
        with pytest.raises(RunBusyError):
            run.acquire()
    monkeypatch.delenv(DELEGATE_ENV, raising=False)  # acquire popped it
    assert delegate_token(run.path) == token  # a killed launcher leaves its token behind
    run.acquire()  # the launcher is gone: the run is free to own as usual
    assert run.lock.fd is not None and not run.lock.delegated
    assert delegate_token(run.path) is None  # the new owner revoked it: no stale task trains
    run.release()


# ----------------------------------------------------------------------------- atomic
def test_a_failing_writer_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "config.json"
    atomic.write_text(target, "old content")

    def half_then_fail(tmp: Path) -> None:
        with open(tmp, "w") as f:
            f.write("new cont")
        raise RuntimeError("writer died halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        atomic.write_with(target, half_then_fail)
    assert target.read_text() == "old content"
    assert temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_an_interrupted_writer_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "status.json"
    atomic.write_json(target, {"state": "queued"})

    def interrupted(tmp: Path) -> None:
        tmp.write_bytes(b'{"state": "run')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic.write_with(target, interrupted)
    assert json.loads(target.read_text()) == {"state": "queued"}
    assert temp_files(tmp_path) == []


def test_a_successful_write_replaces_the_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "a.json"
    atomic.write_text(target, "one")
    atomic.write_json(target, {"b": float("nan"), "a": [1.0, float("inf")]})
    assert json.loads(target.read_text()) == {"a": [1.0, None], "b": None}
    assert temp_files(tmp_path) == []


def test_temp_path_is_hidden_beside_the_target_and_names_the_pid(tmp_path):
    t = atomic.temp_path(tmp_path / "checkpoint.pt")
    assert t.parent == tmp_path
    assert re.fullmatch(rf"\.checkpoint\.pt\.{os.getpid()}\.[0-9a-f]{{8}}\.tmp", t.name), t.name
    assert atomic.temp_path(tmp_path / "checkpoint.pt") != t


def test_clean_temp_files_removes_only_hidden_temp_files(tmp_path):
    names = [".config.json.123.aaaa.tmp", ".checkpoint.pt.456.bbbb.tmp", ".x.789.cc.tmp"]
    for n in names:
        (tmp_path / n).write_text("partial")
    keep = ["visible.tmp", ".hidden", "config.json", ".tmpdir-not-temp"]
    for n in keep:
        (tmp_path / n).write_text("keep")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".deep.1.aa.tmp").write_text("not recursive")
    assert atomic.clean_temp_files(tmp_path, keep_pid=456) == 2
    assert (tmp_path / ".checkpoint.pt.456.bbbb.tmp").exists()
    assert atomic.clean_temp_files(tmp_path) == 1
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([*keep, "sub"])
    assert (tmp_path / "sub" / ".deep.1.aa.tmp").exists()
    assert atomic.clean_temp_files(tmp_path / "missing") == 0


def test_run_clean_temp_cleans_the_run_and_its_cache(tmp_path):
    run = new_run(tmp_path)
    (run.path / ".status.json.1.ab.tmp").write_text("x")
    (run.path / "cache" / ".evaluation.json.1.cd.tmp").write_text("x")
    assert run.clean_temp() == 2
    assert temp_files(run.path) == [] and temp_files(run.path / "cache") == []


# ----------------------------------------------------------------------------- schema
def full_config() -> dict:
    return {
        "name": "x",
        "created_at": 1.5,
        "train": asdict(TrainConfig(dataset="digits", model="mlp-vae", milestones=[2, 3])),
        "model": {"name": "mlp-vae", "args": {"latent_dim": 2}, "config": None},
        "dataset": {"name": "digits"},
    }


def edited(path: str, value) -> dict:
    cfg = full_config()
    *parents, last = path.split(".")
    d = cfg
    for p in parents:
        d = d[p]
    if value is KeyError:
        del d[last]
    else:
        d[last] = value
    return cfg


@pytest.mark.parametrize(
    "cfg",
    [
        CONFIG,
        full_config(),
        edited("train.future_setting", "ignored"),
        edited("train.data_dir", "/data"),
        edited("name", KeyError),
        edited("model.args", None),
    ],
)
def test_check_config_accepts_good_configs(cfg):
    assert schema.check_config(cfg) is cfg


@pytest.mark.parametrize(
    "cfg, words",
    [
        ([], "does not hold an object"),
        ("config", "does not hold an object"),
        (edited("train", KeyError), "no 'train' section"),
        (edited("train", [1]), "no 'train' section"),
        (edited("train.epochs", "3"), "train.epochs has the wrong type"),
        (edited("train.epochs", True), "train.epochs has the wrong type"),
        (edited("train.epochs", 2.0), "train.epochs has the wrong type"),
        (edited("train.lr", "0.1"), "train.lr has the wrong type"),
        (edited("train.lr", float("nan")), "train.lr has the wrong type"),
        (edited("train.amp", 1), "train.amp has the wrong type"),
        (edited("train.milestones", "1,2"), "train.milestones has the wrong type"),
        (edited("train.milestones", [1.5]), "train.milestones has the wrong type"),
        (edited("train.data_dir", 3), "train.data_dir has the wrong type"),
        (edited("train.model", KeyError), "train.model is missing"),
        (edited("train.dataset", ""), "train.dataset is missing"),
        (edited("model", KeyError), "no 'model' section"),
        (edited("model.name", 3), "no 'model' section"),
        (edited("model.args", [1]), "model.args is not an object"),
        (edited("model.config", "mlp"), "model.config is not an object"),
        (edited("name", 3), "name is not text"),
        (edited("created_at", "yesterday"), "created_at is not a time"),
        (edited("created_at", float("inf")), "created_at is not a time"),
        (edited("dataset", "digits"), "dataset is not an object"),
    ],
)
def test_check_config_refuses_bad_configs_naming_the_field(cfg, words):
    with pytest.raises(Damaged) as e:
        schema.check_config(cfg)
    assert words in str(e.value)
    assert str(e.value).startswith("config.json")


@pytest.mark.parametrize(
    "st",
    [
        {"state": s}
        for s in ("queued", "running", "done", "failed", "cancelled", "interrupted")
    ]
    + [
        {"state": "running", "epoch": 0, "epochs": 3, "step": 5, "total": 9, "pid": 12,
         "updated_at": 1.0, "started_at": 2, "message": "m", "device": "cpu", "extra": [1]},
    ],
)  # fmt: skip
def test_check_status_accepts_good_statuses(st):
    assert schema.check_status(st) is st


@pytest.mark.parametrize(
    "st, words",
    [
        ([], "does not hold an object"),
        ({}, "state None is not one of"),
        ({"state": "paused"}, "state 'paused' is not one of"),
        ({"state": "done", "epoch": -1}, "epoch is not a whole number"),
        ({"state": "done", "epoch": 1.0}, "epoch is not a whole number"),
        ({"state": "done", "pid": True}, "pid is not a whole number"),
        ({"state": "done", "total": "9"}, "total is not a whole number"),
        ({"state": "done", "updated_at": "now"}, "updated_at is not a number"),
        ({"state": "done", "started_at": float("nan")}, "started_at is not a number"),
        ({"state": "done", "message": 3}, "message is not text"),
        ({"state": "done", "device": None}, "device is not text"),
    ],
)
def test_check_status_refuses_bad_statuses(st, words):
    with pytest.raises(Damaged) as e:
        schema.check_status(st)
    assert words in str(e.value) and str(e.value).startswith("status.json")


def test_read_metrics_keeps_valid_rows_by_epoch_and_reports_bad_lines(tmp_path):
    p = tmp_path / "metrics.jsonl"
    lines = [
        '{"epoch": 2, "loss": 1.5}',
        '{"epoch": 1, "loss": 2.5, "lr": NaN}',
        "not json",
        '{"loss": 3}',
        "",
        '{"epoch": 0, "loss": 3}',
        '{"epoch": 3, "loss": "high"}',
        "[1, 2]",
        '{"epoch": 2, "loss": 1.25}',  # a repeated epoch: the last row wins
        '{"epoch": 4, "loss": 0.',  # an unfinished last line (no newline): skipped quietly
    ]
    p.write_text("\n".join(lines))
    rows, problems = schema.read_metrics(p)
    assert rows == [{"epoch": 1, "loss": 2.5, "lr": None}, {"epoch": 2, "loss": 1.25}]
    assert problems == [
        "metrics.jsonl line 3 is not valid JSON",
        "metrics.jsonl line 4 has no epoch number",
        "metrics.jsonl line 6 has no epoch number",
        "metrics.jsonl line 7: loss is not a number",
        "metrics.jsonl line 8 is not an object",
    ]


def test_read_metrics_of_a_missing_or_empty_file(tmp_path):
    assert schema.read_metrics(tmp_path / "metrics.jsonl") == ([], [])
    (tmp_path / "metrics.jsonl").write_text("")
    assert schema.read_metrics(tmp_path / "metrics.jsonl") == ([], [])


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "config.json is missing"),
        (b"", "config.json is empty"),
        (b"  \n", "config.json is empty"),
        (b'{"a": ', "config.json is not valid JSON"),
        (b'{"a": NaN}', "config.json is not valid JSON"),
        (b'{"a": Infinity}', "config.json is not valid JSON"),
        (b"\xff\xfe{}", "config.json is not valid JSON"),
        (b'"' + b"x" * 2000 + b'"', "config.json is larger than 1 KB"),
    ],
)
def test_read_json_refuses_in_one_phrase(tmp_path, content, words):
    p = tmp_path / "config.json"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(Damaged, match=re.escape(words)):
        schema.read_json(p, limit=1024)


def test_read_json_reads_a_good_file(tmp_path):
    p = tmp_path / "config.json"
    p.write_text('{"a": [1, 2.5, null]}')
    assert schema.read_json(p) == {"a": [1, 2.5, None]}


# ----------------------------------------------------------------------------- names
@pytest.mark.parametrize(
    "raw, want",
    [
        ("my run", "my run"),
        ("  padded\t name  ", "padded name"),
        ("line\nbreak\r\nand\x00nul", "line break and nul"),
        ("zero\u200bwidth\u00a0space", "zero width space"),
        ("**bold** <b>x</b>", "**bold** <b>x</b>"),  # kept as text, shown as text
        ("é ü 数字 🙂", "é ü 数字 🙂"),
        ("x" * MAX_NAME, "x" * MAX_NAME),
    ],
)
def test_clean_name_makes_plain_text(raw, want):
    assert clean_name(raw) == want


@pytest.mark.parametrize(
    "raw, words",
    [
        ("", "cannot be empty"),
        (" \t\n\x07 ", "cannot be empty"),
        ("x" * (MAX_NAME + 1), f"at most {MAX_NAME} characters"),
        (None, "must be text"),
        (42, "must be text"),
        (b"bytes", "must be text"),
    ],
)
def test_clean_name_refuses_in_one_sentence(raw, words):
    with pytest.raises(RunError) as e:
        clean_name(raw)
    assert words in str(e.value)
    one_sentence(str(e.value))


# ----------------------------------------------------------------------------- create
def _create_one(root: str, barrier, queue) -> None:
    barrier.wait(timeout=120)
    try:
        run = Run.create(CONFIG, root, name="same")
        queue.put(run.id)
        run.release()
    except BaseException as e:  # reported, not hung on
        queue.put(f"ERROR {type(e).__name__}: {e}")


def test_racing_creates_make_distinct_folders(tmp_path):
    ctx = multiprocessing.get_context("fork")
    n = 20
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [
        ctx.Process(target=_create_one, args=(str(tmp_path), barrier, queue)) for _ in range(n)
    ]
    for p in procs:
        p.start()
    try:
        ids = [queue.get(timeout=120) for _ in range(n)]
    finally:
        for p in procs:
            p.join(timeout=60)
    assert not [i for i in ids if i.startswith("ERROR")], ids
    assert len(set(ids)) == n
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(ids)
    for i in ids:
        run = Run(tmp_path / i)
        assert run.config()["name"] == "same"
        assert run.status()["state"] == "queued"
        assert not run.busy  # every creator released (or exited)
    assert all(p.exitcode == 0 for p in procs)


def _list_while_they_are_created(root: str, stop) -> None:
    """What the pages do to every listed run, in a loop (a page reading a run must not
    change it: reading its evaluation once created the cache folder under a creator)."""
    while not stop.is_set():
        for run in list_runs(root):
            run.state()
            run.evaluation()


def test_creates_succeed_while_pages_list_and_read_the_runs(tmp_path):
    """Seen in the classroom bench: a press failed with "File exists: <run>/cache" because
    the Runs page, listing the half-made run (its lock file was there), read its evaluation
    and so created its cache folder first."""
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    readers = [ctx.Process(target=_list_while_they_are_created, args=(str(tmp_path), stop))
               for _ in range(2)]  # fmt: skip
    for p in readers:
        p.start()
    try:
        for i in range(60):
            Run.create(CONFIG, tmp_path, name=f"r{i}").release()
    finally:
        stop.set()
        for p in readers:
            p.join(timeout=60)
    assert len(list_runs(tmp_path)) == 60
    bare = tmp_path / "bare"  # a run folder without a cache: reading it creates nothing
    bare.mkdir()
    atomic.write_json(bare / "config.json", {**CONFIG, "name": "bare"})
    assert Run(bare).evaluation() is None and Run(bare).state()
    assert not (bare / "cache").exists()


def test_create_owns_the_run_and_writes_config_and_status(tmp_path):
    run = Run.create(CONFIG, tmp_path, name="  first\nrun ")
    try:
        assert run.busy and run.lock.held
        assert owner(run.path)["pid"] == os.getpid()
        assert run.id.endswith("-first-run")
        cfg = run.config()
        assert cfg["name"] == "first run" and cfg["train"] == CONFIG["train"]
        assert run.status()["state"] == "queued"
        assert (run.path / "cache").is_dir()
    finally:
        run.release()
    assert not run.busy


def test_a_failed_create_leaves_nothing_behind(tmp_path):
    bad = {**CONFIG, "extra": {1, 2}}  # a set: not JSON
    with pytest.raises(TypeError):
        Run.create(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RunError, match="cannot be empty"):
        Run.create(CONFIG, tmp_path, name="   ")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- list_runs
def test_list_runs_newest_first_skipping_hidden_linked_and_non_runs(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    for name, f in [
        ("20240101-000000-a", "config.json"),
        ("20250101-000000-b", "status.json"),
        ("20230101-000000-c", ".lock"),
        ("_cache", "config.json"),
        ("_20990101-000000-private", "config.json"),
        (".20990101-000000-dot", "config.json"),
    ]:
        (root / name).mkdir()
        (root / name / f).write_text("{}")
    (root / "20990101-empty").mkdir()  # no run files: not a run
    (root / "20990101-file").write_text("a file")
    (root / "20990101-link").symlink_to(root / "20240101-000000-a")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    (root / "20990101-outside").symlink_to(outside)
    ids = [r.id for r in list_runs(root)]
    assert ids == ["20250101-000000-b", "20240101-000000-a", "20230101-000000-c"]


def test_list_runs_of_a_missing_folder_or_a_file_is_empty(tmp_path):
    assert list_runs(tmp_path / "missing") == []
    (tmp_path / "file").write_text("x")
    assert list_runs(tmp_path / "file") == []


def test_list_runs_orders_created_runs_newest_first(tmp_path):
    a = new_run(tmp_path, "a")
    b = new_run(tmp_path, "b")  # same second, or later: the name sorts after a's
    c = new_run(tmp_path, "c")
    assert [r.id for r in list_runs(tmp_path)] == sorted([a.id, b.id, c.id], reverse=True)


# ----------------------------------------------------------------------------- refusals
def test_read_only_runs_refuse_rename_delete_and_repair(tmp_path):
    run = new_run(tmp_path, "pretrained")
    (run.path / "READONLY").write_text("shipped with the repository\n")
    for action in (lambda: run.rename("new"), run.delete, run.repair):
        with pytest.raises(RunError) as e:
            action()
        assert "read-only" in str(e.value)
        one_sentence(str(e.value))
    assert run.path.is_dir() and run.name == "pretrained"
    st = run.state()
    assert not st["resumable"] and not st["restartable"]


def test_a_run_held_by_another_process_refuses_delete_until_it_ends(tmp_path):
    run = new_run(tmp_path, "busy")
    with held_by_other_process(run.path) as proc:
        assert run.busy and is_locked(run.path)
        for action in (run.delete, run.repair, Run(run.path).acquire):
            with pytest.raises(RunBusyError) as e:
                action()
            msg = str(e.value)
            one_sentence(msg)
            assert f"pid {proc.pid}" in msg and "in use by another process" in msg
        assert run.path.is_dir() and run.config()["name"] == "busy"
        # a rename is allowed while the trainer runs: update_config takes its own short lock
        assert run.rename("renamed while busy") == "renamed while busy"
    assert not is_locked(run.path) and not run.busy
    assert run.name == "renamed while busy"
    run.delete()
    assert not run.path.exists()


def test_the_lock_is_freed_when_its_holder_is_killed(tmp_path):
    run = new_run(tmp_path)
    with held_by_other_process(run.path):
        assert not RunLock(run.path).acquire()
    lk = RunLock(run.path)
    assert lk.acquire()
    lk.release()


def test_rename_cleans_the_name_and_refuses_bad_ones(tmp_path):
    run = new_run(tmp_path, "old")
    assert run.rename("  new\tname ") == "new name"
    assert Run(run.path).name == "new name"
    with pytest.raises(RunError, match="cannot be empty"):
        run.rename("\n")
    assert Run(run.path).name == "new name"


def test_delete_refuses_a_linked_run_folder(tmp_path):
    run = new_run(tmp_path / "runs")
    link = tmp_path / "link"
    link.symlink_to(run.path)
    with pytest.raises(RunError, match="link"):
        Run(link).delete()
    assert run.path.is_dir() and link.is_symlink()


# ----------------------------------------------------------------------------- state
def test_state_queued_and_running_while_the_lock_is_held(tmp_path):
    run = Run.create(CONFIG, tmp_path)
    try:
        assert Run(run.path).state()["state"] == "queued"
        run.set_status("running", epoch=1, epochs=2)
        st = Run(run.path).state()
        assert st["state"] == "running" and st["busy"] and st["epoch"] == 1
        run.cancel_flag.write_text("")  # asked to stop, not yet stopped: still running
        assert Run(run.path).state()["state"] == "running"
    finally:
        run.release()


def test_state_live_in_another_process_then_interrupted_when_it_dies(tmp_path):
    run = new_run(tmp_path)
    run.set_status("running", epoch=0)
    with held_by_other_process(run.path):
        assert run.state()["state"] == "running"
    st = run.state()
    assert st["state"] == "interrupted" and not st["busy"]
    assert "no checkpoint yet: restart it" in st["message"]
    assert st["restartable"] and not st["resumable"]


@pytest.mark.parametrize("written", ["queued", "running", "interrupted"])
def test_state_without_an_owner_is_interrupted(tmp_path, written):
    run = new_run(tmp_path)
    run.set_status(written, epoch=3)
    (run.path / "checkpoint.pt").write_bytes(b"a checkpoint file")  # state looks, not reads
    st = run.state()
    assert st["state"] == "interrupted"
    assert "resume from its last checkpoint (epoch 3)" in st["message"]
    assert st["resumable"] and not st["restartable"]


@pytest.mark.parametrize("written", ["queued", "running"])
def test_state_with_a_cancel_flag_and_no_owner_is_cancelled(tmp_path, written):
    run = new_run(tmp_path)
    run.set_status(written)
    run.cancel_flag.write_text("")
    assert run.state()["state"] == "cancelled"


@pytest.mark.parametrize("written", ["done", "failed", "cancelled"])
def test_finished_states_stay_as_written(tmp_path, written):
    run = new_run(tmp_path)
    run.set_status(written, epoch=2, message="m")
    run.cancel_flag.write_text("")
    st = run.state()
    assert st["state"] == written and st["message"] == "m" and st["epoch"] == 2


def test_state_of_a_damaged_config_and_of_a_damaged_status(tmp_path):
    run = new_run(tmp_path)
    run.config_path.write_text('{"train": ')
    st = run.state()
    assert st["state"] == "damaged" and "config.json is not valid JSON" in st["message"]
    with pytest.raises(RunDamaged, match="delete the run"):
        run.config()
    run2 = new_run(tmp_path)
    (run2.path / "status.json").write_text('{"state": "flying"}')
    st = run2.state()
    assert st["state"] == "interrupted"
    assert any("status.json" in p for p in st["problems"])
    assert run2.status() == {"state": "unknown"}


def test_set_status_refuses_an_unknown_state(tmp_path):
    run = new_run(tmp_path)
    with pytest.raises(ValueError, match="unknown run state"):
        run.set_status("paused")
    assert run.status()["state"] == "queued"


def test_set_status_keeps_earlier_fields(tmp_path):
    run = new_run(tmp_path)
    run.set_status("running", epoch=1, epochs=5, pid=123)
    run.set_status("running", epoch=2)
    st = run.status()
    assert (st["epoch"], st["epochs"], st["pid"]) == (2, 5, 123)


# ----------------------------------------------------------------------------- metrics
def test_metrics_skip_a_line_cut_short_by_a_kill(tmp_path):
    run = new_run(tmp_path)
    run.append_metrics({"epoch": 1, "loss": 2.0})
    run.append_metrics({"epoch": 2, "loss": float("nan")})
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "lo')
    assert run.metrics() == [{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": None}]
    assert run.problems() == []


def test_reconcile_drops_rows_after_the_checkpoint_and_restores_missing_ones(tmp_path):
    run = new_run(tmp_path)
    for e in (1, 3, 4, 5):
        run.append_metrics({"epoch": e, "loss": 10.0 - e, "src": 0})
    history = [
        {"epoch": 1, "loss": 9.0, "src": 1},
        {"epoch": 2, "loss": 8.0, "src": 1},
        {"epoch": 3, "loss": 7.0, "src": 1},
        {"epoch": 4, "loss": 6.0, "src": 1},  # after the checkpoint's epoch: not restored
        "not a row",
        {"epoch": "2"},
    ]
    run.reconcile(3, history)
    assert run.metrics() == history[:3]
    assert temp_files(run.path) == []


def test_reconcile_without_history_only_truncates(tmp_path):
    run = new_run(tmp_path)
    for e in (1, 2, 3):
        run.append_metrics({"epoch": e, "loss": float(e)})
    run.reconcile(2, None)
    assert [r["epoch"] for r in run.metrics()] == [1, 2]
    run.reconcile(0, [])
    assert run.metrics() == []
    assert (run.path / "metrics.jsonl").read_text() == ""


# ----------------------------------------------------------------------------- repair
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Run:
    cfg = TrainConfig(dataset="digits", model="mlp-vae", epochs=2, batch_size=128, val_size=100)
    return train(cfg, {"latent_dim": 2, "hidden_dim": 16}, root=tmp_path_factory.mktemp("runs"),
                 name="tiny")  # fmt: skip


@pytest.fixture
def copy_of(trained, tmp_path) -> Run:
    dst = tmp_path / "runs" / trained.id
    shutil.copytree(trained.path, dst)
    return Run(dst)


def test_repair_rebuilds_a_damaged_config_from_the_checkpoint(copy_of):
    run = copy_of
    ck = read_checkpoint(run.checkpoint_path)
    before = run.metrics()
    run.config_path.write_text('{"train": {"model": ')
    assert run.state()["state"] == "damaged"
    run.repair()
    cfg = run.config()
    assert cfg["train"] == {**ck["train_config"], "data_dir": None}
    assert cfg["model"]["name"] == ck["model_name"] == "mlp-vae"
    assert cfg["model"]["config"] == ck["model_config"]
    assert cfg["dataset"] == ck["dataset"]
    assert cfg["name"] == run.id  # the old name was unreadable
    # the model settings rebuild the checkpoint's network
    args = cfg["model"]["args"]
    rebuilt = resolve_config(
        "mlp-vae",
        image_shape=tuple(ck["dataset"]["image_shape"]),
        num_classes=len(ck["dataset"]["class_names"]),
        num_items=ck["model_config"].get("num_items", 0),
        **args,
    )
    assert rebuilt.to_dict() == ck["model_config"]
    st = run.state()
    assert st["state"] == "done" and st["epoch"] == 2 and st["problems"] == []
    assert run.metrics() == before == ck["history"]
    # and the repaired run trains on
    run_in_dir(run, resume=True, epochs=3)
    assert [r["epoch"] for r in run.metrics()] == [1, 2, 3]
    assert run.status()["state"] == "done"


def test_repair_restores_metrics_and_status_behind_the_checkpoint(copy_of):
    run = copy_of
    ck = read_checkpoint(run.checkpoint_path)
    rows = run.metrics()
    run.write_metrics(rows[:1])
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "train_lo')  # killed while appending
    run.set_status("running", epoch=1)
    (run.path / ".checkpoint.pt.99999.dead.tmp").write_bytes(b"half a checkpoint")
    assert run.state()["state"] == "interrupted"
    run.repair()
    assert run.metrics() == rows == ck["history"]
    assert run.name == "tiny"  # kept from the readable config
    assert run.state()["state"] == "done"
    assert temp_files(run.path) == []


def test_repair_takes_the_train_settings_from_the_checkpoint(copy_of):
    run = copy_of
    run.update_config(train={**run.config()["train"], "epochs": 5})
    (run.path / "status.json").unlink()
    run.repair()  # the checkpoint's own train config says 2 epochs: done
    assert run.config()["train"]["epochs"] == 2 and run.state()["state"] == "done"


def test_repair_of_an_unfinished_run_marks_it_interrupted(tmp_path):
    run = new_run(tmp_path, "unfinished")
    cfg = TrainConfig(dataset="digits", model="mlp-vae", epochs=3, batch_size=128, val_size=0)
    trainer = Trainer(cfg, {"latent_dim": 2, "hidden_dim": 8})
    trainer.add_callback("on_epoch_end", lambda t: t.request_stop())
    with pytest.raises(Cancelled):
        trainer.fit()
    trainer.checkpoint(run.checkpoint_path, history=[trainer.last_row])
    run.repair()
    st = run.state()
    assert (st["state"], st["epoch"], st["epochs"]) == ("interrupted", 1, 3)
    assert st["resumable"] and "epoch 1" in st["message"]
    assert run.metrics() == [trainer.last_row]
    assert run.config()["model"]["config"]["hidden_dim"] == 8
    assert run.name == "unfinished"


def test_repair_without_a_checkpoint_is_refused_in_one_sentence(tmp_path):
    run = new_run(tmp_path)
    before = run.config_path.read_bytes()
    with pytest.raises(CheckpointError) as e:
        run.repair()
    one_sentence(str(e.value))
    run.checkpoint_path.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a latent-lab checkpoint"):
        run.repair()
    assert run.config_path.read_bytes() == before
