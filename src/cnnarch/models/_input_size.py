"""The input sizes a network of the zoo accepts, as its registry entry declares them, and the check its
``forward`` runs first: a too-small image otherwise fails deep inside a network ("Output size is too
small"), a fixed-size classifier at its first Linear layer, a wrong channel count at the first
convolution, in messages that do not say what would have worked. The check compares a few integers and
runs no layer, so hooks, FLOP counters, ``torch.jit.trace`` and ``torch.compile`` see nothing (it stands
aside under the last two). A module built outside the registry is not checked: torch's layers speak.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnarch.models._registry import classifiers, declared, first_conv


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


def input_size_range(
    model: nn.Module, in_channels: int | None = None, training: bool | None = None
) -> SizeRange | None:
    """The square input sizes ``model`` accepts in training or eval mode (default: its current mode), as
    its registry entry declares them; None for a module built outside the registry, or if it takes no
    input with ``in_channels`` channels (None: any count)."""
    entry = declared(model)
    if entry is None or in_channels not in (None, first_conv(model).in_channels):
        return None
    with_aux = (model.training if training is None else training) and len(classifiers(model)) > 1
    smallest = (with_aux and entry.min_train_input_size) or entry.min_input_size
    return SizeRange(smallest, entry.max_input_size)


def min_input_size(model: nn.Module, in_channels: int | None = None) -> int:
    """Smallest height (= width) of an input ``model`` accepts in its current mode (alexnet_tv: 63)."""
    size_range = input_size_range(model, in_channels)
    if size_range is None:
        raise ValueError(f"{type(model).__name__} declares no input size for {in_channels} channels")
    return size_range.smallest


def check_input(model: nn.Module, x: torch.Tensor) -> None:
    """Refuse an input of the wrong channel count or size, naming what ``model`` takes; its ``forward``
    calls this first. Stands aside while ``torch.jit.trace`` or ``torch.compile`` records the network."""
    recording = torch.jit.is_tracing() or torch.compiler.is_compiling()
    size_range = None if recording or not isinstance(x, torch.Tensor) else input_size_range(model)
    if size_range is None or x.dim() < 3:
        return
    c, h, w = x.shape[-3:]
    channels = first_conv(model).in_channels
    if c != channels:
        raise ValueError(
            f"{model.model_name} expects {channels} input channels, got {c}; build it with "
            f"in_channels={c} for such images"
        )
    if h in size_range and w in size_range:
        return
    mode = ""
    if model.training and size_range != (in_eval := input_size_range(model, training=False)):
        mode = f" in training mode (in eval mode: {in_eval.describe()})"
    s = size_range.smallest
    if size_range.largest is None:
        fixed, resize = "", f"Resize({s})"  # scales the shorter side to s
    else:
        fixed, resize = " (its classifier has a fixed input size)", f"Resize(({s}, {s}))"
    raise ValueError(
        f"{model.model_name} accepts inputs of {size_range.describe()} pixels{fixed}{mode}; got {h}x{w}. "
        f"Resize the images, e.g. torchvision.transforms.{resize}"
    )
