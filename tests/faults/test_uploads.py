"""Uploads are untrusted data: hostile checkpoints (wrong field types, size bombs, paths,
pickled code, archives that are not checkpoints, cut-short files) and hostile pictures
(decompression bombs, non-images, damaged files). Each case is one real file refused with
one sentence (``CheckpointError`` / ``PictureError``), with no run folder written, the
earlier run in the runs folder untouched, and nothing executed or extracted."""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from functools import cache
from pathlib import Path

import pytest
import torch
from PIL import Image

from core.importer import import_checkpoint
from core.models import build_model
from core.runs import CheckpointError, list_runs, load_model
from core.uploads import PictureError, open_picture, picture_from_data_url

ROOT = Path(__file__).resolve().parents[2]
BOMB_ROWS = 375_000_000


# ----------------------------------------------------------------------------- helpers
def tbytes(obj, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kw)
    return buf.getvalue()


def base(tiny_runs, family: str = "mlp-vae") -> dict:
    """A fresh copy of a real checkpoint of ours (loaded the safe way)."""
    return torch.load(tiny_runs[family].checkpoint_path, map_location="cpu", weights_only=True)


def one_sentence(msg: str) -> None:
    assert "\n" not in msg and "Traceback" not in msg and len(msg) < 420, msg
    assert not re.search(r"[.!?]\s+[A-Z]", msg), f"more than one sentence: {msg}"
    assert msg.rstrip().endswith("."), msg


def refused(data: bytes, fragment: str, root: Path, earlier, filename="upload.pt") -> str:
    """Import ``data``; it must be refused with ``fragment`` in one sentence, leaving the
    runs folder as it was (only the earlier run, no staging folder)."""
    with pytest.raises(CheckpointError) as err:
        import_checkpoint(data, filename, root=root)
    msg = str(err.value)
    one_sentence(msg)
    assert fragment in msg, msg
    assert sorted(p.name for p in root.iterdir()) == [earlier.path.name]
    assert [r.id for r in list_runs(root)] == [earlier.id]
    return msg


# ----------------------------------------------------------------------------- field types
def _set(section, key, value):
    def f(ck):
        ck[section][key] = value
        return ck

    return f


def _top(key, value):
    def f(ck):
        ck[key] = value
        return ck

    return f


def _sd(fn):
    def f(ck):
        ck["state_dict"] = fn(dict(ck["state_dict"]))
        return ck

    return f


def _first(sd):
    return next(iter(sd))


