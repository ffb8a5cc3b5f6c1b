"""The training loop: one epoch after another of SGD (or Adam) on batches of images, with validation,
checkpoints that resume exactly, a run directory, and the same code on one CPU, a GPU, or N processes.

The trainer does not know where images come from: it takes a :class:`DataBundle`, which
``cnnarch.train.data`` builds from ``cnnarch.data`` and tests from a few random tensors.

The speedrun's techniques (:mod:`cnnarch.train.speedrun`, top to bottom: whitening, BN-shift learning
rate, BN momentum, lookahead, Muon, test-time augmentation, time to target accuracies) are options of
this one trainer. Every run has a training clock (setup and epochs, plus the final TTA evaluation;
per-epoch evaluation and checkpoints are off it) that continues across a resume, and ends with
``results.json`` in its run directory.

Exactness: every random choice of an epoch (batch order, augmentation) is drawn from generators seeded
by ``(seed, epoch, rank)``, and the global RNGs (dropout) are saved in every checkpoint, so N epochs in one
go and k epochs, a resume, then N-k epochs give bit-identical weights on a CPU.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnarch import threads as cpu_threads
from cnnarch.data.base import atomic_file
from cnnarch.errors import UsageError
from cnnarch.memory import keep_freed_memory
from cnnarch.progress import on_terminal, start_progress
from cnnarch.tables import plural
from cnnarch.train import distributed as D
from cnnarch.train.checkpoint import FORMAT, atomic_torch_save, get_rng_state, load_checkpoint, set_rng_state
from cnnarch.train.config import IGNORED, RESUMABLE_CHANGES, TrainConfig, resume_conflicts
from cnnarch.train.device import Placement, autocast, grad_scaler, pick_device, place
from cnnarch.train.evaluate import EvalResult, evaluate, prepare, split_outputs, topk_correct
from cnnarch.train.speedrun import (
    Lookahead,
    LRSchedule,
    batch_norms,
    build_muon,
    build_optimizer,
    check_progressive,
    describe_progressive,
    downscale,
    logits_for,
    progressive_stage,
    random_crop,
    train_whitening_bias,
    whiten,
    whitening_layer,
)

__all__ = ["DataBundle", "EvalResult", "NonFiniteLossError", "Trainer", "evaluate", "pick_device"]


class NonFiniteLossError(ValueError):
    """The loss, the weights or the validation loss became NaN or infinite; the run stopped before
    touching its checkpoints."""


# a run directory holds a run once it holds a checkpoint (earlier, nothing could be resumed or lost)
RUN_FILES = ("last.pt", "best.pt")


def checkpoint_path(resume: str | Path) -> Path:
    """``--resume`` names a checkpoint file, or a run directory whose ``last.pt`` is meant."""
    path = Path(resume)
    if path.is_dir():
        if not (path / "last.pt").is_file():
            raise FileNotFoundError(f"--resume {resume}: the directory holds no last.pt to resume from")
        return path / "last.pt"
    return path


@dataclass
class DataBundle:
    """What the trainer needs from a dataset.

    ``train``/``val``/``test`` are batch sources: iterables of ``(images, labels)`` with ``set_epoch(e)``
    (reshuffles deterministically) and ``len()`` (batches per epoch, for this process). Under ``torchrun``
    each process's sources yield its own share of every global batch. Sources that already yield the
    network's input (``cnnarch.data.TensorLoader`` with its transform) need no transforms here; otherwise
    ``train_transform(x, generator)`` and ``eval_transform(x)`` map a batch on the training device to
    normalised float input, drawing random numbers from ``generator`` (seeded per epoch and process).
    ``placement`` is the device and process group the sources were built for; the trainer uses it
    rather than placing itself again.
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
    placement: Placement | None = None  # where the sources put their batches (build_data)


