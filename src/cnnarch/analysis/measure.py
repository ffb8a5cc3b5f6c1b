"""Measured memory of a real forward pass and a real training step, to set beside the profiler's
estimate (the lecture's "about 96 MB per image for the forward pass, about twice that with the
backward" for VGG-16 is such an estimate).

How it is measured:

- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, less what was allocated
  before the pass: the peak of the tensors the pass allocated.
- CPU: torch keeps no allocator statistics for the CPU, so the pass runs under
  ``torch.profiler.profile(profile_memory=True)``, which records every allocation and free of the CPU
  allocator with its size; the running sum of those, in time order, peaks at the most tensor memory the
  pass held at once. Like the CUDA figure, it counts tensors (activations, saved tensors, gradients,
  workspaces), not the allocator's cache or the process's other memory.

Both count only what the pass allocates: the weights already exist. A forward "with autograd" keeps
what the backward needs (the training forward); "inference" runs under ``torch.no_grad()`` and frees
each activation as soon as nothing reads it. The training step is forward + backward of the sum of
the outputs from gradients set to None (as ``optimizer.zero_grad()`` leaves them): its peak holds the
weights' gradients (their size is given apart), the saved activations and the backward's temporaries.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._pytree import tree_leaves


@dataclass(frozen=True)
class Measured:
    """Peak bytes newly allocated per pass, for ``batch_size`` images (divide for per image)."""

    device: str
    batch_size: int
    inference: int  # forward under no_grad
    forward: int  # forward keeping what the backward needs
    train_step: int  # forward + backward, the weights' gradients included
    weight_grads: int  # the weights' gradients the step allocates (part of train_step)

    def per_image(self, field: str) -> float:
        return getattr(self, field) / self.batch_size


def measure_memory(
    model: nn.Module, input_size, *, batch_size: int = 1, device: str | torch.device = "cpu"
) -> Measured:
    """Run ``model`` (whose weights must be real, on ``device``) on a batch of random inputs of size
    ``input_size`` (C, H, W) three times: inference, forward with autograd, one training step; return
    each pass's measured peak. The model's mode and gradients are restored."""
    from cnnarch.analysis.profiler import parse_input_size

    device = torch.device(device)
    x = torch.randn(batch_size, *parse_input_size(input_size), device=device)
    was_training = model.training
    grads = {p: p.grad for p in model.parameters()}
    try:
        model.eval()
        with torch.no_grad():
            inference = _peak(device, lambda: model(x))
        forward = _peak(device, lambda: model(x))
        model.train()
        for p in grads:
            p.grad = None

        def step():
            outs = [t for t in tree_leaves(model(x)) if isinstance(t, torch.Tensor) and t.is_floating_point()]
            sum(t.float().sum() for t in outs).backward()

        train = _peak(device, step)
        weight_grads = sum(p.grad.numel() * p.grad.element_size() for p in grads if p.grad is not None)
    finally:
        for p, g in grads.items():
            p.grad = g
        model.train(was_training)
    return Measured(str(device), batch_size, inference, forward, train, weight_grads)


def _peak(device: torch.device, fn) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        result = fn()
        torch.cuda.synchronize(device)
        del result
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = fn()
        del result  # freed inside the window: what was allocated and released nets to zero
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        live += e.nbytes()
        peak = max(peak, live)
    return peak


@contextlib.contextmanager
def _quiet_stderr():
    """The profiler's C++ side logs a line at start and stop on file descriptor 2: not for the user."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
