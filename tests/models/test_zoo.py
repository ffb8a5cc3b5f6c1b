"""Every registered model, the later families included: built by name for one-channel images, trained
one step and evaluated at its smallest valid input, traced with ``torch.jit.trace``; one network per
forward code path under ``torch.compile``."""

import inspect

import pytest
import torch

from cnnarch.models import first_conv, get_model_entry, list_models, min_input_size

ALL = list_models()


def outputs(y):
    """The logits, or in training mode the logits and any auxiliary logits (GoogLeNet)."""
    return [y] if isinstance(y, torch.Tensor) else [t for t in y if t is not None]


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_train_and_eval_at_the_smallest_input(name, random_model):
    builder_args = inspect.signature(get_model_entry(name).builder).parameters
    assert "num_classes" in builder_args and "in_channels" in builder_args
    in_channels = 1
    kwargs = {"in_channels": in_channels}
    if name.startswith("fractalnet"):  # drop-path leaves dropped columns without gradient
        kwargs.update(drop_path_local=0.0, drop_path_global=0.0)
    model = random_model(name, num_classes=10, **kwargs).train()

    assert first_conv(model).in_channels == in_channels  # the registry's declared first_conv
    size = min_input_size(model, in_channels)
    # Below 32 pixels the deepest feature maps are 1x1, where training-mode batch norm normalizes just
    # N values per channel; with N = 2 its backward divides by their tiny spread, 50 blocks in a row,
    # and the gradients of a ResNet overflow. Above, 2 images keep the big networks quick.
    n = 8 if size < 32 else 2
    ys = outputs(model(torch.randn(n, in_channels, size, size)))
    assert all(y.shape == (n, 10) and torch.isfinite(y).all() for y in ys)
    sum(y.sum() for y in ys).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} gets no gradient"
        norm = torch.linalg.vector_norm(p.grad)  # one pass, no temporary: VGG's FC6 has 103M entries
        assert torch.isfinite(norm) and norm > 0, f"{pname}: gradient norm {norm}"

    model.eval()
    eval_size = min_input_size(model, in_channels)
    assert eval_size <= size
    with torch.no_grad():
        y = model(torch.randn(2, in_channels, eval_size, eval_size))
    assert isinstance(y, torch.Tensor) and y.shape == (2, 10) and torch.isfinite(y).all()


def test_the_issue_names_seventeen_models():
    names = ["alexnet", "alexnet_tv", "googlenet", "googlenet_tv"]
    names += [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
    names += [f"resnet{d}" for d in (18, 34, 50, 101, 152)]
    assert len(names) == 17 and set(names) <= set(ALL)


def _eval_at_smallest_input(random_model, name):
    model = random_model(name, num_classes=10, in_channels=1).eval()
    size = min_input_size(model, 1)
    return model, torch.randn(1, 1, size, size)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_torch_jit_trace_gives_the_eager_logits(name, random_model):
    model, x = _eval_at_smallest_input(random_model, name)
    with torch.no_grad():
        expected = model(x)
        traced = torch.jit.trace(model, x, check_trace=False)  # the comparison below is the check
        got = traced(x)
    assert traced.inlined_graph.findAllNodes("aten::_convolution")  # recorded, not a Python fallback
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


# The whole zoo but resnet1202, which runs resnet20's Python 1202 layers deep: capturing it alone takes
# half a minute here (about as long as the other 48 together).
COMPILED = [name for name in list_models() if name != "resnet1202"]


@pytest.mark.slow
@pytest.mark.parametrize("name", COMPILED)
def test_torch_compile_captures_the_whole_forward(name, random_model):
    # The "eager" backend runs what dynamo captured without generating code; fullgraph=True fails on
    # any graph break, such as a shape check that dynamo cannot follow.
    model, x = _eval_at_smallest_input(random_model, name)
    torch.compiler.reset()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=0, atol=0)


@pytest.mark.slow
def test_torch_compile_trains_a_network_as_eager_does(random_model):
    # aot_eager also captures the backward pass (no code generation); training-mode batch norm included.
    model = random_model("resnet20")
    x = torch.randn(2, 3, 8, 8)
    model(x).square().mean().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.compiler.reset()
    torch.compile(model, backend="aot_eager", fullgraph=True)(x).square().mean().backward()
    for p, grad in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, grad)
