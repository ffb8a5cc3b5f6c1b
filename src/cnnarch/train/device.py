"""Where a run computes and in what precision: the device, the ``torchrun`` process group, autocast.

:func:`place` picks the device and joins the process group once per run; the data and the trainer
share its :class:`Placement`. Whether autocast is on for the device is decided by
:meth:`cnnarch.train.config.TrainConfig.validate`; the functions here apply that choice. A trained
network's evaluation and inference (``cnnarch eval``, ``cnnarch predict``) run at a :class:`Precision`
chosen by :func:`choose_precision` from ``--precision`` by the same rule.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from cnnarch.train import distributed as D
from cnnarch.train.config import PRECISIONS, bf16_is_fast


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


@dataclass(frozen=True)
class Precision:
    """How a trained network computes in evaluation and inference: bfloat16 autocast with channels-last
    (NHWC) memory, the layout oneDNN's bf16 convolutions run fastest in, or fp32 throughout; ``why`` says
    what chose it."""

    bf16: bool
    why: str

    def __str__(self) -> str:
        return f"precision: {'bf16 autocast, channels-last' if self.bf16 else 'fp32'} ({self.why})"

    def autocast(self, device: torch.device | str):
        device = torch.device(device)
        return torch.autocast(device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    def layout(self, x):
        """A batch of images (4-d) or a network in the memory format of this precision."""
        if not self.bf16:
            return x
        if isinstance(x, torch.nn.Module):
            return x.to(memory_format=torch.channels_last)
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def choose_precision(requested: str, device: torch.device | str) -> Precision:
    """``--precision`` resolved for ``device``: ``auto`` is bf16 where the device computes it fast
    (:func:`cnnarch.train.config.bf16_is_fast`, the rule training's ``--amp`` follows too), else fp32."""
    if requested not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    device = torch.device(device)
    fast = bf16_is_fast(device.type)
    units = "a GPU" if device.type != "cpu" else "this CPU has AMX or AVX512-BF16 units"
    if requested == "auto" and fast:
        return Precision(True, f"auto: {units}; --precision fp32 opts out")
    if requested == "auto":
        return Precision(False, "auto: this CPU has no AMX or AVX512-BF16 units, where bf16 runs slower")
    if requested == "bf16" and not fast:
        return Precision(True, "--precision bf16; slower than fp32 on this CPU without AMX or AVX512-BF16")
    return Precision(requested == "bf16", f"--precision {requested}")
