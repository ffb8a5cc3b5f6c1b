"""FractalNet: depth without residual connections.

Larsson, Maire, Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks without Residuals", ICLR 2017
(arXiv:1605.07648).

A fractal block is grown by the expansion rule of the paper's Eq. (1)-(2)::

    f_1(z) = conv(z)
    f_{C+1}(z) = join( (f_C o f_C)(z), conv(z) )

so a block with C columns has columns of 1, 2, 4, ..., 2^(C-1) convolutions ("column 1" is the shallowest,
"column C" the deepest, as in the paper's tables). As in the paper's Fig. 1, the joins of the nested
levels that fall at the same depth are one join: the last join of a block averages C inputs, one per
column. A join is the element-wise mean of its inputs. Every "conv" is convolution 3x3 - dropout -
batch norm - ReLU. A network is B blocks, each followed by 2x2 max pooling, then a linear classifier.

The modules mirror the rule: ``block{b}.fractal`` is f_C with ``conv`` (column 1), ``first`` and
``second`` (the two copies of f_{C-1}, holding columns 2..C) and ``join`` (the join between them);
``block{b}.join`` is the block's last join. ``column_units(c)`` lists the units of column c.

Drop-path (Section 3.1) regularises the co-adaptation of the columns. *Local*: every join drops each
input with probability ``drop_path_local`` but keeps at least one. *Global*: one column, drawn uniformly,
is the whole network for this mini-batch. Training draws global for a fraction ``drop_path_global`` of
the mini-batches and local for the rest (the paper's 50%/50% mix, 15% local drop rate). Evaluation uses
all columns, or a single column (``column=``): the paper's "deepest column" results are ``column=C``.

Presets: ``fractalnet20`` (C=3, B=5, 64-128-256-512-512 channels, the paper's CIFAR network),
``fractalnet40`` (C=4, B=5, same channels) and ``fractalnet34`` (the paper's ImageNet network: ResNet-34's
first layer and last layer around B=4 blocks of C=4 columns with 64-128-256-512 channels).

Deliberate differences from the paper (torchvision has no FractalNet):

- The paper's implementation swaps the last join of each block with the max pooling that follows it
  "for convenience"; this module joins first and pools after, as Fig. 1 draws it.
- Dropout sits after the convolution, before batch norm (conv - dropout - BN - ReLU), as in the
  authors' code; the paper only gives the per-block rates (0, 10, 20, 30, 40%).
- Convolutions have no bias (batch norm follows each one), so counts differ slightly from Caffe's.
- Parameter counts: the paper's Table 1 prints 38.6M for the 20-layer and 22.9M for the 40-layer
  network; the architecture as the text describes it has 33.7M (``fractalnet20``) and 76.1M
  (``fractalnet40``, same channel progression). The paper does not state the channel widths that give
  its printed counts, so the presets follow the text and the tests pin the arithmetic.
- ImageNet preset: max pooling between the blocks, not after the last one, so the four blocks see
  ResNet-34's four stage resolutions (56, 28, 14, 7) before ResNet-34's global average pool and fc.
- Weights use PyTorch's Xavier-uniform init for convolutions (Caffe's "xavier" filler).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnarch.models._input_size import check_input
from cnnarch.models._layers import DROP_NAMES, renamed
from cnnarch.models._registry import CIFAR, register_model

__all__ = ["ConvUnit", "Fractal", "FractalBlock", "FractalNet", "Join", "fractalnet"]

PAPER = "Larsson, Maire, Shakhnarovich, FractalNet: Ultra-Deep Neural Networks without Residuals, ICLR 2017"
CIFAR_CHANNELS = (64, 128, 256, 512, 512)
# the registry's facts: five 2x2 pools need 32x32; column 1's convolution stands for the C that see the image
CIFAR_DECLARED = dict(preprocessing=CIFAR, min_input_size=32, first_conv="block1.fractal.conv.0")


class ConvUnit(nn.Sequential):
    """One "conv" of the expansion rule: conv 3x3 (stride 1, pad 1) - dropout - BN - ReLU."""

    def __init__(self, in_channels: int, out_channels: int, drop_prob: float = 0.0):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.Dropout(drop_prob),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Join(nn.Module):
    """Element-wise mean of the inputs that survive local drop-path.

    ``forward(inputs, drop_prob)``: each input of the list is dropped with probability ``drop_prob``;
    when all would be dropped, one drawn uniformly survives (Section 3.1).
    """

    def forward(self, inputs: list[torch.Tensor], drop_prob: float = 0.0) -> torch.Tensor:
        if drop_prob > 0.0 and len(inputs) > 1 and inputs[0].device.type != "meta":
            keep = torch.rand(len(inputs)) >= drop_prob
            if not keep.any():
                keep[torch.randint(len(inputs), ())] = True
            inputs = [t for t, k in zip(inputs, keep.tolist(), strict=True) if k]
        return torch.stack(inputs).mean(dim=0)


class Fractal(nn.Module):
    """f_C of the expansion rule, returning its C column outputs before their last join.

    f_1(z) = conv(z); f_C(z) = join(f_{C-1}(f_{C-1}(z)), conv(z)). ``conv`` is column 1, the shallowest;
    ``first`` and ``second`` are the two copies of f_{C-1}, whose columns 1..C-1 are this one's columns
    2..C. ``join`` merges the outputs of ``first`` (for C > 2; f_1 has one output); the outputs of
    ``second`` and of ``conv`` are left to the caller, so that the enclosing level's join takes them all
    at once (the paper's Fig. 1).
    """

    def __init__(self, in_channels: int, out_channels: int, num_columns: int, drop_prob: float = 0.0):
        super().__init__()
        if num_columns < 1:
            raise ValueError(f"num_columns must be at least 1, got {num_columns}")
        self.num_columns = num_columns
        self.conv = ConvUnit(in_channels, out_channels, drop_prob)
        if num_columns > 1:
            self.first = Fractal(in_channels, out_channels, num_columns - 1, drop_prob)
            if num_columns > 2:
                self.join = Join()
            self.second = Fractal(out_channels, out_channels, num_columns - 1, drop_prob)

    def column_units(self, column: int) -> list[ConvUnit]:
        """The 2**(column - 1) units of ``column`` (1: shallowest), in the order they run."""
        if column == 1:
            return [self.conv]
        return self.first.column_units(column - 1) + self.second.column_units(column - 1)

    def forward(
        self, z: torch.Tensor, column: int | None = None, drop_path_local: float = 0.0
    ) -> list[torch.Tensor]:
        if column == 1:
            return [self.conv(z)]
        if column is not None:  # one column: no join has more than one input
            (mid,) = self.first(z, column - 1)
            return self.second(mid, column - 1)
        if self.num_columns == 1:
            return [self.conv(z)]
        outs = self.first(z, None, drop_path_local)
        mid = self.join(outs, drop_path_local) if len(outs) > 1 else outs[0]
        return [self.conv(z), *self.second(mid, None, drop_path_local)]


class FractalBlock(nn.Module):
    """One block of the network: f_C, the join of its C columns, then 2x2 max pooling (or ``pool``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_columns: int,
        drop_prob: float = 0.0,
        pool: nn.Module | None = None,
    ):
        super().__init__()
        self.num_columns = num_columns
        self.fractal = Fractal(in_channels, out_channels, num_columns, drop_prob)
        self.join = Join()
        self.pool = nn.MaxPool2d(2) if pool is None else pool

    def column_units(self, column: int) -> list[ConvUnit]:
        return self.fractal.column_units(column)

    def forward(
        self, x: torch.Tensor, column: int | None = None, drop_path_local: float = 0.0
    ) -> torch.Tensor:
        return self.pool(self.join(self.fractal(x, column, drop_path_local), drop_path_local))


class FractalNet(nn.Module):
    """``stem`` - fractal blocks ``block1`` .. ``blockB`` (each pooling at its end) - ``avgpool`` - ``fc``.

    ``column`` (1 to C, or None for all columns) selects the path used by ``forward`` in eval mode and in
    training; with ``column=None`` training applies drop-path, mixed per mini-batch.
    """

    def __init__(
        self,
        num_columns: int,
        channels: Sequence[int],
        num_classes: int = 10,
        drop_prob: float | Sequence[float] = 0.0,
        drop_path_local: float = 0.15,
        drop_path_global: float = 0.5,
        column: int | None = None,
        imagenet_stem: bool = False,
        in_channels: int = 3,
    ):
        super().__init__()
        channels = list(channels)
        if isinstance(drop_prob, int | float):
            drop_prob = [float(drop_prob)] * len(channels)
        if len(drop_prob) != len(channels):
            raise ValueError(f"drop_prob has {len(drop_prob)} rates for {len(channels)} blocks")
        if not (0.0 <= drop_path_local <= 1.0 and 0.0 <= drop_path_global <= 1.0):
            raise ValueError("drop_path_local and drop_path_global are probabilities in [0, 1]")
        self.num_columns = num_columns
        self.num_blocks = len(channels)
        self.column = column
        self.drop_path_local = drop_path_local
        self.drop_path_global = drop_path_global
        self._check_column(column)

        if imagenet_stem:  # ResNet-34's first layer
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, channels[0], kernel_size=7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(channels[0]),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
            in_channels = channels[0]
        else:
            self.stem = nn.Identity()
        for i, (out_channels, p) in enumerate(zip(channels, drop_prob, strict=True), start=1):
            last = i == len(channels)
            pool = nn.Identity() if imagenet_stem and last else None
            setattr(self, f"block{i}", FractalBlock(in_channels, out_channels, num_columns, p, pool))
            in_channels = out_channels
        # CIFAR: five 2x2 poolings take 32x32 to 1x1; the average pool then only flattens.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def blocks(self) -> list[FractalBlock]:
        return [getattr(self, f"block{i}") for i in range(1, self.num_blocks + 1)]

    def _check_column(self, column: int | None) -> None:
        if column is not None and not 1 <= column <= self.num_columns:
            raise ValueError(
                f"column must be None (all columns) or 1..{self.num_columns} (1: shallowest), got {column}"
            )

    def _draw_path(self, x: torch.Tensor) -> tuple[int | None, float]:
        """(column, local drop rate) for this forward pass: the per-mini-batch drop-path mix."""
        if not self.training or x.device.type == "meta":
            return None, 0.0
        if torch.rand(()) < self.drop_path_global:
            return int(torch.randint(1, self.num_columns + 1, ())), 0.0
        return None, self.drop_path_local

    @property
    def skips_parameters(self) -> bool:
        """Drop-path leaves whole columns out of a training step, a different set in every step and process:
        data parallel training must look for the unused parameters (``cnnarch.train.distributed.wrap``)."""
        return self.column is None and (self.drop_path_local > 0 or self.drop_path_global > 0)

    def forward(self, x: torch.Tensor, column: int | None = None) -> torch.Tensor:
        check_input(self, x)
        column = self.column if column is None else column
        self._check_column(column)
        drop_local = 0.0
        if column is None:
            column, drop_local = self._draw_path(x)
        x = self.stem(x)
        for block in self.blocks:
            x = block(x, column, drop_local)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def fractalnet(
    num_columns: int,
    num_blocks: int,
    channels: Sequence[int],
    num_classes: int = 10,
    drop_prob: float | Sequence[float] | None = None,
    **kwargs,
) -> FractalNet:
    """A FractalNet of ``num_blocks`` blocks of ``num_columns`` columns, ``channels[b]`` in block b.

    ``drop_prob``: dropout rate per block (a float for all); default 0, 10, 20, ... % as the paper.
    ``kwargs`` go to :class:`FractalNet`: ``drop_path_local`` (0.15), ``drop_path_global`` (0.5; set both
    to 0 to train without drop-path), ``column``, ``imagenet_stem``, ``in_channels``.
    """
    if len(channels) != num_blocks:
        raise ValueError(f"channels lists {len(channels)} widths for num_blocks={num_blocks}")
    old_names = renamed({k: kwargs.pop(k) for k in DROP_NAMES if k in kwargs})
    drop_prob = old_names.get("drop_prob", drop_prob)
    if drop_prob is None:
        drop_prob = [0.1 * b for b in range(num_blocks)]
    return FractalNet(num_columns, channels, num_classes, drop_prob, **kwargs)


@register_model(paper=PAPER, **CIFAR_DECLARED)
def fractalnet20(num_classes: int = 10, in_channels: int = 3, **kwargs) -> FractalNet:
    """FractalNet-20 for CIFAR (C=3 columns, B=5 blocks, 64-128-256-512-512): 20 layers deep, 33.7M params
    (the paper prints 38.6M; see the module docstring). Dropout 0-40% per block, drop-path 50/50 mix;
    options as :func:`fractalnet`. From the paper: join before pooling; conv-dropout-BN-ReLU (the
    authors' code). Not in torchvision."""
    return fractalnet(3, 5, CIFAR_CHANNELS, num_classes, in_channels=in_channels, **kwargs)


@register_model(paper=PAPER, **CIFAR_DECLARED)
def fractalnet40(num_classes: int = 10, in_channels: int = 3, **kwargs) -> FractalNet:
    """FractalNet-40 for CIFAR (C=4 columns, B=5 blocks, 64-128-256-512-512): 40 layers deep, 76.1M params
    (the paper prints 22.9M without its widths; see the module docstring); options as
    :func:`fractalnet`. From the paper: join before pooling; conv-dropout-BN-ReLU (the authors' code).
    Not in torchvision."""
    return fractalnet(4, 5, CIFAR_CHANNELS, num_classes, in_channels=in_channels, **kwargs)


@register_model(paper=PAPER, min_input_size=29, first_conv="stem.0")
def fractalnet34(
    num_classes: int = 1000, in_channels: int = 3, drop_prob: float | Sequence[float] = 0.0, **kwargs
) -> FractalNet:
    """FractalNet-34 for ImageNet (Section 4.2): ResNet-34's 7x7 stem and avgpool-fc around B=4 blocks of C=4
    columns (8 layers deep each) with 64-128-256-512 channels; drop-path as on CIFAR, no dropout (the
    paper does not give ImageNet dropout rates); options as :func:`fractalnet`. From the paper: join
    before pooling; conv-dropout-BN-ReLU (the authors' code). Not in torchvision."""
    channels = (64, 128, 256, 512)
    return fractalnet(
        4, 4, channels, num_classes, drop_prob, imagenet_stem=True, in_channels=in_channels, **kwargs
    )
