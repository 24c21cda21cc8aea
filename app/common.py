"""What every page shares: where runs live, the run picker's list (user runs and the
read-only pretrained zoo), cached models and datasets and the "what am I looking at"
explainer (pictures are encoded by ``core.images``).

Imports: this module, and what Home and the sidebar use, import no torch (nor
torchvision, scikit-learn, umap): the first page draws in a few seconds. ``warm_up`` (called
by app/main.py once a page is drawn) imports the model pages' heavy modules in a background
thread, once per server process.

Caching: models through ``st.cache_resource`` keyed by checkpoint path and modification
time (a re-trained checkpoint reloads, a rerun does not); datasets through
``st.cache_resource`` as well (one shared copy of the tensors; never mutate them).
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from pathlib import Path

import streamlit as st
from PIL import Image

from app import url_state
from app.text import md_escape, one_line
from core import data as datalib
from core.runs import Run, is_run_dir, list_runs, runs_dir

ROOT = Path(__file__).resolve().parent.parent
PRETRAINED_DIR = Path(os.environ.get("LATENTLAB_PRETRAINED_DIR") or ROOT / "pretrained")


def runs_root() -> Path:
    return runs_dir()


# The zoo entry a session opens when the user has no run of their own: the 2-D latent
# whose whole plane can be scrubbed (otherwise the entry built last would open).
FIRST_PRETRAINED = "fmnist-mlp-vae-2d"


def all_runs() -> list[Run]:
    """User runs (newest first), then the pretrained zoo (read-only), ``FIRST_PRETRAINED``
    first; damaged runs too (``Run.state()`` says so; the Runs page offers to delete or
    repair them)."""
    zoo = sorted(list_runs(PRETRAINED_DIR), key=lambda r: r.path.name != FIRST_PRETRAINED)
    return list_runs(runs_root()) + zoo


def usable_runs() -> list[Run]:
    """The runs a page can open: those whose config.json is readable."""
    return [r for r in all_runs() if r.config_or_none() is not None]


def is_pretrained(run: Run) -> bool:
    try:
        return run.path.resolve().is_relative_to(PRETRAINED_DIR.resolve())
    except OSError:
        return False


def run_label(run: Run) -> str:
    """One line of plain text naming a run (for pickers; escape it for Markdown)."""
    cfg = run.config_or_none()
    if cfg is None:
        return f"{one_line(run.id, 80)} (damaged)"
    t = cfg["train"]
    tag = "pretrained · " if is_pretrained(run) else ""
    return one_line(f"{tag}{run.name} ({t.get('model', '?')}, {t.get('dataset', '?')})", 160)


def find_run(run_id: str | None) -> Run | None:
    """The run ``all_runs`` lists under this id (a user run before a pretrained one of the
    same name), looked up directly: the Train page's live panel asks every second for each
    watching session, and listing every run each time took half of its time."""
    if not isinstance(run_id, str) or run_id in ("", ".", "..") or "/" in run_id or "\0" in run_id:
        return None
    for root in (runs_root(), PRETRAINED_DIR):
        p = root / run_id
        try:  # the same test list_runs applies to the entries it finds
            if p.name == run_id and is_run_dir(p, root.resolve()):
                return Run(p)
        except (OSError, ValueError):  # a name too long, an unreadable folder
            continue
    return None


def recon_image(run: Run, width: int = 640) -> Image.Image | None:
    """The trainer's reconstruction strip (test images over their reconstructions),
    upscaled (nearest) to about ``width`` pixels; None while there is none."""
    p = run.own_file("recon.png")  # never through a link
    if p is None:
        return None
    try:
        img = Image.open(p)
        img.load()
    except OSError:  # being replaced right now
        return None
    scale = max(1, width // img.width)
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def page_path(name: str) -> str:
    """Absolute path of a page file, as ``st.page_link`` / ``st.switch_page`` accept it."""
    return str(ROOT / "pages" / name)


def set_current_run(run_id: str) -> None:
    """Callback: make ``run_id`` the sidebar's current run (before the sidebar is drawn)."""
    st.session_state["run_id"] = run_id
    url_state.write({"run": run_id})


def current_run() -> Run | None:
    """The run picked in the sidebar (``st.session_state["run_id"]``)."""
    return find_run(st.session_state.get("run_id"))