def config_for_resume(path: str, overrides: dict) -> TrainConfig:
    """The configuration of the run that wrote checkpoint ``path``, with the command line's ``overrides``
    applied where they cannot change the computation; any other difference is refused with a message.

    ``path`` may be a run directory (its ``last.pt``). The resumed run writes to ``--output`` when given,
    else beside the checkpoint: never to the directory stored in it, which may be another run's (a copy)."""
    path = checkpoint_path(path)
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
    kept = {k: v for k, v in overrides.items() if k in RESUMABLE_CHANGES}
    kept.setdefault("output", str(path.parent))
    kept.setdefault("overwrite", False)  # given for the run that started, not for every resume of it
    return saved.replace(**{**kept, "resume": str(path)})


def prepare_output(cfg: TrainConfig, keep: bool = True) -> None:
    """Refuse to start over a run already in ``cfg.run.output``, and learn before any training that the
    directory cannot be written. A run resumed into another directory takes its metrics along.
    ``keep=False`` only checks: directories it had to create are removed again."""
    if not str(cfg.run.output).strip():
        raise UsageError("--output is empty", hint="name the run folder, e.g. --output runs/resnet20")
    out = Path(cfg.run.output)
    source = Path(cfg.run.resume).parent if cfg.run.resume else out
    elsewhere = cfg.run.resume is not None and out.resolve() != source.resolve()
    if (
        (elsewhere or not cfg.run.resume)
        and not cfg.run.overwrite
        and any((out / f).exists() for f in RUN_FILES)
    ):
        raise ValueError(
            f"--output {out} already holds a run; continue it with --resume {out}, choose a new "
            "--output, or pass --overwrite to replace it"
        )
    created = [d for d in (out, *out.parents) if not d.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
        if not keep:
            for d in created:
                d.rmdir()
        elif elsewhere:  # the run's history and its best weights so far go with it
            for name in ("metrics.csv", "best.pt"):
                if (source / name).is_file() and not (out / name).exists():
                    shutil.copyfile(source / name, out / name)
    except OSError as e:
        raise ValueError(f"--output {out} cannot be written ({e}); choose another --output") from None


METRICS_COLUMNS = tuple(
    "epoch step lr train_loss train_top1 train_top5 val_loss val_top1 val_top5 images_per_s data_seconds "
    "seconds".split()
)


class MetricsLog:
    """Appends one row per epoch to ``metrics.csv``; on resume, rows after the resumed epoch are dropped."""

    def __init__(self, path: str | os.PathLike, resume_epoch: int | None = None):
        self.path = Path(path)
        self.rows: list[dict] = []
        if resume_epoch is not None and self.path.is_file():
            with self.path.open(newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= resume_epoch]
        self._write()

    def append(self, row: dict) -> None:
        self.rows.append({k: row.get(k, "") for k in METRICS_COLUMNS})
        self._write()

    def _write(self) -> None:
        text = io.StringIO(newline="")
        w = csv.DictWriter(text, METRICS_COLUMNS)
        w.writeheader()
        w.writerows(self.rows)
        with atomic_file(self.path) as f:
            f.write(text.getvalue().encode())


def plot_curves(metrics_csv: str | os.PathLike, out_png: str | os.PathLike) -> None:
    """Loss and top-1 accuracy per epoch, training and validation, side by side."""
    from matplotlib.figure import Figure  # no pyplot: a caller's (a notebook's) backend stays as it is

    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))

    def col(name):
        return [float(r[name]) if r[name] not in ("", None) else math.nan for r in rows]

    epochs = col("epoch")
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, metric, label in ((ax_loss, "loss", "loss"), (ax_acc, "top1", "top-1 accuracy (%)")):
        ax.plot(epochs, col(f"train_{metric}"), "o-", label="train")
        ax.plot(epochs, col(f"val_{metric}"), "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of one epoch's random augmentation on one process (distinct, reproducible)."""
    return (seed * 1_000_003 + epoch * 1009 + rank) % (2**63)


def build_model(
    name: str, num_classes: int, in_channels: int = 3, drop_prob: float | None = None, weights=None
) -> nn.Module:
    """``create_model`` for ``in_channels``-channel images with the zoo's one dropout keyword
    ``drop_prob`` (each only where it is not the model's default, so that models without them build)."""
    from cnnarch.models import create_model

    extra = {} if in_channels == 3 else {"in_channels": in_channels}
    drop = {} if drop_prob is None else {"drop_prob": drop_prob}
    try:
        return create_model(name, weights=weights, num_classes=num_classes, **extra, **drop)
    except TypeError as e:
        if not drop or "drop_prob" not in str(e):
            raise
        if drop_prob:
            raise ValueError(f"--drop {drop_prob}: {name} has no dropout; drop --drop") from None
        return create_model(name, weights=weights, num_classes=num_classes, **extra)  # none to turn off


def freeze(model: nn.Module, what: str) -> None:
    """``features``: only the ``nn.Linear`` layers train (VGG's and AlexNet's three FC layers, a ResNet's
    ``fc``); ``all-but-head``: only the classifier head(s) train (the last linear layer, and GoogLeNet's
    auxiliary ones). Frozen batch-norm layers keep updating their running statistics to the new data."""
    if what == "none":
        return
    from cnnarch.models import classifiers

    heads = list(classifiers(model).values())
    for m in model.modules():
        trains = isinstance(m, nn.Linear) and (what == "features" or m in heads)
        for p in m.parameters(recurse=False):
            p.requires_grad_(trains)


def check_data(cfg: TrainConfig, data: DataBundle) -> None:
    """Refuse data that cannot train this configuration, before anything is built."""
    if len(data.train) == 0:
        raise ValueError(
            f"-b {cfg.schedule.batch_size} is more than the training images; lower -b or use more images"
        )
    held_out = cfg.speedrun.tta != "none" or cfg.speedrun.target_accuracy
    if held_out and data.val is None and data.test is None:
        raise ValueError(
            "--tta and --target-accuracy need a test set or a validation split (--val-split); "
            "drop them or give the data one"
        )


class Trainer:
    """Runs ``cfg`` on ``data`` and writes the run directory ``cfg.run.output``.

    ``model`` may be given (a module, or a function that builds one after the run's seed is set);
    otherwise it is ``create_model(cfg.model, num_classes=..., in_channels=..., drop_prob=...)``."""

    def __init__(
        self,
        cfg: TrainConfig,
        data: DataBundle,
        model: nn.Module | Callable[[], nn.Module] | None = None,
        log: Callable[[str], None] | None = None,
    ):
        wall0 = time.perf_counter()
        where = data.placement or place(cfg.run.device)
        self.device, self.dist = where.device, where.dist
        self.cfg = cfg = cfg.validate(self.device.type)  # as `cnnarch train` and build_data validate it
        self.data, self.out, self.steps_per_epoch = data, Path(cfg.run.output), len(data.train)
        self._log = log or (lambda s: print(s, flush=True))
        self.memory_kept = cfg.run.keep_memory and keep_freed_memory()
        self.threads = cpu_threads.for_run(cfg.run.threads, cpu_threads.local_processes())
        # --threads 0 follows the load (one process: torchrun's would count each other as the load)
        self.recheck = None
        if cfg.run.threads == 0 and not self.dist.enabled:
            self.recheck = cpu_threads.Recheck(self.threads.threads)
        check_data(cfg, data)
        ckpt = self._resume_checkpoint()
        torch.manual_seed(cfg.run.seed)
        self.model = self._build_model(model, resuming=ckpt is not None)
        self.optimizer = build_optimizer(self.model, cfg)
        self.schedule = LRSchedule(self.optimizer, cfg, self.steps_per_epoch)
        self.muon, self.muon_schedule = self._build_muon()
        self.optimizers = [o for o in (self.optimizer, self.muon) if o is not None]
        self.schedules = [s for s in (self.schedule, self.muon_schedule) if s is not None]
        # after the whitening init; a resumed run's slow weights come from the checkpoint
        self.lookahead = Lookahead(self.model, self.total_steps) if cfg.speedrun.lookahead else None
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.regularization.smoothing)
        weight = cfg.regularization.aux_loss_weight
        self.aux_loss_weight = weight if weight is not None else getattr(self.model, "aux_loss_weight", None)
        self.scaler = grad_scaler(cfg, self.device)
        torch.manual_seed(cfg.run.seed + self.dist.rank)  # different dropout masks per process
        self._restore(ckpt)
        self._prepare_output(ckpt)
        self.net = self._wrap(self.model)
        if ckpt is None:  # model building and whitening are on the training clock
            self.clock["train_seconds"] = time.perf_counter() - wall0

    # ------------------------------------------------------------------ the steps of __init__
    def _resume_checkpoint(self) -> dict | None:
        """``--resume``'s checkpoint, refused when it is another model's or another process count's."""
        cfg = self.cfg
        if not cfg.run.resume:
            return None
        ckpt = load_checkpoint(checkpoint_path(cfg.run.resume))
        if ckpt["model_name"] != cfg.model:
            raise ValueError(
                f"--resume {cfg.run.resume}: the checkpoint holds a {ckpt['model_name']!r}, not {cfg.model!r}"
            )
        if ckpt["world_size"] != self.dist.world_size:
            raise ValueError(
                f"--resume {cfg.run.resume}: written by {ckpt['world_size']} process(es), now "
                f"{self.dist.world_size}; resume with the same number of processes"
            )
        return ckpt

    def _build_model(self, model: nn.Module | Callable[[], nn.Module] | None, resuming: bool) -> nn.Module:
        """The network on the device: given, or the zoo's (:meth:`_zoo_model`); frozen layers, memory
        format, batch-norm momentum and whitening (:mod:`cnnarch.train.speedrun`) applied."""
        cfg = self.cfg
        if model is None:
            model = self._zoo_model(resuming)
        elif cfg.regularization.drop is not None:
            raise ValueError("--drop sets the dropout of a zoo network; build the given model with its own")
        elif not isinstance(model, nn.Module):
            model = model()
        freeze(model, cfg.init.freeze)
        model.to(self.device)
        if cfg.run.channels_last:
            model.to(memory_format=torch.channels_last)
        if cfg.speedrun.whiten_bias_epochs:
            whitening_layer(model)  # refuses a model without one
            if self.dist.enabled:
                raise ValueError(
                    "--whiten-bias-epochs stops training a parameter midway, which DistributedDataParallel "
                    "does not allow; use --whiten-bias-epochs 0 under torchrun"
                )
        batch_norms(model, cfg)
        whiten(model, cfg, self.data.train, resuming)
        check_progressive(model, cfg, self.total_epochs, self.data.in_channels)
        return model

    def _zoo_model(self, resuming: bool) -> nn.Module:
        """The network of the zoo; from ``--initial-checkpoint``/``--pretrained`` weights unless resuming
        (the checkpoint then holds every weight), with a new head when the class count differs."""
        cfg, data = self.cfg, self.data
        if cfg.init.num_classes is not None and cfg.init.num_classes != data.num_classes:
            raise ValueError(
                f"--num-classes {cfg.init.num_classes}, but the data has {data.num_classes} classes; "
                "drop --num-classes (the head gets the data's class count)"
            )
        weights = (
            None if resuming else cfg.init.initial_checkpoint or ("DEFAULT" if cfg.init.pretrained else None)
        )
        model = build_model(cfg.model, data.num_classes, data.in_channels, cfg.regularization.drop, weights)
        if weights is not None:
            self.log(f"initial weights: {model.weights_meta.source}")
            if model.replaced_head:
                self.log(
                    f"replaced {', '.join(model.replaced_head)}: the weights have a different class count "
                    f"than the data's {data.num_classes}; the new layers start untrained"
                )
        return model

    def _build_muon(self) -> tuple[torch.optim.Optimizer | None, LRSchedule | None]:
        """``--muon``: the filters' own optimizer, on the run's schedule scaled to its learning rate."""
        if not self.cfg.speedrun.muon:
            return None, None
        muon, muon_cfg = build_muon(self.model, self.cfg, self.device)
        return muon, LRSchedule(muon, muon_cfg, self.steps_per_epoch)

    def _prepare_output(self, ckpt: dict | None) -> None:
        """The run directory, checked by process 0 (every process stops when it is refused); a resumed
        checkpoint that is its run's best so far is put into ``best.pt``."""
        refused = None
        if self.dist.is_main:
            try:
                prepare_output(self.cfg)
            except ValueError as e:
                refused = e
        if D.any_true(refused is not None, self.device, self.dist):  # every process stops, not only one
            raise refused or ValueError(f"--output {self.out} was refused by process 0")
        if ckpt is not None and self.dist.is_main and ckpt["best_epoch"] == ckpt["epoch"] + 1:
            # the checkpoint resumed is its run's best so far: best.pt must hold it, also when the run
            # was killed between writing last.pt and best.pt, or resumes into another --output
            atomic_torch_save(ckpt, self.out / "best.pt")
        D.check_shared_output(self.out, self.dist, self.device)

    def _wrap(self, model: nn.Module) -> nn.Module:
        """What runs the steps: the model, with synchronised batch norm and DistributedDataParallel under
        ``torchrun``, compiled with ``--compile``."""
        if self.cfg.run.sync_bn and self.dist.enabled:  # the same parameters and buffers in new layers
            D.convert_sync_batchnorm(model, self.device)
        net = D.wrap(model, self.device, self.dist)
        return torch.compile(net) if self.cfg.run.compile else net

    # ------------------------------------------------------------------ run directory, resume
    def _check_same_data(self, ckpt: dict) -> None:
        """A resumed run must see the data it was trained on: the same classes, image count, shape and
        channel statistics (a fingerprint of the content, so the same images moved elsewhere pass)."""
        was, now = ckpt.get("data_info", {}), self.data.info
        diff = [
            f"{k}: {was[k]} then, {now[k]} now"
            for k in ("dataset", "train_images", "image_shape", "mean", "std")
            if k in was and k in now and was[k] != now[k]
        ]
        if ckpt["classes"] and self.data.classes and ckpt["classes"] != list(self.data.classes):
            gone = sorted(set(ckpt["classes"]) - set(self.data.classes))
            new = sorted(set(self.data.classes) - set(ckpt["classes"]))
            diff.insert(
                0,
                f"classes: {len(ckpt['classes'])} then, {len(self.data.classes)} now "
                f"(missing {gone[:5]}, new {new[:5]})",
            )
        if diff:
            raise ValueError(
                f"--resume {self.cfg.run.resume}: the data differ from the checkpoint's run:\n  "
                + "\n  ".join(diff)
                + "\nresume with the data it was trained on (--data DIR where it is now), or start a new run"
            )

    def _restore(self, ckpt: dict | None) -> None:
        """The state of training: a new run's, or the checkpoint's (its data checked first); the rates
        follow from the step."""
        self.start_epoch, self.step, self.best_top1, self.best_epoch = 0, 0, -math.inf, -1
        self.clock = {"train_seconds": 0.0, "eval_seconds": 0.0, "reached": []}
        if ckpt is None:
            return
        self._check_same_data(ckpt)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["scheduler"])
        if self.muon is not None:
            self.muon.load_state_dict(ckpt["muon"])
            self.muon_schedule.load_state_dict(ckpt["muon_scheduler"])
        if self.lookahead is not None:
            self.lookahead.load_state_dict(ckpt["lookahead"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch, self.step = ckpt["epoch"] + 1, ckpt["step"]
        self.best_top1, self.best_epoch = ckpt["best_top1"], ckpt["best_epoch"]
        self.clock = ckpt.get("clock", self.clock)  # absent from earlier versions
        for schedule in self.schedules:  # the rates follow from the step (and a plateau's state)
            schedule.set(self.step)
        set_rng_state(ckpt["rng"][self.dist.rank])
        if self.step >= self.total_steps:
            raise ValueError(
                f"--resume {self.cfg.run.resume}: the run already trained {self.start_epoch} epoch(s), "
                f"{self.step} steps; --epochs {self.cfg.schedule.epochs}"
                + (f" --iterations {self.cfg.schedule.iterations}" if self.cfg.schedule.iterations else "")
                + " leaves nothing to do. Pass a larger --epochs (or --iterations) to continue it"
            )

    def _checkpoint(self, epoch: int) -> dict:
        rng = D.gather_objects(get_rng_state(), self.dist)
        return {
            "format": FORMAT,
            "model_name": self.cfg.model,
            "num_classes": self.data.num_classes,
            "in_channels": self.data.in_channels,
            "classes": list(self.data.classes),
            "data_info": dict(self.data.info),
            "config": self.cfg.to_dict(),
            "model": self.model.state_dict(),  # the bare module, not its DDP/compile wrappers
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "muon": None if self.muon is None else self.muon.state_dict(),
            "muon_scheduler": None if self.muon is None else self.muon_schedule.state_dict(),
            "lookahead": None if self.lookahead is None else self.lookahead.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "step": self.step,
            "best_top1": self.best_top1,
            "best_epoch": self.best_epoch,
            "clock": self.clock,
            "world_size": self.dist.world_size,
            "rng": rng,
        }

    # ------------------------------------------------------------------ logging
    def log(self, msg: str) -> None:
        if self.dist.is_main:
            self._log(msg)

    def _progress(self, epoch: int):
        """The epoch's progress (main process only): a bar on a terminal, dated lines in a log."""
        return start_progress(
            len(self.data.train),
            f"epoch {epoch + 1}/{self.total_epochs}",
            unit="img",
            scale=self.cfg.schedule.batch_size // self.dist.world_size,
            enabled=self.dist.is_main,
            write=self.log,
        )

    # ------------------------------------------------------------------ training
    @property
    def total_steps(self) -> int:
        return self.cfg.schedule.total_steps(self.steps_per_epoch)

    @property
    def total_epochs(self) -> int:
        return self.cfg.schedule.total_epochs(self.steps_per_epoch)

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
        gen = torch.Generator(device=dev).manual_seed(epoch_seed(cfg.run.seed, epoch, self.dist.rank))
        sums = torch.zeros(4, dtype=torch.float64)  # loss * n, top-1 hits, top-5 hits, n
        bar = self._progress(epoch)
        tf = self.data.train_transform
        transform = None if tf is None else lambda x: tf(x, gen)
        small = progressive_stage(cfg.speedrun, epoch)
        t0 = time.perf_counter()
        data_s = 0.0
        it = iter(self.data.train)
        for i in range(len(self.data.train)):
            if self.step >= self.total_steps:
                break
            if cfg.speedrun.whiten_bias_epochs:  # it trains in the first epochs only
                train_whitening_bias(
                    self.model, self.step < cfg.speedrun.whiten_bias_epochs * self.steps_per_epoch
                )
            td = time.perf_counter()
            x, y = prepare(*next(it), transform, dev, cfg)
            if small is not None:
                size, mode = small
                x = downscale(x, size) if mode == "resize" else random_crop(x, size, gen)
            data_s += time.perf_counter() - td
            with autocast(cfg, dev):
                out = self.net(x)
                loss, logits = self.loss_of(out, y)
            loss_value = loss.item()
            if D.any_true(not math.isfinite(loss_value), dev, self.dist):
                raise NonFiniteLossError(
                    self._nonfinite_message(
                        f"non-finite loss ({loss_value}) at epoch {epoch + 1}, step {self.step + 1} "
                        f"(batch {i + 1} of the epoch)"
                    )
                )
            for opt in self.optimizers:
                opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            for opt in self.optimizers:
                self.scaler.step(opt)
            self.scaler.update()
            self.step += 1
            for schedule in self.schedules:
                schedule.set(self.step)
            if self.lookahead is not None:
                self.lookahead.update(self.step)  # at the last step the model takes the slow weights
            c1, c5 = topk_correct(logits.detach().float(), y)
            sums += torch.tensor([loss_value * len(y), c1, c5, len(y)], dtype=torch.float64)
            bar.update(1, loss=f"{sums[0].item() / sums[3].item():.4f}", lr=f"{self.lr():.3g}")
            if self.recheck is not None and (note := self.recheck()):
                bar.write(note)
            if not on_terminal() and cfg.run.log_interval and (i + 1) % cfg.run.log_interval == 0:
                self.log(
                    f"epoch {epoch + 1} [{i + 1}/{len(self.data.train)}] step {self.step} "
                    f"loss {sums[0].item() / sums[3].item():.4f} lr {self.lr():.4g}"
                )
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

    def _nonfinite_message(self, what: str) -> str:
        last = self.out / "last.pt"
        kept = (
            f"the last good checkpoint {last} is untouched" if last.exists() else "no checkpoint was written"
        )
        lr = self.schedule.lr(0, max(0, self.step - 1))  # the rate of the step that made these weights
        return (
            f"{what}, lr {lr:.4g}; stopped, {kept}. Try a lower --lr, a warm-up (--warmup-epochs 1), "
            f"--amp-dtype bfloat16 instead of float16, or check the data for NaN/inf values."
        )

    def _check_finite(self, epoch: int, held_out_loss: float | None) -> None:
        """Weights can overflow while the loss that produced them was finite: nothing non-finite is saved."""
        bad = [
            name
            for name, t in self.model.state_dict().items()
            if t.is_floating_point() and not bool(torch.isfinite(t).all())
        ]
        nan_loss = held_out_loss is not None and not math.isfinite(held_out_loss)
        if D.any_true(bool(bad) or nan_loss, self.device, self.dist):
            names = ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
            what = (
                f"{len(bad)} weight tensor(s) became non-finite ({names})"
                if bad
                else f"the held-out loss is non-finite ({held_out_loss})"
            )
            raise NonFiniteLossError(
                self._nonfinite_message(f"{what} after epoch {epoch + 1}, step {self.step}")
            )

    def _evaluate(self, batches, tta: str = "none") -> tuple[EvalResult, float]:
        t = time.perf_counter()
        desc = "evaluation" if tta == "none" else f"evaluation with TTA ({tta})"
        tf = self.data.eval_transform
        logits = logits_for(tta, self.cfg.speedrun.tta_margin)
        res = evaluate(self.net, batches, tf, self.device, self.cfg, self.dist, logits, desc)
        return res, time.perf_counter() - t

    def _check_targets(self, top1: float, epoch: int) -> None:
        done = {a for a, _, _ in self.clock["reached"]}
        for a in self.cfg.speedrun.target_accuracy:
            if a not in done and top1 >= a:
                self.clock["reached"].append([a, epoch, self.clock["train_seconds"]])

    def fit(self, until_epoch: int | None = None) -> dict:
        """Train to the end of the schedule; returns the final row of metrics plus the test results
        (also written to ``results.json``).

        ``until_epoch`` pauses the run after that epoch (its checkpoint written) and returns its row: the
        schedule stays the whole run's (a cosine keeps its length), so a resume continues it exactly."""
        cfg, data, clock = self.cfg, self.data, self.clock
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(cfg.to_json())
        resumed = self.start_epoch > 0
        what = "resuming" if resumed else "training"
        self.log(f"{what} {cfg.model} -> {self.out} (every setting: {self.out / 'config.json'})")
        for line in cfg.summary():
            self.log(f"  {line}")
        for note in cfg.notes:
            if note.startswith((IGNORED, "warning")):
                self.log(note)
        kept = "; freed memory kept for the next step (--no-keep-memory)" if self.memory_kept else ""
        self.log(self.threads.describe(torch.get_num_threads(), recheck=self.recheck is not None) + kept)
        self.log(
            f"device {self.device} x{self.dist.world_size} process(es), "
            f"{self.steps_per_epoch} steps/epoch, {plural(self.total_epochs, 'epoch')} "
            f"({plural(self.total_steps, 'step')}), starting at epoch {self.start_epoch + 1}"
        )
        if cfg.speedrun.progressive_size:
            self.log(f"progressive resizing: {describe_progressive(cfg.speedrun)}, then full size")
        metrics = None
        if self.dist.is_main:
            metrics = MetricsLog(self.out / "metrics.csv", self.start_epoch if resumed else None)
        # held out after every epoch: the validation split, else the test set when timing targets
        held_out = data.val if data.val is not None else data.test if cfg.speedrun.target_accuracy else None
        row: dict = {}
        test = None
        last = self.total_epochs if until_epoch is None else min(until_epoch, self.total_epochs)
        for epoch in range(self.start_epoch, last):
            row = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            clock["train_seconds"] += row["seconds"]
            res = None
            if held_out is not None:
                res, seconds = self._evaluate(held_out)
                clock["eval_seconds"] += seconds
                row.update(val_loss=res.loss, val_top1=res.top1, val_top5=res.top5)
                self._check_targets(res.top1, epoch + 1)
                test = res if held_out is data.test else None
            val = res if held_out is data.val else None
            name = "val" if val is not None else "test"
            self._check_finite(epoch, None if res is None else res.loss)
            row.update(step=self.step, lr=self.lr())  # the next step's, before a plateau lowers it
            for schedule in self.schedules:
                schedule.step_epoch(None if val is None else val.top1)
                schedule.set(self.step)  # a plateau's new rate
            improved = val is None or val.top1 > self.best_top1
            if improved:
                self.best_top1 = -math.inf if val is None else val.top1
                self.best_epoch = epoch + 1
            ckpt = self._checkpoint(epoch)  # collective (RNG states of every rank): all ranks call it
            if self.dist.is_main:
                for orphan in (*self.out.glob("last.pt.*.tmp"), *self.out.glob("best.pt.*.tmp")):
                    orphan.unlink(missing_ok=True)  # left by a save that was killed
                atomic_torch_save(ckpt, self.out / "last.pt")
                if improved:  # a kill before this save completes is repaired on --resume (__init__)
                    atomic_torch_save(ckpt, self.out / "best.pt")
                metrics.append(row)
                plot_curves(self.out / "metrics.csv", self.out / "curves.png")
            held = f" | {name} loss {res.loss:.4f} top-1 {res.top1:.2f}% top-5 {res.top5:.2f}%" if res else ""
            self.log(
                f"epoch {epoch + 1}/{self.total_epochs} step {self.step} lr {row['lr']:.4g} "
                f"train loss {row['train_loss']:.4f} top-1 {row['train_top1']:.2f}%{held} | "
                f"{row['images_per_s']:.0f} img/s, {row['seconds']:.1f} s, "
                f"training clock {clock['train_seconds']:.1f} s"
            )
        if last < self.total_epochs:
            return row
        row.update(self._final_results(test))
        D.barrier(self.dist)
        return row

    def _final_results(self, test: EvalResult | None) -> dict:
        """Test accuracy (and with TTA), the clocks and the targets reached: logged and ``results.json``."""
        cfg, data, clock = self.cfg, self.data, self.clock
        out: dict = {}
        if data.test is not None:
            if test is None:
                test, seconds = self._evaluate(data.test)
                clock["eval_seconds"] += seconds
            out.update(test_loss=test.loss, test_top1=test.top1, test_top5=test.top5, test_images=test.images)
            self.log(f"test ({test.images} images): top-1 {test.top1:.2f}%  top-5 {test.top5:.2f}%")
        final, name = (data.test, "test") if data.test is not None else (data.val, "val")
        if final is not None and cfg.speedrun.tta != "none":
            res, seconds = self._evaluate(final, cfg.speedrun.tta)
            clock["train_seconds"] += seconds  # the final answer's cost counts, as in the speedruns
            out.update(tta_top1=res.top1, tta_top5=res.top5, tta_seconds=seconds)
            self.log(
                f"{name} with TTA ({cfg.speedrun.tta}, {res.images} images): top-1 {res.top1:.2f}% "
                f"({seconds:.1f} s)"
            )
            self._check_targets(res.top1, self.total_epochs)
        reached = {a: (e, s) for a, e, s in clock["reached"]}
        for a in cfg.speedrun.target_accuracy:
            when = "not reached"
            if a in reached:
                when = f"reached after epoch {reached[a][0]}, {reached[a][1]:.1f} s of training"
            self.log(f"target {a:g}%: {when}")
        out.update(
            train_seconds=clock["train_seconds"],
            eval_seconds=clock["eval_seconds"],
            targets=[{"accuracy": a, "epoch": e, "train_seconds": s} for a, e, s in clock["reached"]],
        )
        if cfg.speedrun.target_accuracy or cfg.speedrun.tta != "none":
            self.log(
                f"time: {clock['train_seconds']:.1f} s training clock (setup, epochs, final TTA), "
                f"{clock['eval_seconds']:.1f} s evaluation"
            )
        if self.dist.is_main:
            (self.out / "results.json").write_text(json.dumps(out, indent=2) + "\n")
        return out
