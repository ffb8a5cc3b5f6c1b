"""The input sizes a network accepts, worked out from its layers, and the check its ``forward`` runs first.

A too-small image otherwise fails deep inside a network ("Output size is too small"), a fixed-size
classifier at its first Linear layer ("mat1 and mat2 shapes cannot be multiplied"), a wrong channel count
at the first convolution; none of these messages says what would have worked.

Each network lists in ``size_paths(training)`` the chains of layers from its input to a point where the
size no longer matters (an adaptive pool) or to its fixed-size classifier (a Linear layer); an
``nn.Sequential`` is its own chain. Along a chain, convolutions and pools change the size by torch's own
output-size formula and every other leaf keeps it; branches and shortcuts inside a block match its main
path by construction and are left out. The sizes are integer arithmetic: no forward pass runs, so hooks,
FLOP counters, ``torch.jit.trace`` and ``torch.compile`` see nothing (the check stands aside under the
last two). Square kernels only; height and width are checked separately.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

_LARGEST = 1 << 16  # beyond any image size in use
_SIZE_FREE = nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d


@dataclass(frozen=True)
class SizeRange:
    """Square input sizes a network accepts: ``smallest`` to ``largest`` (None: no upper bound)."""

    smallest: int
    largest: int | None = None

    def __contains__(self, size: int) -> bool:
        return size >= self.smallest and (self.largest is None or size <= self.largest)

    def describe(self) -> str:
        if self.largest is None:
            return f"at least {self.smallest}x{self.smallest}"
        if self.largest == self.smallest:
            return f"exactly {self.smallest}x{self.smallest}"
        return f"{self.smallest}x{self.smallest} to {self.largest}x{self.largest}"


def _layers(chain):
    """The leaves of a chain that matter for its size; nested ``nn.Sequential`` are chains too."""
    for m in chain:
        if isinstance(m, nn.Sequential):
            yield from _layers(m)
        elif isinstance(m, nn.Linear | _SIZE_FREE) or hasattr(m, "kernel_size"):
            yield m
        elif next(m.children(), None) is not None:
            raise TypeError(
                f"cannot tell how {type(m).__name__} changes the input size: list its layers in "
                "size_paths(), or pass an nn.Sequential"
            )


def _square(m: nn.Module, attr: str, default: int) -> int:
    value = getattr(m, attr, default)
    if isinstance(value, tuple):
        if len(set(value)) != 1:
            raise ValueError(f"input sizes are worked out for square {attr}s only, got {m}")
        value = value[0]
    return default if value is None else value


def _out(size: int, m: nn.Module) -> int:
    """The output size of a convolution or pool, as torch computes it (0 or less: it refuses)."""
    k, s, d = (_square(m, attr, 1) for attr in ("kernel_size", "stride", "dilation"))
    if m.padding in ("same", "valid"):  # a convolution's padding given by name
        return size if m.padding == "same" else size - d * (k - 1)
    p = _square(m, "padding", 0)
    if not getattr(m, "ceil_mode", False):
        return (size + 2 * p - d * (k - 1) - 1) // s + 1
    out = (size + 2 * p - d * (k - 1) - 1 + s - 1) // s + 1
    return out - 1 if (out - 1) * s >= size + p else out  # the last window must start inside


def _trace(size: int, chain) -> tuple[int, int | None]:
    """(the size where the chain ends, 0 where a layer refuses it; the size its fixed classifier needs)."""
    channels = None
    for m in _layers(chain):
        if isinstance(m, _SIZE_FREE):
            break
        if isinstance(m, nn.Linear):  # fed the flattened maps: in_features = channels * fixed**2
            return size, math.isqrt(m.in_features // channels) if channels else None
        size = _out(size, m)
        if size < 1:
            return 0, None
        channels = getattr(m, "out_channels", channels)
    return size, None


def _bisect(ok, lo: int, hi: int) -> int:
    """The smallest size in (lo, hi] for which ``ok`` holds, given ``ok(hi)`` and a monotone ``ok``."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def _chain_range(chain) -> SizeRange | None:
    fixed = _trace(_LARGEST, chain)[1]
    if _trace(_LARGEST, chain)[0] < (fixed or 1):
        return None
    smallest = _bisect(lambda s: _trace(s, chain)[0] >= (fixed or 1), 0, _LARGEST)
    if fixed is None:
        return SizeRange(smallest)
    largest = _bisect(lambda s: _trace(s, chain)[0] > fixed, smallest - 1, _LARGEST + 1) - 1
    return SizeRange(smallest, largest) if largest >= smallest else None  # else: sizes skip ``fixed``


