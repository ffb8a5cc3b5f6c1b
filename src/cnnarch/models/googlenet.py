"""GoogLeNet (Szegedy et al. 2014, "Going Deeper with Convolutions", arXiv:1409.4842): the paper's
network and torchvision's batch-normed form, built from one :class:`Inception` module and Table 1.

``googlenet``, the paper's network: a stem of 7x7/2 convolution, 3x3/2 max pool, local response
normalization, 1x1 and 3x3 convolutions, LRN and 3x3/2 max pool; nine Inception modules with real 5x5
branches (Table 1); average pooling, 40% dropout and one linear layer; two auxiliary classifiers on the
outputs of 4a and 4d (Section 5: 5x5/3 average pool, 1x1 convolution with 128 filters, FC 1024, 70%
dropout, linear), whose losses the paper adds with weight 0.3 (``model.aux_loss_weight``). Convolutions
have biases and ReLU; there is no batch norm. In training mode the model returns
``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)`` (torchvision's order), in eval mode the logits.

Deliberate differences from the paper, none visible at its 224x224 input:

* Pooling before the classifiers adapts to the input size: global average pooling in place of the
  fixed 7x7 one, and in the auxiliary classifiers a (4, 4) adaptive pool after the 5x5/3 one (an
  identity at 224). Other input sizes thus work; in training mode the 5x5 pool needs 4a's feature map
  to be at least 5x5.
* The paper gives no LRN parameters; these are those of the BVLC Caffe reference model (size 5,
  alpha 1e-4 / 5 per term, beta 0.75, k 1). Max pools round up (``ceil_mode``), as in that model,
  which Table 1's sizes (112 -> 56 -> 28 -> 14 -> 7) require.
* The paper gives no initialization; convolutions and linear layers follow the BVLC reference:
  uniform with variance 1/fan_in ("xavier" in Caffe), biases 0.2 in convolutions, 0 in linear layers.

``googlenet_tv`` is torchvision's GoogLeNet: batch norm (eps 1e-3) after every bias-free convolution,
no LRN, a 3x3 convolution in the "5x5" branch (torchvision issue 906, kept so that its weights load),
a 2x2/2 fourth max pool, 20% dropout, (4, 4) adaptive pooling alone in the auxiliary classifiers,
truncated-normal initialization. Its state_dict is torchvision's.

Differences from torchvision, for both: ``in_channels``; no ``transform_input`` (which rescales
inputs normalized for other weights); ``aux_loss_weight`` as an attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import nn

from cnnarch.models._input_size import check_input
from cnnarch.models._layers import LocalResponseNorm, renamed
from cnnarch.models._registry import IMAGENET, Preprocessing, register_model

PAPER = "Szegedy et al. 2014, Going Deeper with Convolutions (arXiv:1409.4842)"
Variant = Literal["paper", "torchvision"]

# the registry's facts shared by both forms; the auxiliary heads exist when built with aux_logits=True
DECLARED = dict(first_conv="conv1.conv", aux_classifiers=("aux1.fc2", "aux2.fc2"))


@dataclass(frozen=True)
class InceptionRow:
    """One Inception row of Table 1, in the paper's column order."""

    ch1x1: int  # "#1x1"
    ch3x3red: int  # "#3x3 reduce"
    ch3x3: int  # "#3x3"
    ch5x5red: int  # "#5x5 reduce"
    ch5x5: int  # "#5x5"
    pool_proj: int  # "pool proj"

    @property
    def out_channels(self) -> int:
        return self.ch1x1 + self.ch3x3 + self.ch5x5 + self.pool_proj


TABLE_1: dict[str, InceptionRow] = {
    "3a": InceptionRow(64, 96, 128, 16, 32, 32),
    "3b": InceptionRow(128, 128, 192, 32, 96, 64),
    "4a": InceptionRow(192, 96, 208, 16, 48, 64),
    "4b": InceptionRow(160, 112, 224, 24, 64, 64),
    "4c": InceptionRow(128, 128, 256, 24, 64, 64),
    "4d": InceptionRow(112, 144, 288, 32, 64, 64),
    "4e": InceptionRow(256, 160, 320, 32, 128, 128),
    "5a": InceptionRow(256, 160, 320, 32, 128, 128),
    "5b": InceptionRow(384, 192, 384, 48, 128, 128),
}
STEM_CHANNELS = 192  # Table 1: the stem ends at 28x28x192


