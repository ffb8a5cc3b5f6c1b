"""ZFNet against the paper's Fig. 3 (map sizes) and Table 3 (variant (b) widths)."""

import torch
import torch.nn.functional as F
from torch import nn

from cnnarch.models import create_model, input_size_range
from cnnarch.models._layers import LocalResponseNorm


def _maps_after_each_layer(model):
    """(channels, height) after each of the five convolutional layers, pooling and normalisation included."""
    sizes, x = [], torch.empty(2, 3, 224, 224, device="meta")
    for m in model.features:
        x = m(x)
        if isinstance(m, nn.Conv2d | nn.MaxPool2d | LocalResponseNorm):
            sizes.append((type(m).__name__, x.shape[1], x.shape[2]))
    return sizes


def test_map_sizes_are_those_of_figure_3():
    with torch.device("meta"):
        model = create_model("zfnet").eval()
    assert _maps_after_each_layer(model) == [
        ("Conv2d", 96, 110),
        ("MaxPool2d", 96, 55),
        ("LocalResponseNorm", 96, 55),
        ("Conv2d", 256, 26),
        ("MaxPool2d", 256, 13),
        ("LocalResponseNorm", 256, 13),
        ("Conv2d", 384, 13),
        ("Conv2d", 384, 13),
        ("Conv2d", 256, 13),
        ("MaxPool2d", 256, 6),
    ]
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size[0], c.stride[0]) for c in convs] == [(7, 2), (5, 2), (3, 1), (3, 1), (3, 1)]
    assert 224 in input_size_range(model)
    # named as the AlexNet of the 2012 paper, so that the two compare layer by layer
    with torch.device("meta"):
        alexnet = create_model("alexnet")
    assert model.state_dict().keys() == alexnet.state_dict().keys()


def test_parameter_count_from_the_layer_table():
    with torch.device("meta"):
        a, b = create_model("zfnet"), create_model("zfnet_b")

    def count(convs):
        total, cin = 0, 3
        for cout, k in convs:
            total, cin = total + k * k * cin * cout + cout, cout
        return total + (cin * 36 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)

    assert sum(p.numel() for p in a.parameters()) == count([(96, 7), (256, 5), (384, 3), (384, 3), (256, 3)])
    assert sum(p.numel() for p in b.parameters()) == count([(96, 7), (256, 5), (512, 3), (1024, 3), (512, 3)])


@torch.no_grad()
def test_first_layer_is_conv_relu_pool_then_contrast_normalisation(random_model):
    model = random_model("zfnet", num_classes=10).eval()
    x = torch.randn(1, 3, 224, 224)
    conv = model.features[0]
    y = F.max_pool2d(F.relu(F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1)), 3, 2, ceil_mode=True)
    # the paper's LRN: y / (2 + 1e-4 * sum of squares over 5 neighbouring maps) ** 0.75
    squares = F.pad(y.pow(2), (0, 0, 0, 0, 2, 2))
    window = sum(squares[:, i : i + y.shape[1]] for i in range(5))
    expected = y / (2 + 1e-4 * window) ** 0.75
    torch.testing.assert_close(model.features[:4](x), expected)
    assert model(x).shape == (1, 10)
