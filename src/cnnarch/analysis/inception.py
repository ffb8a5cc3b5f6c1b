"""The lecture's two Inception modules in isolation, on a 28x28x256 input (CS231n 2017, lecture 9).

- :func:`naive_inception`: 1x1, 3x3 and 5x5 convolutions and a 3x3 max pool side by side, outputs
  concatenated along depth. Every branch keeps 28x28 ("same" padding, stride 1), so the pool branch
  passes all 256 input channels through and the output is deeper than the input.
- :func:`reduced_inception`: the same with 1x1 "bottleneck" convolutions in front of the 3x3 and 5x5
  convolutions and after the pool (Szegedy et al. 2015, "Going deeper with convolutions", Fig. 2b).

Each convolution is followed by ReLU, as in the paper; the lecture's operation counts are the
convolutions' multiply-accumulates, which :func:`cnnarch.analysis.profile` reports as MACs. The specs
are data: :data:`NAIVE_SPEC` and :data:`REDUCED_SPEC` hold the lecture's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class InceptionSpec:
    """Branch widths; a 0 reduction means the branch has no 1x1 convolution in front."""

    in_channels: int
    ch1x1: int
    ch3x3red: int
    ch3x3: int
    ch5x5red: int
    ch5x5: int
    pool_proj: int  # 0: the pool's output goes straight to the concatenation


NAIVE_SPEC = InceptionSpec(256, ch1x1=128, ch3x3red=0, ch3x3=192, ch5x5red=0, ch5x5=96, pool_proj=0)
REDUCED_SPEC = InceptionSpec(256, ch1x1=128, ch3x3red=64, ch3x3=192, ch5x5red=64, ch5x5=96, pool_proj=64)
LECTURE_INPUT = (256, 28, 28)


def _conv(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(inplace=True))


def _reduced(cin: int, red: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(_conv(cin, red, 1), _conv(red, cout, k)) if red else _conv(cin, cout, k)


class InceptionModule(nn.Module):
    """Four parallel branches concatenated along channels; built from an :class:`InceptionSpec`."""

    def __init__(self, spec: InceptionSpec):
        super().__init__()
        self.spec = spec
        self.branch1 = _conv(spec.in_channels, spec.ch1x1, 1)
        self.branch2 = _reduced(spec.in_channels, spec.ch3x3red, spec.ch3x3, 3)
        self.branch3 = _reduced(spec.in_channels, spec.ch5x5red, spec.ch5x5, 5)
        pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.branch4 = (
            nn.Sequential(pool, *_conv(spec.in_channels, spec.pool_proj, 1)) if spec.pool_proj else pool
        )

    @property
    def out_channels(self) -> int:
        s = self.spec
        return s.ch1x1 + s.ch3x3 + s.ch5x5 + (s.pool_proj or s.in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


def naive_inception() -> InceptionModule:
    """The lecture's naive module: 1x1 128, 3x3 192, 5x5 96, 3x3 max pool on 28x28x256."""
    return InceptionModule(NAIVE_SPEC)


def reduced_inception() -> InceptionModule:
    """The lecture's module with 1x1 reductions: 1x1 128; 1x1 64 -> 3x3 192; 1x1 64 -> 5x5 96;
    3x3 max pool -> 1x1 64."""
    return InceptionModule(REDUCED_SPEC)
