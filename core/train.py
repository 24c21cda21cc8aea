"""Device-agnostic trainer and the ``python -m core.train`` command line.

The training set lives in one tensor on the device and batches are index slices of a
seeded permutation (no DataLoader, no per-item collate). The loop does one thing; progress,
metrics, checkpoints and cancellation hang on callbacks keyed by event, minGPT style:
``trainer.add_callback("on_epoch_end", fn)``.

Typical use from Python::

    from core.train import TrainConfig, train
    run = train(TrainConfig(dataset="digits", model="mlp-vae", epochs=5),
                model_args={"latent_dim": 2})
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import signal
import sys
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import torch
from torchvision.utils import save_image

from core import data as datalib
from core.config import (  # noqa: F401 - re-exported
    OPTIMIZERS,
    TrainConfig,
    pick_device,
    validate_run,
)
from core.losses import kl_weight, parse_loss, ssim_per_image, total_loss
from core.models import ConfigError, build_model, resolve_config
from core.runs import Run, load_model, read_checkpoint, save_checkpoint
from core.store import atomic, faults

EVENTS = ("on_train_start", "on_batch_end", "on_epoch_end", "on_train_end")


class Cancelled(Exception):
    pass


class Trainer:
    """Trains one model on one dataset. Attributes callbacks may read: ``model``, ``epoch``
    (completed epochs), ``step``, ``total_steps``, ``last_row`` (last metrics row),
    ``device``, ``run``."""

    def __init__(self, cfg: TrainConfig, model_args: dict | None = None, run: Run | None = None):
        cfg.validate()
        self.cfg = cfg
        self.model_args = dict(model_args or {})
        self.run = run
        self.callbacks: dict[str, list] = defaultdict(list)
        self.device = pick_device(cfg.device)
        self.epoch = 0
        self.step = 0
        self.last_row: dict = {}
        self._stop = False
        self._resume_ckpt: dict | None = None

    def add_callback(self, event: str, fn) -> None:
        assert event in EVENTS, event
        self.callbacks[event].append(fn)

    def _fire(self, event: str) -> None:
        for fn in self.callbacks[event]:
            fn(self)

    def request_stop(self) -> None:
        """Stop at the next batch boundary (the last finished epoch's checkpoint stays)."""
        self._stop = True

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        train = datalib.load(cfg.dataset, "train", cfg.data_dir)
        if cfg.train_size:
            train = train.subset(cfg.train_size, seed=cfg.seed)
        test = datalib.load(cfg.dataset, "test", cfg.data_dir)
        if cfg.batch_size > len(train):
            raise ConfigError(
                f"Batch size {cfg.batch_size} is larger than the {len(train)} training images: "
                f"use --batch-size {len(train)} or less."
            )
        self.dataset = train.describe()
        self.class_names = train.class_names
        dev = self.device
        self.x = train.images.to(dev)  # (N, C, H, W) in [0, 1]
        self.y = train.labels.to(dev)  # (N,)
        val = test.subset(cfg.val_size, seed=0) if cfg.val_size else None
        self.x_val = val.images.to(dev) if val else None
        self.y_val = val.labels.to(dev) if val else None
        self.x_show = test.images[:8].to(dev)  # fixed test images for the recon strip
        self.y_show = test.labels[:8].to(dev)

        self.model_config = resolve_config(
            cfg.model,
            image_shape=train.image_shape,
            num_classes=train.num_classes,
            num_items=len(train),
            **self.model_args,
        )
        self.model = build_model(cfg.model, self.model_config).to(dev)
        self.terms = parse_loss(cfg.loss)
        params = self.model.param_groups(cfg.lr)
        if cfg.optimizer == "sgd":
            self.opt = torch.optim.SGD(
                params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
            )
        else:  # fused kernels: one pass over all parameters per step (cpu and cuda)
            fused = dev.type in ("cpu", "cuda")
            opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
            self.opt = opt_cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
        self.sched = torch.optim.lr_scheduler.MultiStepLR(
            self.opt, milestones=sorted(cfg.milestones), gamma=cfg.lr_gamma
        )
        self.use_amp = cfg.amp and dev.type == "cuda"
        self.amp_dtype = (
            torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16
        )
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and self.amp_dtype == torch.float16
        )
        self.batches_per_epoch = math.ceil(len(self.x) / cfg.batch_size)
        self.total_steps = self.batches_per_epoch * cfg.epochs
        self.gen = torch.Generator().manual_seed(cfg.seed)
        if self._resume_ckpt is not None:
            ck = self._resume_ckpt
            self.model.load_state_dict(ck["state_dict"])
            self.opt.load_state_dict(ck["optimizer"])
            self.sched.load_state_dict(ck["scheduler"])
            self.epoch = int(ck["epoch"])
            self.step = self.epoch * self.batches_per_epoch
            if "rng" in ck:
                self.gen.set_state(ck["rng"])
            if "torch_rng" in ck:  # the reparameterisation noise continues where it stopped
                torch.set_rng_state(ck["torch_rng"])

    def resume_from(self, ckpt: dict) -> None:
        self._resume_ckpt = ckpt

    # ------------------------------------------------------------------ loop
    def _autocast(self):
        if self.use_amp:
            return torch.autocast("cuda", dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def fit(self) -> Trainer:
        self.setup()
        cfg = self.cfg
        self._fire("on_train_start")
        n = len(self.x)
        while self.epoch < cfg.epochs:
            t0 = time.perf_counter()
            self.model.train()
            sums: dict[str, torch.Tensor] = {}  # summed on the device, read once an epoch
            beta = kl_weight(cfg.kl_weight, cfg.kl_warmup, self.epoch)
            perm = torch.randperm(n, generator=self.gen).to(self.device)
            for b in range(self.batches_per_epoch):
                if self._stop:
                    raise Cancelled()
                idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                x, y = self.x[idx], self.y[idx]
                self.model.on_progress(self.epoch + b / self.batches_per_epoch)
                with self._autocast():
                    out = self.model(x, y if self.model.conditional else None, idx=idx)
                loss, parts = total_loss(
                    out, x, self.terms, cfg.recon_weight, beta, cfg.ssim_window
                )
                self.opt.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
                with torch.no_grad():
                    for k, v in parts.items():
                        sums[k] = sums[k] + v.sum() if k in sums else v.sum()
                self.step += 1
                self._fire("on_batch_end")
            lr = self.opt.param_groups[0]["lr"]  # the rate this epoch trained with
            self.sched.step()
            self.epoch += 1
            if not all(torch.isfinite(v) for v in sums.values()):
                raise FloatingPointError(
                    f"The loss became infinite or NaN in epoch {self.epoch}: lower the learning "
                    "rate or the loss weights."
                )
            seconds = time.perf_counter() - t0
            row = {"epoch": self.epoch, "step": self.step, "seconds": round(seconds, 3)}
            row.update({f"train_{k}": float(v) / n for k, v in sums.items()})
            row.update(beta=beta, lr=lr)
            row["samples_per_s"] = round(n / seconds, 1)
            row.update(self.validate())
            self.last_row = row
            self._fire("on_epoch_end")
        self.model.after_training(self.x, self.y if self.model.conditional else None)
        self._fire("on_train_end")
        return self

    @torch.no_grad()
    def embed_train(self) -> torch.Tensor:
        self.model.eval()
        ys = self.y if self.model.conditional else None
        chunks = []
        for i in range(0, len(self.x), 4096):
            chunks.append(
                self.model.posterior_mean(
                    self.x[i : i + 4096], None if ys is None else ys[i : i + 4096]
                )
            )
        return torch.cat(chunks)

    def validate(self) -> dict:
        """Loss parts (z = posterior mean) and SSIM on the held-out test images."""
        if self.x_val is None:
            return {}
        self.model.eval()
        cfg = self.cfg
        x_all, y_all = self.x_val, self.y_val
        limit = self.model.validation_limit  # e.g. placing images costs an optimisation each
        if limit is not None:
            x_all, y_all = x_all[:limit], y_all[:limit]
        sums: dict[str, float] = defaultdict(float)
        for i in range(0, len(x_all), 2048):
            x, y = x_all[i : i + 2048], y_all[i : i + 2048]
            yc = y if self.model.conditional else None
            with torch.no_grad(), self._autocast():
                out = self.model(x, yc)
            with torch.no_grad():
                _, parts = total_loss(
                    out, x, self.terms, cfg.recon_weight, cfg.kl_weight, cfg.ssim_window
                )
                parts["ssim"] = ssim_per_image(torch.sigmoid(out.logits.float()), x, 5)
            for k, v in parts.items():
                sums[k] += float(v.sum())
        return {f"val_{k}": v / len(x_all) for k, v in sums.items()}

    @torch.no_grad()
    def recon_strip(self) -> torch.Tensor:
        """Top row: 8 fixed test images; bottom row: their reconstructions."""
        self.model.eval()
        y = self.y_show if self.model.conditional else None
        rec = self.model.reconstruct(self.x_show, y)
        return torch.cat([self.x_show, rec]).float().cpu()

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, path: Path, history: list[dict] | None = None) -> None:
        """Everything to resume from, plus the metrics rows so far (``history``)."""
        save_checkpoint(
            path,
            self.model,
            train_config=asdict(self.cfg),
            dataset=self.dataset,
            epoch=self.epoch,
            optimizer=self.opt.state_dict(),
            scheduler=self.sched.state_dict(),
            rng=self.gen.get_state(),
            torch_rng=torch.get_rng_state(),
            metrics=self.last_row,
            history=list(history or []),
        )


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
            message=f"training on {t.device}",
        )

    def batch(t: Trainer):
        if run.cancel_flag.exists():
            t.request_stop()
        if t.epoch >= 1 and t.step % t.batches_per_epoch == max(1, t.batches_per_epoch // 2):
            faults.point("mid-epoch")
        now = time.time()
        if now - last[0] > 0.5:
            last[0] = now
            run.set_status("running", epoch=t.epoch, step=t.step, total=t.total_steps)

    def epoch(t: Trainer):
        strip = t.recon_strip()
        atomic.write_with(
            run.path / "recon.png", lambda tmp: save_image(strip, tmp, nrow=8, format="png")
        )
        faults.point("before-checkpoint")
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
            message=f"epoch {t.epoch}/{t.cfg.epochs}: loss {t.last_row.get('train_loss', 0):.2f}",
        )

    def end(t: Trainer):
        t.checkpoint(run.checkpoint_path, history=history)
        faults.point("before-done")
        run.set_status("done", epoch=t.epoch, step=t.step, total=t.total_steps, message="finished")

    trainer.add_callback("on_train_start", started)
    trainer.add_callback("on_batch_end", batch)
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
                    f"This run already has {done} epochs: pass --epochs larger than that."
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
