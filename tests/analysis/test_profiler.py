"""The profiler against independent oracles: sum(p.numel()), FlopCounterMode, forward hooks in a real
CPU pass, torchvision's published GMACs, and receptive fields written out by hand."""

import time

import pytest
import torch
import torchvision
from torch import nn

from cnnarch.analysis import LECTURE_INPUT, naive_inception, profile, reduced_inception
from cnnarch.analysis.published import is_torchvision_form, torchvision_metrics
from cnnarch.models import create_model, list_models


@pytest.mark.parametrize("name", list_models())
def test_params_and_flops_of_every_registered_model(name, zoo):
    model, p, torch_flops = zoo(name)
    unique = {id(t): t for t in model.parameters()}.values()
    assert p.params == sum(t.numel() for t in unique)
    # every parameter is in exactly one record, or in a module the forward skips
    in_records = sum(r.params for r in p.layers) + sum(b.extra["own_params"] for b in p.blocks)
    assert in_records + sum(n for _, n in p.unused) == p.params
    # FlopCounterMode counts 2 per multiply-accumulate of convolutions and matrix products and nothing
    # for biases, pooling, norms or activations: the profile's FLOPs convention, so no reconciling term
    assert p.flops == torch_flops
    assert p.flops == 2 * p.macs


TORCHVISION_EXTRA = ["squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x0_5", "inception_v3", "vit_b_32"]


@pytest.mark.parametrize("name", [n for n in list_models() if is_torchvision_form(n)] + TORCHVISION_EXTRA)
def test_torchvision_published_gmacs(name, zoo):
    """torchvision's weights metadata gives GMACs (its "_ops") to 3 decimals; ours must round to them."""
    meta = torchvision_metrics(name)
    if name in TORCHVISION_EXTRA:  # any nn.Module: torchvision's own builders
        with torch.device("meta"):
            model = torchvision.models.get_model(name, **({"init_weights": False} if "incep" in name else {}))
        p = profile(model, (3, 299, 299) if name == "inception_v3" else (3, 224, 224))
    else:
        _, p, _ = zoo(name)
        assert p.input_shape == (1, 3, 224, 224)
    assert f"{p.macs / 1e9:.3f}" == f"{meta['_ops']:.3f}"
    # torchvision counts Inception-v3's auxiliary head but not GoogLeNet's
    assert meta["num_params"] in (p.params, p.inference_params)


class Functional(nn.Module):
    """Operators in forward (cat, sum, flatten, F.relu), a module called twice, an unused module."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(3, 8, 5, padding=2, stride=1)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 4 * 4, 10)
        self.never = nn.Linear(3, 3)

    def forward(self, x):
        y = torch.cat([self.act(self.a(x)), torch.relu(self.b(x))], 1)
        y = self.act(y + y)
        return self.fc(torch.flatten(self.pool(y), 1))


def hook_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple]]:
    """Every leaf module call's output shape, as forward hooks see it in a real CPU pass."""
    seen = []
    names = {m: n for n, m in model.named_modules()}
    hooks = [
        m.register_forward_hook(lambda m, i, o: seen.append((names[m], tuple(o.shape))))
        for m in model.modules()
        if not list(m.children())
    ]
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    return seen


SMALL = [
    (Functional, (3, 8, 8)),
    (lambda: torchvision.models.resnet18(num_classes=10), (3, 32, 32)),
    (lambda: torchvision.models.googlenet(num_classes=10, init_weights=False), (3, 64, 64)),
    (reduced_inception, (256, 6, 6)),
    (lambda: create_model("resnet20"), (3, 32, 32)),  # the zoo's CIFAR ResNet: strided-slice shortcuts
]


@pytest.mark.parametrize("build,size", SMALL)
def test_shapes_match_hooks_and_meta_bytes_match_cpu(build, size):
    model = build()
    cpu = profile(model, size, device="cpu")
    meta = profile(model, size)  # a CPU model profiled on meta: parameters swapped, model untouched
    assert all(p.device.type == "cpu" for p in model.parameters())
    expected = hook_shapes(model, torch.randn(1, *size))
    got = [(r.name.split("#")[0], r.output_shape) for r in meta.layers if r.kind == "module"]
    assert got == expected
    assert [r.activation_bytes for r in meta.layers] == [r.activation_bytes for r in cpu.layers]
    assert [(r.name, r.macs, r.rf, r.jump) for r in meta.layers] == [
        (r.name, r.macs, r.rf, r.jump) for r in cpu.layers
    ]
    assert meta.activation_bytes == cpu.activation_bytes


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "fractalnet20"])
def test_collapsed_rows_add_up(name, zoo):
    p = zoo(name)[1]
    for depth in (1, 2):
        rows = p.rows(depth)
        assert sum(r.macs for r in rows) == p.macs
        assert sum(r.activation_bytes for r in rows) + p.input_bytes == p.activation_bytes
        own = sum(b.extra["own_params"] for b in p.blocks if b.level > depth)
        assert sum(r.params for r in rows) == p.inference_params - own
        assert all(r.level <= depth for r in rows)


def test_functional_ops_become_records():
    p = profile(Functional(), (3, 8, 8))
    by_name = {r.name: r for r in p.layers}
    assert by_name["cat"].output_shape == (1, 16, 8, 8)
    assert by_name["cat"].activation_bytes == 16 * 8 * 8 * 4
    assert by_name["add"].activations == 16 * 8 * 8
    assert by_name["act#2"].kind == "module"  # the same ReLU, called a second time
    assert "flatten" not in by_name and "view" not in by_name  # views allocate nothing: no record
    assert p.unused == [("never", 12)]
    # input + a, act (not in place), b, relu, cat, add, act#2, pool, fc
    values = 3 * 64 + 8 * 64 * 4 + 16 * 64 * 3 + 16 * 16 + 10
    assert p.activations_per_image == values
    assert p.forward_bytes_per_image == 4 * values


