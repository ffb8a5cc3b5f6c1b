"""Wide ResNets: the paper's parameter counts from layer arithmetic, the pre-activation block written out,
torchvision parity for the ImageNet WRN-50-2 / WRN-101-2."""

import pytest
import torch
import torch.nn.functional as F
import torchvision

from cnnarch.models import create_model
from cnnarch.models.wide_resnet import WideBasic, wrn


def _wrn_params(depth, k, num_classes=10):
    """conv1 16 channels; per block BN(in) + 3x3 + BN + 3x3 (+ 1x1 shortcut where the width changes);
    final BN and FC. No convolution biases."""
    n = (depth - 4) // 6
    total, cin = 3 * 16 * 9, 16
    for width in (16 * k, 32 * k, 64 * k):
        for b in range(n):
            total += 2 * cin + 9 * cin * width + 2 * width + 9 * width * width
            total += cin * width if b == 0 else 0
            cin = width
    return total + 2 * cin + cin * num_classes + num_classes


# The parameter counts the paper prints for these networks, in millions.
@pytest.mark.parametrize(
    "name, depth, k, paper_millions",
    [("wrn16_4", 16, 4, 2.7), ("wrn16_8", 16, 8, 11.0), ("wrn28_10", 28, 10, 36.5), ("wrn40_4", 40, 4, 8.9)],
)
def test_parameter_counts_match_the_paper(name, depth, k, paper_millions):
    with torch.device("meta"):
        model = create_model(name)
    count = sum(p.numel() for p in model.parameters())
    assert count == _wrn_params(depth, k)
    assert round(count / 1e6, 1) == paper_millions


def test_block_is_preactivation_with_dropout_between_the_convolutions():
    block = WideBasic(4, 8, stride=2, drop_prob=0.5).train()
    for bn in (block.bn1, block.bn2):
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    x = torch.randn(2, 4, 8, 8)
    torch.manual_seed(1)
    out = block(x)
    torch.manual_seed(1)
    o = F.relu(block.bn1(x))
    y = F.conv2d(o, block.conv1.weight, stride=2, padding=1)
    y = F.dropout(F.relu(block.bn2(y)), 0.5, training=True)
    expected = F.conv2d(y, block.conv2.weight, padding=1) + F.conv2d(o, block.shortcut.weight, stride=2)
    torch.testing.assert_close(out, expected)
    assert WideBasic(8, 8).shortcut is None  # identity where the shape does not change


def test_forward_on_cifar_images_and_depth_check():
    model = wrn(10, 2, drop_prob=0.3, num_classes=7)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    with pytest.raises(ValueError, match="6N \\+ 4"):
        wrn(20, 2)


@pytest.mark.parametrize(
    "name, reference",
    [
        ("wide_resnet50_2", torchvision.models.wide_resnet50_2),
        ("wide_resnet101_2", torchvision.models.wide_resnet101_2),
    ],
)
def test_imagenet_wide_resnets_load_torchvision_weights_and_give_its_logits(
    name, reference, torchvision_parity
):
    torchvision_parity(name, reference)
