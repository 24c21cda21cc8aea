"""Named pause points for the fault suite: kill -9 at a chosen instruction, every time.

With ``LATENTLAB_FAULT_PAUSE=<point>`` in a process's environment, reaching ``point``
creates the file named by ``LATENTLAB_FAULT_MARK`` (when set) and waits until that file is
removed (at most an hour), so a test can wait for the marker and kill the process exactly
there, or change the world (fill the disk) and let it go on (``LATENTLAB_FAULT_SKIP=n``
passes the point n times first, e.g. to kill in the second epoch). Without the variable a
point costs one dictionary lookup. Points: setup, mid-epoch, before-checkpoint,
write:<file name> (e.g. write:checkpoint.pt: the temp file is written, not yet renamed),
after-checkpoint, after-metrics, before-done; evaluation (the evaluation job's worker);
projection-epoch (an Embeddings view's worker, at each UMAP epoch it records).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_hits: dict[str, int] = {}


def point(name: str) -> None:
    if os.environ.get("LATENTLAB_FAULT_PAUSE") != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] <= int(os.environ.get("LATENTLAB_FAULT_SKIP") or 0):
        return
    mark = os.environ.get("LATENTLAB_FAULT_MARK")
    if not mark:
        time.sleep(3600)
        return
    Path(mark).write_text(str(os.getpid()))
    deadline = time.time() + 3600
    while Path(mark).exists() and time.time() < deadline:  # removing it lets the run go on
        time.sleep(0.02)