def test_inplace_relu_allocates_nothing_and_dtype_counts():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Dropout())
    p32 = profile(net, (3, 10, 10))
    assert [r.activation_bytes for r in p32.layers] == [4 * 8 * 8 * 4, 0, 0]
    p16 = profile(net, (3, 10, 10), dtype=torch.bfloat16)
    assert p16.activation_bytes * 2 == p32.activation_bytes
    assert p16.param_bytes * 2 == p32.param_bytes


def rf_of_stack(layers):
    """rf = 1 + sum (k - 1) * jump, jump = product of the strides before: written out independently."""
    rf, jump = 1, 1
    for k, s in layers:
        rf += (k - 1) * jump
        jump *= s
    return rf, jump


def test_three_3x3_see_what_one_7x7_sees():
    three = nn.Sequential(*(nn.Conv2d(4, 4, 3, padding=1) for _ in range(3)))
    one = nn.Conv2d(4, 4, 7, padding=3)
    assert profile(three, (4, 32, 32)).rf == profile(one, (4, 32, 32)).rf == (7, 7)
    assert [r.rf[0] for r in profile(three, (4, 32, 32)).layers] == [3, 5, 7]


def test_receptive_field_through_strides_dilation_branches_and_sums():
    stack = nn.Sequential(nn.Conv2d(3, 4, 5, stride=2), nn.MaxPool2d(3, 2), nn.Conv2d(4, 4, 3, dilation=2))
    p = profile(stack, (3, 64, 64))
    assert p.rf == (rf_of_stack([(5, 2), (3, 2), (5, 1)])[0],) * 2
    assert p.jump == (4, 4)
    # branches: the longest path wins; a sum with the identity keeps the larger field
    assert profile(naive_inception(), LECTURE_INPUT).rf == (5, 5)
    assert profile(reduced_inception(), LECTURE_INPUT).layers[-1].rf == (5, 5)

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return x + self.c2(self.c1(x))

    assert profile(Residual(), (4, 9, 9)).rf == (5, 5)

    class Subsample(nn.Module):  # CIFAR ResNet's option-A shortcut: x[:, :, ::2, ::2]
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.c(x)[:, :, ::2, ::2]

    p = profile(Subsample(), (3, 9, 9))
    assert (p.rf, p.jump) == ((3, 3), (2, 2))


def test_resnet18_receptive_field_by_hand():
    p = profile(torchvision.models.resnet18(), (3, 224, 224))
    main_path = [(7, 2), (3, 2)] + [(3, 1)] * 4
    for _ in range(3):
        main_path += [(3, 2)] + [(3, 1)] * 3
    rf, jump = rf_of_stack(main_path)
    last_conv = [r for r in p.layers if r.type == "Conv2d"][-1]
    assert last_conv.rf == (rf, rf) and last_conv.jump == (jump, jump)
    assert p.rf is None  # after global pooling and the classifier: the whole input


def test_depth_counts_the_longest_weighted_path(zoo):
    assert zoo("resnet152")[1].depth == 152
    assert zoo("resnet18")[1].depth == 18
    with torch.device("meta"):
        assert profile(torchvision.models.vgg11()).depth == 11


def test_meta_is_fast_and_leaves_the_model_alone(zoo):
    model = zoo("resnet152")[0]  # the registry's input-size guard has searched its sizes already
    model.train()
    start = time.perf_counter()
    p = profile(model)
    elapsed = time.perf_counter() - start
    assert p.device == "meta"
    assert elapsed < 2.0, f"ResNet-152 on meta took {elapsed:.2f} s"  # ~0.2 s on a quiet machine
    assert model.training  # mode restored


def test_images_that_fit():
    p = profile(nn.Conv2d(3, 8, 3, padding=1), (3, 10, 10))
    per_image = 4 * (3 * 100 + 8 * 100)
    assert p.forward_bytes_per_image == per_image
    assert p.images_that_fit(1e6, training=False, with_params=False) == int(1e6 // per_image)
    assert p.images_that_fit(1e6, training=True) == int((1e6 - 2 * 4 * 224) // (2 * per_image))


def test_clear_errors():
    with pytest.raises(ValueError, match="3x224x224"):
        profile(nn.Conv2d(3, 3, 3), "3by224")
    with pytest.raises(ValueError, match="too small"):
        profile(nn.Conv2d(3, 3, 5), (3, 2, 2))


def test_other_ops_convention_by_hand():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2))
    p = profile(net, (3, 8, 8))
    conv, bn, relu, pool = p.layers
    assert (conv.macs, conv.other_ops) == (4 * 8 * 8 * 3 * 3 * 3, 0)  # bias adds are not counted
    assert (bn.macs, bn.other_ops) == (0, 2 * 4 * 8 * 8)
    assert (relu.macs, relu.other_ops) == (0, 4 * 8 * 8)
    assert (pool.macs, pool.other_ops) == (0, 4 * 4 * 4 * 2 * 2)
    assert (pool.rf, pool.jump) == ((4, 4), (2, 2))


def test_train_mode_runs_the_training_forward():
    net = nn.Sequential(nn.Conv1d(2, 10, 1), nn.Dropout(0.5)).eval()
    assert profile(net, (2, 1)).layers[1].activation_bytes == 0  # eval: dropout is the identity
    assert profile(net, (2, 1), train=True).layers[1].activation_bytes == 10 * 4  # a new output
    assert not net.training  # the caller's mode is restored