FIELD_CASES = {
    "model_config is a list": (_top("model_config", [1, 2]), "model_config is [1, 2]"),
    "latent_dim is text": (_set("model_config", "latent_dim", "2"), "model_config.latent_dim"),
    "latent_dim is NaN": (_set("model_config", "latent_dim", float("nan")), "latent_dim is nan"),
    "latent_dim is a bool": (_set("model_config", "latent_dim", True), "whole number"),
    "latent_dim is negative": (_set("model_config", "latent_dim", -1), "whole number from 0"),
    "latent_dim is huge": (_set("model_config", "latent_dim", 10**30), "whole number from 0"),
    "hidden_dim is a float": (_set("model_config", "hidden_dim", 32.0), "model_config.hidden_dim"),
    "arch is a number": (_set("model_config", "arch", 3), "model_config.arch"),
    "image_shape has 2 ints": (_set("model_config", "image_shape", [8, 8]), "3 whole numbers"),
    "image_shape has a zero": (_set("model_config", "image_shape", [1, 0, 8]), "3 whole numbers"),
    "image_shape is text": (_set("model_config", "image_shape", "1x8x8"), "3 whole numbers"),
    "channels has 100 entries": (_set("model_config", "channels", [2] * 100), "at most 16"),
    "unknown model setting": (_set("model_config", "evil", 1), "has the setting 'evil'"),
    "arch unknown": (_set("model_config", "arch", "rnn"), "model_config is refused"),
    "epoch is negative": (_top("epoch", -1), "epoch is -1"),
    "epoch is text": (_top("epoch", "2"), "epoch is '2'"),
    "epoch is a float": (_top("epoch", 2.5), "epoch is 2.5"),
    "state_dict is a list": (_top("state_dict", [1]), "state_dict is [1]"),
    "state_dict is empty": (_top("state_dict", {}), "a dict of the model's tensors"),
    "state_dict holds a list": (
        _sd(lambda sd: {**sd, _first(sd): [0.0] * 3}),
        "floating-point numbers",
    ),
    "state_dict holds ints": (
        _sd(lambda sd: {**sd, _first(sd): sd[_first(sd)].long()}),
        "floating-point numbers",
    ),
    "state_dict holds complex": (
        _sd(lambda sd: {**sd, _first(sd): sd[_first(sd)].to(torch.complex64)}),
        "floating-point numbers",
    ),
    "state_dict lacks a tensor": (
        _sd(lambda sd: {k: v for k, v in list(sd.items())[1:]}),
        "its state_dict lacks",
    ),
    "state_dict has an extra tensor": (
        _sd(lambda sd: {**sd, "evil.weight": torch.zeros(2)}),
        "has an extra 'evil.weight'",
    ),
    "state_dict tensor transposed": (
        _sd(lambda sd: {k: (v.t() if v.dim() == 2 else v) for k, v in sd.items()}),
        "has shape",
    ),
    "weights are NaN": (
        _sd(lambda sd: {k: torch.full_like(v, float("nan")) for k, v in sd.items()}),
        "NaN or infinite weights",
    ),
    "expanded 375M-row tensor": (
        _sd(lambda sd: {**sd, _first(sd): torch.zeros(1).expand(BOMB_ROWS, 2)}),
        "declares 750,000,000 numbers",
    ),
    "train_config is text": (_top("train_config", "abc"), "train_config is 'abc'"),
    "train lr is NaN": (_set("train_config", "lr", float("nan")), "train_config.lr is nan"),
    "train lr is infinite": (_set("train_config", "lr", float("inf")), "train_config.lr is inf"),
    "train epochs is text": (_set("train_config", "epochs", "abc"), "train_config.epochs"),
    "train batch_size negative": (_set("train_config", "batch_size", -5), "batch_size is -5"),
    "train lr negative": (_set("train_config", "lr", -1.0), "training settings this lab refuses"),
    "train loss unknown": (_set("train_config", "loss", "rm -rf"), "Cannot read loss"),
    "train optimizer unknown": (_set("train_config", "optimizer", "x"), "Unknown optimizer"),
    "train milestones text": (_set("train_config", "milestones", "1,2"), "milestones"),
    "train seed huge": (_set("train_config", "seed", 2**70), "train_config.seed"),
    "dataset with .. path": (
        _set("train_config", "dataset", "../../etc"),
        "folder of the uploader's machine",
    ),
    "dataset idx folder": (
        lambda ck: {**ck, "dataset": {"name": "idx:/home/someone/data"}},
        "folder of the uploader's machine",
    ),
    "dataset windows path": (
        lambda ck: {**ck, "dataset": {"name": "C:\\data\\mnist"}},
        "folder of the uploader's machine",
    ),
    "dataset unknown name": (
        lambda ck: {**ck, "dataset": {"name": "imagenet"}},
        "a dataset this lab does not know ('imagenet')",
    ),
    "dataset is a list": (_top("dataset", ["digits"]), "dataset is ['digits']"),
    "class_names are numbers": (_set("dataset", "class_names", list(range(10))), "class_names"),
    "metrics is a list": (_top("metrics", [1.0]), "metrics is [1.0]"),
    "metrics value is text": (_set("metrics", "val_loss", "low"), "metrics['val_loss']"),
    "history is text": (_top("history", "rows"), "history is 'rows'"),
    "history row epoch text": (_top("history", [{"epoch": "1"}]), "history[0]['epoch']"),
    "format_version is text": (_top("format_version", "1"), "format_version is '1'"),
    "format is a tensor": (_top("format", torch.zeros(3)), "not a latent-lab checkpoint"),
    "model_name is a number": (_top("model_name", 42), "model_name 42 is not a model"),
    "model_name unknown": (_top("model_name", "transformer"), "'transformer' is not a model"),
    "optimizer is a list": (_top("optimizer", [1]), "optimizer is [1]"),
    "torch_rng is floats": (_top("torch_rng", torch.zeros(4)), "torch_rng is a tensor"),
    "deeply nested extra": (
        _top("extra", json.loads("[" * 200 + "]" * 200)),
        "nests containers too deeply",
    ),
}


