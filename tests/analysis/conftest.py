import functools

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnarch.analysis import profile
from cnnarch.models import create_model, get_model_entry


@pytest.fixture(scope="session")
def zoo():
    """``zoo(name) -> (meta model, its profile at the paper's input size, FlopCounterMode's count)``,
    built once per session.

    FlopCounterMode watches the same forward pass from outside the profiler's own dispatch mode: every
    operator the profiler passes on reaches it, and it counts with torch's formulas. One meta pass
    instead of two keeps the registry-wide test fast (batch norm on meta is slow Python)."""

    @functools.cache
    def build(name: str):
        with torch.device("meta"):
            model = create_model(name)
        with FlopCounterMode(display=False) as counter:
            p = profile(model, get_model_entry(name).input_size)
        return model, p, counter.get_total_flops()

    return build
