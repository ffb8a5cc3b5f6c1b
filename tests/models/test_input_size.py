"""The input-size check every network of the zoo runs first, its declared sizes against torchvision's
metadata and torch's own layers in training mode, and the registry around it (the declared eval-mode
sizes against torch's layers: test_registry.py)."""

import pickle
import sys

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnarch.models import (
    check_input,
    create_model,
    get_model_entry,
    input_size_range,
    list_models,
    min_input_size,
)

# our torchvision-form models -> torchvision's name for the same network
TORCHVISION_FORM = {
    "alexnet_tv": "alexnet",
    "googlenet_tv": "googlenet",
    **{
        name: name
        for name in list_models("resnet*") + list_models("vgg*")
        if name in torchvision.models.list_models()
    },
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_FORM))
def test_min_input_size_agrees_with_torchvision_metadata(name, shape_model):
    weights = torchvision.models.get_model_weights(TORCHVISION_FORM[name])
    min_h, min_w = next(iter(weights)).meta["min_size"]  # metadata only: nothing is downloaded
    model = shape_model(name)
    assert min_input_size(model.eval()) == min_h == min_w
    assert min_input_size(model.train()) == min_h  # aux classifiers (googlenet_tv) included


def _unchecked(monkeypatch, model):
    """``model`` with the check of its forward switched off, so that torch's own layers answer."""
    monkeypatch.setattr(sys.modules[type(model).__module__], "check_input", lambda *_: None)
    return model


def test_training_sizes_agree_with_what_torch_runs(shape_model, monkeypatch):
    # googlenet's range depends on the mode: its aux heads run in training mode (and it has no batch
    # norm, which would refuse an empty batch). Empty batches at the bound and one pixel less, through
    # the network with its check switched off; without aux heads its eval range holds.
    model = _unchecked(monkeypatch, shape_model("googlenet")).train()
    smallest = input_size_range(model, 3).smallest
    assert smallest > input_size_range(model, 3, training=False).smallest
    model(torch.empty(0, 3, smallest, smallest))
    with pytest.raises(RuntimeError):
        model(torch.empty(0, 3, smallest - 1, smallest))
    plain = shape_model("googlenet", aux_logits=False).train()
    assert input_size_range(plain) == input_size_range(plain, training=False)


def test_too_small_input_fails_before_any_convolution():
    model = create_model("resnet18").eval()
    calls = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_pre_hook(lambda *_: calls.append(1))
    with pytest.raises(ValueError, match=r"resnet18 accepts inputs of at least 1x1 pixels; got 0x5"):
        model(torch.randn(1, 3, 0, 5))
    assert calls == []
    model(torch.randn(1, 3, 1, 5))
    assert len(calls) == 20


