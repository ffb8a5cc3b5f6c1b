"""Optimizers and learning-rate schedules, built from a :class:`TrainConfig` with torch's own classes.

Weight decay is L2 in SGD and Adam (added to the gradient, as in the papers) and decoupled in AdamW.
Biases and batch-norm parameters are decayed too, as in the lecture's papers. The schedules (plateau,
step, multistep, cosine, one cycle) are functions of the step (:class:`LRSchedule`), counted in epochs or
iterations (``sched_unit``), times an optional linear warm-up (per iteration).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cnnarch.train.config import TrainConfig
from cnnarch.train.muon import Muon, filter_params


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """Trainable parameters (without the convolution filters under ``--muon``: :func:`build_muon`);
    batch-norm shifts in their own group, with ``bias_lr_scale`` times the lr and ``1/bias_lr_scale``
    the weight decay (so that their decay per step is unchanged), when it is not 1 (the speedruns' 64)."""
    filters = {id(p) for p in filter_params(model)[0]} if cfg.speedrun.muon else set()
    trainable = [p for p in model.parameters() if p.requires_grad and id(p) not in filters]
    if cfg.speedrun.bias_lr_scale == 1:
        return [{"params": trainable}]
    shifts = {
        id(m.bias): m.bias
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.bias is not None and m.bias.requires_grad
    }
    s = cfg.speedrun.bias_lr_scale
    return [
        {"params": [p for p in trainable if id(p) not in shifts]},
        {"params": list(shifts.values()), "lr": cfg.optim.lr * s, "weight_decay": cfg.optim.weight_decay / s},
    ]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of ``cfg`` over ``model``'s trainable parameters (:func:`param_groups`)."""
    params = param_groups(model, cfg)
    if cfg.optim.opt == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.optim.lr,
            momentum=cfg.optim.momentum,
            nesterov=cfg.optim.nesterov,
            weight_decay=cfg.optim.weight_decay,
        )
    cls = torch.optim.Adam if cfg.optim.opt == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)


def build_muon(model: nn.Module, cfg: TrainConfig, device: torch.device) -> tuple[Muon, TrainConfig]:
    """Muon over ``model``'s trainable convolution filters (airbench94_muon), and the configuration
    of its schedule: the run's, with every learning rate scaled by ``muon_lr / lr``, so that both
    optimizers follow the same curve. The iteration runs in float32 on a CPU (bfloat16 elsewhere)."""
    filters = filter_params(model)[0]
    if not filters:
        raise ValueError(
            f"--muon trains convolution filters, and {cfg.model} has no trainable ones; drop --muon"
        )
    muon = Muon(
        filters,
        lr=cfg.speedrun.muon_lr,
        momentum=cfg.speedrun.muon_momentum,
        nesterov=True,
        ns_steps=cfg.speedrun.muon_ns_steps,
        ns_dtype=torch.float32 if device.type == "cpu" else torch.bfloat16,
    )
    k = cfg.speedrun.muon_lr / cfg.optim.lr
    return muon, cfg.replace(
        lr=cfg.speedrun.muon_lr, warmup_lr=cfg.schedule.warmup_lr * k, min_lr=cfg.schedule.min_lr * k
    )


def one_cycle(i: int, up: int, length: int, start: float, end: float) -> float:
    """Learning-rate factor at step ``i`` of a triangular cycle (Smith's one cycle, as in Page's
    ResNet-9 and airbench): linear from ``start`` to 1 over ``up`` steps, then linear to ``end`` at
    ``length``."""
    if i < up:
        return start + (1 - start) * i / up
    return 1 + (end - 1) * min(1.0, (i - up) / max(1, length - up))


class LRSchedule:
    """Every group's learning rate as a function of the step, as nanoGPT's ``get_lr(it)``: :meth:`set`
    puts ``lr(step, epoch)`` (both from 0) into the groups before each step, so a resumed run needs only
    its step and epoch (and a ``plateau``'s state: best accuracy, bad epochs, rates reached)."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
        self.optimizer, self.cfg, sc = optimizer, cfg, cfg.schedule
        self.bases = [g["lr"] for g in optimizer.param_groups]
        self.per_iter = sc.sched_unit == "iter"
        total = sc.total_steps(steps_per_epoch)
        self.length = total if self.per_iter else sc.total_epochs(steps_per_epoch)
        self.warmup = round(sc.warmup_epochs * steps_per_epoch)
        self.up = self.warmup if self.per_iter else math.ceil(sc.warmup_epochs)
        self.best, self.bad_epochs, self.plateau = -math.inf, 0, list(self.bases)
        self.set(0, 0)

    def lr(self, group: int, step: int, epoch: int) -> float:
        sc, base = self.cfg.schedule, self.bases[group]
        t = step if self.per_iter else epoch
        if sc.sched == "onecycle":  # its rising half is the warm-up
            start, end = sc.warmup_lr / self.cfg.optim.lr, sc.min_lr / self.cfg.optim.lr
            return base * one_cycle(t, self.up, self.length, start, end)
        lr = base
        if sc.sched == "plateau":
            lr = self.plateau[group]
        elif sc.sched == "cosine":
            lr = sc.min_lr + (base - sc.min_lr) * (1 + math.cos(math.pi * t / max(1, self.length))) / 2
        elif sc.sched in ("step", "multistep"):
            drops = t // sc.decay_epochs if sc.sched == "step" else sum(m <= t for m in sc.decay_milestones)
            for _ in range(drops):  # as torch's StepLR/MultiStepLR multiply, to the last bit
                lr *= sc.decay_rate
        if step < self.warmup:
            start = min(1.0, sc.warmup_lr / self.cfg.optim.lr)
            lr *= start + (1 - start) * step / self.warmup
        return lr

    def set(self, step: int, epoch: int) -> None:
        """The rates of optimizer step ``step`` (0-based), taken in (0-based) ``epoch``."""
        for i, group in enumerate(self.optimizer.param_groups):
            group["lr"] = self.lr(i, step, epoch)

    def step_epoch(self, val_top1: float | None) -> None:
        """After an epoch's validation: ``plateau`` divides the rates by ``--decay-rate`` when the
        accuracy has not improved (by 1e-4 relative, as torch's ReduceLROnPlateau) for more than
        ``--patience-epochs`` epochs, down to ``--min-lr``."""
        if self.cfg.schedule.sched != "plateau":
            return
        if val_top1 is None or math.isnan(val_top1):
            raise ValueError("--sched plateau needs a validation set: use --val-split > 0")
        if val_top1 > self.best * (1 + 1e-4) or self.best == -math.inf:
            self.best, self.bad_epochs = val_top1, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.cfg.schedule.patience_epochs:
            sc = self.cfg.schedule
            self.plateau = [max(lr * sc.decay_rate, sc.min_lr) for lr in self.plateau]
            self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "plateau": list(self.plateau)}

    def load_state_dict(self, state: dict) -> None:
        """Also reads the torch scheduler states of earlier checkpoints (``warmup``/``main``): only a
        plateau's state means anything; every other rate follows from the step."""
        if "main" in state:
            main = state["main"] or {}
            state = {"best": main.get("best", -math.inf), "bad_epochs": main.get("num_bad_epochs", 0)}
            state["plateau"] = main.get("_last_lr", self.bases)
        self.best, self.bad_epochs, self.plateau = state["best"], state["bad_epochs"], list(state["plateau"])
