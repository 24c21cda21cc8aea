"""Named pause points for the fault suite: kill -9 at a chosen instruction, every time.

With ``LATENTLAB_FAULT_PAUSE=<point>`` in a process's environment, reaching ``point``
creates the file named by ``LATENTLAB_FAULT_MARK`` (when set) and sleeps for an hour, so a
test can wait for the marker and kill the process exactly there. Without the variable a
point costs one dictionary lookup. Points: setup, mid-epoch, before-checkpoint,
write:<file name> (e.g. write:checkpoint.pt: the temp file is written, not yet renamed),
after-checkpoint, after-metrics, before-done.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def point(name: str) -> None:
    if os.environ.get("LATENTLAB_FAULT_PAUSE") != name:
        return
    mark = os.environ.get("LATENTLAB_FAULT_MARK")
    if mark:
        Path(mark).write_text(str(os.getpid()))
    time.sleep(3600)
