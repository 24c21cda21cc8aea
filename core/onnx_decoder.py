"""A model's decoder as an ONNX graph, so that the browser can decode the exact point under
the cursor (onnxruntime-web, vendored in ``app/static/ort``; see ``app.components``).

The graph is ``image = sigmoid(decoder(z[, onehot]))``, exactly ``LatentModel.decode``:

- input ``z``: float32 (B, latent_dim), B free;
- input ``onehot`` (conditional models only): float32 (B, num_classes), the label as a
  one-hot row. The label goes in as the one-hot the decoder consumes, not as an integer:
  ``LatentModel._onehot``'s range check would be traced as a constant;
- output ``image``: float32 (B, C, H, W) in [0, 1].

Exported with the TorchScript exporter (``dynamo=False``; torch 2.14 needs the ``onnx``
package for it, in requirements.txt), at opset 17, which onnxruntime-web runs. Every
family exports (the MLP, fc_conv and conv decoders, conditional or not; a Gumbel model's
decoder takes its flattened one-hot code as ``z``). ``decoder_onnx`` caches the file in the
run's cache folder, next to the run's other derived arrays.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from core.store import atomic

OPSET = 17
log = logging.getLogger(__name__)


class _Decode(nn.Module):
    """``LatentModel.decode`` with the label as a one-hot input."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, z: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z, onehot).float())


def export_decoder(model) -> bytes:
    """The decoder of ``model`` (any device; it is not changed) as ONNX bytes."""
    dec = _Decode(copy.deepcopy(model.decoder).float().cpu()).eval()
    z = torch.zeros(2, model.latent_dim)
    names, axes = ["z"], {"z": {0: "batch"}, "image": {0: "batch"}}
    args: tuple = (z,)
    if model.conditional:
        args = (z, torch.zeros(2, model.num_classes))
        names.append("onehot")
        axes["onehot"] = {0: "batch"}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on the legacy path
        torch.onnx.export(
            dec,
            args,
            buf,
            input_names=names,
            output_names=["image"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return buf.getvalue()


def decoder_onnx(model, key: str, cache_dir: str | Path | None) -> bytes | None:
    """The decoder's ONNX bytes, cached as ``<cache_dir>/decoder-<key digest>.onnx`` (key:
    the checkpoint's identity; files of earlier checkpoints are removed). None when the
    export fails (the page then keeps the blended grid and says so)."""
    name = f"decoder-{hashlib.sha1(key.encode()).hexdigest()[:12]}-op{OPSET}.onnx"
    path = Path(cache_dir) / name if cache_dir else None
    if path is not None and path.is_file():
        with contextlib.suppress(Exception):  # unreadable, torn or not ONNX: export again
            data = path.read_bytes()
            onnx.checker.check_model(onnx.load_from_string(data))
            return data
    try:
        data = export_decoder(model)
    except Exception as e:  # an exotic layer the exporter cannot trace: keep the blend
        log.warning("The decoder could not be exported to ONNX: %s", e)
        return None
    if path is not None:
        with contextlib.suppress(OSError):  # a full or read-only disk: serve it from memory
            for old in path.parent.glob("decoder-*.onnx"):
                if old.name != name:
                    old.unlink(missing_ok=True)
            atomic.write_bytes(path, data)
    return data
