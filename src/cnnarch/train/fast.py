"""The CIFAR-10 speedrun techniques of the recipe ``cifar-fast`` (Page 2018, hlb-CIFAR10, airbench),
options of the one :class:`cnnarch.train.trainer.Trainer` for any run (docs/cifar_fast.md):

- ``whiten``: the first convolution's ``k x k x C`` filters are the eigenvectors of the covariance of
  ``k x k`` patches of (normalised) training images divided by the square roots of their eigenvalues,
  and the same filters negated; then frozen (its bias still trains): decorrelated, unit-variance input.
- ``bn_momentum``: torch's batch-norm ``momentum`` (weight of the newest batch in the running
  statistics) for every BN layer; a short run needs statistics that follow the weights quickly.

The others live where they act: ``bias_lr_scale`` in :func:`cnnarch.train.optim.param_groups`, ``tta``
in :func:`cnnarch.train.evaluate.tta_logits`, ``target_accuracy`` in the trainer's clock.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnarch.train.config import TrainConfig

WHITEN_IMAGES = 5000  # training images whose patches estimate the covariance
WHITEN_EPS = 5e-4  # added to the eigenvalues: the smallest are noise


@torch.no_grad()
def init_whitening(conv: nn.Conv2d, images: torch.Tensor, eps: float = WHITEN_EPS) -> None:
    """Set ``conv``'s filters to a whitening transform of its input patches, and freeze them.

    ``images (N, C, H, W)`` are normalised float training images. ``conv`` must have
    ``2 * C * kh * kw`` output channels: filter ``i`` is eigenvector ``i`` of the (uncentred) patch
    covariance scaled by ``1 / sqrt(eigenvalue_i + eps)`` (largest eigenvalue first), and filter
    ``i + C*kh*kw`` is its negation. Then ``conv`` (without bias) maps patches to features whose
    covariance is the identity, up to ``eps``.
    """
    kh, kw = conv.kernel_size
    c = images.shape[1]
    d = c * kh * kw
    if conv.out_channels != 2 * d or conv.in_channels != c:
        raise ValueError(
            f"whitening needs a {c}->{2 * d} channel convolution for {kh}x{kw} patches of {c}-channel "
            f"images, got {conv.in_channels}->{conv.out_channels}; use --no-whiten for this model"
        )
    x = images.float().contiguous()
    patches = x.unfold(2, kh, 1).unfold(3, kw, 1)  # N, C, H', W', kh, kw
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, d).double()
    cov = patches.T @ patches / len(patches)
    vals, vecs = torch.linalg.eigh(cov)  # ascending
    vals, vecs = vals.flip(0), vecs.flip(1)
    filters = (vecs.T / (vals.clamp_min(0) + eps).sqrt()[:, None]).reshape(d, c, kh, kw)
    conv.weight.copy_(torch.cat([filters, -filters]).to(conv.weight))
    conv.weight.requires_grad_(False)


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The model's ``whiten`` layer, else its first convolution."""
    conv = getattr(model, "whiten", None)
    if isinstance(conv, nn.Conv2d):
        return conv
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def apply_speedrun(model: nn.Module, cfg: TrainConfig, train, resuming: bool) -> None:
    """``bn_momentum`` and ``whiten`` on a new model; a resumed run only freezes the whitening layer,
    whose weights come from the checkpoint."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms and (cfg.bn_momentum is not None or cfg.bias_lr_scale != 1):
        raise ValueError(
            f"--bn-momentum and --bias-lr-scale act on batch-norm layers, and {cfg.model} has none; "
            "drop them (--bias-lr-scale 1)"
        )
    for m in norms:
        if cfg.bn_momentum is not None:
            m.momentum = cfg.bn_momentum
    if not cfg.whiten:
        return
    if resuming:
        first_conv(model).weight.requires_grad_(False)
        return
    norm = getattr(getattr(train, "transform", None), "normalize", None)
    if norm is None or not hasattr(train, "images"):
        raise ValueError("--whiten needs in-memory training images (cnnarch.data.TensorLoader)")
    init_whitening(first_conv(model), norm(train.images[:WHITEN_IMAGES]))


def training_flops(model: nn.Module, image_shape, images_per_epoch: int, epochs: float) -> float:
    """Training FLOPs of a schedule from the analyzer: 3x the forward FLOPs (forward, and backward to
    activations and weights) per image seen; evaluation not included."""
    from cnnarch.analysis.profiler import profile

    fwd = profile(model, tuple(image_shape)).flops
    return 3.0 * fwd * images_per_epoch * epochs
