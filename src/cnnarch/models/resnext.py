"""ResNeXt: residual bottlenecks split into ``cardinality`` parallel paths (a grouped convolution).

Xie, Girshick, Dollar, Tu, He, "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017
(arXiv:1611.05431).

The block is ResNet's bottleneck whose 3x3 convolution has ``cardinality`` groups of
``bottleneck_width`` channels each in the first stage (the paper's "C x d", e.g. 32x4d); the width doubles
with each stage, and the output is 4x the stage's base width, as in ResNet (the paper's form (c) of
Fig. 3, equivalent to aggregating C separate transformations). The stride sits on the 3x3 convolution
of each stage's first block, as the paper says.

ImageNet (Table 1, torchvision's models; state dicts load unchanged): ``resnext50_32x4d`` (25.0M
params), ``resnext101_32x8d`` (88.8M), ``resnext101_64x4d`` (83.5M); ``resnext(depth, cardinality,
bottleneck_width)`` builds others. CIFAR (Section 5.3): ``resnext29_8x64d`` (34.4M) and
``resnext29_16x64d`` (68.2M): a 3x3 convolution with 64 channels, then three stages of three bottlenecks
with 256, 512 and 1024 output channels on 32, 16 and 8 pixels, global average pooling and a fully
connected layer; ``resnext_cifar(depth, cardinality, bottleneck_width)`` builds others. Shortcuts are
identities except where the shape changes, where they are 1x1 projections with batch norm (the paper's
choice, option B of ResNet); weights start from He (Kaiming) normal init with fan-out, as torchvision's.

``cardinality`` and ``bottleneck_width`` are torchvision's ``groups`` and ``width_per_group``.

Deliberate differences from the paper: none in the layers. ``resnext101_32x8d`` is not in the paper (it
appears in Facebook's later releases and in torchvision); it is here because torchvision ships it. The
paper prints ``resnext29_16x64d``'s 68,155,210 parameters as 68.1M (truncated, not rounded; 34,426,698
for 8x64d prints as 34.4M either way).

Differences from torchvision: the parameter names ``cardinality`` and ``bottleneck_width``; the CIFAR nets.
"""

from __future__ import annotations

from cnnarch.models._registry import CIFAR, Preprocessing, register_model
from cnnarch.models.resnet import STAGES, Bottleneck, ResNet
from cnnarch.models.resnet_cifar import CifarResNet

__all__ = ["resnext", "resnext_cifar"]

PAPER = "Xie et al. 2017, Aggregated Residual Transformations for Deep Neural Networks (arXiv:1611.05431)"


def resnext(depth: int, cardinality: int, bottleneck_width: int, num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNeXt-``depth`` (50, 101 or 152) ``cardinality`` x ``bottleneck_width``d for ImageNet."""
    if depth not in STAGES or STAGES[depth][0] is not Bottleneck:
        raise ValueError(f"ImageNet ResNeXt depth must be 50, 101 or 152, got {depth}")
    return ResNet(
        Bottleneck,
        STAGES[depth][1],
        num_classes=num_classes,
        groups=cardinality,
        width_per_group=bottleneck_width,
        **kwargs,
    )


def resnext_cifar(
    depth: int = 29,
    cardinality: int = 8,
    bottleneck_width: int = 64,
    num_classes: int = 10,
    in_channels: int = 3,
) -> CifarResNet:
    """ResNeXt-``depth`` (9n + 2: three stages of n bottlenecks) for 32x32 inputs."""
    if depth < 11 or (depth - 2) % 9:
        raise ValueError(f"a CIFAR ResNeXt has 9n + 2 layers (11, 20, 29, ...), got {depth}")
    n = (depth - 2) // 9
    return CifarResNet(
        Bottleneck,
        (n, n, n),
        stage_channels=(64, 128, 256),
        stem_channels=64,
        num_classes=num_classes,
        shortcut="B",
        groups=cardinality,
        width_per_group=bottleneck_width,
        in_channels=in_channels,
    )


@register_model(paper=PAPER)
def resnext50_32x4d(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNeXt-50 (32x4d): ResNet-50 with 32 groups of 4 channels in the first stage's 3x3; 25.0M params. Same
    as torchvision.models.resnext50_32x4d. Differences from torchvision: ``in_channels``."""
    return resnext(50, 32, 4, num_classes, in_channels=in_channels, **kwargs)


@register_model(paper=PAPER)
def resnext101_32x8d(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNeXt-101 (32x8d): 88.8M params. Same as torchvision.models.resnext101_32x8d. Differences from
    torchvision: ``in_channels``."""
    return resnext(101, 32, 8, num_classes, in_channels=in_channels, **kwargs)


# torchvision's only weights for it were trained with its newer recipe, evaluated at resize 232
@register_model(paper=PAPER, preprocessing=Preprocessing(232, 224))
def resnext101_64x4d(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNeXt-101 (64x4d): 83.5M params. Same as torchvision.models.resnext101_64x4d. Differences from
    torchvision: ``in_channels``."""
    return resnext(101, 64, 4, num_classes, in_channels=in_channels, **kwargs)


@register_model(paper=PAPER, preprocessing=CIFAR)
def resnext29_8x64d(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNeXt-29 (8x64d) for CIFAR: 3 stages of 3 bottlenecks, cardinality 8, width 64; 34.4M params. From
    the paper: none. Not in torchvision."""
    return resnext_cifar(29, 8, 64, num_classes, in_channels)


@register_model(paper=PAPER, preprocessing=CIFAR)
def resnext29_16x64d(num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNeXt-29 (16x64d) for CIFAR: 3 stages of 3 bottlenecks, cardinality 16, width 64; 68.2M params (the
    paper prints 68.1M). From the paper: none. Not in torchvision."""
    return resnext_cifar(29, 16, 64, num_classes, in_channels)
