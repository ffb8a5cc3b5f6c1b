"""AlexNet (Krizhevsky, Sutskever, Hinton 2012, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS; Section 3 and Figure 2): the original two-GPU network the lecture computes, and
torchvision's single-tower form.

``alexnet``, the 2012 network on 227x227x3 input, layer by layer (output sizes as in the lecture):

    CONV1  96 11x11/4, pad 0  -> 55x55x96    ReLU, NORM1 (LRN), POOL1 3x3/2 -> 27x27x96
    CONV2 256  5x5/1, pad 2  -> 27x27x256   ReLU, NORM2 (LRN), POOL2 3x3/2 -> 13x13x256
    CONV3 384  3x3/1, pad 1  -> 13x13x384   ReLU
    CONV4 384  3x3/1, pad 1  -> 13x13x384   ReLU
    CONV5 256  3x3/1, pad 1  -> 13x13x256   ReLU, POOL3 3x3/2 -> 6x6x256
    FC6 4096, ReLU, dropout; FC7 4096, ReLU, dropout; FC8 num_classes

Local response normalization is the paper's, b = a / (k + alpha * sum of a^2 over 5 adjacent channels)
^ beta with k = 2, alpha = 1e-4 per term, beta = 0.75 (:class:`LocalResponseNorm`). The two GPUs are
modelled by ``groups=2`` on CONV2, CONV4 and CONV5, whose kernels only see the maps on their own GPU;
CONV3 and the FC layers connect across. ``groups=1`` builds the same layers as one tower.

Deliberate differences from the paper and the lecture:

* The paper's text says 224x224 input; its layer arithmetic needs 227 ((227 - 11) / 4 + 1 = 55), the
  number the lecture uses. The classifier has a fixed input size, so only inputs from 227x227 to
  258x258 fit (POOL3 must give 6x6); the model says so for any other size.
* The lecture (like Caffe's reference model) lists NORM after POOL; the paper puts the normalization
  right after the ReLU and pools its output ("max-pooling layers ... follow both response-normalization
  layers"). This module follows the paper: NORM1 and NORM2 see 55x55 and 27x27 maps.
* Dropout sits on the outputs of FC6 and FC7 ("dropout in the first two fully-connected layers", as in
  Caffe's reference); torchvision drops the inputs of FC6 and FC7 instead.
* Initialization is the paper's: weights N(0, 0.01); biases 1 in CONV2, CONV4, CONV5 and FC6, FC7, 0
  elsewhere. No data augmentation, PCA colour noise or test-time cropping here: those belong to training.

``alexnet_tv`` is torchvision's AlexNet, the single-tower variant of Krizhevsky's "One weird trick for
parallelizing convolutional neural networks" (arXiv:1404.5997): 64-192-384-256-256 channels, padding 2
in CONV1, no LRN, a (6, 6) adaptive pool before the classifier (so any input from 63x63 works),
dropout before FC6 and FC7, PyTorch's default initialization. Its state_dict is torchvision's.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnarch.models._input_size import check_input
from cnnarch.models._layers import LocalResponseNorm, renamed
from cnnarch.models._registry import Preprocessing, register_model

PAPER = "Krizhevsky et al. 2012, ImageNet Classification with Deep Convolutional Neural Networks (NIPS)"
PAPER_TV = (
    "Krizhevsky 2014, One weird trick for parallelizing convolutional neural networks (arXiv:1404.5997)"
)


class AlexNet2012(nn.Module):
    """The 2012 network; ``features`` and ``classifier`` name their layers as the lecture does (conv1,
    norm1, pool1, ..., fc8). Input (N, in_channels, 227..258, 227..258); output (N, num_classes)."""

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        in_channels: int = 3,
        groups: int = 2,
        drop_prob: float = 0.5,
        **deprecated,
    ):
        super().__init__()
        drop_prob = renamed(deprecated).get("drop_prob", drop_prob)
        if groups not in (1, 2):
            raise ValueError(f"groups is 2 (the paper's two GPUs) or 1 (one tower), got {groups}")
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, 96, kernel_size=11, stride=4),
                relu1=nn.ReLU(inplace=True),
                norm1=LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
                pool1=nn.MaxPool2d(kernel_size=3, stride=2),
                conv2=nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=groups),
                relu2=nn.ReLU(inplace=True),
                norm2=LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
                pool2=nn.MaxPool2d(kernel_size=3, stride=2),
                conv3=nn.Conv2d(256, 384, kernel_size=3, padding=1),
                relu3=nn.ReLU(inplace=True),
                conv4=nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=groups),
                relu4=nn.ReLU(inplace=True),
                conv5=nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=groups),
                relu5=nn.ReLU(inplace=True),
                pool3=nn.MaxPool2d(kernel_size=3, stride=2),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                fc6=nn.Linear(256 * 6 * 6, 4096),
                relu6=nn.ReLU(inplace=True),
                drop6=nn.Dropout(p=drop_prob),
                fc7=nn.Linear(4096, 4096),
                relu7=nn.ReLU(inplace=True),
                drop7=nn.Dropout(p=drop_prob),
                fc8=nn.Linear(4096, num_classes),
            )
        )
        ones = {"features.conv2", "features.conv4", "features.conv5", "classifier.fc6", "classifier.fc7"}
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.constant_(m.bias, 1.0 if name in ones else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        return self.classifier(torch.flatten(self.features(x), 1))


class AlexNet(nn.Module):
    """torchvision's AlexNet, same modules and indices. Input (N, in_channels, H, W), H, W >= 63."""

    def __init__(
        self, num_classes: int = 1000, *, in_channels: int = 3, drop_prob: float = 0.5, **deprecated
    ):
        super().__init__()
        drop_prob = renamed(deprecated).get("drop_prob", drop_prob)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=drop_prob),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=drop_prob),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@register_model(
    paper=PAPER,
    preprocessing=Preprocessing(256, 227),  # Section 2: shorter side 256, then 227 crops (224 in the text)
    min_input_size=227,
    max_input_size=258,
    first_conv="features.conv1",
    classifier="classifier.fc8",
)
def alexnet(num_classes: int = 1000, in_channels: int = 3, groups: int = 2, **kwargs) -> AlexNet2012:
    """AlexNet as in the 2012 paper: 227x227 input (227 to 258 fit), 96-256-384-384-256 channels, LRN
    with the paper's formula, ``groups=2`` on CONV2/4/5 for the two GPUs (``groups=1``: one tower),
    dropout on the outputs of FC6 and FC7, the paper's initialization.
    Differences from torchvision's alexnet: all of the above (torchvision has the single-tower
    64-192-384-256-256 network without LRN, adaptive pooling, dropout before FC6/FC7); in_channels.
    From the lecture: LRN before, not after, each pool, as the paper has it."""
    return AlexNet2012(num_classes, in_channels=in_channels, groups=groups, **kwargs)


@register_model(paper=PAPER_TV, min_input_size=63, first_conv="features.0", classifier="classifier.6")
def alexnet_tv(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> AlexNet:
    """AlexNet in torchvision's single-tower form; its state_dict is torchvision's.
    Differences from torchvision: in_channels. From the 2012 paper: 64-192-384-256-256 channels, no LRN,
    no groups, padding 2 in CONV1, adaptive pooling (any input from 63x63), dropout before FC6/FC7."""
    return AlexNet(num_classes, in_channels=in_channels, **kwargs)
