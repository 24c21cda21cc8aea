"""The training loop: ``Trainer`` trains one model on one dataset, device-agnostic.

The training set lives in one tensor on the device and batches are index slices of a
seeded permutation (no DataLoader, no per-item collate). The loop does one thing; progress,
metrics, checkpoints and cancellation hang on callbacks keyed by event, minGPT style:
``trainer.add_callback("on_epoch_end", fn)``. ``core.train`` wires a trainer to a run
directory (and re-exports ``Trainer``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import torch

from core import data as datalib
from core.config import TrainConfig, pick_device
from core.losses import kl_weight, parse_loss, ssim_per_image, total_loss
from core.models import ConfigError, build_model, resolve_config
from core.runs import Run, save_checkpoint

EVENTS = (
    "on_setup",  # before the data is loaded (and downloaded, when it is not on disk)
    "on_train_start",
    "on_batch_end",
    "on_validation_start",  # an epoch's batches are done; its test images are scored next
    "on_epoch_end",
    "on_train_end",
)
STRIP = 10  # test images in the reconstruction strip


def strip_index(labels: torch.Tensor, n: int = STRIP) -> torch.Tensor:
    """Positions of the strip's test images: the first image of each class, in class order,
    up to ``n``; with fewer classes than ``n``, the first other images in file order fill
    it. The same labels always give the same positions."""
    picked: list[int] = []
    for c in torch.unique(labels).tolist()[:n]:
        picked.append(int((labels == c).nonzero()[0, 0]))
    taken = set(picked)
    for i in range(len(labels)):
        if len(picked) >= n:
            break
        if i not in taken:
            picked.append(i)
    return torch.tensor(picked, dtype=torch.long)


class Cancelled(Exception):
    pass


class Trainer:
    """Trains one model on one dataset. Attributes callbacks may read: ``model``, ``epoch``
    (completed epochs), ``step``, ``total_steps``, ``last_row`` (last metrics row),
    ``device``, ``run``, ``val_count`` (test images scored after each epoch)."""

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
        show = strip_index(test.labels)  # fixed test images for the recon strip
        self.x_show = test.images[show].to(dev)
        self.y_show = test.labels[show].to(dev)

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

    @property
    def val_count(self) -> int:
        """How many test images ``validate`` scores (the family may cap them)."""
        if self.x_val is None:
            return 0
        limit = self.model.validation_limit
        return len(self.x_val) if limit is None else min(limit, len(self.x_val))

    def fit(self) -> Trainer:
        self._fire("on_setup")
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
            if self.x_val is not None:
                self._fire("on_validation_start")
            row.update(self.validate())
            self.last_row = row
            self._fire("on_epoch_end")
        self.model.after_training(self.x, self.y if self.model.conditional else None)
        self._fire("on_train_end")
        return self

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
        """Top row: the fixed test images (one per class, ``strip_index``); bottom row: their
        reconstructions."""
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