@pytest.mark.parametrize("case", list(FIELD_CASES))
def test_hostile_checkpoint_fields(case, tiny_runs, fault_root, earlier_run):
    mutate, fragment = FIELD_CASES[case]
    ck = mutate(base(tiny_runs))
    msg = refused(tbytes(ck), fragment, fault_root, earlier_run)
    assert msg.startswith("upload.pt"), msg


# ----------------------------------------------------------------------------- misfits
def _crafted(model_name: str, **kw) -> dict:
    """A checkpoint of a freshly built model (real weights of the declared shapes)."""
    model = build_model(model_name, **kw)
    return {
        "format": "latent-lab",
        "format_version": 1,
        "model_name": model_name,
        "model_config": model.config.to_dict(),
        "state_dict": model.state_dict(),
        "train_config": {"dataset": "digits", "model": model_name},
        "dataset": {"name": "digits"},
        "epoch": 1,
    }


MISFIT_CASES = {
    "28x28 model on 8x8 digits": (
        lambda: _crafted("mlp-vae", image_shape=(1, 28, 28), hidden_dim=8, latent_dim=2),
        "is built for 1x28x28 images but names digits",
    ),
    "5 labels on a 10-class dataset": (
        lambda: _crafted("cvae", image_shape=(1, 8, 8), num_classes=5, hidden_dim=8),
        "is conditional on 5 labels but digits has 10",
    ),
    "latent table of the wrong size": (
        lambda: _crafted("autodecoder", image_shape=(1, 8, 8), num_items=100, hidden_dim=8),
        "latent table of 100 rows",
    ),
}


@pytest.mark.parametrize("case", list(MISFIT_CASES))
def test_networks_that_do_not_fit_their_dataset(case, fault_root, earlier_run):
    make, fragment = MISFIT_CASES[case]
    refused(tbytes(make()), fragment, fault_root, earlier_run)


# ----------------------------------------------------------------------------- size bombs
def _bomb(tiny_runs, **config) -> bytes:
    """The tiny autodecoder's checkpoint (about a kilobyte of weights) declaring a larger
    network; no optimizer state, so the file stays small."""
    ck = base(tiny_runs, "autodecoder")
    for k in ("optimizer", "scheduler", "rng", "torch_rng", "history"):
        ck.pop(k, None)
    ck["model_config"].update(config)
    return tbytes(ck)


BOMBS = {
    "60M-row table": {"num_items": 60_000_000},
    "375M-row table": {"num_items": BOMB_ROWS},
    "2^31-1 rows": {"num_items": 2**31 - 1},
    "1M-wide hidden layer": {"hidden_dim": 1_000_000},
    "4096x4096 images": {"image_shape": [1, 4096, 4096]},
    "65536-D latent": {"latent_dim": 65_536, "num_items": 1000},
}


@pytest.mark.parametrize("case", list(BOMBS))
def test_size_bombs_are_refused_before_building(case, tiny_runs, fault_root, earlier_run):
    data = _bomb(tiny_runs, **BOMBS[case])
    assert len(data) < 64 << 10
    with pytest.raises(CheckpointError) as err:
        import_checkpoint(data, "upload.pt", root=fault_root)
    msg = str(err.value)
    one_sentence(msg)
    # the cap (or the model's own range check, which some sizes meet first)
    assert re.search(r"more than the 50,000,000 this server accepts|must lie between", msg), msg
    assert sorted(p.name for p in fault_root.iterdir()) == [earlier_run.path.name]