class ConvReLU(nn.Module):
    """The paper's convolution: with bias, followed by ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, **kwargs)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class BasicConv2d(nn.Module):
    """torchvision's convolution: without bias, then batch norm (eps 1e-3) and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


ConvBlock = Callable[..., nn.Module]


class Inception(nn.Module):
    """Four parallel branches concatenated along channels (Figure 2b):
    1x1 | 1x1 reduce -> 3x3 | 1x1 reduce -> 5x5 | 3x3/1 max pool -> 1x1 projection.

    Input (N, in_channels, H, W); output (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W).
    ``conv_block(in, out, kernel_size=..., padding=...)`` builds each convolution (default: the paper's
    :class:`ConvReLU`); ``kernel_5x5=3`` gives torchvision's 3x3 in the "5x5" branch. A reduction or
    ``pool_proj`` of 0 leaves that 1x1 convolution out (Figure 2a's naive module; without the
    projection the pool passes all ``in_channels`` through).
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        *,
        conv_block: ConvBlock = ConvReLU,
        kernel_5x5: int = 5,
    ):
        super().__init__()

        def reduced(red: int, out: int, k: int) -> nn.Sequential:
            head = [conv_block(in_channels, red, kernel_size=1)] if red else []
            return nn.Sequential(*head, conv_block(red or in_channels, out, kernel_size=k, padding=k // 2))

        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = reduced(ch3x3red, ch3x3, 3)
        self.branch3 = reduced(ch5x5red, ch5x5, kernel_5x5)
        proj = [conv_block(in_channels, pool_proj, kernel_size=1)] if pool_proj else []
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True), *proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier (Section 5): pool to 4x4, 1x1 convolution to 128 channels, FC 1024 + ReLU,
    dropout, linear. ``pool`` reduces the map to 4x4 (the paper: 5x5/3 average pool on 14x14)."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        conv_block: ConvBlock = ConvReLU,
        pool: nn.Module | None = None,
        drop_prob: float = 0.7,
    ):
        super().__init__()
        self.pool = pool if pool is not None else nn.AdaptiveAvgPool2d((4, 4))
        self.conv = conv_block(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(p=drop_prob)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNetOutputs(NamedTuple):
    """Training-mode output, in torchvision's order."""

    logits: torch.Tensor
    aux_logits2: torch.Tensor | None
    aux_logits1: torch.Tensor | None


