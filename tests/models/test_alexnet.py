import pytest
import torch
from torch import nn

from cnnarch.models import create_model
from cnnarch.models._layers import LocalResponseNorm


def conv(k, c_in, c_out, groups=1):  # weights and biases of a k x k convolution
    return k * k * (c_in // groups) * c_out + c_out


def fc(n_in, n_out):
    return n_in * n_out + n_out


@pytest.mark.parametrize("groups", [2, 1])
def test_parameter_count_follows_the_paper(groups, shape_model):
    # Section 3.5 / Figure 2: CONV2, CONV4, CONV5 see only their own GPU's half of the previous maps.
    expected = (
        conv(11, 3, 96)
        + conv(5, 96, 256, groups)
        + conv(3, 256, 384)
        + conv(3, 384, 384, groups)
        + conv(3, 384, 256, groups)
        + fc(6 * 6 * 256, 4096)
        + fc(4096, 4096)
        + fc(4096, 1000)
    )
    if groups == 2:
        assert expected == 60_965_224  # the "60 million parameters" of the abstract
    model = shape_model("alexnet", groups=groups)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_lecture_shapes_layer_by_layer_on_227(shape_model):
    model = shape_model("alexnet").eval()
    # The lecture's table (H x W x C); NORM1/NORM2 follow the paper's order, before the pools.
    expected = {
        "conv1": (55, 55, 96),
        "norm1": (55, 55, 96),
        "pool1": (27, 27, 96),
        "conv2": (27, 27, 256),
        "norm2": (27, 27, 256),
        "pool2": (13, 13, 256),
        "conv3": (13, 13, 384),
        "conv4": (13, 13, 384),
        "conv5": (13, 13, 256),
        "pool3": (6, 6, 256),
        "fc6": (4096,),
        "fc7": (4096,),
        "fc8": (1000,),
    }
    seen = {}
    for name, module in [*model.features.named_children(), *model.classifier.named_children()]:
        if name in expected:
            module.register_forward_hook(
                lambda m, i, o, n=name: seen.update(
                    {n: (*o.shape[2:], o.shape[1]) if o.dim() == 4 else o.shape[1:]}
                )
            )
    model(torch.empty(0, 3, 227, 227))
    assert seen == expected
    # The lecture's parameter count of CONV1 (weights only), and none in a pooling layer.
    assert model.features.conv1.weight.numel() == (11 * 11 * 3) * 96 == 34848
    assert list(model.features.pool1.parameters()) == []


def test_two_gpu_split_and_one_tower(shape_model):
    split, tower = shape_model("alexnet"), shape_model("alexnet", groups=1)
    names = ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert [getattr(split.features, n).groups for n in names] == [1, 2, 1, 2, 2]
    assert [getattr(tower.features, n).groups for n in names] == [1] * 5
    with pytest.raises(ValueError, match="groups"):
        create_model("alexnet", groups=4)


def test_lrn_and_dropout_follow_the_paper(shape_model):
    model = shape_model("alexnet")
    for norm in (model.features.norm1, model.features.norm2):
        assert isinstance(norm, LocalResponseNorm)
        assert (norm.size, norm.alpha_per_term, norm.beta, norm.k) == (5, 1e-4, 0.75, 2.0)
    # ReLU, then LRN, then the pool (Section 3.5); dropout on the outputs of FC6 and FC7 (Section 4.2).
    assert list(model.features.named_children())[1:4] == [
        ("relu1", model.features.relu1),
        ("norm1", model.features.norm1),
        ("pool1", model.features.pool1),
    ]
    layers = [type(m) for m in model.classifier]
    assert layers == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert all(m.p == 0.5 for m in model.classifier if isinstance(m, nn.Dropout))


def test_initialization_is_the_papers():
    model = create_model("alexnet")
    ones = {"conv2", "conv4", "conv5", "fc6", "fc7"}
    for name, m in [*model.features.named_children(), *model.classifier.named_children()]:
        if isinstance(m, nn.Conv2d | nn.Linear):
            assert torch.all(m.bias == (1.0 if name in ones else 0.0)), name
            assert abs(m.weight.std().item() - 0.01) < 1e-3, name


def test_input_other_than_227_to_258_is_refused_before_any_convolution(shape_model):
    model = shape_model("alexnet").eval()
    convs = []
    model.features.conv1.register_forward_pre_hook(lambda *_: convs.append(1))
    for size in (32, 226, 259):
        with pytest.raises(
            ValueError, match=r"of 227x227 to 258x258 .*fixed input size.*got \d+x\d+.*Resize\(\(227, 227\)\)"
        ):
            model(torch.empty(0, 3, size, size))
    assert convs == []
    assert model(torch.empty(0, 3, 227, 227)).shape == (0, 1000)
    assert model(torch.empty(0, 3, 258, 258)).shape == (0, 1000)


def test_torchvision_form_is_single_tower_without_lrn(shape_model):
    model = shape_model("alexnet_tv")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 192, 384, 256, 256]
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in model.modules())
