import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnarch.models import create_model
from cnnarch.train.speedrun import train_whitening_bias, whitening_layer


@pytest.mark.parametrize("set_to_none", [True, False])
def test_frozen_whitening_bias_stays_put_under_momentum_and_weight_decay(set_to_none):
    torch.manual_seed(0)
    model = create_model("cifar_fast_93")
    whiten = whitening_layer(model)
    assert whiten is model.whiten
    params = [p for p in model.parameters() if p.requires_grad]
    assert any(p is whiten.bias for p in params)
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))

    def step():
        opt.zero_grad(set_to_none=set_to_none)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # the bias trains and builds up momentum
    before = whiten.bias.detach().clone()
    step()
    assert not torch.equal(whiten.bias, before)
    train_whitening_bias(model, False)
    frozen = whiten.bias.detach().clone()
    fc = model.fc.weight.detach().clone()
    step()
    step()
    assert torch.equal(whiten.bias, frozen) and whiten.bias.grad is None
    assert not torch.equal(model.fc.weight, fc)  # the rest still trains


def test_schedule_and_errors():
    with pytest.raises(ValueError, match="no `whiten` convolution"):
        train_whitening_bias(nn.Sequential(nn.Conv2d(3, 4, 3)), False)
    model = create_model("cifar_fast")
    model.whiten.bias = None
    with pytest.raises(ValueError, match="no bias"):
        train_whitening_bias(model, False)
