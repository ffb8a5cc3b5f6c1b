"""Where a run computes and in what precision: the device, the ``torchrun`` process group, autocast.

:func:`place` picks the device and joins the process group once per run; the data and the trainer
share its :class:`Placement`. bf16 autocast is used only where it is fast: a CPU without AMX or
AVX512-BF16 units (AVX2 only) has no fast bf16 convolution, and autocast there is several times slower
than fp32 (measured: ResNet-18 training, 4 vs 20 images/s; cifar_fast 2 vs 20-30 images/s on one AVX2
core), so :func:`adapt_amp` turns a recipe's ``amp`` off on such a CPU unless ``--amp`` was given.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

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


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has AMX or AVX512-BF16 units."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def slow_bf16(cfg, device: torch.device) -> bool:
    """Whether ``cfg`` asks for bf16 autocast on a CPU that computes it slowly."""
    return cfg.amp and cfg.amp_dtype == "bfloat16" and device.type == "cpu" and not cpu_has_fast_bf16()


def adapt_amp(cfg, explicit: bool, device: torch.device):
    """``(cfg, note)``: a recipe's bf16 autocast turned off where it is slow (see the module docstring),
    unless ``--amp`` was given (``explicit``: the trainer then warns); ``note`` says what changed."""
    if explicit or not slow_bf16(cfg, device):
        return cfg, None
    return cfg.replace(amp=False), (
        "amp off: this CPU has no AMX or AVX512-BF16 units, and bf16 autocast there is several times "
        "slower than fp32 (--amp forces it)"
    )


def input_dtype(cfg, device: torch.device) -> torch.dtype:
    """The dtype of normalised input images: bf16 under bf16 autocast on a CPU, where the first layer
    would otherwise convert every batch again."""
    cpu_bf16 = cfg.amp and cfg.amp_dtype == "bfloat16" and device.type == "cpu"
    return torch.bfloat16 if cpu_bf16 else torch.float32


def grad_scaler(cfg, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling, needed by float16 autocast (on CUDA) only."""
    fp16 = cfg.amp and cfg.amp_dtype == "float16" and device.type == "cuda"
    return torch.amp.GradScaler(device.type, enabled=fp16)


def autocast(cfg, device: torch.device):
    """The autocast context of ``cfg`` (``--amp``, ``--amp-dtype``) on ``device``; none for no ``cfg``."""
    if cfg is None or not cfg.amp:
        return nullcontext()
    dtype = getattr(torch, cfg.amp_dtype)
    if device.type == "cpu" and dtype == torch.float16:
        raise ValueError("--amp-dtype float16 is for GPUs; on a CPU use --amp-dtype bfloat16 (AMX)")
    return torch.autocast(device.type, dtype=dtype)
