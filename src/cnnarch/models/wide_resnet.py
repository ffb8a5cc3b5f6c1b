"""Wide residual networks: fewer layers, more channels.

Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016 (arXiv:1605.07146).

CIFAR networks WRN-n-k (Table 1): a 3x3 convolution with 16 channels, then three groups of
N = (n - 4) / 6 blocks with 16k, 32k and 64k channels at 32x32, 16x16 and 8x8, then batch norm, ReLU,
8x8 average pooling and one fully connected layer. The block is the paper's B(3,3) with pre-activation
(He et al. 2016, "Identity Mappings"): BN - ReLU - conv3x3 - BN - ReLU - dropout - conv3x3, added to the
shortcut. A shortcut is the identity where shapes match and a 1x1 convolution of the pre-activated input
(BN - ReLU already applied) where the channel count or the resolution changes, as in the authors' code.

Presets: ``wrn16_4``, ``wrn16_8``, ``wrn28_10``, ``wrn40_4`` (2.7M, 11.0M, 36.5M, 8.9M parameters,
as printed in the paper); ``wrn(depth, widen_factor, drop_prob)`` builds any other. Dropout between the two
convolutions, ``drop_prob`` (the paper uses 0.3 on CIFAR), defaults to 0.

ImageNet ``wide_resnet50_2`` and ``wide_resnet101_2`` (Section 4 of the paper, torchvision's models) are
torchvision's ResNet-50/101 with bottlenecks twice as wide (``width_per_group=128``); they are built by
:mod:`cnnarch.models.resnet` and take torchvision's state dicts unchanged.

Deliberate differences from the paper:

- Convolutions have no bias (each one feeds batch norm); the paper's Torch code also omits them, so the
  parameter counts agree.
- The 8x8 average pool is an adaptive average pool to 1x1: identical at 32x32 input, and larger inputs
  still work.

The ImageNet WRN-50-2 (the paper's "WRN-50-2-bottleneck") widens only the bottlenecks' inner
convolutions and strides a downsampling block's 3x3 convolution, like the fb.resnet.torch code the paper
builds on; torchvision's is the same network. torchvision has no CIFAR WRN.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnarch.models._input_size import check_input
from cnnarch.models._layers import renamed
from cnnarch.models._registry import CIFAR, register_model
from cnnarch.models.resnet import STAGES, ResNet
from cnnarch.models.resnet_cifar import init_resnet_weights

__all__ = ["WideBasic", "WideResNet", "wrn"]

PAPER = "Zagoruyko & Komodakis, Wide Residual Networks, BMVC 2016"


class WideBasic(nn.Module):
    """Pre-activation B(3,3): BN-ReLU-conv3x3-BN-ReLU-dropout-conv3x3, plus the shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, drop_prob: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(drop_prob)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.relu1(self.bn1(x))
        identity = x if self.shortcut is None else self.shortcut(o)
        out = self.conv1(o)
        out = self.conv2(self.dropout(self.relu2(self.bn2(out))))
        return out + identity


class WideResNet(nn.Module):
    """WRN-depth-widen_factor for 32x32 inputs (Table 1 of the paper)."""

    def __init__(
        self,
        depth: int,
        widen_factor: int,
        drop_prob: float = 0.0,
        num_classes: int = 10,
        in_channels: int = 3,
        **deprecated,
    ):
        super().__init__()
        drop_prob = renamed(deprecated).get("drop_prob", drop_prob)
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6N + 4 with N >= 1 (10, 16, 22, 28, 40, ...), got {depth}")
        if widen_factor < 1:
            raise ValueError(f"widen_factor must be a positive integer, got {widen_factor}")
        n = (depth - 4) // 6
        widths = [16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=3, padding=1, bias=False)
        in_planes = 16
        for i, (planes, stride) in enumerate(zip(widths, (1, 2, 2), strict=True), start=1):
            blocks = []
            for b in range(n):
                blocks.append(WideBasic(in_planes, planes, stride if b == 0 else 1, drop_prob))
                in_planes = planes
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.bn = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        # He normal with fan-out, as the authors' MSRinit; zero FC bias as their FCinit
        init_resnet_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        x = self.conv1(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.avgpool(self.relu(self.bn(x)))
        return self.fc(torch.flatten(x, 1))


def wrn(
    depth: int,
    widen_factor: int,
    drop_prob: float = 0.0,
    num_classes: int = 10,
    in_channels: int = 3,
    **deprecated,
) -> WideResNet:
    """WRN-``depth``-``widen_factor`` with dropout ``drop_prob`` between the convolutions of each block."""
    return WideResNet(depth, widen_factor, drop_prob, num_classes, in_channels, **deprecated)


@register_model(paper=PAPER, preprocessing=CIFAR)
def wrn16_4(num_classes: int = 10, in_channels: int = 3, drop_prob: float = 0.0, **deprecated) -> WideResNet:
    """WRN-16-4 for CIFAR: 16 layers, 4x wider than ResNet, 2.7M params. From the paper: ``drop_prob``
    defaults to 0; adaptive average pooling. Not in torchvision."""
    return wrn(16, 4, drop_prob, num_classes, in_channels, **deprecated)


@register_model(paper=PAPER, preprocessing=CIFAR)
def wrn16_8(num_classes: int = 10, in_channels: int = 3, drop_prob: float = 0.0, **deprecated) -> WideResNet:
    """WRN-16-8 for CIFAR: 16 layers, 8x wider than ResNet, 11.0M params. From the paper: ``drop_prob``
    defaults to 0; adaptive average pooling. Not in torchvision."""
    return wrn(16, 8, drop_prob, num_classes, in_channels, **deprecated)


@register_model(paper=PAPER, preprocessing=CIFAR)
def wrn28_10(num_classes: int = 10, in_channels: int = 3, drop_prob: float = 0.0, **deprecated) -> WideResNet:
    """WRN-28-10 for CIFAR: 28 layers, 10x wider than ResNet, 36.5M params (the paper's best, with
    ``drop_prob=0.3``). From the paper: ``drop_prob`` defaults to 0; adaptive average pooling. Not in
    torchvision."""
    return wrn(28, 10, drop_prob, num_classes, in_channels, **deprecated)


@register_model(paper=PAPER, preprocessing=CIFAR)
def wrn40_4(num_classes: int = 10, in_channels: int = 3, drop_prob: float = 0.0, **deprecated) -> WideResNet:
    """WRN-40-4 for CIFAR: 40 layers, 4x wider than ResNet, 8.9M params. From the paper: ``drop_prob``
    defaults to 0; adaptive average pooling. Not in torchvision."""
    return wrn(40, 4, drop_prob, num_classes, in_channels, **deprecated)


@register_model(paper=PAPER)
def wide_resnet50_2(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """WRN-50-2 for ImageNet: ResNet-50 with bottlenecks twice as wide (width_per_group=128); 68.9M params.
    Same as torchvision.models.wide_resnet50_2. Differences from torchvision: ``in_channels``. From the
    paper: none."""
    block, layers = STAGES[50]
    return ResNet(
        block, layers, num_classes=num_classes, in_channels=in_channels, width_per_group=128, **kwargs
    )


@register_model(paper=PAPER)
def wide_resnet101_2(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """WRN-101-2 for ImageNet: ResNet-101 with bottlenecks twice as wide (width_per_group=128); 126.9M params.
    Same as torchvision.models.wide_resnet101_2. Differences from torchvision: ``in_channels``. From
    the paper: none."""
    block, layers = STAGES[101]
    return ResNet(
        block, layers, num_classes=num_classes, in_channels=in_channels, width_per_group=128, **kwargs
    )
