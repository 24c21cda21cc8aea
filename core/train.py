"""Training runs and the ``python -m core.train`` command line.

``train()`` creates a run directory and trains into it; ``run_in_dir()`` is the trainer's
side of a run (its lock, the crash-consistent epoch commit, cancel, a full disk). The loop
itself is ``core.trainer.Trainer``, re-exported here with ``TrainConfig``.

Typical use from Python::

    from core.train import TrainConfig, train
    run = train(TrainConfig(dataset="digits", model="mlp-vae", epochs=5),
                model_args={"latent_dim": 2})
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from core.config import (  # noqa: F401 - re-exported
    OPTIMIZERS,
    TrainConfig,
    pick_device,
    validate_run,
)
from core.images import grid_image, png_bytes
from core.models import ConfigError
from core.runs import Run, load_model, read_checkpoint
from core.store import atomic, faults
from core.store import lock as locks
from core.trainer import EVENTS, Cancelled, Trainer  # noqa: F401 - re-exported


# ---------------------------------------------------------------------- run wiring
def _attach_run(trainer: Trainer, run: Run) -> None:
    """Callbacks that keep the run directory current.

    An epoch is committed in one order that survives kill -9 at any instruction: the
    reconstruction strip, then the checkpoint (atomic rename: the commit point; it carries
    the metrics history), then the metrics row, then the status. A kill before the rename
    loses the epoch everywhere; a kill after it leaves metrics/status behind the
    checkpoint, and the resume rewrites them from it (``Run.reconcile``).
    """
    last = [0.0]
    history: list[dict] = []  # the rows of committed epochs (resumed: from the checkpoint)

    def loading(t: Trainer):
        run.set_status("queued", phase="loading", message="loading the dataset")

    def started(t: Trainer):
        history[:] = [r for r in run.metrics() if r["epoch"] <= t.epoch]
        cfg = run.config()
        cfg["model"]["config"] = t.model_config.to_dict()
        run.update_config(model=cfg["model"], dataset=t.dataset)
        run.set_status(
            "running",
            epoch=t.epoch,
            epochs=t.cfg.epochs,
            step=t.step,
            total=t.total_steps,
            pid=os.getpid(),
            device=str(t.device),
            started_at=time.time(),
            start_step=t.step,  # a resumed run starts past 0: rates count from here
            phase="training",
            message=f"training on {t.device}",
        )

    def guard(every: float = 0.0) -> None:  # a Ray worker: its launcher still holds the run
        if run.lock is not None:
            run.lock.check_delegate(every)

    def batch(t: Trainer):
        guard(every=2.0)
        if run.cancel_flag.exists():
            t.request_stop()
        if t.epoch >= 1 and t.step % t.batches_per_epoch == max(1, t.batches_per_epoch // 2):
            faults.point("mid-epoch")
        now = time.time()
        if now - last[0] > 0.5:
            last[0] = now
            run.set_status(
                "running", epoch=t.epoch, step=t.step, total=t.total_steps, phase="training"
            )

    def validating(t: Trainer):  # the epoch's batches are done; status.epoch stays committed
        run.set_status(
            "running", step=t.step, total=t.total_steps, phase="validating", val_images=t.val_count
        )

    def epoch(t: Trainer):
        strip = t.recon_strip()
        png = png_bytes(grid_image(strip, nrow=len(strip) // 2, padding=2, pad_value=0.0))
        atomic.write_bytes(run.path / "recon.png", png)
        faults.point("before-checkpoint")
        guard()
        history.append(t.last_row)
        t.checkpoint(run.checkpoint_path, history=history)
        faults.point("after-checkpoint")
        run.append_metrics(t.last_row)
        faults.point("after-metrics")
        run.set_status(
            "running",
            epoch=t.epoch,
            step=t.step,
            total=t.total_steps,
            phase="training",
            message=f"epoch {t.epoch}/{t.cfg.epochs}: loss {t.last_row.get('train_loss', 0):.2f}",
        )

    def end(t: Trainer):
        guard()
        t.checkpoint(run.checkpoint_path, history=history)
        faults.point("before-done")
        run.set_status("done", epoch=t.epoch, step=t.step, total=t.total_steps, message="finished")
        with contextlib.suppress(Exception):  # best effort: never fails or touches the run
            from core.projections import after_training  # the Embeddings views, in background

            after_training(run)  # off with LATENTLAB_PRECOMPUTE_VIEWS=0

    trainer.add_callback("on_setup", loading)
    trainer.add_callback("on_train_start", started)
    trainer.add_callback("on_batch_end", batch)
    trainer.add_callback("on_validation_start", validating)
    trainer.add_callback("on_epoch_end", epoch)
    trainer.add_callback("on_train_end", end)


def progress_printer(stream=None):
    """A callback set that draws a text progress bar with loss and ETA."""
    stream = stream or sys.stderr
    t_start = [0.0]
    tty = stream.isatty()

    def start(t: Trainer):
        t_start[0] = time.perf_counter()
        print(
            f"{t.cfg.model} on {t.cfg.dataset} ({len(t.x)} images, {t.model.num_parameters():,} "
            f"parameters) on {t.device}, epochs {t.epoch + 1}..{t.cfg.epochs}",
            file=stream,
        )

    def draw(t: Trainer, final=False):
        done = t.step - t_start_step[0]
        left = t.total_steps - t.step
        el = time.perf_counter() - t_start[0]
        eta = el / done * left if done else 0.0
        frac = t.step / t.total_steps
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        r = t.last_row
        msg = (
            f"epoch {t.epoch}/{t.cfg.epochs} [{bar}] {100 * frac:5.1f}% "
            f"loss {r.get('train_loss', float('nan')):.3f} "
            f"val {r.get('val_loss', float('nan')):.3f} eta {eta:5.0f}s"
        )
        if tty:
            print("\r" + msg, end="\n" if final else "", file=stream, flush=True)
        elif final:
            print(msg, file=stream, flush=True)

    t_start_step = [0]

    def start2(t):
        t_start_step[0] = t.step
        start(t)

    def batch(t: Trainer):
        if tty and t.step % 5 == 0:
            draw(t)

    return {
        "on_train_start": start2,
        "on_batch_end": batch,
        "on_epoch_end": lambda t: draw(t, final=True),
    }


def train(
    cfg: TrainConfig,
    model_args: dict | None = None,
    name: str | None = None,
    root: str | Path | None = None,
    progress: bool = False,
) -> Run:
    """Create a run directory (this process owns it) and train into it; returns the
    finished Run. Bad settings are refused before anything is written."""
    validate_run(cfg, model_args)
    run = Run.create(new_run_config(cfg, model_args), root, name)
    return run_in_dir(run, progress=progress)


def new_run_config(cfg: TrainConfig, model_args: dict | None) -> dict:
    return {"train": asdict(cfg), "model": {"name": cfg.model, "args": dict(model_args or {})}}


NO_SPACE = "no space left on device: free space and resume"


def run_in_dir(
    run: Run, resume: bool = False, epochs: int | None = None, progress: bool = False
) -> Run:
    """Train the run described by ``run``'s config.json (resuming from its checkpoint when
    ``resume``), owning its lock throughout, keeping status.json current and honouring
    cancel requests. Raises ``RunBusyError`` when another process owns the run."""
    run.acquire()
    if not run.lock.adopted:  # a CANCEL left from before this process owned the run
        run.cancel_flag.unlink(missing_ok=True)
    trainer: Trainer | None = None
    lost = False

    def on_term(signum, frame):
        if trainer is not None:
            trainer.request_stop()
        else:  # still setting up: nothing to save, stop here
            raise Cancelled()

    old = None
    with contextlib.suppress(ValueError):  # not the main thread: no signal handler
        old = signal.signal(signal.SIGTERM, on_term)
    try:
        run.clean_temp()
        faults.point("setup")
        conf = run.config()
        cfg = TrainConfig(**conf["train"])
        if epochs is not None:
            cfg.epochs = epochs
        ck = None
        if resume:
            ck = read_checkpoint(run.checkpoint_path)
            done = int(ck["epoch"])
            finished = run.status().get("state") == "done"
            if cfg.epochs < done or (cfg.epochs == done and finished):
                raise ConfigError(
                    f"This run already has {done} epoch{'s' if done != 1 else ''}: pass "
                    f"--epochs larger than that."
                )
            run.reconcile(done, ck.get("history"))
            run.set_status("queued", epoch=done, message=f"resuming to {cfg.epochs} epochs")
        if epochs is not None:
            conf["train"]["epochs"] = cfg.epochs
            run.update_config(train=conf["train"])
        trainer = Trainer(cfg, conf["model"].get("args", {}), run)
        if ck is not None:
            trainer.resume_from(ck)
        _attach_run(trainer, run)
        if progress:
            for ev, fn in progress_printer().items():
                trainer.add_callback(ev, fn)
        if run.cancel_flag.exists():
            raise Cancelled()
        trainer.fit()
    except locks.LockLost:
        lost = True  # someone else's run now: write nothing, not even the cancel flag's end
        raise
    except Cancelled:
        n = trainer.epoch if trainer is not None else 0
        run.set_status(
            "cancelled",
            epoch=n,
            message=f"cancelled after {n} epoch{'s' if n != 1 else ''}; the last finished "
            "epoch's checkpoint is kept",
        )
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            _fail(run, f"{type(e).__name__}: {e}")
            raise
        run.clean_temp()  # a half-written checkpoint frees the space for the status
        _fail(run, NO_SPACE)
        raise atomic.NoSpaceError(e.errno, NO_SPACE) from None
    except Exception as e:
        _fail(run, f"{type(e).__name__}: {e}")
        raise
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
        if not lost:
            with contextlib.suppress(OSError):
                run.cancel_flag.unlink(missing_ok=True)
        run.release()
    return run


def _fail(run: Run, message: str) -> None:
    try:
        run.set_status("failed", message=message)
    except OSError:  # a full disk: write the status into the blocks it already has
        st = {**run.status(), "state": "failed", "message": message, "updated_at": time.time()}
        with contextlib.suppress(OSError):
            atomic.overwrite_in_place(run.path / "status.json", json.dumps(st).encode())


def main(argv: list[str] | None = None) -> int:
    """The command line (``core.cli.main``)."""
    from core.cli import main as cli_main

    return cli_main(argv)


def load_run_model(run: Run | str | Path, device="cpu"):
    """(model, checkpoint) of a run directory or checkpoint file."""
    p = Path(run.path if isinstance(run, Run) else run)
    return load_model(p / "checkpoint.pt" if p.is_dir() else p, device)


if __name__ == "__main__":
    sys.exit(main())
