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

import argparse
import contextlib
import math
import os
import signal
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torchvision.utils import save_image

from core import data as datalib
from core.losses import kl_weight, parse_loss, ssim_per_image, total_loss
from core.models import MODELS, ConfigError, build_model, config_class, resolve_config
from core.runs import Run, load_model, read_checkpoint, save_checkpoint

OPTIMIZERS = ("adam", "adamw", "sgd")
EVENTS = ("on_train_start", "on_batch_end", "on_epoch_end", "on_train_end")


@dataclass
class TrainConfig:
    """Everything about a training run except the model's own settings.

    The defaults are the snakers4 study's best run: fcconv-vae on Fashion-MNIST, L=10,
    batch 512, Adam at 1e-3, BCE + KL.
    """

    dataset: str = "fashion-mnist"
    model: str = "fcconv-vae"
    epochs: int = 30
    batch_size: int = 512
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    milestones: list[int] = field(default_factory=list)  # epochs where lr *= lr_gamma
    lr_gamma: float = 0.1
    loss: str = "bce"  # bce | mse | ssim | weighted mix such as "bce+0.5*ssim"
    recon_weight: float = 1.0
    kl_weight: float = 1.0  # beta
    kl_warmup: float = 0.0  # epochs over which beta ramps up from 0
    ssim_window: int = 11
    seed: int = 42
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    amp: bool = True  # mixed precision on cuda (ignored elsewhere)
    train_size: int = 0  # use only this many training images (0 = all)
    val_size: int = 10000  # test images scored after each epoch (0 = none)
    data_dir: str | None = None

    def validate(self) -> None:
        def bad(msg):
            raise ConfigError(msg)

        if self.model not in MODELS:
            bad(f"Unknown model '{self.model}': choose one of {', '.join(MODELS)}.")
        if self.dataset not in datalib.DATASET_NAMES and not self.dataset.startswith("idx:"):
            bad(
                f"Unknown dataset '{self.dataset}': choose one of "
                f"{', '.join(datalib.DATASET_NAMES)}, or idx:<folder>."
            )
        if self.epochs < 1:
            bad(f"Epochs must be at least 1, got {self.epochs}.")
        if self.batch_size < 1:
            bad(f"Batch size must be at least 1, got {self.batch_size}.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            bad(f"Learning rate must be a positive number, got {self.lr}.")
        if self.optimizer not in OPTIMIZERS:
            bad(f"Unknown optimizer '{self.optimizer}': choose one of {', '.join(OPTIMIZERS)}.")
        if self.recon_weight < 0 or self.kl_weight < 0 or self.kl_warmup < 0:
            bad("Loss weights and the KL warm-up must be zero or positive.")
        if self.ssim_window < 1 or self.ssim_window % 2 == 0:
            bad(f"The SSIM window must be a positive odd number, got {self.ssim_window}.")
        if any(m < 1 for m in self.milestones):
            bad("Learning-rate milestones are epoch numbers of 1 or more.")
        if self.train_size < 0 or self.val_size < 0:
            bad("train_size and val_size must be zero or positive.")
        parse_loss(self.loss)
        pick_device(self.device)


def pick_device(name: str = "auto") -> torch.device:
    """cuda > mps > cpu for "auto"; an explicit name must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"Unknown device '{name}': use auto, cpu, cuda or mps.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("No CUDA GPU is visible here: use --device auto or --device cpu.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("Apple's MPS backend is not available here: use --device cpu.")
    return dev


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
            row.update(beta=beta, lr=self.opt.param_groups[0]["lr"])
            row["samples_per_s"] = round(n / seconds, 1)
            row.update(self.validate())
            self.last_row = row
            self._fire("on_epoch_end")
        if hasattr(self.model, "fit_prior"):
            self.model.fit_prior(self.embed_train())
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
        if self.model.latent_kind == "table":  # placing images costs an optimisation each
            x_all, y_all = x_all[:1000], y_all[:1000]
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
    def checkpoint(self, path: Path) -> None:
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
        )


# ---------------------------------------------------------------------- run wiring
def _attach_run(trainer: Trainer, run: Run) -> None:
    """Callbacks that keep the run directory current (status, metrics, checkpoint, strip)."""
    last = [0.0]

    def started(t: Trainer):
        cfg = run.config()
        cfg["model"]["config"] = t.model_config.to_dict()
        cfg["dataset"] = t.dataset
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
        now = time.time()
        if now - last[0] > 0.5:
            last[0] = now
            run.set_status("running", epoch=t.epoch, step=t.step, total=t.total_steps)

    def epoch(t: Trainer):
        run.append_metrics(t.last_row)
        t.checkpoint(run.checkpoint_path)
        tmp = run.path / ".recon.tmp.png"
        save_image(t.recon_strip(), tmp, nrow=8, format="png")
        os.replace(tmp, run.path / "recon.png")
        run.set_status(
            "running",
            epoch=t.epoch,
            step=t.step,
            total=t.total_steps,
            message=f"epoch {t.epoch}/{t.cfg.epochs}: loss {t.last_row.get('train_loss', 0):.2f}",
        )

    def end(t: Trainer):
        t.checkpoint(run.checkpoint_path)
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
    """Create a run directory and train into it; returns the finished Run."""
    cfg.validate()
    resolve_config(
        cfg.model, image_shape=(1, 28, 28), num_classes=10, num_items=1, **(model_args or {})
    )  # fail on bad model settings before any I/O
    run = Run.create(new_run_config(cfg, model_args), root, name)
    return run_in_dir(run, progress=progress)


def new_run_config(cfg: TrainConfig, model_args: dict | None) -> dict:
    return {"train": asdict(cfg), "model": {"name": cfg.model, "args": dict(model_args or {})}}


def run_in_dir(
    run: Run, resume: bool = False, epochs: int | None = None, progress: bool = False
) -> Run:
    """Train the run described by ``run``'s config.json (resuming from its checkpoint when
    ``resume``), keeping status.json current and honouring cancel requests."""
    conf = run.config()
    cfg = TrainConfig(**conf["train"])
    if epochs is not None:
        cfg.epochs = epochs
        conf["train"]["epochs"] = epochs
        run.update_config(train=conf["train"])
    trainer = Trainer(cfg, conf["model"].get("args", {}), run)
    if resume:
        ck = read_checkpoint(run.checkpoint_path)
        if cfg.epochs <= int(ck["epoch"]):
            raise ConfigError(
                f"This run already has {ck['epoch']} epochs: pass --epochs larger than that."
            )
        trainer.resume_from(ck)
    _attach_run(trainer, run)
    if progress:
        for ev, fn in progress_printer().items():
            trainer.add_callback(ev, fn)
    run.cancel_flag.unlink(missing_ok=True)

    def on_term(signum, frame):
        trainer.request_stop()

    old = None
    with contextlib.suppress(ValueError):  # not the main thread: no signal handler
        old = signal.signal(signal.SIGTERM, on_term)
    try:
        trainer.fit()
    except Cancelled:
        run.set_status(
            "cancelled",
            epoch=trainer.epoch,
            message=(
                f"cancelled after {trainer.epoch} epochs; the last finished epoch's checkpoint "
                "is kept"
            ),
        )
    except Exception as e:
        run.set_status("failed", message=f"{type(e).__name__}: {e}")
        raise
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
        run.cancel_flag.unlink(missing_ok=True)
    return run


# ---------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m core.train",
        description="Train an autoencoder into a run directory (runs/<id>/: config.json, "
        "status.json, metrics.jsonl, checkpoint.pt).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("data and model")
    g.add_argument(
        "--dataset",
        default=d.dataset,
        help=f"one of {', '.join(datalib.DATASET_NAMES)}, or idx:<folder>",
    )
    g.add_argument(
        "--data-dir", default=None, help="dataset folder (default $LATENTLAB_DATA_DIR or ./data)"
    )
    g.add_argument("--model", default=d.model, help=f"one of {', '.join(MODELS)}")
    g.add_argument(
        "--latent-dim",
        type=int,
        default=None,
        help="latent size (gumbel-vae: number of categorical variables); "
        "default: the model's preset",
    )
    g.add_argument("--hidden-dim", type=int, default=None, help="hidden width of MLP/conv layers")
    g.add_argument(
        "--arch",
        choices=["mlp", "fcconv", "conv"],
        default=None,
        help="backbone for ae, gumbel-vae and autodecoder",
    )
    g.add_argument(
        "--conditional",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="condition encoder and decoder on the label (one-hot)",
    )
    g.add_argument(
        "--class-prior",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="conditional VAEs: learn a Gaussian prior per label, p(z|y), and sample from it "
        "(cvae: on)",
    )
    g.add_argument(
        "--categories", type=int, default=None, help="gumbel-vae: categories per variable"
    )
    g.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="gumbel-vae: initial Gumbel-softmax temperature",
    )
    g.add_argument(
        "--min-temperature",
        type=float,
        default=None,
        help="gumbel-vae: temperature floor of the annealing",
    )
    g.add_argument(
        "--anneal-rate",
        type=float,
        default=None,
        help="gumbel-vae: tau = max(min, tau0*exp(-rate*epoch)); 0 keeps it fixed",
    )
    g.add_argument(
        "--train-size",
        type=int,
        default=d.train_size,
        help="train on this many images only (0 = all)",
    )
    g.add_argument(
        "--val-size",
        type=int,
        default=d.val_size,
        help="test images scored after each epoch (0 = none)",
    )
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=d.epochs, help="total epochs (also when resuming)")
    o.add_argument("--batch-size", type=int, default=d.batch_size)
    o.add_argument("--lr", type=float, default=d.lr, help="learning rate")
    o.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    o.add_argument("--weight-decay", type=float, default=d.weight_decay)
    o.add_argument(
        "--milestones",
        type=int,
        nargs="*",
        default=[],
        help="epochs at which the learning rate is multiplied by --lr-gamma",
    )
    o.add_argument("--lr-gamma", type=float, default=d.lr_gamma)
    o.add_argument("--seed", type=int, default=d.seed)
    o.add_argument("--device", default=d.device, help="auto (cuda > mps > cpu), cpu, cuda, mps")
    o.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=d.amp,
        help="mixed precision on cuda",
    )
    lo = p.add_argument_group("loss")
    lo.add_argument(
        "--loss",
        default=d.loss,
        help="reconstruction term: bce, mse, ssim or a mix like 'bce+0.5*ssim'",
    )
    lo.add_argument(
        "--ssim-window",
        type=int,
        default=d.ssim_window,
        help="SSIM Gaussian window in pixels (odd)",
    )
    lo.add_argument(
        "--recon-weight",
        type=float,
        default=d.recon_weight,
        help="weight of the reconstruction term",
    )
    lo.add_argument("--kl-weight", type=float, default=d.kl_weight, help="beta, weight of the KL")
    lo.add_argument(
        "--kl-warmup",
        type=float,
        default=d.kl_warmup,
        help="epochs over which beta ramps up from 0",
    )
    r = p.add_argument_group("runs")
    r.add_argument(
        "--runs-dir", default=None, help="runs folder (default $LATENTLAB_RUNS_DIR or ./runs)"
    )
    r.add_argument("--name", default=None, help="run name (default <model>-<dataset>)")
    r.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue this run up to --epochs, with its optimizer state",
    )
    r.add_argument(
        "--run-dir",
        default=None,
        help="train a run directory whose config.json is already written (used by the app)",
    )
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


MODEL_FLAGS = (
    "latent_dim",
    "hidden_dim",
    "arch",
    "conditional",
    "class_prior",
    "categories",
    "temperature",
    "min_temperature",
    "anneal_rate",
)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.run_dir or args.resume:
            run = Run(Path(args.run_dir or args.resume))
            if not run.exists:
                raise ConfigError(f"{run.path} is not a run directory (no config.json).")
            given = "--epochs" in (argv if argv is not None else sys.argv)
            run_in_dir(
                run,
                resume=bool(args.resume),
                epochs=args.epochs if given else None,
                progress=not args.quiet,
            )
        else:
            names = {f.name for f in fields(TrainConfig)}
            cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
            margs = {k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k) is not None}
            known = (
                {f.name for f in fields(config_class(cfg.model))} if cfg.model in MODELS else set()
            )
            for k in list(margs):
                if k not in known and k != "conditional":
                    raise ConfigError(f"--{k.replace('_', '-')} does not apply to {cfg.model}.")
            run = train(cfg, margs, name=args.name, root=args.runs_dir, progress=not args.quiet)
    except (ConfigError, datalib.DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    st = run.status()
    print(f"{st['state']}: {run.path}")
    return 0 if st["state"] in ("done", "cancelled") else 1


def load_run_model(run: Run | str | Path, device="cpu"):
    """(model, checkpoint) of a run directory or checkpoint file."""
    p = Path(run.path if isinstance(run, Run) else run)
    return load_model(p / "checkpoint.pt" if p.is_dir() else p, device)


if __name__ == "__main__":
    sys.exit(main())