class GoogLeNet(nn.Module):
    """GoogLeNet, ``variant="paper"`` (default) or ``"torchvision"``; see the module docstring.

    Input (N, in_channels, H, W); output (N, num_classes) logits, or in training mode with
    ``aux_logits`` a :class:`GoogLeNetOutputs`. Train with
    ``loss = ce(logits) + model.aux_loss_weight * (ce(aux_logits1) + ce(aux_logits2))``.
    """

    aux_loss_weight = 0.3  # Section 5: the auxiliary losses are "weighted by 0.3"

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        in_channels: int = 3,
        aux_logits: bool = True,
        variant: Variant = "paper",
        drop_prob: float | None = None,
        drop_prob_aux: float = 0.7,
        **deprecated,
    ):
        super().__init__()
        new = renamed(
            deprecated, {"dropout": "drop_prob", "drop": "drop_prob", "dropout_aux": "drop_prob_aux"}
        )
        drop_prob, drop_prob_aux = new.get("drop_prob", drop_prob), new.get("drop_prob_aux", drop_prob_aux)
        if variant not in ("paper", "torchvision"):
            raise ValueError(f"variant must be 'paper' or 'torchvision', got {variant!r}")
        paper = variant == "paper"
        conv: ConvBlock = ConvReLU if paper else BasicConv2d
        self.aux_logits = aux_logits
        self.variant = variant

        self.conv1 = conv(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.norm1 = LocalResponseNorm(5, alpha=1e-4 / 5, beta=0.75, k=1.0) if paper else nn.Identity()
        self.conv2 = conv(64, 64, kernel_size=1)
        self.conv3 = conv(64, STEM_CHANNELS, kernel_size=3, padding=1)
        self.norm2 = LocalResponseNorm(5, alpha=1e-4 / 5, beta=0.75, k=1.0) if paper else nn.Identity()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        channels = STEM_CHANNELS
        for name, row in TABLE_1.items():
            if name == "4a":
                self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            elif name == "5a":
                self.maxpool4 = nn.MaxPool2d(3 if paper else 2, stride=2, ceil_mode=True)
            branches = (row.ch1x1, row.ch3x3red, row.ch3x3, row.ch5x5red, row.ch5x5, row.pool_proj)
            module = Inception(channels, *branches, conv_block=conv, kernel_5x5=5 if paper else 3)
            setattr(self, f"inception{name}", module)
            channels = row.out_channels

        if aux_logits:

            def aux(in_channels: int) -> InceptionAux:
                pool = nn.Sequential(nn.AvgPool2d(5, stride=3), nn.AdaptiveAvgPool2d((4, 4)))
                return InceptionAux(
                    in_channels,
                    num_classes,
                    conv_block=conv,
                    pool=pool if paper else None,
                    drop_prob=drop_prob_aux,
                )

            self.aux1 = aux(TABLE_1["4a"].out_channels)
            self.aux2 = aux(TABLE_1["4d"].out_channels)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=drop_prob if drop_prob is not None else (0.4 if paper else 0.2))
        self.fc = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                if self.variant == "paper":
                    nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")  # variance 1/fan_in
                    nn.init.constant_(m.bias, 0.2 if isinstance(m, nn.Conv2d) else 0.0)
                else:
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        check_input(self, x)
        x = self.norm1(self.maxpool1(self.conv1(x)))
        x = self.maxpool2(self.norm2(self.conv3(self.conv2(x))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        with_aux = self.training and self.aux_logits
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        return GoogLeNetOutputs(x, aux2, aux1) if with_aux else x


@register_model(paper=PAPER, min_input_size=31, min_train_input_size=79, **DECLARED)
def googlenet(num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = True, **kwargs) -> GoogLeNet:
    """GoogLeNet as in the paper: LRN in the stem, real 5x5 branches, no batch norm, two auxiliary
    classifiers (training mode only, loss weight ``model.aux_loss_weight`` = 0.3).
    Differences from torchvision's googlenet: all of the above (torchvision has batch norm, no LRN, 3x3 in
    the 5x5 branch, a 2x2 fourth max pool, 20% dropout, truncated-normal init); in_channels. From the
    paper: adaptive pooling before the classifiers (identical at 224x224); LRN parameters and
    initialization from the BVLC Caffe model, as the paper gives none."""
    return GoogLeNet(num_classes, in_channels=in_channels, aux_logits=aux_logits, variant="paper", **kwargs)


@register_model(
    paper=PAPER,
    # torchvision's weights expect transform_input, the same as normalising [0, 1] pixels by 0.5 and 0.5
    preprocessing=Preprocessing(IMAGENET.resize, IMAGENET.crop, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    min_input_size=15,
    **DECLARED,
)
def googlenet_tv(
    num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = True, **kwargs
) -> GoogLeNet:
    """GoogLeNet in torchvision's batch-normed form; its state_dict is torchvision's.
    Differences from torchvision: in_channels; no transform_input; ``aux_loss_weight`` (0.3) attribute.
    From the paper: batch norm, no LRN, 3x3 in place of the 5x5 convolutions, 2x2 fourth max pool,
    20% dropout, adaptive pooling in the auxiliary classifiers."""
    return GoogLeNet(
        num_classes, in_channels=in_channels, aux_logits=aux_logits, variant="torchvision", **kwargs
    )
