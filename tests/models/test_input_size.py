"""The input-size guard every registered model carries, and ``min_input_size`` against torchvision's
own metadata."""

import pickle

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnarch.models import create_model, list_models, min_input_size

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


def test_search_works_on_any_module():
    # 3x3 convolution without padding, then 2x2 pooling: the first size that works is 4.
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Flatten())
    assert min_input_size(model) == 4
    assert min_input_size(nn.Sequential(nn.Conv2d(1, 4, 5)), in_channels=1) == 5
    with pytest.raises(ValueError, match="no input with 2 channels"):
        min_input_size(model, in_channels=2)


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


def test_search_is_invisible_to_hooks_and_flop_counters():
    model = create_model("resnet18").eval()
    seen = []
    for m in model.modules():
        m.register_forward_hook(lambda m, i, o: seen.append(o.device.type))
    x = torch.randn(1, 3, 32, 32)
    counts = []
    for _ in range(2):  # the first call runs the search, the second finds it cached
        with FlopCounterMode(display=False) as counter:
            model(x)
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0
    assert set(seen) == {"cpu"} and len(seen) % 2 == 0
    assert seen[: len(seen) // 2] == seen[len(seen) // 2 :]  # each call saw the same module calls


def test_guarded_model_pickles_and_keeps_its_guard():
    model = pickle.loads(pickle.dumps(create_model("resnet18")))
    with pytest.raises(ValueError, match="at least 1x1"):
        model(torch.randn(1, 3, 0, 0))


def test_unknown_model_lists_close_names():
    with pytest.raises(ValueError, match=r"unknown model 'resnet5'.*resnet50"):
        create_model("resnet5")


def test_every_registered_builder_gets_the_guard(monkeypatch):
    from cnnarch.models import _registry

    monkeypatch.setattr(_registry, "_MODELS", dict(_registry._MODELS))  # registered for this test only

    @_registry.register_model(paper="a test", input_size=(3, 8, 8))
    def tiny(num_classes: int = 10) -> nn.Module:
        """A 5x5 convolution, so 5x5 is the smallest input."""
        return nn.Sequential(
            nn.Conv2d(3, 8, 5), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes)
        )

    model = create_model("tiny")
    assert model(torch.randn(1, 3, 5, 5)).shape == (1, 10)
    with pytest.raises(ValueError, match=r"tiny accepts inputs of at least 5x5 pixels; got 4x9"):
        model(torch.randn(1, 3, 4, 9))
    assert tiny.__doc__.startswith("A 5x5 convolution")  # cnnarch info shows the builder's docstring
