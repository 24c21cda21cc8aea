"""The app's own command-line arguments, after a ``--``:
``streamlit run app/main.py -- --data-dir DIR --runs-dir DIR``.

They are the flags of ``python -m core.train`` and set the same environment variables
(``$LATENTLAB_DATA_DIR``, ``$LATENTLAB_RUNS_DIR``), as absolute paths, for this server and
for the trainers and jobs it starts, which inherit its environment. A flag beats the
variable already set.
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path

FOLDER_ARGS = {"--data-dir": "LATENTLAB_DATA_DIR", "--runs-dir": "LATENTLAB_RUNS_DIR"}


def folders_from_args(argv: list[str], environ=os.environ) -> str | None:
    """``streamlit run app/main.py -- --data-dir DIR --runs-dir DIR``: the same flags as
    ``python -m core.train``, set as ``$LATENTLAB_DATA_DIR`` / ``$LATENTLAB_RUNS_DIR`` (as
    absolute paths) for this server and the trainers it starts, which inherit its
    environment. Returns one sentence when the arguments are wrong, else None."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False, allow_abbrev=False)
    for flag in FOLDER_ARGS:
        parser.add_argument(flag)
    usage = "the app takes --data-dir DIR and --runs-dir DIR, after a `--`"
    try:
        args, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as e:
        return f"The app was started with a bad argument ({e}): {usage}."
    if unknown:
        return f"The app was started with unknown arguments {' '.join(unknown)!r}: {usage}."
    chosen = {}
    for flag, var in FOLDER_ARGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        if not value.strip():
            return f"{flag} was given an empty folder name: name a folder (made when missing)."
        folder = Path(value).expanduser().resolve()
        if folder.exists() and not folder.is_dir():
            return f"{flag} {value!r} is a file, not a folder: give a folder (made when missing)."
        chosen[var] = str(folder)
    environ.update(chosen)  # all or nothing
    return None


@functools.cache
def apply_once(argv: tuple[str, ...]) -> str | None:
    """``folders_from_args`` on this process's environment, once per server process (the
    entry script runs on every rerun; the arguments never change)."""
    return folders_from_args(list(argv))