def require_run(need_checkpoint: bool = True) -> Run:
    """The current run, or stop the page with a hint when there is none."""
    run = current_run()
    if run is None:
        st.info("Pick a run in the sidebar, or train one on the **Train** page.")
        st.stop()
    problem = run.problems()
    if run.config_or_none() is None:
        st.error(f"Run {md_escape(run.id)} cannot be opened: {md_escape(problem[0])}.")
        st.stop()
    if need_checkpoint and not run.has_checkpoint():
        st.info(
            f"Run **{md_escape(run.name)}** has no checkpoint yet: wait for its first epoch to "
            "finish."
        )
        st.stop()
    return run


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _model(path: str, mtime: float):
    from core.runs import load_model  # torch: only pages that show a model import it

    model, ckpt = load_model(path, "cpu")
    ckpt = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer", "rng")}
    return model, ckpt


def get_model(run: Run):
    """(model in eval mode, checkpoint metadata) of a run; reloads when the file changes.
    A missing or unreadable checkpoint stops the page with one sentence."""
    from core.runs import CheckpointError

    p = run.checkpoint_path
    try:
        return _model(str(p), p.stat().st_mtime)
    except (CheckpointError, OSError) as e:
        msg = str(e) if isinstance(e, CheckpointError) else "its checkpoint cannot be read"
        st.error(f"Run {md_escape(run.name)} cannot be opened: {md_escape(msg)}")
        st.stop()


@st.cache_resource(max_entries=6, show_spinner="Loading the dataset…")
def _dataset(name: str, split: str, data_dir: str | None):
    return datalib.load(name, split, data_dir)


@st.cache_resource(max_entries=4)
def _sample(name: str):
    return datalib.bundled_sample(name)


def get_dataset(name: str, split: str = "test", data_dir: str | None = None):
    """A cached ``ImageData`` (shared: do not modify its tensors).

    Offline, with the dataset neither on disk nor downloadable, the test split falls back
    to the bundled sample (a caption on the page says so). Otherwise the loader's
    one-sentence ``DatasetError`` propagates (``run_dataset`` shows it and stops the page).
    """
    try:
        return _dataset(name, split, data_dir)
    except datalib.DatasetError as e:
        sample = _sample(name) if split == "test" else None
        if sample is None:
            raise
        if not st.session_state.get("_sample_noted"):  # once a page run (main.py resets it)
            st.session_state["_sample_noted"] = True
            st.caption(
                f"Offline: {name} is not available here, so the pages use the bundled sample "
                f"of {len(sample):,} test images.",
                help=str(e),
            )
        return sample


def run_dataset(run: Run, split: str = "test"):
    """The split of the dataset a run was trained on (see ``get_dataset`` for the offline
    fallback); without data the page stops with the loader's one-sentence fix."""
    cfg = run.config_or_none()
    if cfg is None:
        st.error(f"Run {md_escape(run.id)} cannot be opened: its config.json is damaged.")
        st.stop()
    t = cfg["train"]
    try:
        return get_dataset(t.get("dataset", "digits"), split, t.get("data_dir"))
    except datalib.DatasetError as e:
        st.error(str(e))
        st.stop()


# What the model pages (Train, Explorer, Conditional, Embeddings, Compare) import on top of
# Home's light set: torch and the core behind it, scikit-learn's PCA, plotly's figures.
WARM_MODULES = ("torch", "core.train", "core.jobs", "core.explore", "core.embed",
                "plotly.graph_objects")  # fmt: skip
_warm_lock = threading.Lock()
_warm_started = False


def warm_up() -> None:
    """Once per server process, after the first page is drawn: import ``WARM_MODULES`` in a
    background thread, so the first visit to a model page does not wait for torch (the
    pages themselves import what they need; an import in progress is waited for, never
    repeated). ``LATENTLAB_WARM=0`` turns it off."""
    global _warm_started
    if os.environ.get("LATENTLAB_WARM", "1").strip() == "0":
        return
    with _warm_lock:
        if _warm_started:
            return
        _warm_started = True
    threading.Thread(target=_warm, name="latentlab-warm-up", daemon=True).start()


def _warm(tries: int = 4) -> None:
    """Import ``WARM_MODULES`` in order. An import that finds no module is tried again
    after a pause: a host that puts the script's folder on ``sys.path`` for each run
    (Streamlit's script runner outside ``streamlit run``, AppTest) removes it again while
    this thread may be walking ``sys.path``, and a list that shifts under the walk can skip
    site-packages ("No module named 'torch'", seen in CI on a slow first run)."""
    for name in WARM_MODULES:
        for attempt in range(tries):
            try:
                importlib.import_module(name)
                break
            except ImportError:
                if attempt == tries - 1:
                    return  # the page that needs it shows the problem
                time.sleep(0.5 * (attempt + 1))
            except Exception:  # noqa: BLE001 - the page that needs it shows the problem
                return


def explain(markdown: str, title: str = "What am I looking at?") -> None:
    """A collapsed explanation written for a student."""
    with st.expander(title, expanded=False):
        st.markdown(markdown)
