"""Data parallel training through PyTorch's own engine: ``torchrun`` starts the processes,
``DistributedDataParallel`` (DDP; Li et al., "PyTorch Distributed", VLDB 2020) averages their gradients.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE``; a run started by it
joins the process group (gloo on CPU, NCCL on CUDA). One process needs no ``torch.distributed`` at all:
every function here is then a no-op. What this module decides for a run of N processes:

- the network's wrapper (:func:`wrap`): DDP searches for parameters a forward pass left out only when
  the network says it skips some (FractalNet's drop-path drops whole columns), because the search costs
  a walk over the autograd graph every step;
- batch norm over the global batch (``--sync-bn``, :func:`convert_sync_batchnorm`): torch's
  ``nn.SyncBatchNorm`` on GPUs, :class:`GlobalBatchNorm` (the same statistics, all-reduced through gloo)
  on CPUs, where torch's one refuses to run;
- the data: the first process of every machine downloads, extracts and decodes while the others wait
  (:func:`local_main_first`), so a cold cache is filled once per machine;
- the run directory: checkpoints are written by process 0 and read by every process on resume, so the
  output folder must be one shared folder; :func:`check_shared_output` refuses to start otherwise.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        """The first process of its machine (``torchrun``'s local rank 0)."""
        return self.local_rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment; one process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        # Imported before the group exists: this module takes the world group as its functions' default
        # argument when it is first imported, which DDP does. Imported later, it would keep the group
        # alive past destroy_process_group, gloo's worker threads running on into interpreter exit, where
        # freeing the last collective's work from one of them aborts the process ("terminate called
        # without an active exception", exit -6; about one 2-process launch in 20 on 2 busy cores).
        import torch.distributed.nn.functional  # noqa: F401

        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        backend = "nccl" if device_type == "cuda" else "gloo"
        store = _attempt_store()
        if store is None:
            dist.init_process_group(backend)
        else:
            dist.init_process_group(backend, store=store, rank=info.rank, world_size=world)
    return info


def _attempt_store() -> dist.Store | None:
    """The key-value store of this ``torchrun`` attempt, when the agent hosts it.

    torchrun's c10d rendezvous hands the processes of every attempt the same store (the agent's, kept
    across restarts) without separating their keys: after ``--max-restarts`` restarted the processes,
    one of them could read the address that a process of the failed attempt had published and fail with
    "Gloo connectFullMesh failed ... Connection refused" (about every other restart here). Keys under the
    attempt's number keep the attempts apart. None: the process group's own ``env://`` start."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    from torch.distributed.constants import default_pg_timeout

    client = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False, timeout=default_pg_timeout
    )
    return dist.PrefixStore(f"cnnarch/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", client)


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def any_true(flag: bool, device, info: DistInfo) -> bool:
    """True on every rank when ``flag`` is true on any rank (the non-finite stop is agreed this way)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj, info: DistInfo) -> list:
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def from_main(obj: T, info: DistInfo) -> T:
    """Process 0's ``obj`` on every process (decisions that must be the same everywhere)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group once every process has ended its run well. Without it gloo's threads can
    be torn down during interpreter exit ("terminate called without an active exception", exit -6);
    not after an error, where a process still waiting in a collective would hang the others. The group
    is freed here, its threads joined, unless something still holds it (see :func:`init_distributed`)."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------- data


def local_main_first(load: Callable[[], T], info: DistInfo, device) -> T:
    """``load()`` in the first process of every machine, then, once it has finished on every machine,
    in the others: a cold cache is downloaded, extracted and decoded once per machine, and the other
    processes read what it left. A failure there stops every process (the others with a pointer to it)
    instead of leaving them waiting."""
    if not info.enabled:
        return load()
    result, error = None, None
    if info.is_local_main:
        try:
            result = load()
        except Exception as e:  # raised below, once every process knows
            error = e
    if any_true(error is not None, device, info):  # the barrier: every process waits here
        if error is not None:
            raise error
        raise RuntimeError(
            "loading the data failed in the first process of a machine (local rank 0); see its message"
        )
    return result if info.is_local_main else load()


# ---------------------------------------------------------------------------------------------- run dir


def check_shared_output(out: Path, info: DistInfo, device) -> None:
    """Refuse a run whose ``--output`` is not one folder that every machine sees.

    Process 0 writes the checkpoints and every process reads ``last.pt`` on resume, so on machines that
    do not share the folder the other machines would resume from nothing (or from a stale copy). Process
    0 writes a random token into the folder; the first process of every machine reads it back."""
    if not info.enabled:
        return
    token_file = out / ".cnnarch-shared-check"
    token = from_main(secrets.token_hex(16), info)
    if info.is_main:
        token_file.write_text(token)
    barrier(info)
    seen = None
    if info.is_local_main:
        try:
            seen = token_file.read_text()
        except OSError:
            pass
    missing = any_true(info.is_local_main and seen != token, device, info)
    barrier(info)  # every machine has read it before it goes
    if info.is_main:
        token_file.unlink(missing_ok=True)
    if missing:
        raise ValueError(
            f"--output {out} is not shared by every machine of this run: process 0 writes the checkpoints "
            "and every process reads them to resume, so the run directory must be on a file system all "
            "machines mount (NFS, Lustre, ...) at the same path; give --output such a folder"
        )


# ---------------------------------------------------------------------------------------------- network


def skips_parameters(model: nn.Module) -> bool:
    """Whether a forward pass in training may leave some parameters out of the loss.

    A module says so with a ``skips_parameters`` attribute (FractalNet: drop-path drops whole columns,
    a different set in every step and every process). DDP must then look for the unused parameters
    after every forward pass (``find_unused_parameters``); every other network is spared that search."""
    return any(bool(getattr(m, "skips_parameters", False)) for m in model.modules())


class _SumOverProcesses(torch.autograd.Function):
    """The sum of a tensor over every process; its gradient is the sum of the processes' gradients
    (each process's loss depends on every process's share through the sum)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are those of the global batch, on any device and backend.

    The mean and the (biased) variance are sums over every process's share, all-reduced by an autograd
    function whose backward all-reduces the gradient: the backward pass is that of one batch norm over
    the whole batch, as in torch's ``nn.SyncBatchNorm`` (whose kernels exist for CUDA only). Two passes
    (mean, then squared deviations) keep the variance as accurate as torch's own. Evaluation, and one
    process, use the plain batch norm."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = torch.tensor([x.numel() // x.shape[1]], dtype=torch.float32, device=x.device)
        total = _SumOverProcesses.apply(torch.cat([xf.sum(dims), count]))
        n = total[-1]
        mean = total[:-1] / n
        centred = xf - mean.view(shape)
        var = _SumOverProcesses.apply((centred * centred).sum(dims)) / n
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), m)
                unbiased = var * n / (n - 1).clamp(min=1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), m)
        return y.to(x.dtype)


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``--sync-bn``: every batch-norm layer of ``model`` normalises with the global batch's statistics.
    The layers are replaced in place (same names, same parameters and buffers), so checkpoints and the
    optimizer see the same tensors; returns ``model``."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, GlobalBatchNorm):
                bn = GlobalBatchNorm(
                    child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
                )
                if child.affine:
                    bn.weight, bn.bias = child.weight, child.bias
                if child.track_running_stats:
                    bn.running_mean, bn.running_var = child.running_mean, child.running_var
                    bn.num_batches_tracked = child.num_batches_tracked
                bn.train(child.training)
                setattr(parent, name, bn)
    return model


def wrap(model: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    """``model`` in DistributedDataParallel under ``torchrun`` (itself otherwise).

    Buffers (batch-norm running statistics) are broadcast from process 0 before every forward pass, DDP's
    default: without ``--sync-bn`` each process normalises its share of the batch with that share's own
    statistics, and the running averages kept are process 0's."""
    if not info.enabled:
        return model
    return nn.parallel.DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=skips_parameters(model),
    )
