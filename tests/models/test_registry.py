"""What the registry declares about each network, proven against the built network: the first
convolution and the classifier against the layers a forward pass reaches, the input sizes against what
torch's own layers run (googlenet's training mode: test_input_size.py), the preprocessing against
torchvision's weight transforms."""

import sys
from types import SimpleNamespace

import pytest
import torch
import torchvision
from torch import nn
from torchvision.transforms import InterpolationMode

from cnnarch.models import (
    classifiers,
    create_model,
    first_conv,
    get_model_entry,
    list_models,
)
from cnnarch.models.weights import TORCHVISION_TWINS

NUM_CLASSES = 7  # no hidden layer of the zoo has 7 units


def _reached(model, x):
    """(module path, module, its first input, its output) of every leaf module, in the order a forward
    pass of ``x`` runs them."""
    names = {m: n for n, m in model.named_modules()}
    calls = []
    hooks = [
        m.register_forward_hook(lambda m, args, out: calls.append((names[m], m, args[0], out)))
        for m in model.modules()
        if next(m.children(), None) is None
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return calls


def _torch_runs(model, size) -> bool:
    try:
        model(torch.empty(0, 3, size, size))
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("name", list_models())
def test_declared_facts_hold_for_the_network(name, shape_model, monkeypatch):
    entry = get_model_entry(name)
    model = shape_model(name, num_classes=NUM_CLASSES).eval()
    x = torch.empty(0, *entry.input_size)  # empty: every layer checks shapes, none computes
    calls = _reached(model, x)

    # first_conv: a convolution fed the image itself, as is the first one the forward pass reaches
    # (FractalNet's columns all start from the image; the registry names column 1's)
    convs = [(n, m, inp) for n, m, inp, _ in calls if isinstance(m, nn.Conv2d)]
    fed_the_image = {n for n, _, inp in convs if inp is x}
    assert entry.first_conv in fed_the_image and convs[0][0] in fed_the_image
    assert first_conv(model) is model.get_submodule(entry.first_conv)
    assert first_conv(model).in_channels == 3  # one-channel builds: test_zoo.py

    # classifier: the last linear layer the eval forward pass runs, giving the class scores; the
    # auxiliary heads are the other layers with num_classes outputs
    linears = [(n, out) for n, m, _, out in calls if isinstance(m, nn.Linear)]
    assert linears[-1][0] == entry.classifier and linears[-1][1].shape[-1] == NUM_CLASSES
    scoring = {
        n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == NUM_CLASSES
    }
    assert scoring == {entry.classifier, *entry.aux_classifiers}
    assert list(classifiers(model)) == [entry.classifier, *entry.aux_classifiers]

    # input sizes (eval mode): the forward check refuses one pixel less than the declared smallest;
    # torch's own layers (the check switched off) run at the declared bounds and refuse one pixel past
    smallest, largest = entry.min_input_size, entry.max_input_size
    assert smallest <= entry.input_size[1] and (largest is None or entry.input_size[1] <= largest)
    with pytest.raises(ValueError, match=rf"{name} accepts inputs of .*{smallest}x{smallest}"):
        model(torch.empty(0, 3, smallest - 1, smallest))
    monkeypatch.setattr(sys.modules[type(model).__module__], "check_input", lambda *_: None)
    assert _torch_runs(model, smallest) and (smallest == 1 or not _torch_runs(model, smallest - 1))
    if largest is not None:
        assert _torch_runs(model, largest) and not _torch_runs(model, largest + 1)


@pytest.mark.parametrize("name", sorted(TORCHVISION_TWINS))
def test_declared_preprocessing_is_torchvisions(name):
    # the paper-era weights (IMAGENET1K_V1) of each twin; metadata only, nothing is downloaded
    weights = torchvision.models.get_model_weights(TORCHVISION_TWINS[name])["IMAGENET1K_V1"]
    tf, declared = weights.transforms(), get_model_entry(name).preprocessing
    assert (declared.resize, declared.crop) == (tf.resize_size[0], tf.crop_size[0])
    assert tf.interpolation == InterpolationMode.BILINEAR  # what cnnarch.inference resizes with
    if name != "googlenet_tv":
        assert (declared.mean, declared.std) == (tuple(tf.mean), tuple(tf.std))
        return
    # torchvision normalises with ImageNet's statistics and then, inside the network, re-normalises
    # (transform_input); cnnarch's network has no such step, so the declared statistics do both
    pixels = torch.rand(2, 3, 5, 5)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (tf.mean, tf.std))
    torchvision_input = torchvision.models.GoogLeNet._transform_input(
        SimpleNamespace(transform_input=True), (pixels - mean) / std
    )
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (declared.mean, declared.std))
    torch.testing.assert_close((pixels - mean) / std, torchvision_input)


WITH_DROPOUT = [
    n for n in list_models() if n.startswith(("alexnet", "vgg", "zfnet", "googlenet", "wrn", "fractal"))
]


@pytest.mark.parametrize("name", list_models())
def test_one_dropout_keyword_across_the_zoo(name):
    def rates(**kwargs):
        with torch.device("meta"):
            model = create_model(name, **kwargs)
        return sorted(m.p for m in model.modules() if isinstance(m, nn.Dropout))

    if name not in WITH_DROPOUT:
        with pytest.raises(TypeError, match="drop_prob"):
            rates(drop_prob=0.25)
        return
    new = rates(drop_prob=0.25)
    assert 0.25 not in rates() and 0.25 in new
    for old in ("dropout", "drop"):
        with pytest.warns(DeprecationWarning, match=f"{old}= is deprecated, use drop_prob="):
            assert rates(**{old: 0.25}) == new
