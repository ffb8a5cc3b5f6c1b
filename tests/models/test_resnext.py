"""ResNeXt: torchvision parity for the ImageNet nets, the paper's CIFAR parameter counts."""

import pytest
import torch
import torchvision

from cnnarch.models import create_model
from cnnarch.models.resnext import resnext, resnext_cifar


@pytest.mark.parametrize("name", ["resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d"])
def test_imagenet_resnexts_load_torchvision_weights_and_give_its_logits(name, torchvision_parity):
    torchvision_parity(name, getattr(torchvision.models, name))


def _resnext29_params(cardinality, d, num_classes=10):
    """3x3 stem (64) + BN; three stages of three bottlenecks with base widths 64/128/256: 1x1 to the
    grouped width C*d*(2^stage), grouped 3x3, 1x1 to 4x the base width, a BN after each; the first block
    of every stage adds a 1x1 projection with BN."""
    total, cin = 9 * 3 * 64 + 2 * 64, 64
    for stage, base in enumerate((64, 128, 256)):
        width, out = cardinality * d * 2**stage, 4 * base
        for b in range(3):
            total += cin * width + 2 * width  # 1x1 reduce
            total += 9 * width * (width // cardinality) + 2 * width  # grouped 3x3
            total += width * out + 2 * out  # 1x1 expand
            total += (cin * out + 2 * out) if b == 0 else 0  # projection shortcut
            cin = out
    return total + cin * num_classes + num_classes


# Section 5.3 of the paper: ResNeXt-29, 8x64d 34.4M and 16x64d 68.1M parameters.
@pytest.mark.parametrize(
    "name, cardinality, paper_millions", [("resnext29_8x64d", 8, 34.4), ("resnext29_16x64d", 16, 68.1)]
)
def test_cifar_resnext29_parameter_counts_match_the_paper(name, cardinality, paper_millions):
    with torch.device("meta"):
        model = create_model(name)
    count = sum(p.numel() for p in model.parameters())
    assert count == _resnext29_params(cardinality, 64)
    # 68,155,210 is printed as 68.1M: the paper truncates to 0.1M (34,426,698 gives 34.4M either way)
    assert int(count / 1e5) / 10 == paper_millions
    assert model.layer1[0].conv2.groups == cardinality


def test_cardinality_and_bottleneck_width_are_the_grouped_convolution():
    model = resnext_cifar(depth=11, cardinality=4, bottleneck_width=2, num_classes=3)
    convs = [stage[0].conv2 for stage in (model.layer1, model.layer2, model.layer3)]
    assert [(c.groups, c.in_channels) for c in convs] == [(4, 8), (4, 16), (4, 32)]
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 3)
    with torch.device("meta"):
        imagenet = resnext(50, cardinality=32, bottleneck_width=4)
    assert (imagenet.layer1[0].conv2.groups, imagenet.layer1[0].conv2.in_channels) == (32, 128)
    with pytest.raises(ValueError, match="9n \\+ 2"):
        resnext_cifar(depth=28)
    with pytest.raises(ValueError, match="50, 101 or 152"):
        resnext(34, 32, 4)
