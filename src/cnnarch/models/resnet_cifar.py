"""CIFAR ResNets and their plain twins; the ImageNet plain nets plain18 and plain34.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv:1512.03385).

CIFAR networks (Section 4.2): a 3x3 convolution with 16 channels, then three stages of n basic blocks
(two 3x3 convolutions each) with 16, 32 and 64 channels on 32x32, 16x16 and 8x8 maps, then global average
pooling and one 10-way fully connected layer: 6n + 2 weighted layers. ``resnet20``, ``resnet32``,
``resnet44``, ``resnet56``, ``resnet110`` and ``resnet1202`` are n = 3, 5, 7, 9, 18, 200 (0.27M, 0.46M,
0.66M, 0.85M, 1.7M and 19.4M parameters in the paper's Table 6). The first block of stages 2 and 3
halves the resolution with a stride-2 convolution.

Shortcuts where the shape changes (``shortcut=``):

- ``"A"`` (the paper's choice on CIFAR): the identity, subsampled with stride 2 and padded with zero
  channels; no parameters, so a residual net and its plain twin have exactly the same parameters.
- ``"B"``: a 1x1 stride-2 convolution with batch norm (projection), identity elsewhere.

Plain twins ``plain20`` ... ``plain110`` are the same layers without any shortcut, the networks of the
paper's Fig. 6 whose training error grows with depth. ``plain18`` and ``plain34`` are the ImageNet plain
networks of Table 1 / Fig. 4: torchvision's ResNet-18/34 layout (:mod:`cnnarch.models.resnet`) with the
shortcuts removed, so their state dicts are ResNet-18/34's minus the ``downsample`` projections.

Deliberate differences from the paper:

- Option A pads the zero channels after the input's channels; the paper does not say where. Any
  placement is the same network up to a permutation of the learned channels.
- Weights: He (Kaiming) normal init with fan-out, as torchvision's ResNet (the paper cites He et al.
  2015 for its init without naming the fan).
- ``plain110`` goes beyond the paper's Fig. 6 (plain-20 to plain-56) to pair with ResNet-110; there is
  no ``plain1202``.

torchvision has neither CIFAR ResNets nor plain nets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cnnarch.models._input_size import check_input
from cnnarch.models._registry import CIFAR, register_model
from cnnarch.models.resnet import BasicBlock, Bottleneck, ResNet, conv1x1, conv3x3

__all__ = ["CifarResNet", "PlainBlock", "ShortcutA", "init_resnet_weights"]

PAPER = "He et al. 2015, Deep Residual Learning for Image Recognition (arXiv:1512.03385), Section 4.2"
Shortcut = Literal["A", "B"]


class ShortcutA(nn.Module):
    """Option A: identity with stride-``stride`` subsampling and ``out_channels - in_channels`` zero
    channels appended. (N, in_channels, H, W) -> (N, out_channels, ceil(H/stride), ceil(W/stride))."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("option A shortcuts can only add channels")
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


class PlainBlock(BasicBlock):
    """A basic block without its shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))))``.

    Stage builders hand every block the shortcut its shape change needs; a plain block drops it, so a
    plain network has no projection parameters.
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample=None, **kwargs):
        super().__init__(in_channels, channels, stride, None, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)))


def init_resnet_weights(model: nn.Module) -> None:
    """He normal (fan-out) convolutions, batch norm scale 1 and shift 0, zero FC bias."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


