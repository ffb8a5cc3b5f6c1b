"""The lecture's two Inception modules in isolation, on a 28x28x256 input (CS231n 2017, lecture 9), built
from the zoo's GoogLeNet :class:`~cnnarch.models.googlenet.Inception`.

- :func:`naive_inception`: 1x1, 3x3 and 5x5 convolutions and a 3x3 max pool side by side, outputs
  concatenated along depth. Every branch keeps 28x28 ("same" padding, stride 1), so the pool branch
  passes all 256 input channels through and the output is deeper than the input.
- :func:`reduced_inception`: the same with 1x1 "bottleneck" convolutions in front of the 3x3 and 5x5
  convolutions and after the pool (Szegedy et al. 2015, "Going deeper with convolutions", Fig. 2b).

Each convolution is followed by ReLU, as in the paper; the lecture's operation counts are the
convolutions' multiply-accumulates, which :func:`cnnarch.analysis.profile` reports as MACs. The widths
are data: :data:`LECTURE_ROW`, in the column order of GoogLeNet's Table 1.
"""

from __future__ import annotations

from dataclasses import astuple, replace

from cnnarch.models.googlenet import Inception, InceptionRow

LECTURE_INPUT = (256, 28, 28)
LECTURE_ROW = InceptionRow(ch1x1=128, ch3x3red=64, ch3x3=192, ch5x5red=64, ch5x5=96, pool_proj=64)


def naive_twin(in_channels: int, row: InceptionRow) -> Inception:
    """The module of ``row`` without its 1x1 reductions and pool projection: the same 1x1, 3x3 and 5x5
    widths from its input, and a pool passing every input channel through (0 leaves a 1x1 out)."""
    return Inception(in_channels, *astuple(replace(row, ch3x3red=0, ch5x5red=0, pool_proj=0)))


def naive_inception() -> Inception:
    """The lecture's naive module: 1x1 128, 3x3 192, 5x5 96, 3x3 max pool on 28x28x256."""
    return naive_twin(LECTURE_INPUT[0], LECTURE_ROW)


def reduced_inception() -> Inception:
    """The lecture's module with 1x1 reductions: 1x1 128; 1x1 64 -> 3x3 192; 1x1 64 -> 5x5 96;
    3x3 max pool -> 1x1 64."""
    return Inception(LECTURE_INPUT[0], *astuple(LECTURE_ROW))
