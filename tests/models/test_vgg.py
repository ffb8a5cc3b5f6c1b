import pytest
import torch
from torch import nn

# The lecture's VGG16 table: per layer, activation count ("memory") and weights ("params", no biases).
LECTURE_VGG16 = [
    ("CONV3-64", 224 * 224 * 64, (3 * 3 * 3) * 64),
    ("CONV3-64", 224 * 224 * 64, (3 * 3 * 64) * 64),
    ("POOL2", 112 * 112 * 64, 0),
    ("CONV3-128", 112 * 112 * 128, (3 * 3 * 64) * 128),
    ("CONV3-128", 112 * 112 * 128, (3 * 3 * 128) * 128),
    ("POOL2", 56 * 56 * 128, 0),
    ("CONV3-256", 56 * 56 * 256, (3 * 3 * 128) * 256),
    ("CONV3-256", 56 * 56 * 256, (3 * 3 * 256) * 256),
    ("CONV3-256", 56 * 56 * 256, (3 * 3 * 256) * 256),
    ("POOL2", 28 * 28 * 256, 0),
    ("CONV3-512", 28 * 28 * 512, (3 * 3 * 256) * 512),
    ("CONV3-512", 28 * 28 * 512, (3 * 3 * 512) * 512),
    ("CONV3-512", 28 * 28 * 512, (3 * 3 * 512) * 512),
    ("POOL2", 14 * 14 * 512, 0),
    ("CONV3-512", 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("CONV3-512", 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("CONV3-512", 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("POOL2", 7 * 7 * 512, 0),
    ("FC", 4096, 7 * 7 * 512 * 4096),
    ("FC", 4096, 4096 * 4096),
    ("FC", 1000, 4096 * 1000),
]


def test_vgg16_matches_the_lectures_table(shape_model):
    model = shape_model("vgg16").eval()
    layers = [
        m for m in [*model.features, *model.classifier] if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.Linear)
    ]
    assert len(layers) == len(LECTURE_VGG16)
    seen = []
    for m in layers:
        m.register_forward_hook(lambda m, i, o: seen.append(o.shape[1:].numel()))
    model(torch.empty(0, 3, 224, 224))
    assert seen == [memory for _, memory, _ in LECTURE_VGG16]
    assert [m.weight.numel() if hasattr(m, "weight") else 0 for m in layers] == [
        p for _, _, p in LECTURE_VGG16
    ]
    assert round(sum(p.numel() for p in model.parameters()) / 1e6) == 138  # "TOTAL params: 138M"


@pytest.mark.parametrize(
    ("name", "weight_layers", "millions"),
    # Table 2 of the paper: number of parameters (in millions) of configurations A, B, D, E.
    [("vgg11", 11, 133), ("vgg13", 13, 133), ("vgg16", 16, 138), ("vgg19", 19, 144)],
)
@pytest.mark.parametrize("bn", ["", "_bn"])
def test_depth_and_size_follow_tables_1_and_2(name, weight_layers, millions, bn, shape_model):
    model = shape_model(name + bn)
    assert sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules()) == weight_layers
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == (weight_layers - 3 if bn else 0)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6) == millions
