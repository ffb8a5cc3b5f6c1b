"""CIFAR ResNets (He et al. 4.2), their plain twins and the ImageNet plain nets."""

import pytest
import torch
import torch.nn.functional as F
import torchvision

from cnnarch.models import create_model
from cnnarch.models.resnet_cifar import CifarResNet, PlainBlock, ShortcutA


def _count(model):
    return sum(p.numel() for p in model.parameters())


def _cifar_resnet_params(n, num_classes=10):
    """6n + 2 layers: 3x3 conv (16) + BN; per block two 3x3 convs, two BNs; option A adds nothing."""
    total, cin = 9 * 3 * 16 + 2 * 16, 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += 9 * cin * width + 9 * width * width + 4 * width
            cin = width
    return total + 64 * num_classes + num_classes


# The paper's Table 6, parameters in millions.
@pytest.mark.parametrize(
    "depth, paper_millions, digits",
    [(20, 0.27, 2), (32, 0.46, 2), (44, 0.66, 2), (56, 0.85, 2), (110, 1.7, 1), (1202, 19.4, 1)],
)
def test_parameter_counts_match_table_6(depth, paper_millions, digits):
    model = create_model(f"resnet{depth}")  # on CPU: many small tensors initialise slower on meta
    count = _count(model)
    assert count == _cifar_resnet_params((depth - 2) // 6)
    assert round(count / 1e6, digits) == paper_millions


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_plain_twin_has_the_residual_nets_exact_parameters_under_option_a(depth):
    residual, plain = create_model(f"resnet{depth}"), create_model(f"plain{depth}")
    projection = create_model(f"resnet{depth}", shortcut="B")
    shapes = {k: v.shape for k, v in residual.state_dict().items()}
    assert {k: v.shape for k, v in plain.state_dict().items()} == shapes
    # option B adds two 1x1 projections with batch norm: 16 -> 32 and 32 -> 64 channels
    assert _count(projection) == _count(residual) + (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)


def test_option_a_shortcut_is_subsampled_identity_with_zero_channels():
    x = torch.randn(2, 16, 8, 8)
    y = ShortcutA(16, 32, stride=2)(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2], rtol=0, atol=0)
    assert not y[:, 16:].any()


def _randomize_bn(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


@torch.no_grad()
def test_residual_block_adds_the_shortcut_and_plain_block_does_not():
    residual = create_model("resnet20").eval()
    plain = create_model("plain20").eval()
    _randomize_bn(residual)
    plain.load_state_dict(residual.state_dict(), strict=True)
    x = torch.randn(2, 16, 16, 16)
    block, twin = residual.layer2[0], plain.layer2[0]  # the downsampling block: 16 -> 32 channels
    assert isinstance(twin, PlainBlock)
    body = block.bn2(block.conv2(F.relu(block.bn1(block.conv1(x)))))
    shortcut = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 0, 16))
    torch.testing.assert_close(block(x), F.relu(body + shortcut))
    torch.testing.assert_close(twin(x), F.relu(body))


def test_cifar_nets_train_on_32x32_images():
    model = create_model("resnet20", num_classes=100)
    assert isinstance(model, CifarResNet)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 100)
    out.sum().backward()
    assert model.conv1.weight.grad is not None
    with pytest.raises(ValueError, match="'A'.*'B'"):
        create_model("resnet20", shortcut="C")


@pytest.mark.parametrize("depth", [18, 34])
@torch.no_grad()
def test_imagenet_plain_nets_are_torchvision_resnets_without_shortcuts(depth, randomize):
    with torch.device("meta"):
        reference = getattr(torchvision.models, f"resnet{depth}")()
        plain = create_model(f"plain{depth}")
    reference = randomize(reference.to_empty(device="cpu")).eval()
    weights = {k: v for k, v in reference.state_dict().items() if ".downsample." not in k}
    assert len(weights) < len(reference.state_dict())
    plain.load_state_dict(weights, strict=True, assign=True)
    plain.eval()

    x = torch.randn(2, 3, 64, 64)
    r = reference
    h = r.maxpool(r.relu(r.bn1(r.conv1(x))))
    for stage in (r.layer1, r.layer2, r.layer3, r.layer4):
        for b in stage:
            h = F.relu(b.bn2(b.conv2(F.relu(b.bn1(b.conv1(h))))))
    expected = r.fc(torch.flatten(r.avgpool(h), 1))
    torch.testing.assert_close(plain(x), expected, rtol=1e-5, atol=1e-5)
