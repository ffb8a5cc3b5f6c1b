"""``cifar_fast``: a small VGG-style network (conv-BN stacks with max pooling) for fast CIFAR training.

A member of the lecture's VGG family: only 3x3 convolutions, batch norm after each, a max pool halving
the map in every stage, and a single linear classifier. Its shape follows the CIFAR-10 speedrun
literature (hlb-CIFAR10 by Tysam&, airbench by Keller Jordan, arXiv:2404.00498), itself a descendant of
David Page's ResNet-9 ("How to train your ResNet", 2018):

- a 2x2 convolution with ``2 * 3 * 2 * 2 = 24`` channels first, meant to be initialised as a
  patch-whitening filter bank (:func:`cnnarch.train.speedrun.init_whitening`) and then frozen;
- three stages ``conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU`` with 64, 256 and 256
  channels on 31x31, 15x15, 7x7 maps (the pool comes before the first BN, so the BN and the second
  convolution work on the smaller map);
- a 3x3 max pool to 1x1, a bias-free linear layer, and the logits scaled by 1/9 (a fixed temperature
  that lets the optimizer use one learning rate for the whole net).

Batch norm keeps torch's default momentum here (the ``cifar-fast`` recipe sets airbench's,
``--bn-momentum``, and the rest of the training: :mod:`cnnarch.train.speedrun`); as in airbench it learns a
shift but no scale (:class:`ShiftBatchNorm2d`; ``bn_weight=True`` gives torch's BN). ``dirac=True``
(default) initialises the first ``in_channels`` filters of every 3x3 convolution as identities (an
implicit residual path, airbench's "dirac" init). torchvision has no such network.

About 0.24 GFLOPs (0.12 GMACs) per 32x32 image forward: ``cnnarch summary cifar_fast``.

``cifar_fast_93`` is airbench93's narrower network (64/128/128 channels, 0.57M params; airbench trains
it 11 epochs rather than 9.9 for 93 % instead of 94 %); everything else is the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnarch.models._input_size import check_input
from cnnarch.models._registry import CIFAR, register_model

__all__ = ["CifarFastNet", "ConvStage", "ShiftBatchNorm2d"]

PAPER = (
    "Jordan 2024, 94% on CIFAR-10 in 3.29 Seconds on a Single GPU (arXiv:2404.00498); "
    "Page 2018, How to train your ResNet"
)


class ShiftBatchNorm2d(nn.BatchNorm2d):
    """Batch norm that learns a shift (``bias``) but no scale: ``weight`` is a buffer of ones.

    (A buffer, not None: cuDNN's batch-norm backward returns no shift gradient without a weight.)"""

    def __init__(self, num_features: int, **kwargs):
        super().__init__(num_features, **kwargs)
        del self.weight
        self.register_buffer("weight", torch.ones(num_features))


class ConvStage(nn.Module):
    """``conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU``: (N, C_in, H, W) -> (N, C, H/2, W/2)."""

    def __init__(self, in_channels: int, channels: int, bn_weight: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        norm = nn.BatchNorm2d if bn_weight else ShiftBatchNorm2d
        self.bn1 = norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = norm(channels)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn1(self.pool(self.conv1(x))))
        return self.act(self.bn2(self.conv2(x)))


class CifarFastNet(nn.Module):
    """Whitening stem, three :class:`ConvStage` stages, max pool, linear classifier, scaled logits."""

    def __init__(
        self,
        widths: Sequence[int] = (64, 256, 256),
        num_classes: int = 10,
        in_channels: int = 3,
        whiten_kernel: int = 2,
        logit_scale: float = 1 / 9,
        bn_weight: bool = False,
        dirac: bool = True,
    ):
        super().__init__()
        # every eigenvector of the k x k patch covariance, and its negation (GELU keeps both halves)
        stem = 2 * in_channels * whiten_kernel**2
        self.whiten = nn.Conv2d(in_channels, stem, whiten_kernel, bias=True)
        self.act = nn.GELU()
        chans = [stem, *widths]
        self.layer1, self.layer2, self.layer3 = (
            ConvStage(chans[i], chans[i + 1], bn_weight) for i in range(3)
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes, bias=False)
        self.logit_scale = logit_scale
        nn.init.zeros_(self.whiten.bias)
        if dirac:
            for m in self.modules():
                if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                    with torch.no_grad():
                        nn.init.dirac_(m.weight[: m.in_channels])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        x = self.act(self.whiten(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.pool(x), 1)) * self.logit_scale


@register_model(paper=PAPER, preprocessing=CIFAR, min_input_size=9, first_conv="whiten")
def cifar_fast(num_classes: int = 10, in_channels: int = 3, **kwargs) -> CifarFastNet:
    """VGG-style net for fast CIFAR training (recipe ``cifar-fast``): 2x2 whitening stem, three conv-BN
    stages of 64/256/256 channels with max pooling, 1.97M params. From the CIFAR-10 speedruns (airbench,
    hlb-CIFAR10, Page's ResNet-9). Not in torchvision."""
    return CifarFastNet(num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model(paper=PAPER, preprocessing=CIFAR, min_input_size=9, first_conv="whiten")
def cifar_fast_93(num_classes: int = 10, in_channels: int = 3, **kwargs) -> CifarFastNet:
    """airbench93's narrower ``cifar_fast``: stages of 64/128/128 channels, 0.57M params (about a
    quarter of the 94 % network's FLOPs). Not in torchvision."""
    return CifarFastNet((64, 128, 128), num_classes=num_classes, in_channels=in_channels, **kwargs)
