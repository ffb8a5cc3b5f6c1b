"""The training loop: one epoch after another of SGD (or Adam) on batches of images, with validation,
checkpoints that resume exactly, a run directory, and the same code on one CPU, a GPU, or N processes.

The trainer does not know where images come from. It takes a :class:`DataBundle`: batch sources that
yield ``(images, labels)`` (``uint8`` or float, NCHW) and know their epoch, and two transforms that turn a
batch into the network's normalised float input on the training device (random augmentation for
training, a fixed one for evaluation). ``cnnarch.train.data`` builds one from ``cnnarch.data``; tests
build one from a few random tensors.

Exactness: every random choice of an epoch (batch order, augmentation) is drawn from generators seeded
by ``(seed, epoch, rank)``, and the global RNGs (dropout) are saved in every checkpoint, so N epochs in one
go and k epochs, a resume, then N-k epochs give bit-identical weights on a CPU.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnarch.train import distributed as D
from cnnarch.train.checkpoint import FORMAT, atomic_save, get_rng_state, load_checkpoint, set_rng_state
from cnnarch.train.config import RESUMABLE_CHANGES, TrainConfig, resume_conflicts
from cnnarch.train.metrics import MetricsLog, plot_curves, topk_correct
from cnnarch.train.optim import LRSchedule, build_optimizer


class NonFiniteLossError(ValueError):
    """The loss became NaN or infinite; the run stopped before touching its checkpoints."""


@dataclass
class DataBundle:
    """What the trainer needs from a dataset.

    ``train``/``val``/``test`` are batch sources: iterables of ``(images, labels)`` with ``set_epoch(e)``
    (reshuffles deterministically) and ``len()`` (batches per epoch, for this process). Under ``torchrun``
    each process's sources yield its own share of every global batch. Sources that already yield the
    network's input (``cnnarch.data.TensorLoader`` with its transform) need no transforms here; otherwise
    ``train_transform(x, generator)`` and ``eval_transform(x)`` map a batch on the training device to
    normalised float input, drawing random numbers from ``generator`` (seeded per epoch and process).
    """

    train: Iterable
    num_classes: int
    val: Iterable | None = None
    test: Iterable | None = None
    train_transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    eval_transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    classes: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    in_channels: int = 3


@dataclass
class EvalResult:
    loss: float
    top1: float
    top5: float
    images: int


def config_for_resume(path: str, overrides: dict) -> TrainConfig:
    """The configuration of the run that wrote checkpoint ``path``, with the command line's ``overrides``
    applied where they cannot change the computation; any other difference is refused with a message."""
    saved = TrainConfig.from_dict(load_checkpoint(path)["config"])
    if "model" in overrides and overrides["model"] != saved.model:
        raise ValueError(
            f"--resume {path}: the checkpoint holds a {saved.model!r}, not {overrides['model']!r}; "
            f"drop --model, or start a new run in another --output"
        )
    bad = resume_conflicts(saved, overrides)
    if bad:
        raise ValueError(
            f"--resume {path} refused: these options differ from the checkpoint's run and would not "
            "continue it exactly:\n  " + "\n  ".join(bad) + "\nleave them out to resume, or start a new "
            "run (another --output) to train with new values"
        )
    return saved.replace(resume=str(path), **{k: v for k, v in overrides.items() if k in RESUMABLE_CHANGES})


def pick_device(name: str | None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of one epoch's random augmentation on one process (distinct, reproducible)."""
    return (seed * 1_000_003 + epoch * 1009 + rank) % (2**63)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has AMX or AVX512-BF16 units; with AVX2 alone, bf16 autocast is several times
    slower than fp32 (measured: ResNet-18 training, 4 vs 20 images/s on one AVX2 core)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast_context(cfg: TrainConfig, device: torch.device):
    if not cfg.amp:
        return nullcontext()
    dtype = getattr(torch, cfg.amp_dtype)
    if device.type == "cpu" and dtype == torch.float16:
        raise ValueError("--amp-dtype float16 is for GPUs; on a CPU use --amp-dtype bfloat16 (AMX)")
    return torch.autocast(device.type, dtype=dtype)


