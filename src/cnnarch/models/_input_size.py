"""The input sizes a network accepts, and a guard that checks an input before any convolution runs.

A too-small image otherwise fails deep inside a network ("Calculated output size: (1x0x0). Output size
is too small") and a fixed-size classifier fails at its first Linear layer ("mat1 and mat2 shapes
cannot be multiplied"); neither message says which size would have worked. Here the accepted sizes are
found generically, by forward passes of an empty batch (zero images: every layer checks its shapes and
computes nothing) through a twin of the network that shares its parameters, carries no hooks and has
its normalization layers replaced by identities. An exponential probe finds one size that works, then
two binary searches find the smallest and, for networks whose classifier has a fixed input size, the
largest. The search assumes what holds for every convolution and pooling layer: the output size never
shrinks as the input grows, so the accepted sizes form one interval.

Square inputs are searched; the guard checks height and width separately against the interval. The
result depends on the mode (GoogLeNet's auxiliary classifiers only run in training), so it is cached per
model, per number of input channels and per mode. A change to the network's structure after the first
check is not noticed: build a new model instead. Batch norm in training mode also needs more than one
value per channel, which a batch of one image lacks at a 1x1 feature map; it says so itself.
"""

from __future__ import annotations

import copy
import itertools
import weakref
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import _disable_current_modes

# Larger than any image size in use; empty passes cost the same at any size.
_LARGEST_PROBE = 4096
# Sizes papers train at; probed only when no power of two works.
_COMMON_SIZES = (224, 227, 299, 331)


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


_SHAPE_PRESERVING = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)

_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, bool], SizeRange | None]] = (
    weakref.WeakKeyDictionary()
)


def _shape_twin(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for shape-only passes: it shares the parameters (nothing is copied), its
    modules carry no hooks, and its normalization layers are identities.

    The memo hands ``deepcopy`` the replacements. Hooks go because the caller's (an analyzer recording
    layers, say) must not see the search's passes; normalization layers go because in training mode
    they would refuse an empty batch, or average it into NaN statistics. Buffers are copied (they are
    small), so that no pass can change ``model``.
    """
    memo: dict[int, object] = {id(p): p for p in model.parameters()}
    for m in model.modules():
        if isinstance(m, _SHAPE_PRESERVING):
            memo[id(m)] = nn.Identity()
            continue
        for attr, value in vars(m).items():
            if attr.startswith("_") and "hooks" in attr and isinstance(value, dict):
                memo[id(value)] = type(value)()
    return copy.deepcopy(model, memo)


def _works(twin: nn.Module, x: torch.Tensor, size: int) -> bool:
    try:
        twin(x.new_empty(0, x.shape[1], size, size))
    except Exception:  # any failure means "not this size": shape errors come as several types
        return False
    return True


def _search(model: nn.Module, in_channels: int, training: bool) -> SizeRange | None:
    # A dispatch mode the caller has active (a FLOP counter, say) must not count the search.
    with _disable_current_modes(), torch.no_grad():
        twin = _shape_twin(model)
        if training != model.training:
            twin.train(training)
        p = next(model.parameters(), None)
        like = torch.empty(0, in_channels, device=p.device if p is not None else "cpu")
        if p is not None and p.is_floating_point():
            like = like.to(p.dtype)

        def works(size: int) -> bool:
            return _works(twin, like, size)

        # Ascending probe: the first size that works bounds the smallest from above; failures stop at the
        # failing layer, so they are the cheap passes. A network that takes only a few sizes is
        # found through the common ImageNet sizes.
        failed, good = [0], None
        for size in itertools.chain((2**k for k in range(13)), _COMMON_SIZES):
            if works(size):
                good = size
                break
            failed.append(size)
        if good is None:
            return None
        bad = max(f for f in failed if f < good)
        smallest = _bisect(works, bad, good, want_first_true=True)
        if works(_LARGEST_PROBE):
            return SizeRange(smallest)
        return SizeRange(smallest, _bisect(works, good, _LARGEST_PROBE, want_first_true=False))


def _bisect(works, lo: int, hi: int, want_first_true: bool) -> int:
    """Between ``lo`` and ``hi``, whose outcomes differ, the smallest size that works
    (``works(lo)`` False, ``works(hi)`` True) or the largest (``works(lo)`` True, ``works(hi)`` False)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if works(mid) == want_first_true:
            hi = mid
        else:
            lo = mid
    return hi if want_first_true else lo


def input_size_range(
    model: nn.Module, in_channels: int = 3, training: bool | None = None
) -> SizeRange | None:
    """The square input sizes ``model`` accepts in training or eval mode (default: its current mode);
    None if no size works (typically: the wrong number of input channels)."""
    training = model.training if training is None else training
    per_model = _CACHE.setdefault(model, {})
    if (in_channels, training) not in per_model:
        per_model[in_channels, training] = _search(model, in_channels, training)
    return per_model[in_channels, training]


def min_input_size(model: nn.Module, in_channels: int = 3) -> int:
    """Smallest height (= width) of an input ``model`` accepts in its current mode.

    >>> min_input_size(create_model("alexnet_tv"))
    63
    """
    size_range = input_size_range(model, in_channels)
    if size_range is None:
        raise ValueError(f"{type(model).__name__} accepts no input with {in_channels} channels")
    return size_range.smallest


class InputSizeGuard:
    """Forward pre-hook: refuse an input of a size the network cannot take, before any layer runs.

    A class rather than a closure so that a model carrying it still pickles (``torch.save(model)``).
    Inputs on ``meta`` (shape-only passes), tensor subclasses and inputs under ``torch.compile`` pass
    unchecked: the check itself runs forward passes, which only make sense for a plain eager tensor.
    """

    def __init__(self, name: str):
        self.name = name

    def __call__(self, module: nn.Module, args: tuple) -> None:
        x = args[0] if args else None
        if (
            type(x) is not torch.Tensor
            or x.dim() < 3
            or x.device.type == "meta"
            or torch.compiler.is_compiling()
        ):
            return
        c, h, w = x.shape[-3:]
        size_range = input_size_range(module, c)
        if size_range is None or (h in size_range and w in size_range):
            return  # None: no size works with c channels; the first layer explains that better
        mode = ""
        if module.training:
            in_eval = input_size_range(module, c, training=False)
            if in_eval is not None and in_eval != size_range:
                mode = f" in training mode (in eval mode: {in_eval.describe()})"
        s = size_range.smallest
        if size_range.largest is None:
            fixed, resize = "", f"Resize({s})"  # scales the shorter side to s
        else:
            fixed, resize = " (its classifier has a fixed input size)", f"Resize(({s}, {s}))"
        raise ValueError(
            f"{self.name} accepts inputs of {size_range.describe()} pixels{fixed}{mode}; got {h}x{w}. "
            f"Resize the images, e.g. torchvision.transforms.{resize}"
        )