def test_the_cap_is_read_from_the_environment(tiny_runs, fault_root, earlier_run, monkeypatch):
    monkeypatch.setenv("LATENTLAB_MAX_PARAMS", "1000")
    data = tiny_runs["mlp-vae"].checkpoint_path.read_bytes()
    refused(data, "more than the 1,000 this server accepts", fault_root, earlier_run)
    monkeypatch.setenv("LATENTLAB_MAX_PARAMS", "not a number")  # ignored: the default cap
    run = import_checkpoint(data, "upload.pt", root=fault_root)
    assert run.status()["state"] == "done"


def test_load_model_refuses_a_bomb_in_a_runs_folder(tiny_runs, tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(_bomb(tiny_runs, num_items=BOMB_ROWS))
    with pytest.raises(CheckpointError, match="375,000,") as err:
        load_model(path)
    one_sentence(str(err.value))


_MEASURE = r"""
import json, sys, gc
from core.importer import import_checkpoint
from core.runs import CheckpointError

data = open(sys.argv[1], "rb").read()  # the first refusal of a fresh process: no warm-up
gc.collect()

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

rss0 = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
    f.write("5")
try:
    import_checkpoint(data, "bomb.pt", root=sys.argv[2])
    msg = None
except CheckpointError as e:
    msg = str(e)
print(json.dumps({"msg": msg, "rss0": rss0, "peak": status("VmHWM:"), "size": len(data)}))
"""


@pytest.mark.parametrize("rows", [BOMB_ROWS, 90_000_000])
def test_refusing_a_table_bomb_costs_under_50_mb(rows, tiny_runs, tmp_path, fault_root):
    """The reported upload: a small file declaring a 375M-row autodecoder table (3 GB of
    float32), and a 90M-row one (720 MB) that the model's own range check lets through to
    the parameter cap. Measured in a fresh process: the peak RSS during the refusal, above
    the RSS just before it (the peak is reset through /proc/self/clear_refs)."""
    bomb = tmp_path / "bomb.pt"
    bomb.write_bytes(_bomb(tiny_runs, num_items=rows))
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(bomb), str(fault_root)],
        cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["msg"] and re.search(rf"{rows:,}|parameters, more than the 50,000,000", res["msg"])
    cost = (res["peak"] - res["rss0"]) / 2**20
    print(f"refusing a {res['size']} B checkpoint declaring {rows:,} rows: +{cost:.1f} MB")
    assert cost < 50, f"refusing the bomb took {cost:.1f} MB above the baseline"
    assert list(fault_root.iterdir()) == []


# ----------------------------------------------------------------------------- paths
def test_paths_in_an_upload_never_reach_config_json(tiny_runs, fault_root, earlier_run):
    ck = base(tiny_runs)
    ck["train_config"].update(data_dir="/home/someone/secret-data", device="cuda:7")
    ck["train_config"]["runs_dir"] = "/etc"  # an unknown key: dropped
    ck["dataset"]["data_dir"] = "/srv/elsewhere"
    run = import_checkpoint(tbytes(ck), "../../../home/someone/up\\load.pt", root=fault_root)
    assert run.path.parent == fault_root
    cfg = json.loads(run.config_path.read_text())
    assert cfg["train"]["data_dir"] is None and cfg["train"]["device"] == "auto"
    assert cfg["imported_from"] == "load.pt" and cfg["name"] == "load"
    assert set(cfg["dataset"]) == {"name", "image_shape", "class_names"}
    text = run.config_path.read_text()
    for path in ("/home/someone", "/etc", "/srv", "..", "runs_dir", "cuda"):
        assert path not in text, path
    assert sorted(r.id for r in list_runs(fault_root)) == sorted([earlier_run.id, run.id])


def test_hostile_run_name_is_stored_as_plain_text(tiny_runs, fault_root, earlier_run):
    data = tiny_runs["mlp-vae"].checkpoint_path.read_bytes()
    run = import_checkpoint(data, "x.pt", root=fault_root, name="a\nb\x00c\u202e" + "d" * 500)
    assert run.name.startswith("a b c") and len(run.name) <= 80 and "\n" not in run.name
    assert "/" not in run.id and run.path.parent == fault_root


