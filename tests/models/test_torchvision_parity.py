"""The torchvision-form models are torchvision's networks: torchvision's state_dict loads into ours with
strict=True, the parameter counts agree, and both give the same logits in eval mode (random weights,
random batch-norm statistics, fixed seed)."""

from functools import partial

import pytest
import torch
import torchvision.models as tv

from cnnarch.models import create_model

# our name[+note] -> (torchvision builder, keyword arguments for ours, input height = width)
PARITY = {
    "alexnet_tv": (tv.alexnet, {}, 63),
    **{
        name: (getattr(tv, name), {}, 32)
        for name in [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
    },
    # init_weights=False: torchvision warns without it, and the weights are overwritten anyway
    "googlenet_tv": (partial(tv.googlenet, aux_logits=False, init_weights=False), {"aux_logits": False}, 15),
    "googlenet_tv+aux": (partial(tv.googlenet, init_weights=False), {"aux_logits": True}, 15),
    "resnet18": (tv.resnet18, {}, 32),
    "resnet34": (tv.resnet34, {}, 32),
    "resnet50": (tv.resnet50, {}, 32),
    "resnet101": (tv.resnet101, {}, 32),
    "resnet152": (tv.resnet152, {}, 32),
}


@pytest.mark.parametrize("name", PARITY)
def test_same_state_dict_and_logits_as_torchvision(name, randomize):
    tv_builder, kwargs, size = PARITY[name]
    # Built on meta, then filled: their own weight initialization is not under test and is slow.
    with torch.device("meta"):
        reference = tv_builder(**kwargs)
        ours = create_model(name.split("+")[0], **kwargs)
    reference = randomize(reference.to_empty(device="cpu")).eval()
    ours.load_state_dict(reference.state_dict(), strict=True, assign=True)
    ours.eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert got.shape == expected.shape == (2, 1000)
    assert (got - expected).abs().max().item() <= 1e-5
    assert expected.std() > 1e-3  # the comparison is not between two constant outputs
