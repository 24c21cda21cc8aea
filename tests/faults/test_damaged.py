"""A matrix of damaged run files (every file: missing, empty, truncated, wrong JSON type,
wrong field types, NaN, garbage, oversized, a folder in its place), each read through the
run store and rendered through the pages with AppTest: never an exception, a damaged run
listed as *damaged* with one sentence naming the file, and the other runs untouched."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import jobs
from core.runs import Run, list_runs

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")


def _cfg(mut):
    def apply(run: Run):
        cfg = json.loads(run.config_path.read_text())
        mut(cfg)
        run.config_path.write_text(json.dumps(cfg))

    return apply


def _status(mut):
    def apply(run: Run):
        p = run.path / "status.json"
        st = json.loads(p.read_text())
        mut(st)
        p.write_text(json.dumps(st))

    return apply


def _write(name: str, data: bytes):
    def apply(run: Run):
        (run.path / name).write_bytes(data)

    return apply


def _truncate(name: str):
    def apply(run: Run):
        p = run.path / name
        p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])

    return apply


def _missing(name: str):
    def apply(run: Run):
        (run.path / name).unlink()

    return apply


def _folder(name: str):
    def apply(run: Run):
        (run.path / name).unlink()
        (run.path / name).mkdir()

    return apply


def _set(path: str, value):
    def mut(d):
        *head, last = path.split(".")
        for k in head:
            d = d[k]
        d[last] = value

    return mut


def _metrics_line(line: bytes, where: str = "end"):
    def apply(run: Run):
        p = run.path / "metrics.jsonl"
        rows = p.read_bytes()
        p.write_bytes(line + b"\n" + rows if where == "start" else rows + line + b"\n")

    return apply


GARBAGE = b"\x00\xff\xfe garbage \x89PNG\r\n"
HUGE = b" " * (2 << 20) + b"{}"

# case -> (damage, the file a sentence must name, state it must show)
CONFIG = {
    "missing": (_missing("config.json"), "damaged"),
    "empty": (_write("config.json", b""), "damaged"),
    "truncated": (_truncate("config.json"), "damaged"),
    "list": (_write("config.json", b"[1, 2]"), "damaged"),
    "string": (_write("config.json", b'"config"'), "damaged"),
    "number": (_write("config.json", b"42"), "damaged"),
    "null": (_write("config.json", b"null"), "damaged"),
    "garbage": (_write("config.json", GARBAGE), "damaged"),
    "oversized": (_write("config.json", HUGE), "damaged"),
    "folder": (_folder("config.json"), "damaged"),
    "nan-literal": (_write("config.json", b'{"train": NaN}'), "damaged"),
    "train-list": (_cfg(_set("train", [])), "damaged"),
    "train-missing": (_cfg(lambda c: c.pop("train")), "damaged"),
    "epochs-string": (_cfg(_set("train.epochs", "three")), "damaged"),
    "epochs-float": (_cfg(_set("train.epochs", 2.5)), "damaged"),
    "lr-string": (_cfg(_set("train.lr", "fast")), "damaged"),
    "amp-int": (_cfg(_set("train.amp", 3)), "damaged"),
    "milestones-str": (_cfg(_set("train.milestones", "1,2")), "damaged"),
    "dataset-int": (_cfg(_set("train.dataset", 7)), "damaged"),
    "model-section-list": (_cfg(_set("model", ["mlp-vae"])), "damaged"),
    "model-name-int": (_cfg(_set("model.name", 5)), "damaged"),
    "model-args-list": (_cfg(_set("model.args", [1])), "damaged"),
    "name-int": (_cfg(_set("name", 12345)), "damaged"),
    "name-markdown": (_cfg(_set("name", "![x](http://example.invalid/x.png) **bold**")), "done"),
    "created-string": (_cfg(_set("created_at", "yesterday")), "damaged"),
    "dataset-section-str": (_cfg(_set("dataset", "digits")), "damaged"),
}
STATUS = {
    "missing": (_missing("status.json"), "interrupted"),
    "empty": (_write("status.json", b""), "interrupted"),
    "truncated": (_truncate("status.json"), "interrupted"),
    "list": (_write("status.json", b'["done"]'), "interrupted"),
    "string": (_write("status.json", b'"done"'), "interrupted"),
    "garbage": (_write("status.json", GARBAGE), "interrupted"),
    "oversized": (_write("status.json", HUGE), "interrupted"),
    "folder": (_folder("status.json"), "interrupted"),
    "state-bogus": (_status(_set("state", "exploded")), "interrupted"),
    "state-int": (_status(_set("state", 3)), "interrupted"),
    "epoch-string": (_status(_set("epoch", "2")), "interrupted"),
    "epoch-negative": (_status(_set("epoch", -4)), "interrupted"),
    "epoch-float": (_status(_set("epoch", 1.5)), "interrupted"),
    "pid-string": (_status(_set("pid", "1234")), "interrupted"),
    "pid-minus-one-running": (_status(lambda s: s.update(pid=-1, state="running")), "interrupted"),
    "pid-one-running": (_status(lambda s: s.update(pid=1, state="running")), "interrupted"),
    "queued-forever": (_status(_set("state", "queued")), "interrupted"),
    "message-dict": (_status(_set("message", {"a": 1})), "interrupted"),
    "updated-nan": (_write("status.json", b'{"state": "done", "updated_at": NaN}'), "interrupted"),
}
METRICS = {
    "missing": (_missing("metrics.jsonl"), "done"),
    "empty": (_write("metrics.jsonl", b""), "done"),
    "truncated": (_truncate("metrics.jsonl"), "done"),
    "list-line": (_metrics_line(b"[1, 2, 3]"), "done"),
    "string-line": (_metrics_line(b'"epoch"'), "done"),
    "number-line": (_metrics_line(b"7", "start"), "done"),
    "no-epoch": (_metrics_line(b'{"train_loss": 1.0}'), "done"),
    "epoch-string": (_metrics_line(b'{"epoch": "3", "train_loss": 1.0}'), "done"),
    "epoch-zero": (_metrics_line(b'{"epoch": 0, "train_loss": 1.0}'), "done"),
    "value-string": (_metrics_line(b'{"epoch": 3, "train_loss": "low"}'), "done"),
    "value-dict": (_metrics_line(b'{"epoch": 3, "val_loss": {"x": 1}}'), "done"),
    "nan-values": (_metrics_line(b'{"epoch": 3, "train_loss": NaN, "val_loss": Infinity}'), "done"),
    "garbage": (_write("metrics.jsonl", GARBAGE + b"\n"), "done"),
    "binary-line": (_metrics_line(b"\xff\xfe\xfd"), "done"),
    "duplicated-epochs": (
        lambda r: _metrics_line((r.path / "metrics.jsonl").read_bytes().strip())(r),
        "done",
    ),
    "folder": (_folder("metrics.jsonl"), "done"),
}
OTHER = {
    "checkpoint-missing": (_missing("checkpoint.pt"), "done"),
    "checkpoint-empty": (_write("checkpoint.pt", b""), "done"),
    "checkpoint-truncated": (_truncate("checkpoint.pt"), "done"),
    "checkpoint-garbage": (_write("checkpoint.pt", GARBAGE * 100), "done"),
    "checkpoint-folder": (_folder("checkpoint.pt"), "done"),
    "recon-garbage": (_write("recon.png", GARBAGE), "done"),
    "recon-empty": (_write("recon.png", b""), "done"),
    "recon-truncated": (_truncate("recon.png"), "done"),
    "log-binary": (_write("log.txt", GARBAGE * 1000), "done"),
    "evaluation-list": (_write("cache/evaluation.json", b"[]"), "done"),
    "evaluation-garbage": (_write("cache/evaluation.json", GARBAGE), "done"),
    "lock-garbage": (_write(".lock", GARBAGE), "done"),
    "cancel-flag-left": (_write("CANCEL", b""), "done"),
    "temp-files-left": (_write(".checkpoint.pt.999999.abcd.tmp", b"half"), "done"),
}
# valid files (a state to work out, not a damaged file), or damage readers skip by design
SILENT = {
    "status-pid-minus-one-running", "status-pid-one-running", "status-queued-forever",
    "metrics-missing", "metrics-empty", "metrics-truncated", "metrics-nan-values",
    "metrics-duplicated-epochs",
}  # fmt: skip
CASES = [
    *[(f"config-{k}", *v, "config.json") for k, v in CONFIG.items()],
    *[(f"status-{k}", *v, "status.json") for k, v in STATUS.items()],
    *[(f"metrics-{k}", *v, "metrics.jsonl") for k, v in METRICS.items()],
    *[(k, *v, None) for k, v in OTHER.items()],
]


def _damaged_copy(finished_run: Run, root: Path, case: str, damage) -> Run:
    dest = root / f"20991231-000000-{case}"
    shutil.copytree(finished_run.path, dest, ignore=shutil.ignore_patterns(".lock"))
    run = Run(dest)
    _cfg(_set("name", case))(run)  # distinct labels in the pickers
    damage(run)
    return run


@pytest.mark.parametrize("case,damage,state,file", CASES, ids=[c[0] for c in CASES])
def test_damaged_file_is_reported_not_raised(case, damage, state, file, finished_run,
                                             fault_root, earlier_run):  # fmt: skip
    run = _damaged_copy(finished_run, fault_root, case, damage)
    listed = {r.id: r for r in list_runs(fault_root)}
    assert run.id in listed and earlier_run.id in listed  # listed, not silently left out
    st = jobs.refresh(run)
    assert st["state"] == state, st
    if file == "config.json" and state == "damaged":
        assert "config.json" in st["message"] and "delete" in st["message"], st
    if file in ("status.json", "metrics.jsonl") and case not in SILENT:
        assert any(file in p for p in st["problems"]), st["problems"]
    if state == "interrupted":
        assert st["resumable"] and "resume" in st["message"]
    assert isinstance(run.name, str) and isinstance(run.metrics(), list)
    assert earlier_run.state()["state"] == "done"


def _pages(at: AppTest, pages=("train", "runs", "explore", "conditional", "embeddings", "compare")):
    for page in pages:
        at.switch_page(f"../pages/{page}.py")
        at.run()
        assert not at.exception, (page, [e.message for e in at.exception])


@pytest.mark.parametrize("group", ["config", "status", "metrics", "other"])
def test_every_page_serves_a_runs_folder_of_damaged_runs(group, finished_run, fault_root,
                                                         earlier_run, monkeypatch):  # fmt: skip
    cases = [c for c in CASES if c[0].startswith(group) or (group == "other" and c[3] is None)]
    runs = [_damaged_copy(finished_run, fault_root, c[0], lambda r: None) for c in cases]
    monkeypatch.setenv("LATENTLAB_RUNS_DIR", str(fault_root))
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    for i, (run, case) in enumerate(zip(runs, cases, strict=True)):
        picked = i % max(1, len(runs) // 3) == 0
        if picked:  # picked on every page while healthy, damaged afterwards
            at.selectbox(key="run_id").set_value(run.id).run()
            at.switch_page("../pages/train.py")
            at.run()
            at.selectbox(key="train.watch").set_value(run.id).run()
        case[1](run)
        if picked:
            at.switch_page("../pages/runs.py")
            at.run()
            at.selectbox(key="runs.target").set_value(run.id).run()
            assert not at.exception, (run.id, [e.message for e in at.exception])
            shown = re.sub(r"\\(.)", r"\1", " ".join(
                str(e.value) for e in (*at.warning, *at.error, *at.caption)))  # fmt: skip
            state = run.state()
            if state["state"] in ("damaged", "interrupted"):
                assert state["message"] in shown, (state, shown)
            _pages(at, ("train", "explore", "embeddings"))
    _pages(at)  # and with every damaged run in the folder
    names = " ".join(str(e.value) for e in (*at.markdown, *at.caption, *at.success))
    assert "![x](http://example.invalid" not in names  # a name is text, never an image


def test_repair_rebuilds_a_damaged_config_from_the_checkpoint(finished_run, fault_root,
                                                              earlier_run):  # fmt: skip
    run = _damaged_copy(finished_run, fault_root, "repair", _write("config.json", b"{trunc"))
    (run.path / "metrics.jsonl").write_text('{"epoch": 1}\n[]\n')
    assert run.state()["state"] == "damaged"
    run.repair()
    st = run.state()
    assert st["state"] == "done" and not st["problems"], st
    assert [r["epoch"] for r in run.metrics()] == [1, 2]
    assert run.config()["model"]["args"]["latent_dim"] == 2


def test_symlinked_run_folder_is_not_listed_or_written(finished_run, fault_root, earlier_run,
                                                       tmp_path):  # fmt: skip
    outside = tmp_path / "outside"
    shutil.copytree(finished_run.path, outside, ignore=shutil.ignore_patterns(".lock"))
    before = sorted(p.name for p in outside.iterdir())
    (fault_root / "20991231-linked").symlink_to(outside, target_is_directory=True)
    assert "20991231-linked" not in {r.id for r in list_runs(fault_root)}
    with pytest.raises(ValueError, match="link"):
        Run(fault_root / "20991231-linked").delete()
    assert sorted(p.name for p in outside.iterdir()) == before


def test_runs_folder_that_is_a_file_lists_nothing(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    assert list_runs(tmp_path / "runs") == []
