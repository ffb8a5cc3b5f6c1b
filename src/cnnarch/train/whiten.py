"""The whitening layer's bias, trained for the first epochs and then frozen (airbench, Jordan 2024,
arXiv:2404.00498: ``whiten_bias_epochs = 3``).

The whitening convolution's filters are fixed from the start (:func:`cnnarch.train.fast.init_whitening`);
its bias trains at first, then stops, so that later steps no longer shift the input features the
whole network is built on. airbench94 re-sets ``requires_grad`` at the start of every epoch; its Muon
variant (airbench94_muon.py) instead decays the bias's learning rate linearly to zero over the same
3 epochs. Here freezing also clears the gradient, so that an optimizer with momentum or weight decay
skips the bias from then on (``torch.optim`` skips parameters whose ``grad`` is None).
"""

from __future__ import annotations

from torch import nn

__all__ = ["freeze_whitening_bias", "whitening_layer"]


def whitening_layer(model: nn.Module) -> nn.Conv2d:
    """The model's ``whiten`` convolution (``cifar_fast``, ``cifar_fast_93``)."""
    conv = getattr(model, "whiten", None)
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(
            f"{type(model).__name__} has no `whiten` convolution; freezing the whitening bias needs a "
            "cifar_fast network (set the whitening-bias epochs to 0 for other models)"
        )
    if conv.bias is None:
        raise ValueError("the `whiten` convolution has no bias to freeze; build it with bias=True")
    return conv


def freeze_whitening_bias(model: nn.Module) -> None:
    """Stop training the whitening layer's bias: no gradient from now on, and none left over."""
    bias = whitening_layer(model).bias
    bias.requires_grad_(False)
    bias.grad = None
