"""The decoder as ONNX (``core.onnx_decoder``): every family exports, and the graph computes
what ``LatentModel.decode`` computes, checked with onnx's own reference evaluator (numpy,
no runtime of ours); the cache; the plane's affine form; the vendored onnxruntime-web.
The browser's decoding against torch is checked in ``tests/test_browser_exact.py``."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re

import numpy as np
import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from app import components
from core import explore as ex
from core.models import FAMILIES, build_model
from core.onnx_decoder import OPSET, decoder_onnx, export_decoder


def tiny(name, shape, classes):
    args = {"hidden_dim": 16, "num_classes": classes, "num_items": 8, "image_shape": shape}
    if classes:
        args["conditional"] = True
    if name == "conv-vae":
        args["channels"] = (4, 8)
    torch.manual_seed(0)
    return build_model(name, **args).eval()


@pytest.mark.parametrize("classes", [0, 3], ids=["plain", "conditional"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)], ids=["28x28", "3x32x32"])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_exports_a_decoder_that_computes_decode(name, shape, classes):
    if name == "cvae" and not classes:
        pytest.skip("a CVAE is conditional by definition")
    model = tiny(name, shape, classes)
    assert model.conditional == bool(classes)
    graph = onnx.load_from_string(export_decoder(model))
    onnx.checker.check_model(graph)
    assert graph.opset_import[0].version == OPSET
    inputs = [i.name for i in graph.graph.input]
    assert inputs == (["z", "onehot"] if classes else ["z"])

    g = torch.Generator().manual_seed(1)
    z = torch.randn(5, model.latent_dim, generator=g)
    if name == "gumbel-vae":  # its decoder takes flattened (relaxed) one-hot codes
        k = model.config.categories
        z = torch.softmax(torch.randn(5, model.latent_dim // k, k, generator=g), -1).flatten(1)
    y = torch.tensor([0, 1, 2, 1, 0]) if classes else None
    feeds = {"z": z.numpy()}
    if classes:
        feeds["onehot"] = torch.nn.functional.one_hot(y, classes).float().numpy()
    (got,) = ReferenceEvaluator(graph).run(None, feeds)
    want = model.decode(z, y).detach().numpy()
    assert got.shape == (5, *shape)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_the_decoder_is_cached_per_checkpoint_and_old_ones_removed(tmp_path, monkeypatch):
    model = tiny("mlp-vae", (1, 8, 8), 0)
    first = decoder_onnx(model, "ckpt-a", tmp_path)
    files = list(tmp_path.glob("decoder-*.onnx"))
    assert len(files) == 1 and files[0].read_bytes() == first
    other = export_decoder(tiny("mlp-vae", (1, 8, 8), 2))  # a valid file, not this model's
    files[0].write_bytes(other)
    assert decoder_onnx(model, "ckpt-a", tmp_path) == other  # read, not exported again
    files[0].write_bytes(first[: len(first) // 2])  # torn: exported again
    assert decoder_onnx(model, "ckpt-a", tmp_path) == first
    decoder_onnx(model, "ckpt-b", tmp_path)  # a new checkpoint replaces the old file
    assert [p.read_bytes() for p in tmp_path.glob("decoder-*.onnx")] == [first]


def test_a_cache_that_cannot_be_written_still_gives_the_decoder(tmp_path, monkeypatch):
    (tmp_path / "decoder-old-op17.onnx").write_bytes(b"x")

    def refuse(*_, **__):
        raise PermissionError("read-only file system")

    monkeypatch.setattr("core.onnx_decoder.atomic.write_bytes", refuse)
    monkeypatch.setattr("pathlib.Path.unlink", refuse)
    data = decoder_onnx(tiny("ae", (1, 8, 8), 0), "k", tmp_path)
    assert data is not None and onnx.load_from_string(data).graph.output[0].name == "image"
    assert [p.name for p in tmp_path.iterdir()] == ["decoder-old-op17.onnx"]


@pytest.mark.parametrize("kind", ["dims", "pca"])
def test_the_planes_affine_form_gives_to_z(kind):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5))
    basis = ex.dims_basis(5, z) if kind == "dims" else ex.pca_basis(z)
    fixed = basis.scores(z[:1])[0]
    for i, j in [(0, 1), (3, 1), (4, 2)]:
        plane = ex.Plane(basis, i, j, fixed)
        origin, du, dv = plane.affine()
        uv = rng.normal(size=(7, 2))
        np.testing.assert_allclose(
            origin + uv[:, :1] * du + uv[:, 1:] * dv, plane.to_z(uv), rtol=1e-5, atol=1e-5
        )


def test_the_vendored_runtime_is_the_recorded_one_with_its_licence():
    folder = components.ORT_DIR
    record = json.loads((folder / "VERSION.json").read_text())
    assert record["package"] == "onnxruntime-web"
    for name, digest in record["sha256"].items():
        path = folder / name
        data = (
            path.read_bytes()
            if path.exists()
            else gzip.decompress((folder / f"{name}.gz").read_bytes())
        )
        assert hashlib.sha256(data).hexdigest() == digest, name
    assert "MIT License" in (folder / "LICENSE").read_text()
    assert "Microsoft" in (folder / "LICENSE").read_text()


def test_the_warm_up_model_in_ort_js_is_a_valid_one_node_identity():
    """app/js/ort.js starts the runtime on every page with a model written into it as
    base64: it must be a valid ONNX model the runtime can run, and compute y = x."""
    text = (components.ASSETS / "ort.js").read_text(encoding="utf-8")
    (b64,) = re.findall(r'const WARM_ONNX = "([A-Za-z0-9+/=]+)";', text)
    model = onnx.load_from_string(base64.b64decode(b64))
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Identity"]
    assert max(o.version for o in model.opset_import) <= OPSET  # what the decoders use
    x = np.array([0.25], dtype=np.float32)
    (y,) = ReferenceEvaluator(model).run(None, {"x": x})
    assert np.array_equal(y, x)