class CifarResNet(nn.Module):
    """3x3 stem, ``len(layers)`` stages at 32, 16, 8, ... pixels, global average pool, FC.

    ``block``: BasicBlock (ResNet), PlainBlock (plain twin) or Bottleneck (ResNeXt-29, with ``groups`` and
    ``width_per_group``). Stage i has ``layers[i]`` blocks of ``stage_channels[i]`` channels (times the
    block's expansion); stages after the first start with stride 2.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        stage_channels: Sequence[int] = (16, 32, 64),
        stem_channels: int = 16,
        num_classes: int = 10,
        shortcut: Shortcut = "A",
        groups: int = 1,
        width_per_group: int = 64,
        in_channels: int = 3,
    ):
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError(
                f"shortcut must be 'A' (zero-padded identity) or 'B' (projection), got {shortcut!r}"
            )
        if len(layers) != len(stage_channels):
            raise ValueError(f"{len(layers)} stage depths for {len(stage_channels)} stage widths")
        self.shortcut = shortcut
        self.groups = groups
        self.width_per_group = width_per_group
        self.inplanes = stem_channels
        self.conv1 = conv3x3(in_channels, stem_channels)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.num_stages = len(layers)
        for i, (channels, blocks) in enumerate(zip(stage_channels, layers, strict=True)):
            stage = self._make_layer(block, channels, blocks, stride=1 if i == 0 else 2)
            setattr(self, f"layer{i + 1}", stage)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.inplanes, num_classes)
        init_resnet_weights(self)

    def _make_layer(self, block, channels: int, blocks: int, stride: int) -> nn.Sequential:
        out_channels = channels * block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out_channels:
            if self.shortcut == "A":
                downsample = ShortcutA(self.inplanes, out_channels, stride)
            else:
                downsample = nn.Sequential(
                    conv1x1(self.inplanes, out_channels, stride), nn.BatchNorm2d(out_channels)
                )
        common = dict(groups=self.groups, width_per_group=self.width_per_group)
        layers = [block(self.inplanes, channels, stride, downsample, **common)]
        self.inplanes = out_channels
        layers += [block(self.inplanes, channels, **common) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _cifar(depth: int, block, num_classes: int, shortcut: Shortcut, in_channels: int) -> CifarResNet:
    if (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet has 6n + 2 layers, got {depth}")
    n = (depth - 2) // 6
    return CifarResNet(block, (n, n, n), num_classes=num_classes, shortcut=shortcut, in_channels=in_channels)


@register_model(paper=PAPER, preprocessing=CIFAR)
def resnet20(num_classes: int = 10, in_channels: int = 3, shortcut: Shortcut = "A") -> CifarResNet:
    """ResNet-20 for CIFAR: 3 stages of 3 basic blocks (16/32/64 channels), 0.27M params. From the paper: none
    (``shortcut="B"`` swaps option A for 1x1 projections). Not in torchvision."""
    return _cifar(20, BasicBlock, num_classes, shortcut, in_channels)


@register_model(paper=PAPER, preprocessing=CIFAR)
def resnet32(num_classes: int = 10, in_channels: int = 3, shortcut: Shortcut = "A") -> CifarResNet:
    """ResNet-32 for CIFAR: 3 stages of 5 basic blocks (16/32/64 channels), 0.46M params. From the paper: none
    (``shortcut="B"`` swaps option A for 1x1 projections). Not in torchvision."""
    return _cifar(32, BasicBlock, num_classes, shortcut, in_channels)


@register_model(paper=PAPER, preprocessing=CIFAR)
def resnet44(num_classes: int = 10, in_channels: int = 3, shortcut: Shortcut = "A") -> CifarResNet:
    """ResNet-44 for CIFAR: 3 stages of 7 basic blocks (16/32/64 channels), 0.66M params. From the paper: none
    (``shortcut="B"`` swaps option A for 1x1 projections). Not in torchvision."""
    return _cifar(44, BasicBlock, num_classes, shortcut, in_channels)


@register_model(paper=PAPER, preprocessing=CIFAR)
def resnet56(num_classes: int = 10, in_channels: int = 3, shortcut: Shortcut = "A") -> CifarResNet:
    """ResNet-56 for CIFAR: 3 stages of 9 basic blocks (16/32/64 channels), 0.85M params. From the paper: none
    (``shortcut="B"`` swaps option A for 1x1 projections). Not in torchvision."""
    return _cifar(56, BasicBlock, num_classes, shortcut, in_channels)


@register_model(paper=PAPER, preprocessing=CIFAR)
def resnet110(num_classes: int = 10, in_channels: int = 3, shortcut: Shortcut = "A") -> CifarResNet:
    """ResNet-110 for CIFAR: 3 stages of 18 basic blocks (16/32/64 channels), 1.7M params. From the paper:
    none (``shortcut="B"`` swaps option A for 1x1 projections). Not in torchvision."""
    return _cifar(110, BasicBlock, num_classes, shortcut, in_channels)


@register_model(paper=PAPER, preprocessing=CIFAR)
def resnet1202(num_classes: int = 10, in_channels: int = 3, shortcut: Shortcut = "A") -> CifarResNet:
    """ResNet-1202 for CIFAR: 3 stages of 200 basic blocks (16/32/64 channels), 19.4M params; the paper's
    overfitting example. From the paper: none (``shortcut="B"`` swaps option A for 1x1 projections).
    Not in torchvision."""
    return _cifar(1202, BasicBlock, num_classes, shortcut, in_channels)


@register_model(paper=PAPER, preprocessing=CIFAR)
def plain20(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """Plain-20 for CIFAR: ResNet-20 without shortcuts (same 0.27M params as option A). From the paper: none.
    Not in torchvision."""
    return _cifar(20, PlainBlock, num_classes, "A", in_channels)


@register_model(paper=PAPER, preprocessing=CIFAR)
def plain32(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """Plain-32 for CIFAR: ResNet-32 without shortcuts (same 0.46M params as option A). From the paper: none.
    Not in torchvision."""
    return _cifar(32, PlainBlock, num_classes, "A", in_channels)


@register_model(paper=PAPER, preprocessing=CIFAR)
def plain44(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """Plain-44 for CIFAR: ResNet-44 without shortcuts (same 0.66M params as option A). From the paper: none.
    Not in torchvision."""
    return _cifar(44, PlainBlock, num_classes, "A", in_channels)


@register_model(paper=PAPER, preprocessing=CIFAR)
def plain56(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """Plain-56 for CIFAR: ResNet-56 without shortcuts (same 0.85M params as option A); its training error is
    higher than plain-20's (Fig. 6). From the paper: none. Not in torchvision."""
    return _cifar(56, PlainBlock, num_classes, "A", in_channels)


@register_model(paper=PAPER, preprocessing=CIFAR)
def plain110(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """Plain-110 for CIFAR: ResNet-110 without shortcuts (same 1.7M params as option A). From the paper: none.
    Not in torchvision."""
    return _cifar(110, PlainBlock, num_classes, "A", in_channels)


@register_model(paper="He et al. 2015, Deep Residual Learning for Image Recognition, Table 1 / Fig. 3")
def plain18(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """Plain-18 for ImageNet: ResNet-18 without shortcuts (11.5M params, ResNet-18 minus its three 1x1
    projections). From the paper: none. Not in torchvision. Differences from torchvision's ResNet: no
    shortcuts, so no ``downsample`` weights; ``in_channels``. From the paper: He initialization."""
    return ResNet(PlainBlock, (2, 2, 2, 2), num_classes=num_classes, in_channels=in_channels)


@register_model(paper="He et al. 2015, Deep Residual Learning for Image Recognition, Table 1 / Fig. 3")
def plain34(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """Plain-34 for ImageNet: the 34-layer plain network of Fig. 3 (middle), ResNet-34 without shortcuts
    (21.6M params). From the paper: none. Not in torchvision. Differences from torchvision's ResNet: no
    shortcuts, so no ``downsample`` weights; ``in_channels``. From the paper: He initialization."""
    return ResNet(PlainBlock, (3, 4, 6, 3), num_classes=num_classes, in_channels=in_channels)
