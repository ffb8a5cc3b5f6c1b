import pytest
import torch
from torch import nn

from cnnarch.models import create_model
from cnnarch.models.googlenet import GoogLeNetOutputs, Inception

# Table 1 of Szegedy et al. 2014, written out again: name, input channels, #1x1, #3x3 reduce, #3x3,
# #5x5 reduce, #5x5, pool proj.
TABLE_1 = [
    ("3a", 192, 64, 96, 128, 16, 32, 32),
    ("3b", 256, 128, 128, 192, 32, 96, 64),
    ("4a", 480, 192, 96, 208, 16, 48, 64),
    ("4b", 512, 160, 112, 224, 24, 64, 64),
    ("4c", 512, 128, 128, 256, 24, 64, 64),
    ("4d", 512, 112, 144, 288, 32, 64, 64),
    ("4e", 528, 256, 160, 320, 32, 128, 128),
    ("5a", 832, 256, 160, 320, 32, 128, 128),
    ("5b", 832, 384, 192, 384, 48, 128, 128),
]


def conv(k, c_in, c_out):  # weights and biases of a k x k convolution
    return k * k * c_in * c_out + c_out


def test_parameter_count_follows_table_1_and_section_5():
    stem = conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192)
    inceptions = sum(
        conv(1, c, a) + conv(1, c, b) + conv(3, b, c3) + conv(1, c, d) + conv(5, d, e) + conv(1, c, f)
        for _, c, a, b, c3, d, e, f in TABLE_1
    )
    classifier = 1024 * 1000 + 1000
    # Section 5: 1x1 conv to 128, FC 1024 on the 4x4x128 map, linear to 1000; on 4a (512) and 4d (528).
    aux = sum(conv(1, c, 128) + (4 * 4 * 128 * 1024 + 1024) + (1024 * 1000 + 1000) for c in (512, 528))
    with torch.device("meta"):
        without_aux, with_aux = create_model("googlenet", aux_logits=False), create_model("googlenet")
    assert sum(p.numel() for p in without_aux.parameters()) == stem + inceptions + classifier
    assert sum(p.numel() for p in with_aux.parameters()) == stem + inceptions + classifier + aux


def test_output_sizes_follow_table_1(shape_model):
    model = shape_model("googlenet").eval()
    expected = {  # Table 1's "output size" column on 224x224x3
        "conv1": (64, 112, 112),
        "maxpool1": (64, 56, 56),
        "conv3": (192, 56, 56),
        "maxpool2": (192, 28, 28),
        "inception3a": (256, 28, 28),
        "inception3b": (480, 28, 28),
        "maxpool3": (480, 14, 14),
        "inception4a": (512, 14, 14),
        "inception4b": (512, 14, 14),
        "inception4c": (512, 14, 14),
        "inception4d": (528, 14, 14),
        "inception4e": (832, 14, 14),
        "maxpool4": (832, 7, 7),
        "inception5a": (832, 7, 7),
        "inception5b": (1024, 7, 7),
        "avgpool": (1024, 1, 1),
        "fc": (1000,),
    }
    seen = {}
    for name in expected:
        getattr(model, name).register_forward_hook(lambda m, i, o, n=name: seen.update({n: o.shape[1:]}))
    model(torch.empty(0, 3, 224, 224))
    assert seen == expected


def test_stem_has_lrn_and_branches_have_real_5x5():
    with torch.device("meta"):
        model, tv_form = create_model("googlenet"), create_model("googlenet_tv")
    assert isinstance(model.norm1, nn.LocalResponseNorm) and isinstance(model.norm2, nn.LocalResponseNorm)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert model.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert tv_form.inception3a.branch3[1].conv.kernel_size == (3, 3)


def test_aux_classifiers_pool_4a_to_4x4_as_in_section_5(random_model):
    # At 224 the 5x5/3 pool alone gives 4x4 (the adaptive pool after it is then the identity).
    model = random_model("googlenet")
    x = torch.randn(1, 512, 14, 14)
    assert model.aux1.pool[0](x).shape == (1, 512, 4, 4)
    assert torch.equal(model.aux1.pool(x), model.aux1.pool[0](x))


@pytest.mark.parametrize("name", ["googlenet", "googlenet_tv"])
def test_aux_outputs_only_in_training(name, random_model):
    model = random_model(name, num_classes=10)
    assert model.aux_loss_weight == 0.3
    x = torch.randn(2, 3, 80, 80)
    out = model.train()(x)
    assert isinstance(out, GoogLeNetOutputs) and [t.shape for t in out] == [(2, 10)] * 3
    assert model.eval()(x).shape == (2, 10)
    no_aux = random_model(name, num_classes=10, aux_logits=False).train()
    assert no_aux.aux1 is None and no_aux(x).shape == (2, 10)


def test_own_initialization_gives_finite_varied_logits():
    model = create_model("googlenet", in_channels=1).eval()
    with torch.no_grad():
        y = model(torch.randn(4, 1, 64, 64))
    assert torch.isfinite(y).all() and y.std() > 0


def test_inception_module_concatenates_its_branches():
    block = Inception(192, 64, 96, 128, 16, 32, 32)
    assert block(torch.randn(1, 192, 28, 28)).shape == (1, 64 + 128 + 32 + 32, 28, 28)