def _paths(model: nn.Module, training: bool) -> list:
    return model.size_paths(training) if hasattr(model, "size_paths") else [[model]]


def _channels(paths: list) -> int | None:
    first = next((m for m in _layers(paths[0]) if hasattr(m, "in_channels")), None)
    return None if first is None else first.in_channels


def input_size_range(
    model: nn.Module, in_channels: int | None = None, training: bool | None = None
) -> SizeRange | None:
    """The square input sizes ``model`` accepts in training or eval mode (default: its current mode);
    None if none does, or if it takes no input with ``in_channels`` channels (None: any count)."""
    paths = _paths(model, model.training if training is None else training)
    if in_channels is not None and _channels(paths) not in (None, in_channels):
        return None
    ranges = [_chain_range(chain) for chain in paths]
    if not ranges or None in ranges:
        return None
    smallest = max(r.smallest for r in ranges)
    largest = min((r.largest for r in ranges if r.largest is not None), default=None)
    return None if largest is not None and largest < smallest else SizeRange(smallest, largest)


def min_input_size(model: nn.Module, in_channels: int | None = None) -> int:
    """Smallest height (= width) of an input ``model`` accepts in its current mode (alexnet_tv: 63)."""
    size_range = input_size_range(model, in_channels)
    if size_range is None:
        raise ValueError(f"{type(model).__name__} accepts no input with {in_channels} channels")
    return size_range.smallest


def check_input(model: nn.Module, x: torch.Tensor) -> None:
    """Refuse an input of the wrong channel count or size, naming what ``model`` takes; its ``forward``
    calls this first. Stands aside while ``torch.jit.trace`` or ``torch.compile`` records the network.

    What a model takes is remembered per mode, so that a check costs a few comparisons; a refusal is
    always worked out afresh, so a network changed after its first call is never refused wrongly."""
    recording = torch.jit.is_tracing() or torch.compiler.is_compiling()
    if recording or not isinstance(x, torch.Tensor) or x.dim() < 3:
        return
    c, h, w = x.shape[-3:]
    known = vars(model).setdefault("_accepted_inputs", {})
    channels, size_range = known.get(model.training, (0, None))
    if size_range is not None and channels in (None, c) and h in size_range and w in size_range:
        return
    channels, size_range = _channels(_paths(model, model.training)), input_size_range(model)
    name = getattr(model, "model_name", None) or type(model).__name__
    if channels is not None and c != channels:
        raise ValueError(
            f"{name} expects {channels} input channels, got {c}; build it with in_channels={c} for such "
            "images"
        )
    if size_range is None:
        return  # no size works: let the layer that refuses say why
    known[model.training] = channels, size_range
    if h in size_range and w in size_range:
        return
    mode = ""
    if model.training:
        in_eval = input_size_range(model, training=False)
        if in_eval is not None and in_eval != size_range:
            mode = f" in training mode (in eval mode: {in_eval.describe()})"
    s = size_range.smallest
    if size_range.largest is None:
        fixed, resize = "", f"Resize({s})"  # scales the shorter side to s
    else:
        fixed, resize = " (its classifier has a fixed input size)", f"Resize(({s}, {s}))"
    raise ValueError(
        f"{name} accepts inputs of {size_range.describe()} pixels{fixed}{mode}; got {h}x{w}. "
        f"Resize the images, e.g. torchvision.transforms.{resize}"
    )