def split_outputs(out) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Main logits and auxiliary logits (GoogLeNet returns a tuple in training mode)."""
    if isinstance(out, torch.Tensor):
        return out, []
    return out[0], [o for o in out[1:] if o is not None]


def set_dropout(model: nn.Module, p: float) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.p = p


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable,
    transform: Callable | None,
    device: torch.device,
    cfg: TrainConfig,
    dist_info: D.DistInfo | None = None,
) -> EvalResult:
    """Cross-entropy (without label smoothing), top-1 and top-5 (%) over a batch source, summed across
    processes."""
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64)
    for x, y in batches:
        x = x.to(device, non_blocking=True)
        x = x if transform is None else transform(x)
        y = y.to(device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_context(cfg, device):
            logits, _ = split_outputs(model(x))
        logits = logits.float()
        loss = nn.functional.cross_entropy(logits, y, reduction="sum")
        c1, c5 = topk_correct(logits, y)
        sums += torch.tensor([loss.item(), c1, c5, len(y)], dtype=torch.float64)
    D.all_reduce_sum(sums, dist_info or D.DistInfo())
    n = sums[3].item()
    if n == 0:
        return EvalResult(math.nan, math.nan, math.nan, 0)
    return EvalResult(sums[0].item() / n, 100 * sums[1].item() / n, 100 * sums[2].item() / n, int(n))


class Trainer:
    """Runs ``cfg`` on ``data`` and writes the run directory ``cfg.output``.

    ``model`` may be given (a module, or a function that builds one after the run's seed is set);
    otherwise it is ``create_model(cfg.model, num_classes=...)``."""

    def __init__(
        self,
        cfg: TrainConfig,
        data: DataBundle,
        model: nn.Module | Callable[[], nn.Module] | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.device = pick_device(cfg.device)
        self.dist = D.init_distributed(self.device.type)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.data = data
        self.out = Path(cfg.output)
        self._log = log or (lambda s: print(s, flush=True))
        self.start_epoch = 0
        self.step = 0
        self.best_top1 = -math.inf
        self.best_epoch = -1

        ckpt = load_checkpoint(cfg.resume) if cfg.resume else None
        if ckpt is not None and ckpt["model_name"] != cfg.model:
            raise ValueError(
                f"--resume {cfg.resume}: the checkpoint holds a {ckpt['model_name']!r}, not {cfg.model!r}"
            )
        if ckpt is not None and ckpt["world_size"] != self.dist.world_size:
            raise ValueError(
                f"--resume {cfg.resume}: written by {ckpt['world_size']} process(es), now "
                f"{self.dist.world_size}; resume with the same number of processes"
            )
        self.cfg = cfg

        torch.manual_seed(cfg.seed)
        if model is None:
            from cnnarch.models import create_model

            extra = {} if data.in_channels == 3 else {"in_channels": data.in_channels}
            model = create_model(cfg.model, num_classes=data.num_classes, **extra)
        elif not isinstance(model, nn.Module):
            model = model()
        if cfg.drop is not None:
            set_dropout(model, cfg.drop)
        model.to(self.device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.aux_loss_weight = (
            cfg.aux_loss_weight
            if cfg.aux_loss_weight is not None
            else getattr(model, "aux_loss_weight", None)
        )
        self.optimizer = build_optimizer(model.parameters(), cfg)
        self.steps_per_epoch = max(1, len(data.train))
        self.schedule = LRSchedule(self.optimizer, cfg, self.steps_per_epoch)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.smoothing)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=cfg.amp and cfg.amp_dtype == "float16" and self.device.type == "cuda"
        )
        # different dropout masks per process; DDP makes the initial weights equal
        torch.manual_seed(cfg.seed + self.dist.rank)
        if ckpt is not None:
            self._restore(ckpt)

        self.net: nn.Module = model
        if self.dist.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if cfg.compile:
            self.net = torch.compile(self.net)

    # ------------------------------------------------------------------ resume
    def _restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch = ckpt["epoch"] + 1
        self.step = ckpt["step"]
        self.best_top1 = ckpt["best_top1"]
        self.best_epoch = ckpt["best_epoch"]
        set_rng_state(ckpt["rng"][self.dist.rank])

    def _checkpoint(self, epoch: int) -> dict:
        rng = D.gather_objects(get_rng_state(), self.dist)
        return {
            "format": FORMAT,
            "model_name": self.cfg.model,
            "num_classes": self.data.num_classes,
            "classes": list(self.data.classes),
            "data_info": dict(self.data.info),
            "config": self.cfg.to_dict(),
            "model": self.model.state_dict(),  # the bare module, not its DDP/compile wrappers
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "step": self.step,
            "best_top1": self.best_top1,
            "best_epoch": self.best_epoch,
            "world_size": self.dist.world_size,
            "rng": rng,
        }

    # ------------------------------------------------------------------ logging
    def log(self, msg: str) -> None:
        if self.dist.is_main:
            self._log(msg)

    def _progress(self, epoch: int):
        """tqdm on a terminal (main process only), nothing otherwise (plain lines come from the loop)."""
        if self.dist.is_main and sys.stderr.isatty():
            from tqdm.auto import tqdm

            return tqdm(
                total=len(self.data.train), desc=f"epoch {epoch + 1}/{self.total_epochs}", leave=False
            )
        return None

    # ------------------------------------------------------------------ training
    @property
    def total_steps(self) -> int:
        n = self.cfg.epochs * self.steps_per_epoch
        return min(n, self.cfg.iterations) if self.cfg.iterations else n

    @property
    def total_epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def loss_of(self, out, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, aux = split_outputs(out)
        loss = self.criterion(logits, y)
        if aux:
            if self.aux_loss_weight is None:
                raise ValueError("the model returns auxiliary outputs but no --aux-loss-weight is set")
            loss = loss + self.aux_loss_weight * sum(self.criterion(a, y) for a in aux)
        return loss, logits

    def train_epoch(self, epoch: int) -> dict:
        cfg, dev = self.cfg, self.device
        self.net.train()
        self.data.train.set_epoch(epoch)
        gen = torch.Generator(device=dev).manual_seed(epoch_seed(cfg.seed, epoch, self.dist.rank))
        sums = torch.zeros(4, dtype=torch.float64)  # loss * n, top-1 hits, top-5 hits, n
        bar = self._progress(epoch)
        t0 = time.perf_counter()
        data_s = 0.0
        it = iter(self.data.train)
        for i in range(len(self.data.train)):
            if self.step >= self.total_steps:
                break
            td = time.perf_counter()
            x, y = next(it)
            x = x.to(dev, non_blocking=True)
            if self.data.train_transform is not None:
                x = self.data.train_transform(x, gen)
            y = y.to(dev, non_blocking=True)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            data_s += time.perf_counter() - td
            with autocast_context(cfg, dev):
                out = self.net(x)
                loss, logits = self.loss_of(out, y)
            loss_value = loss.item()
            if D.any_true(not math.isfinite(loss_value), dev, self.dist):
                raise NonFiniteLossError(self._nonfinite_message(epoch, i, loss_value))
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.schedule.step_iter()
            self.step += 1
            c1, c5 = topk_correct(logits.detach().float(), y)
            sums += torch.tensor([loss_value * len(y), c1, c5, len(y)], dtype=torch.float64)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{sums[0].item() / sums[3].item():.4f}", lr=f"{self.lr():.3g}")
            elif cfg.log_interval and (i + 1) % cfg.log_interval == 0:
                self.log(
                    f"epoch {epoch + 1} [{i + 1}/{len(self.data.train)}] step {self.step} "
                    f"loss {sums[0].item() / sums[3].item():.4f} lr {self.lr():.4g}"
                )
        if bar is not None:
            bar.close()
        seconds = time.perf_counter() - t0
        D.all_reduce_sum(sums, self.dist)
        n = max(1.0, sums[3].item())
        return {
            "train_loss": sums[0].item() / n,
            "train_top1": 100 * sums[1].item() / n,
            "train_top5": 100 * sums[2].item() / n,
            "images_per_s": sums[3].item() / seconds,
            "data_seconds": data_s,
            "seconds": seconds,
        }

    def _nonfinite_message(self, epoch: int, index: int, value: float) -> str:
        last = self.out / "last.pt"
        kept = (
            f"the last good checkpoint {last} is untouched" if last.exists() else "no checkpoint was written"
        )
        return (
            f"non-finite loss ({value}) at epoch {epoch + 1}, step {self.step + 1} (batch {index + 1} of the "
            f"epoch), lr {self.lr():.4g}; stopped, {kept}. Try a lower --lr, a warm-up (--warmup-epochs 1), "
            f"--amp-dtype bfloat16 instead of float16, or check the data for NaN/inf values."
        )

    def fit(self) -> dict:
        """Train to the end of the schedule; returns the final row of metrics (plus test results)."""
        cfg = self.cfg
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(cfg.to_json())
        resumed = self.start_epoch > 0
        self.log(("resuming" if resumed else "training") + f" {cfg.model} -> {self.out}\n{cfg.format()}")
        if cfg.amp and self.device.type == "cpu" and not cpu_has_fast_bf16():
            self.log(
                "warning: --amp on a CPU without AMX/AVX512-BF16 units runs slower than fp32; drop --amp"
            )
        self.log(
            f"device {self.device} x{self.dist.world_size} process(es), {self.steps_per_epoch} steps/epoch, "
            f"{self.total_epochs} epochs ({self.total_steps} steps), starting at epoch {self.start_epoch + 1}"
        )
        metrics = None
        if self.dist.is_main:
            metrics = MetricsLog(self.out / "metrics.csv", self.start_epoch if resumed else None)
        row: dict = {}
        for epoch in range(self.start_epoch, self.total_epochs):
            row = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            val = None
            if self.data.val is not None:
                val = evaluate(self.net, self.data.val, self.data.eval_transform, self.device, cfg, self.dist)
                row.update(val_loss=val.loss, val_top1=val.top1, val_top5=val.top5)
            row.update(step=self.step, lr=self.lr())
            self.schedule.step_epoch(None if val is None else val.top1)
            improved = val is None or val.top1 > self.best_top1
            if improved:
                self.best_top1 = -math.inf if val is None else val.top1
                self.best_epoch = epoch + 1
            ckpt = self._checkpoint(epoch)  # collective (RNG states of every rank): all ranks call it
            if self.dist.is_main:
                atomic_save(ckpt, self.out / "last.pt")
                if improved:
                    atomic_save(ckpt, self.out / "best.pt")
                metrics.append(row)
                plot_curves(self.out / "metrics.csv", self.out / "curves.png")
            self.log(
                f"epoch {epoch + 1}/{self.total_epochs} step {self.step} lr {row['lr']:.4g} "
                f"train loss {row['train_loss']:.4f} top-1 {row['train_top1']:.2f}%"
                + (f" | val loss {val.loss:.4f} top-1 {val.top1:.2f}% top-5 {val.top5:.2f}%" if val else "")
                + f" | {row['images_per_s']:.0f} img/s, {row['seconds']:.1f} s"
            )
        if self.data.test is not None:
            test = evaluate(self.net, self.data.test, self.data.eval_transform, self.device, cfg, self.dist)
            row.update(test_loss=test.loss, test_top1=test.top1, test_top5=test.top5, test_images=test.images)
            self.log(f"test ({test.images} images): top-1 {test.top1:.2f}%  top-5 {test.top5:.2f}%")
        D.barrier(self.dist)
        return row
