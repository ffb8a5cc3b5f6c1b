"""VGG-11/13/16/19 and their batch-normed twins (Simonyan & Zisserman 2014, "Very Deep Convolutional
Networks for Large-Scale Image Recognition", arXiv:1409.1556, Table 1 configurations A, B, D, E), in
torchvision's form: torchvision's state_dicts load with ``strict=True`` and give the same logits.

Stacks of 3x3 convolutions (stride 1, padding 1, ReLU) separated by 2x2/2 max pools, five pools in all,
then FC-4096, FC-4096, FC-classes with ReLU and 50% dropout after the first two.

Deliberate differences from the paper (all shared with torchvision):

* A (7, 7) adaptive average pool before the classifier: the identity at the paper's 224x224, and it
  lets any input from 32x32 up through.
* The ``_bn`` models put batch norm after every convolution; batch norm appeared a year after VGG.
* Initialization: He (Kaiming) normal with fan-out for convolutions, N(0, 0.01) for linear layers, zero
  biases. The paper drew N(0, 0.01) and started the deeper configurations from A's trained layers.
* Not built: configurations A-LRN and C (with 1x1 convolutions), and the test-time conversion of
  the FC layers to convolutions ("dense evaluation").

Differences from torchvision: ``in_channels``; configurations keyed by the paper's letters.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnarch.models._input_size import check_input
from cnnarch.models._layers import renamed
from cnnarch.models._registry import register_model

PAPER = "Simonyan & Zisserman 2014, Very Deep Convolutional Networks (arXiv:1409.1556)"

# Table 1: output channels of each 3x3 convolution, "M" for a 2x2/2 max pool.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # 11 weight layers
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # 13
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # 16
    "E": [64, 64, "M", 128, 128, "M", *[256] * 4, "M", *[512] * 4, "M", *[512] * 4, "M"],  # 19
}

# the registry's facts, the same for every configuration
DECLARED = dict(min_input_size=32, first_conv="features.0", classifier="classifier.6")


def make_features(
    config: list[int | str], batch_norm: bool = False, in_channels: int = 3, bias: bool = True
) -> nn.Sequential:
    """The convolutional part of one configuration, with torchvision's flat layer indices
    (``bias=False``: convolutions without bias, which batch norm makes redundant; torchvision keeps it)."""
    layers: list[nn.Module] = []
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, int(v), kernel_size=3, padding=1, bias=bias))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(v)))
        layers.append(nn.ReLU(inplace=True))
        in_channels = int(v)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """``features`` (convolutions and pools), a (7, 7) adaptive pool, ``classifier`` (three FC layers).

    Input (N, in_channels, H, W) with H, W >= 32; output (N, num_classes) logits.
    """

    def __init__(
        self, features: nn.Sequential, num_classes: int = 1000, *, drop_prob: float = 0.5, **deprecated
    ):
        super().__init__()
        drop_prob = renamed(deprecated).get("drop_prob", drop_prob)
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=drop_prob),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=drop_prob),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


def _vgg(config: str, batch_norm: bool, num_classes: int, in_channels: int, **kwargs) -> VGG:
    return VGG(make_features(CONFIGS[config], batch_norm, in_channels), num_classes, **kwargs)


@register_model(paper=PAPER, **DECLARED)
def vgg11(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-11, configuration A: 8 convolutions and 3 FC layers; torchvision's vgg11."""
    return _vgg("A", False, num_classes, in_channels, **kwargs)


@register_model(paper=PAPER, **DECLARED)
def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-11 (configuration A) with batch norm after every convolution: torchvision's vgg11_bn."""
    return _vgg("A", True, num_classes, in_channels, **kwargs)


@register_model(paper=PAPER, **DECLARED)
def vgg13(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-13, configuration B: 10 convolutions and 3 FC layers; torchvision's vgg13."""
    return _vgg("B", False, num_classes, in_channels, **kwargs)


@register_model(paper=PAPER, **DECLARED)
def vgg13_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-13 (configuration B) with batch norm after every convolution: torchvision's vgg13_bn."""
    return _vgg("B", True, num_classes, in_channels, **kwargs)


@register_model(paper=PAPER, **DECLARED)
def vgg16(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-16, configuration D: 13 convolutions and 3 FC layers; torchvision's vgg16."""
    return _vgg("D", False, num_classes, in_channels, **kwargs)


@register_model(paper=PAPER, **DECLARED)
def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-16 (configuration D) with batch norm after every convolution: torchvision's vgg16_bn."""
    return _vgg("D", True, num_classes, in_channels, **kwargs)


@register_model(paper=PAPER, **DECLARED)
def vgg19(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-19, configuration E: 16 convolutions and 3 FC layers; torchvision's vgg19."""
    return _vgg("E", False, num_classes, in_channels, **kwargs)


@register_model(paper=PAPER, **DECLARED)
def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> VGG:
    """VGG-19 (configuration E) with batch norm after every convolution: torchvision's vgg19_bn."""
    return _vgg("E", True, num_classes, in_channels, **kwargs)
