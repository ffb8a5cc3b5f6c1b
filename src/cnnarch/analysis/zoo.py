"""Networks for the analyzer, built without allocating their weights."""

from __future__ import annotations

import torch
from torch import nn

from cnnarch.analysis.inception import LECTURE_INPUT, naive_inception, reduced_inception
from cnnarch.models import create_model, get_model_entry

# The lecture's modules by name, for `cnnarch summary`: (builder, input size).
LECTURE_MODULES = {
    "inception_naive": (naive_inception, LECTURE_INPUT),
    "inception_reduced": (reduced_inception, LECTURE_INPUT),
}


def build(name: str, device: str = "meta") -> tuple[nn.Module, tuple[int, ...]]:
    """A registered network (or one of :data:`LECTURE_MODULES`) and its default input size.

    On ``meta`` nothing is allocated; a builder that reads tensor values while it builds (none of the
    zoo's do) is built on the CPU instead, and the profiler still runs on meta. ``device="cpu"`` gives
    uninitialized CPU weights, for forward passes that cannot run on meta.
    """
    if name in LECTURE_MODULES:
        make, size = LECTURE_MODULES[name]
    else:
        size = get_model_entry(name).input_size

        def make():
            return create_model(name)

    try:
        with torch.device("meta"):
            model = make()
    except (NotImplementedError, RuntimeError):
        model = make()
    if device != "meta":
        model = model.to_empty(device=device)
    return model, size
