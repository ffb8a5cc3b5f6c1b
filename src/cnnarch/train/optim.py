"""Optimizers and learning-rate schedules, built from a :class:`TrainConfig` with torch's own classes.

Weight decay is L2 in SGD and Adam (added to the gradient, as in the papers) and decoupled in AdamW.
Biases and batch-norm parameters are decayed too, as in the lecture's papers; the schedules are torch's
``ReduceLROnPlateau``, ``StepLR``, ``MultiStepLR`` and ``CosineAnnealingLR``, stepped once per epoch or
once per iteration (``sched_unit``), with an optional linear warm-up (``LinearLR``, per iteration)
chained in front of them. Every torch schedule used here updates the rate multiplicatively, so the
warm-up and the main schedule compose by multiplication, exactly as ``ChainedScheduler`` would.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn
from torch.optim import lr_scheduler

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
    """The learning-rate policy of a run: ``step_iter()`` after every optimizer step,
    ``step_epoch(val_top1)`` after every epoch's validation. Holds torch schedulers only."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
        self.cfg = cfg
        self.per_iter = cfg.schedule.sched_unit == "iter"
        total = min(cfg.schedule.epochs * steps_per_epoch, cfg.schedule.iterations or math.inf)
        length = total if self.per_iter else math.ceil(total / steps_per_epoch)
        warmup_iters = round(cfg.schedule.warmup_epochs * steps_per_epoch)
        self.warmup = None
        if warmup_iters > 0:
            self.warmup = lr_scheduler.LinearLR(
                optimizer,
                start_factor=min(1.0, cfg.schedule.warmup_lr / cfg.optim.lr),
                total_iters=warmup_iters,
            )
        if cfg.schedule.sched == "plateau":
            # the lecture: "divide by 10 when validation accuracy stops improving"
            self.main = lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode="max",
                factor=cfg.schedule.decay_rate,
                patience=cfg.schedule.patience_epochs,
                min_lr=cfg.schedule.min_lr,
            )
        elif cfg.schedule.sched == "step":
            self.main = lr_scheduler.StepLR(
                optimizer, step_size=cfg.schedule.decay_epochs, gamma=cfg.schedule.decay_rate
            )
        elif cfg.schedule.sched == "multistep":
            self.main = lr_scheduler.MultiStepLR(
                optimizer, list(cfg.schedule.decay_milestones), gamma=cfg.schedule.decay_rate
            )
        elif cfg.schedule.sched == "onecycle":
            up = warmup_iters if self.per_iter else math.ceil(cfg.schedule.warmup_epochs)
            self.warmup = None  # the rising half of the cycle is the warm-up
            self.main = lr_scheduler.LambdaLR(
                optimizer,
                partial(
                    one_cycle,
                    up=up,
                    length=length,
                    start=cfg.schedule.warmup_lr / cfg.optim.lr,
                    end=cfg.schedule.min_lr / cfg.optim.lr,
                ),
            )
        elif cfg.schedule.sched == "cosine":
            self.main = lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=max(1, length), eta_min=cfg.schedule.min_lr
            )
        else:
            self.main = None

    def step_iter(self) -> None:
        if self.warmup is not None and self.warmup.last_epoch < self.warmup.total_iters:
            self.warmup.step()
        if self.per_iter and self.main is not None and not self._plateau:
            self.main.step()

    def step_epoch(self, val_top1: float | None) -> None:
        if self.main is None:
            return
        if self._plateau:
            if val_top1 is None or math.isnan(val_top1):
                raise ValueError("--sched plateau needs a validation set: use --val-split > 0")
            self.main.step(val_top1)
        elif not self.per_iter:
            self.main.step()

    @property
    def _plateau(self) -> bool:
        return isinstance(self.main, lr_scheduler.ReduceLROnPlateau)

    def state_dict(self) -> dict:
        return {
            "warmup": None if self.warmup is None else self.warmup.state_dict(),
            "main": None if self.main is None else self.main.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        if (state["warmup"] is None) != (self.warmup is None) or (state["main"] is None) != (
            self.main is None
        ):
            raise ValueError(
                "the checkpoint's learning-rate schedule does not match this run's --sched/--warmup-epochs"
            )
        if self.warmup is not None:
            self.warmup.load_state_dict(state["warmup"])
        if self.main is not None:
            length = self.main.T_max if isinstance(self.main, lr_scheduler.CosineAnnealingLR) else None
            self.main.load_state_dict(state["main"])
            if length is not None and self.main.T_max != length:
                self._stretch_cosine(length)

    def _stretch_cosine(self, length: int) -> None:
        """A resumed run with another --epochs: the cosine continues over the new length from where it is
        (torch's recursive update would stay at its end value, lr 0, past the old length)."""
        self.main.T_max = length
        factor = 1.0
        if self.warmup is not None and self.warmup.last_epoch < self.warmup.total_iters:
            w = self.warmup
            factor = w.start_factor + (w.end_factor - w.start_factor) * w.last_epoch / w.total_iters
        t = min(self.main.last_epoch, length)
        for group, base in zip(self.main.optimizer.param_groups, self.main.base_lrs, strict=True):
            eta = self.main.eta_min
            group["lr"] = factor * (eta + (base - eta) * (1 + math.cos(math.pi * t / length)) / 2)
