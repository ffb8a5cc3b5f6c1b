import math

import pytest
import torch

from cnnarch.models import create_model

# A prime, so that no layer's rows line up with the pool's period.
_POOL_SIZE = 1_000_003


def fill_random_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter and floating buffer random values, in place; returns ``model``.

    Drawing 130M fresh numbers for a VGG takes seconds on this machine, so each tensor copies a run of a
    fixed random pool from a random offset instead. Weights get a He-uniform scale, batch-norm scales
    and variances lie in [0.5, 1.5), shifts and means in [-0.5, 0.5): a layer wired differently cannot
    give the same logits by accident, and the logits stay finite through 152 layers.
    """
    g = torch.Generator().manual_seed(seed)
    pool = torch.rand(_POOL_SIZE, generator=g) * 2 - 1
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if not t.is_floating_point():
                continue
            flat = t.view(-1)
            start = int(torch.randint(_POOL_SIZE, (1,), generator=g))
            done = 0
            while done < flat.numel():
                n = min(flat.numel() - done, _POOL_SIZE - start)
                flat[done : done + n].copy_(pool[start : start + n])
                done, start = done + n, 0
            if t.dim() > 1:
                t.mul_(math.sqrt(6.0 / (t[0].numel())) / 2)
            elif name.endswith(("weight", "running_var")):
                t.mul_(0.5).add_(1.0)
            else:
                t.mul_(0.5)
    return model


@pytest.fixture
def random_model():
    """``random_model(name, **kwargs)``: a registered model with random weights, built without running
    its own (slow, and separately tested) initialization."""

    def build(name: str, **kwargs) -> torch.nn.Module:
        with torch.device("meta"):
            model = create_model(name, **kwargs)
        return fill_random_(model.to_empty(device="cpu"))

    return build


@pytest.fixture
def randomize():
    return fill_random_


@pytest.fixture
def torchvision_parity(randomize):
    """``torchvision_parity(name, torchvision_builder, size=32, **kwargs)``: torchvision's state_dict
    (random weights and batch-norm statistics) loads into ``create_model(name)`` with strict=True, and
    both give the same eval logits to 1e-5."""

    def check(name: str, tv_builder, size: int = 32, **kwargs) -> None:
        # Built on meta, then filled: their own weight initialization is not under test and is slow.
        with torch.device("meta"):
            reference = tv_builder(**kwargs)
            ours = create_model(name, **kwargs)
        reference = randomize(reference.to_empty(device="cpu")).eval()
        ours.load_state_dict(reference.state_dict(), strict=True, assign=True)
        ours.eval()
        assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            expected, got = reference(x), ours(x)
        assert got.shape == expected.shape
        assert (got - expected).abs().max().item() <= 1e-5
        assert expected.std() > 1e-3  # the comparison is not between two constant outputs

    return check


@pytest.fixture
def shape_model():
    """``shape_model(name, **kwargs)``: a registered model whose tensors hold arbitrary values, for
    shape-only checks with an empty batch (zero images: every layer checks shapes, none computes).
    Quicker than both a real build and the ``meta`` device, whose first use imports seconds of code."""

    def build(name: str, **kwargs) -> torch.nn.Module:
        with torch.device("meta"):
            model = create_model(name, **kwargs)
        return model.to_empty(device="cpu")

    return build