def test_check_is_invisible_to_hooks_and_flop_counters():
    model = create_model("resnet18").eval()
    seen = []
    for m in model.modules():
        m.register_forward_hook(lambda m, i, o: seen.append(o.device.type))
    x = torch.randn(1, 3, 32, 32)
    counts = []
    for _ in range(2):  # both calls run the check, which runs no layer
        with FlopCounterMode(display=False) as counter:
            model(x)
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0
    assert set(seen) == {"cpu"} and len(seen) % 2 == 0
    assert seen[: len(seen) // 2] == seen[len(seen) // 2 :]  # each call saw the same module calls


def test_checked_model_pickles_and_keeps_its_check():
    model = pickle.loads(pickle.dumps(create_model("resnet18")))
    with pytest.raises(ValueError, match="at least 1x1"):
        model(torch.randn(1, 3, 0, 0))


def test_unknown_model_lists_close_names():
    with pytest.raises(ValueError, match=r"unknown model 'resnet5'.*resnet50"):
        create_model("resnet5")


class Tiny(nn.Module):
    """A 5x5 convolution, so 5x5 is the smallest input."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1, self.fc = nn.Conv2d(3, 8, 5), nn.Linear(8, num_classes)

    def forward(self, x):
        check_input(self, x)
        return self.fc(self.conv1(x).mean((2, 3)))


def test_registry_keeps_builders_and_names_the_model(monkeypatch):
    from cnnarch.models import _registry

    monkeypatch.setattr(_registry, "_MODELS", dict(_registry._MODELS))  # registered for this test only

    @_registry.register_model(paper="a test", preprocessing=_registry.Preprocessing(8, 8), min_input_size=5)
    def tiny(num_classes: int = 10) -> nn.Module:
        """A 5x5 convolution, so 5x5 is the smallest input."""
        return Tiny(num_classes)

    assert get_model_entry("tiny").builder is tiny  # registered as written, not wrapped
    model = create_model("tiny")
    assert model(torch.randn(1, 3, 5, 5)).shape == (1, 10)
    with pytest.raises(ValueError, match=r"tiny accepts inputs of at least 5x5 pixels; got 4x9"):
        model(torch.randn(1, 3, 4, 9))
    assert tiny.__doc__.startswith("A 5x5 convolution")  # cnnarch info shows the builder's docstring
    # Built directly, outside the registry, the network declares nothing: torch's own layers refuse
    with pytest.raises(RuntimeError):
        tiny()(torch.randn(1, 3, 4, 9))


def test_wrong_channel_count_is_refused_naming_the_expected_one():
    model = create_model("resnet20").eval()
    with pytest.raises(ValueError, match=r"resnet20 expects 3 input channels, got 5; .*in_channels=5"):
        model(torch.randn(1, 5, 32, 32))
    assert create_model("resnet20", in_channels=5).eval()(torch.randn(1, 5, 32, 32)).shape == (1, 10)


def test_a_new_stem_changes_the_channels_the_check_expects():
    model = create_model("resnet20").eval()
    model(torch.randn(1, 3, 8, 8))  # remembers: 3 channels, at least 1x1
    model.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)  # a grey-scale stem, as in fine-tuning
    assert model(torch.randn(1, 1, 8, 8)).shape == (1, 10)  # the declared first_conv is read afresh


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["resnet18", "googlenet", "alexnet", "vgg11_bn"])
def test_check_on_cuda_finds_the_same_sizes(name, shape_model):
    # The sizes are arithmetic on the layers' settings, whatever the device; a CUDA input is refused too.
    cpu = shape_model(name)
    gpu = shape_model(name).cuda()
    for training in (True, False):
        assert input_size_range(gpu, training=training) == input_size_range(cpu, training=training)
    size = min_input_size(gpu.eval())
    with pytest.raises(ValueError, match=f"at least {size}x{size}|{size}x{size} to"):
        gpu(torch.empty(1, 3, size - 1, size - 1, device="cuda"))


@pytest.mark.parametrize(
    "name, input_size, message",
    [
        ("alexnet", (3, 300, 300), "alexnet accepts inputs of 227x227 to 258x258 pixels"),
        ("alexnet", (5, 227, 227), "alexnet expects 3 input channels, got 5"),
        ("googlenet", (3, 16, 16), "googlenet accepts inputs of at least 31x31 pixels"),
    ],
)
def test_analyzer_on_meta_says_what_a_forward_pass_says(name, input_size, message, shape_model):
    from cnnarch.analysis import profile

    model = shape_model(name).eval()
    with pytest.raises(ValueError, match=message) as forward:
        model(torch.empty(1, *input_size))
    with pytest.raises(ValueError) as on_meta:
        profile(model, input_size)
    assert str(on_meta.value) == str(forward.value)


def test_analyzer_says_a_module_outside_the_registry_got_too_small_an_input():
    from cnnarch.analysis import profile

    with pytest.raises(ValueError, match=r"input 3x5x5 is too small for Sequential .*try a larger --input"):
        profile(nn.Sequential(nn.Conv2d(3, 3, 5), nn.MaxPool2d(2)), (3, 5, 5))
