"""The torchvision-form models are torchvision's networks: torchvision's state_dict loads into ours with
strict=True, the parameter counts agree, and both give the same logits in eval mode (random weights,
random batch-norm statistics, fixed seed)."""

import pytest
import torchvision

# our name -> (torchvision builder, keyword arguments for both, input height = width)
PARITY = {
    "resnet18": (torchvision.models.resnet18, {}, 32),
    "resnet34": (torchvision.models.resnet34, {}, 32),
    "resnet50": (torchvision.models.resnet50, {}, 32),
    "resnet101": (torchvision.models.resnet101, {}, 32),
    "resnet152": (torchvision.models.resnet152, {}, 32),
}


@pytest.mark.parametrize("name", PARITY)
def test_same_state_dict_and_logits_as_torchvision(name, torchvision_parity):
    tv_builder, kwargs, size = PARITY[name]
    torchvision_parity(name, tv_builder, size, **kwargs)
