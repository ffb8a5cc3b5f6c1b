"""ResNet-18/34/50/101/152 (He, Zhang, Ren, Sun 2015, "Deep Residual Learning for Image Recognition",
arXiv:1512.03385, Table 1), in torchvision's form: the same modules under the same names, so a
torchvision ``state_dict`` loads with ``strict=True`` and gives the same logits.

Every residual block computes ``relu(F(x) + shortcut(x))`` with batch norm after every convolution; the
stem is a 7x7/2 convolution and a 3x3/2 max pool; four stages of blocks double the channels and halve
the resolution (stages 2-4 start with stride 2); global average pooling and one FC layer finish.

Stride variant. torchvision, and this module by default, build "ResNet v1.5": in a bottleneck block
that downsamples, the stride sits on the 3x3 convolution. The paper (v1) puts it on the first 1x1
convolution, which then simply skips three of every four pixels. ``variant="v1"`` builds the paper's
placement; both variants have the same parameters and state_dict keys. Basic blocks (ResNet-18/34) put
the stride on their first 3x3 convolution in both variants, so the option changes nothing there.

Deliberate differences from the paper (all shared with torchvision):

* Shortcuts that change shape are a 1x1 strided convolution plus batch norm: the paper's option (B).
* v1.5 stride placement by default (above).
* Weight initialization: He (Kaiming) normal with fan-out for convolutions, batch-norm scale 1 and
  shift 0; ``zero_init_residual=True`` starts each block's last batch-norm scale at 0 (Goyal et al.
  2017), so that every block begins as the identity.

Differences from torchvision: ``in_channels`` for non-RGB input; ``variant``; no dilation option
(``replace_stride_with_dilation`` serves segmentation, which the lecture does not cover). Blocks take
``width_per_group`` where torchvision's take ``base_width`` (one name for one idea, the same as the
ResNet constructor's), in the same position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from cnnarch.models._input_size import check_input
from cnnarch.models._registry import register_model

Variant = Literal["v1", "v1.5"]
NormLayer = Callable[[int], nn.Module]

PAPER = "He et al. 2015, Deep Residual Learning for Image Recognition (arXiv:1512.03385)"


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def _check_variant(variant: str) -> None:
    if variant not in ("v1", "v1.5"):
        raise ValueError(
            f"variant must be 'v1' (stride on the first 1x1) or 'v1.5' (on the 3x3), got {variant!r}"
        )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (ResNet-18/34): ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    Input (N, in_channels, H, W); output (N, channels, H/stride, W/stride). ``downsample`` is the
    shortcut when the shape changes (None: identity). ``groups`` and ``width_per_group`` exist for a
    uniform block interface; a basic block only supports the plain values 1 and 64.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        groups: int = 1,
        width_per_group: int = 64,
        norm_layer: NormLayer | None = None,
        variant: Variant = "v1.5",
    ):
        super().__init__()
        if groups != 1 or width_per_group != 64:
            raise ValueError("BasicBlock supports only groups=1 and width_per_group=64")
        _check_variant(variant)
        norm_layer = norm_layer or nn.BatchNorm2d
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = norm_layer(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = norm_layer(channels)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (ResNet-50/101/152): output has ``channels * 4`` channels.

    The 3x3 convolution works on ``width = channels * width_per_group / 64 * groups`` channels in
    ``groups`` groups: 64 and 1 give the paper's block, ``groups=32, width_per_group=4`` ResNeXt's,
    ``width_per_group=128`` Wide ResNet's. ``variant`` places a stride on the 3x3 ("v1.5") or on the
    first 1x1 ("v1", the paper).
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        groups: int = 1,
        width_per_group: int = 64,
        norm_layer: NormLayer | None = None,
        variant: Variant = "v1.5",
    ):
        super().__init__()
        _check_variant(variant)
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(channels * (width_per_group / 64.0)) * groups
        stride_1x1, stride_3x3 = (stride, 1) if variant == "v1" else (1, stride)
        self.conv1 = conv1x1(in_channels, width, stride_1x1)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride_3x3, groups)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, channels * self.expansion)
        self.bn3 = norm_layer(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = type[BasicBlock] | type[Bottleneck]


# Table 1 of the paper: block type and number of blocks in stages conv2_x .. conv5_x.
STAGES: dict[int, tuple[Block, tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
STAGE_CHANNELS = (64, 128, 256, 512)


class ResNet(nn.Module):
    """Stem, four stages of residual blocks, global average pooling, FC.

    Input (N, in_channels, H, W), any H, W >= 1; output (N, num_classes) logits.
    """

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        num_classes: int = 1000,
        *,
        in_channels: int = 3,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        norm_layer: NormLayer | None = None,
        variant: Variant = "v1.5",
    ):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"a ResNet has four stages, got layers={list(layers)}")
        _check_variant(variant)
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.groups = groups
        self.width_per_group = width_per_group
        self.variant = variant
        self.inplanes = 64

        self.conv1 = nn.Conv2d(in_channels, self.inplanes, 7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, STAGE_CHANNELS[0], layers[0])
        self.layer2 = self._make_layer(block, STAGE_CHANNELS[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, STAGE_CHANNELS[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, STAGE_CHANNELS[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(STAGE_CHANNELS[3] * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block: Block, channels: int, blocks: int, stride: int = 1) -> nn.Sequential:
        out_channels = channels * block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out_channels:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, out_channels, stride), self._norm_layer(out_channels)
            )
        common = dict(
            groups=self.groups,
            width_per_group=self.width_per_group,
            norm_layer=self._norm_layer,
            variant=self.variant,
        )
        layers = [block(self.inplanes, channels, stride, downsample, **common)]
        self.inplanes = out_channels
        layers += [block(self.inplanes, channels, **common) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def _resnet(depth: int, **kwargs) -> ResNet:
    block, layers = STAGES[depth]
    return ResNet(block, layers, **kwargs)


@register_model(paper=PAPER)
def resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-18: basic-block stages of 2, 2, 2, 2 blocks; torchvision's resnet18. ``variant`` changes
    nothing in basic blocks."""
    return _resnet(18, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(paper=PAPER)
def resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-34: basic-block stages of 3, 4, 6, 3 blocks; torchvision's resnet34. ``variant`` changes
    nothing in basic blocks."""
    return _resnet(34, num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(paper=PAPER)
def resnet50(num_classes: int = 1000, in_channels: int = 3, variant: Variant = "v1.5", **kwargs) -> ResNet:
    """ResNet-50: bottleneck stages of 3, 4, 6, 3 blocks; torchvision's resnet50 (v1.5; ``variant="v1"``
    strides the first 1x1 convolution, as the paper)."""
    return _resnet(50, num_classes=num_classes, in_channels=in_channels, variant=variant, **kwargs)


@register_model(paper=PAPER)
def resnet101(num_classes: int = 1000, in_channels: int = 3, variant: Variant = "v1.5", **kwargs) -> ResNet:
    """ResNet-101: bottleneck stages of 3, 4, 23, 3 blocks; torchvision's resnet101 (v1.5; ``variant="v1"``
    strides the first 1x1 convolution, as the paper)."""
    return _resnet(101, num_classes=num_classes, in_channels=in_channels, variant=variant, **kwargs)


@register_model(paper=PAPER)
def resnet152(num_classes: int = 1000, in_channels: int = 3, variant: Variant = "v1.5", **kwargs) -> ResNet:
    """ResNet-152: bottleneck stages of 3, 8, 36, 3 blocks; torchvision's resnet152 (v1.5;
    ``variant="v1"`` strides the first 1x1 convolution, as the paper)."""
    return _resnet(152, num_classes=num_classes, in_channels=in_channels, variant=variant, **kwargs)
