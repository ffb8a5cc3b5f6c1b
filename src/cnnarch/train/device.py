"""Where a run computes and in what precision: the device, the ``torchrun`` process group, autocast.

:func:`place` picks the device and joins the process group once per run; the data and the trainer
share its :class:`Placement`. Whether autocast is on for the device is decided by
:meth:`cnnarch.train.config.TrainConfig.validate`; the functions here apply that choice.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from cnnarch.train import distributed as D


def pick_device(name: str | None) -> torch.device:
    if name:
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ValueError(f"--device {name}: not a device name; use cpu, cuda or cuda:N") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class Placement:
    """This process's device and its place among the ``torchrun`` processes."""

    device: torch.device
    dist: D.DistInfo


def place(name: str | None) -> Placement:
    """``--device`` resolved, and the process group joined (under ``torchrun``); call once per run."""
    device = pick_device(name)
    dist = D.init_distributed(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    return Placement(device, dist)


def input_dtype(cfg, device: torch.device) -> torch.dtype:
    """The dtype of normalised input images: bf16 under bf16 autocast on a CPU, where the first layer
    would otherwise convert every batch again."""
    cpu_bf16 = cfg.run.amp and cfg.run.amp_dtype == "bfloat16" and device.type == "cpu"
    return torch.bfloat16 if cpu_bf16 else torch.float32


def grad_scaler(cfg, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling, needed by float16 autocast (on CUDA) only."""
    fp16 = bool(cfg.run.amp) and cfg.run.amp_dtype == "float16" and device.type == "cuda"
    return torch.amp.GradScaler(device.type, enabled=fp16)


def autocast(cfg, device: torch.device):
    """The autocast context of ``cfg`` (``--amp``, ``--amp-dtype``) on ``device``; none for no ``cfg``."""
    if cfg is None or not cfg.run.amp:
        return nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, cfg.run.amp_dtype))
