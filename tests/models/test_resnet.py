import pytest
import torch
import torchvision
from torch import nn

from cnnarch.models import create_model
from cnnarch.models.resnet import BasicBlock, Bottleneck, ResNet

DEPTHS = [18, 34, 50, 101, 152]


@pytest.mark.parametrize("depth", DEPTHS)
def test_depth_counts_the_papers_weighted_layers(depth):
    # The paper's depth: convolutions on the main path (not the projection shortcuts) plus the FC layer.
    with torch.device("meta"):
        model = create_model(f"resnet{depth}")
    main_path = [
        m for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and "downsample" not in name
    ]
    assert len(main_path) + 1 == depth


def test_stage_output_sizes_match_table_1(shape_model):
    # Table 1, "output size": conv1 112, conv2_x 56, conv3_x 28, conv4_x 14, conv5_x 7 for 224x224 input.
    model = shape_model("resnet50")
    sizes = {}
    for name in ["conv1", "layer1", "layer2", "layer3", "layer4"]:
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: sizes.update({name: o.shape}))
    model(torch.empty(0, 3, 224, 224))
    assert sizes == {
        "conv1": (0, 64, 112, 112),
        "layer1": (0, 256, 56, 56),
        "layer2": (0, 512, 28, 28),
        "layer3": (0, 1024, 14, 14),
        "layer4": (0, 2048, 7, 7),
    }


def test_v1_moves_the_stride_to_the_first_1x1(random_model):
    v15 = random_model("resnet50").eval()
    with torch.device("meta"):
        v1 = create_model("resnet50", variant="v1").eval()
    v1.load_state_dict(v15.state_dict(), strict=True, assign=True)  # same parameters, same names
    for model, conv1_stride, conv2_stride in [(v15, (1, 1), (2, 2)), (v1, (2, 2), (1, 1))]:
        first = model.layer2[0]
        assert (first.conv1.stride, first.conv2.stride) == (conv1_stride, conv2_stride)
        assert first.downsample[0].stride == (2, 2)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (v1(x) - v15(x)).abs().max() > 1e-3  # the parity test would notice the wrong variant


def test_basic_blocks_have_one_stride_placement():
    a, b = create_model("resnet18"), create_model("resnet18", variant="v1")
    assert str(a) == str(b)
    with pytest.raises(ValueError, match="variant"):
        create_model("resnet18", variant="v2")


def test_bottleneck_groups_and_width_are_torchvisions(randomize):
    # ResNeXt-50 32x4d exercises both: 32 groups of width 4 * 2**stage.
    with torch.device("meta"):
        reference = torchvision.models.resnext50_32x4d()
        ours = ResNet(Bottleneck, [3, 4, 6, 3], groups=32, width_per_group=4)
    reference = randomize(reference.to_empty(device="cpu")).eval()
    ours.load_state_dict(reference.state_dict(), strict=True, assign=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (ours.eval()(x) - reference(x)).abs().max() <= 1e-5


def test_zero_init_residual_starts_every_block_as_identity():
    model = create_model("resnet18", zero_init_residual=True)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8 and all((b.bn2.weight == 0).all() for b in blocks)
    block = Bottleneck(256, 64)
    nn.init.zeros_(block.bn3.weight)
    x = torch.rand(1, 256, 8, 8)  # nonnegative, as after a ReLU
    assert torch.equal(block(x), x)


def test_basic_block_refuses_grouped_widths():
    with pytest.raises(ValueError, match="groups=1"):
        BasicBlock(64, 64, groups=2)


def test_in_channels():
    model = create_model("resnet18", in_channels=1, num_classes=10)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)
