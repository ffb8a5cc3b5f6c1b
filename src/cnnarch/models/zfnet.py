"""ZFNet: AlexNet with a smaller first-layer filter and stride, found by visualising its features.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014 (arXiv:1311.2901,
2013).

The network of the paper's Fig. 3, for 224x224 crops: five convolutional layers and three fully
connected ones, every hidden layer followed by ReLU. Unlike the AlexNet paper, Fig. 3 pools first and
normalises the pooled maps.

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

Dropout acts on the outputs of layers 6 and 7, and layer names follow ``alexnet`` (conv1, pool1, norm1,
..., fc8), so ``cnnarch compare alexnet zfnet`` lines the two up. torchvision has no ZFNet. The
classifier has a fixed 6x6 input, as in the paper (no adaptive pooling): inputs from 207x207 to 238x238
fit, and the model says so for any other size.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from cnnarch.models._input_size import check_input
from cnnarch.models._layers import LocalResponseNorm, renamed
from cnnarch.models._registry import register_model

__all__ = ["ZF_B_LAYERS", "ZF_LAYERS", "ConvLayer", "ZFNet"]

PAPER = "Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014 (arXiv:1311.2901)"

# the registry's facts: the fixed 6x6 classifier input allows 207..238 pixels
DECLARED = dict(
    min_input_size=207, max_input_size=238, first_conv="features.conv1", classifier="classifier.fc8"
)


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
    """``features`` (conv1, relu1, pool1, norm1, ..., pool3) and ``classifier`` (fc6, relu6, drop6, fc7,
    relu7, drop7, fc8), named as :class:`cnnarch.models.alexnet.AlexNet2012` so the two line up layer by
    layer. Input (N, in_channels, H, W) with H, W giving 6x6 after pool3 (224 does); output logits."""

    def __init__(
        self,
        layers: tuple[ConvLayer, ...] = ZF_LAYERS,
        num_classes: int = 1000,
        in_channels: int = 3,
        drop_prob: float = 0.5,
        **deprecated,
    ):
        super().__init__()
        drop_prob = renamed(deprecated).get("drop_prob", drop_prob)
        features: OrderedDict[str, nn.Module] = OrderedDict()
        pools = norms = 0
        for i, layer in enumerate(layers, start=1):
            features[f"conv{i}"] = nn.Conv2d(
                in_channels, layer.channels, layer.kernel, layer.stride, layer.padding
            )
            features[f"relu{i}"] = nn.ReLU(inplace=True)
            if layer.pool:
                pools += 1
                features[f"pool{pools}"] = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
            if layer.norm:
                norms += 1
                features[f"norm{norms}"] = LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
            in_channels = layer.channels
        self.features = nn.Sequential(features)
        self.classifier = nn.Sequential(
            OrderedDict(
                fc6=nn.Linear(in_channels * 6 * 6, 4096),
                relu6=nn.ReLU(inplace=True),
                drop6=nn.Dropout(drop_prob),
                fc7=nn.Linear(4096, 4096),
                relu7=nn.ReLU(inplace=True),
                drop7=nn.Dropout(drop_prob),
                fc8=nn.Linear(4096, num_classes),
            )
        )
        # Section 3: "all weights initialized to 1e-2 and biases set to 0" (1e-2 is the standard deviation)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.normal_(m.weight, std=1e-2)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        return self.classifier(torch.flatten(self.features(x), 1))


@register_model(paper=PAPER, **DECLARED)
def zfnet(num_classes: int = 1000, in_channels: int = 3, drop_prob: float = 0.5, **deprecated) -> ZFNet:
    """ZFNet (Fig. 3): AlexNet with a 7x7/2 first layer and a 5x5/2 second layer, dense layers 3-5, contrast
    normalisation after the first two poolings; 62.4M params, 224x224 input. From the paper: AlexNet's
    LRN parameters (the paper gives none); ``in_channels``. Not in torchvision."""
    return ZFNet(ZF_LAYERS, num_classes, in_channels, drop_prob, **deprecated)


@register_model(paper=PAPER, **DECLARED)
def zfnet_b(num_classes: int = 1000, in_channels: int = 3, drop_prob: float = 0.5, **deprecated) -> ZFNet:
    """ZFNet variant (b) of Table 3: layers 3, 4, 5 widened to 512, 1024, 512 maps. From the paper: AlexNet's
    LRN parameters (the paper gives none); ``in_channels``. Not in torchvision."""
    return ZFNet(ZF_B_LAYERS, num_classes, in_channels, drop_prob, **deprecated)
