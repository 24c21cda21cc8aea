"""Re-vendor onnxruntime-web from the npm registry into ``app/static/ort/``:
``python -m app.vendor_ort [VERSION]`` (default: the version vendored now).

The page decodes in the browser with onnxruntime-web's WebAssembly build (see
``app.components``). Its files are committed in the repository and served by the app
itself (Streamlit's static serving, ``/app/static/ort/``), so nothing is fetched from the
internet at run time. This script fetches the package's tarball, checks it against the
registry's sha512 ``integrity``, and copies:

- ``ort.wasm.min.mjs``: the runtime (ES module, WebAssembly execution provider only);
- ``ort-wasm-simd-threaded.mjs`` and ``.wasm.gz``: the WebAssembly binary's loader, and
  the binary gzipped (3.8 MB instead of 14.8): Streamlit's server gzips every response on
  the fly except those already compressed, which cost 0.37 s per fetch of the 14.8 MB
  binary (0.05 s uncompressed, curl on loopback, 2026-12-03); the browser unpacks it with
  ``DecompressionStream`` (``app/js/ort.js``);
- ``LICENSE``: the package is MIT (its ``package.json``); npm's tarball carries no licence
  file, so the text of onnxruntime's LICENSE is written here, and the script refuses a
  version whose ``license`` field is not MIT;
- ``VERSION.json``: version, the registry's integrity and each file's sha256, the binary's
  of its unpacked bytes (``tests/test_onnx_decoder.py`` checks the files against it).

WebGPU (``ort.webgpu``, its 29 MB ``jsep`` binary) is not vendored: the decoders are a few
hundred kFLOP, so one WebAssembly run is less work than a round trip to a GPU.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

DEST = Path(__file__).parent / "static" / "ort"
FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
REGISTRY = "https://registry.npmjs.org/onnxruntime-web"
MIT = """MIT License

Copyright (c) 2018 - present Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def vendored() -> dict:
    """The vendored ``VERSION.json`` ({} when the runtime is not there)."""
    try:
        return json.loads((DEST / "VERSION.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as r:  # noqa: S310 (the npm registry)
        return r.read()


def vendor(version: str) -> dict:
    meta = json.loads(_get(f"{REGISTRY}/{version}"))
    if meta.get("license") != "MIT":
        raise SystemExit(f"onnxruntime-web {version} is not MIT ({meta.get('license')!r}).")
    url, integrity = meta["dist"]["tarball"], meta["dist"]["integrity"]
    blob = _get(url)
    algo, _, want = integrity.partition("-")
    if algo != "sha512" or base64.b64encode(hashlib.sha512(blob).digest()).decode() != want:
        raise SystemExit(f"The tarball of onnxruntime-web {version} fails its integrity check.")
    DEST.mkdir(parents=True, exist_ok=True)
    sums = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for name in FILES:
            data = tar.extractfile(f"package/dist/{name}").read()
            sums[name] = hashlib.sha256(data).hexdigest()
            if name.endswith(".wasm"):
                (DEST / name).unlink(missing_ok=True)
                name, data = name + ".gz", gzip.compress(data, 9, mtime=0)
            (DEST / name).write_bytes(data)
    (DEST / "LICENSE").write_text(MIT, encoding="utf-8")
    record = {"package": "onnxruntime-web", "version": version, "integrity": integrity}
    record["sha256"] = sums
    (DEST / "VERSION.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


if __name__ == "__main__":
    v = sys.argv[1] if len(sys.argv) > 1 else vendored().get("version", "1.31.1")
    rec = vendor(v)
    print(f"onnxruntime-web {rec['version']} vendored in {DEST}")