# ----------------------------------------------------------------------------- not checkpoints
def _zip(entries: dict, method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _rezip(data: bytes, method=zipfile.ZIP_DEFLATED) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    return _zip({i.filename: src.read(i) for i in src.infolist()}, method)


def _tar(data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("archive/data.pkl")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Payload:
    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _damaged_pickle(tiny_runs) -> bytes:
    data = tiny_runs["mlp-vae"].checkpoint_path.read_bytes()
    src = zipfile.ZipFile(io.BytesIO(data))
    entries = {i.filename: src.read(i) for i in src.infolist()}
    pkl = next(k for k in entries if k.endswith("/data.pkl"))
    entries[pkl] = b"\x80\x02" + b"\xff" * (len(entries[pkl]) - 2)
    return _zip(entries)


ARCHIVE_CASES = {
    "empty file": (lambda tr, m: b"", "is empty"),
    "random bytes": (lambda tr, m: bytes(range(256)) * 8, "not the zip archive torch.save writes"),
    "cut in half": (
        lambda tr, m: tr["mlp-vae"].checkpoint_path.read_bytes()[:4000],
        "not the zip archive torch.save writes",
    ),
    "last 10 bytes missing": (
        lambda tr, m: tr["mlp-vae"].checkpoint_path.read_bytes()[:-10],
        "not the zip archive torch.save writes",
    ),
    "a zip of pictures": (
        lambda tr, m: _zip({"a.png": b"x" * 100, "b/c.txt": b"hi"}),
        "zip archive but not a PyTorch checkpoint",
    ),
    "a zip escaping its folder": (
        lambda tr, m: _zip({"../../evil.sh": b"echo pwned", "archive/data.pkl": b"x"}),
        "zip archive but not a PyTorch checkpoint",
    ),
    "a re-zipped (deflated) checkpoint": (
        lambda tr, m: _rezip(tr["mlp-vae"].checkpoint_path.read_bytes()),
        "compressed zip archive",
    ),
    "a zip bomb": (
        lambda tr, m: _rezip(tbytes({"format": "latent-lab", "x": torch.zeros(25_000_000)})),
        "compressed zip archive",
    ),
    "a tar archive": (
        lambda tr, m: _tar(b"\x80\x02}q\x00."),
        "not the zip archive torch.save writes",
    ),
    "legacy torch format": (
        lambda tr, m: tbytes(base(tr), _use_new_zipfile_serialization=False),
        "not the zip archive torch.save writes",
    ),
    "bare pickle with os.system": (
        lambda tr, m: pickle.dumps({"x": m}),
        "not the zip archive torch.save writes",
    ),
    "torch file with os.system": (
        lambda tr, m: tbytes({"format": "latent-lab", "x": m}),
        "not loaded for safety",
    ),
    "pickled whole model": (
        lambda tr, m: tbytes(build_model("mlp-vae", image_shape=(1, 8, 8), hidden_dim=4)),
        "not loaded for safety",
    ),
    "damaged object table": (lambda tr, m: _damaged_pickle(tr), "damaged"),
    "oversized object table": (
        lambda tr, m: tbytes({"format": "latent-lab", "pad": "x" * (5 << 20)}),
        "object table",
    ),
    "a plain tensor": (lambda tr, m: tbytes(torch.zeros(3)), "not a latent-lab checkpoint"),
    "a list": (lambda tr, m: tbytes([1, 2, 3]), "not a latent-lab checkpoint"),
    "a state_dict alone": (
        lambda tr, m: tbytes(base(tr)["state_dict"]),
        "not a latent-lab checkpoint",
    ),
    "newer format": (lambda tr, m: tbytes({**base(tr), "format_version": 99}), "newer version"),
}


@pytest.mark.parametrize("case", list(ARCHIVE_CASES))
def test_files_that_are_not_checkpoints(case, tiny_runs, fault_root, earlier_run, tmp_path):
    marker = tmp_path / "PWNED"
    payload = _Payload()
    payload.marker = str(marker)
    make, fragment = ARCHIVE_CASES[case]
    cwd = os.getcwd()
    os.chdir(tmp_path)  # anything extracted relative to the working folder would land here
    try:
        refused(make(tiny_runs, payload), fragment, fault_root, earlier_run)
    finally:
        os.chdir(cwd)
    assert not marker.exists(), "the payload ran"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # nothing extracted


# ----------------------------------------------------------------------------- pictures
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(w: int, h: int, idat: bytes | None = None, depth: int = 1) -> bytes:
    """A grayscale PNG of w x h (1-bit: a 20000x20000 one is about 50 KB); ``idat`` replaces
    the pixel data (a header-only bomb)."""
    if idat is None:
        z = zlib.compressobj(9)
        row = b"\x00" + b"\x00" * ((w * depth + 7) // 8)
        parts = [z.compress(row) for _ in range(h)]
        idat = b"".join(parts) + z.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


@cache
def big_png(side: int) -> bytes:
    return png(side, side)


def _small(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, fmt)
    return buf.getvalue()


def _noise_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((256, 256), 64).save(buf, "JPEG")
    return buf.getvalue()


def _jpeg_claiming(w: int, h: int) -> bytes:
    data = bytearray(_small("JPEG"))
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def _gif_claiming(w: int, h: int) -> bytes:
    data = bytearray(_small("GIF"))
    data[6:10] = struct.pack("<HH", w, h)
    return bytes(data)


def _bad_crc() -> bytes:
    data = bytearray(png(64, 64, depth=8))
    data[50] ^= 0xFF  # inside the IDAT chunk's deflate stream
    return bytes(data)


PICTURE_CASES = {
    "20000x20000 PNG": (lambda: big_png(20000), "scale it down"),
    "12000x12000 PNG": (lambda: big_png(12000), "12000x12000 pixels"),
    "5000x5000 PNG": (lambda: big_png(5000), "5000x5000 pixels"),
    "1x100000000 strip": (lambda: png(100_000_000, 1, idat=b""), "scale it down"),
    "header-only 100000x100000": (lambda: png(100_000, 100_000, idat=b""), "scale it down"),
    "JPEG claiming 60000x60000": (lambda: _jpeg_claiming(60000, 60000), "scale it down"),
    "JPEG claiming 8000x8000": (lambda: _jpeg_claiming(8000, 8000), "8000x8000 pixels"),
    "GIF claiming 65535x65535": (lambda: _gif_claiming(65535, 65535), "scale it down"),
    "empty file": (lambda: b"", "empty"),
    "text file": (lambda: b"not a picture", "not a picture Pillow can read"),
    "SVG": (lambda: b'<svg xmlns="http://www.w3.org/2000/svg"/>', "not a picture Pillow"),
    "TIFF (not offered)": (lambda: _small("TIFF"), "not a picture Pillow can read"),
    "PDF": (lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "not a picture Pillow can read"),
    "PNG cut short": (lambda: png(64, 64, depth=8)[:60], "damaged or cut short"),
    "PNG with a bad CRC": (_bad_crc, "damaged or cut short"),
    "JPEG cut short": (lambda: _noise_jpeg()[: len(_noise_jpeg()) // 2], "damaged or cut short"),
}


@pytest.mark.parametrize("case", list(PICTURE_CASES))
def test_hostile_pictures_are_refused_before_decoding(case):
    make, fragment = PICTURE_CASES[case]
    with pytest.raises(PictureError) as err:
        open_picture(make())
    one_sentence(str(err.value))
    assert fragment in str(err.value)


DATA_URL_CASES = {
    "not a data URL": ("http://example.invalid/x.png", "did not arrive as an image"),
    "not text": (12345, "did not arrive as an image"),
    "garbled base64": ("data:image/png;base64,@@@", "garbled"),
    "a 20000x20000 PNG": (
        "data:image/png;base64," + base64.b64encode(png(20000, 20000, idat=b"")).decode(),
        "scale it down",
    ),
}


@pytest.mark.parametrize("case", list(DATA_URL_CASES))
def test_hostile_drawings_are_refused(case):
    url, fragment = DATA_URL_CASES[case]
    with pytest.raises(PictureError) as err:
        picture_from_data_url(url)
    one_sentence(str(err.value))
    assert fragment in str(err.value)


def test_a_picture_at_the_cap_is_decoded():
    img = open_picture(big_png(4096))
    assert img.size == (4096, 4096)
