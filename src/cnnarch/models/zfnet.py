"""ZFNet: AlexNet with a smaller first-layer filter and stride, found by visualising its features.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014 (arXiv:1311.2901,
2013).

The network of the paper's Fig. 3, for 224x224 crops: five convolutional layers and three fully
connected ones, every layer followed by ReLU.

====== ================================ ===================================== ============
layer  convolution                      then                                  output
====== ================================ ===================================== ============
1      96 filters 7x7, stride 2         3x3 max pool stride 2, contrast norm. 96 x 55x55
2      256 filters 5x5, stride 2        3x3 max pool stride 2, contrast norm. 256 x 13x13
3      384 filters 3x3, stride 1                                              384 x 13x13
4      384 filters 3x3, stride 1                                              384 x 13x13
5      256 filters 3x3, stride 1        3x3 max pool stride 2                 256 x 6x6
6, 7   4096 units, dropout 0.5
8      1000-way softmax
====== ================================ ===================================== ============

The first layer's 7x7/2 (AlexNet: 11x11/4) is the paper's fix for the aliasing and dead filters its
visualisations revealed (Section 4.2); layers 3-5 are dense, not split across two GPUs as AlexNet's.
``zfnet_b`` is Table 3's variant that widens layers 3, 4, 5 to 512, 1024, 512 maps.

The paddings (1 for layer 1, 0 for layer 2, 1 for layers 3-5) and the pooling with partial windows at
the border (``ceil_mode=True``) are the ones that give Fig. 3's map sizes 110, 55, 26, 13 and 6; the
paper does not state them.

Deliberate differences from the paper:

- Contrast normalisation is AlexNet's local response normalisation across 5 neighbouring maps (k=2,
  alpha=1e-4, beta=0.75; :class:`cnnarch.models._layers.LocalResponseNorm`): the paper says "contrast
  normalized across feature maps" without parameters.
- The paper renormalises, during training, every convolutional filter whose RMS exceeds 0.1 back to
  0.1 (Section 3); that is a training rule, not part of the network, and the model does not apply it.

torchvision has no ZFNet. Module names follow torchvision's AlexNet (``features``, ``classifier``); the
classifier has a fixed 6x6 input, as in the paper (no adaptive pooling), so inputs must be about 224x224.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnarch.models._layers import LocalResponseNorm
from cnnarch.models._registry import register_model

__all__ = ["ZF_B_LAYERS", "ZF_LAYERS", "ConvLayer", "ZFNet"]

PAPER = "Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014 (arXiv:1311.2901)"


@dataclass(frozen=True)
class ConvLayer:
    """One convolutional layer of Fig. 3: conv - ReLU [- 3x3/2 max pool] [- contrast normalisation]."""

    channels: int
    kernel: int
    stride: int
    padding: int
    pool: bool = False
    norm: bool = False


ZF_LAYERS = (
    ConvLayer(96, 7, 2, 1, pool=True, norm=True),
    ConvLayer(256, 5, 2, 0, pool=True, norm=True),
    ConvLayer(384, 3, 1, 1),
    ConvLayer(384, 3, 1, 1),
    ConvLayer(256, 3, 1, 1, pool=True),
)
# Table 3: "adjust layers 3, 4, 5: 512, 1024, 512 maps"
ZF_B_LAYERS = (
    *ZF_LAYERS[:2],
    ConvLayer(512, 3, 1, 1),
    ConvLayer(1024, 3, 1, 1),
    ConvLayer(512, 3, 1, 1, pool=True),
)


class ZFNet(nn.Module):
    """``features`` (the convolutional layers), ``classifier`` (dropout - fc - ReLU twice, fc)."""

    def __init__(
        self,
        layers: tuple[ConvLayer, ...] = ZF_LAYERS,
        num_classes: int = 1000,
        dropout: float = 0.5,
        hidden: int = 4096,
    ):
        super().__init__()
        modules: list[nn.Module] = []
        in_channels = 3
        for layer in layers:
            modules += [
                nn.Conv2d(in_channels, layer.channels, layer.kernel, layer.stride, layer.padding),
                nn.ReLU(inplace=True),
            ]
            if layer.pool:
                modules.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
            if layer.norm:
                modules.append(LocalResponseNorm())
            in_channels = layer.channels
        self.features = nn.Sequential(*modules)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_channels * 6 * 6, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        # Section 3: "all weights initialized to 1e-2 and biases set to 0" (1e-2 is the standard deviation)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.normal_(m.weight, std=1e-2)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


@register_model(paper=PAPER)
def zfnet(num_classes: int = 1000, dropout: float = 0.5) -> ZFNet:
    """ZFNet (Fig. 3): AlexNet with a 7x7/2 first layer and a 5x5/2 second layer, dense layers 3-5,
    contrast normalisation after the first two poolings; 62.4M params, 224x224 input."""
    return ZFNet(ZF_LAYERS, num_classes, dropout)


@register_model(paper=PAPER)
def zfnet_b(num_classes: int = 1000, dropout: float = 0.5) -> ZFNet:
    """ZFNet variant (b) of Table 3: layers 3, 4, 5 widened to 512, 1024, 512 maps."""
    return ZFNet(ZF_B_LAYERS, num_classes, dropout)
