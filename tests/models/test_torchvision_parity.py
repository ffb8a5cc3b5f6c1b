"""The torchvision-form models are torchvision's networks: torchvision's state_dict loads into ours with
strict=True, the parameter counts agree, and both give the same logits in eval mode (random weights,
random batch-norm statistics, fixed seed)."""

from functools import partial

import pytest
import torchvision.models as tv

# id -> (our name, torchvision builder, input height = width, keyword arguments for both)
PARITY = {
    "alexnet_tv": ("alexnet_tv", tv.alexnet, 63, {}),
    **{
        name: (name, getattr(tv, name), 32, {})
        for name in [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
    },
    # init_weights=False: torchvision warns without it, and the weights are overwritten anyway
    "googlenet_tv": ("googlenet_tv", partial(tv.googlenet, init_weights=False), 15, {"aux_logits": False}),
    "googlenet_tv+aux": ("googlenet_tv", partial(tv.googlenet, init_weights=False), 15, {"aux_logits": True}),
    **{f"resnet{d}": (f"resnet{d}", getattr(tv, f"resnet{d}"), 32, {}) for d in (18, 34, 50, 101, 152)},
}


@pytest.mark.parametrize("case", PARITY)
def test_same_state_dict_and_logits_as_torchvision(case, torchvision_parity):
    name, tv_builder, size, kwargs = PARITY[case]
    torchvision_parity(name, tv_builder, size, **kwargs)
