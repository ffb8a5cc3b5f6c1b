"""The CIFAR-10 speedrun techniques of the recipe ``cifar-fast`` (Page 2018, hlb-CIFAR10, airbench),
options of the one :class:`cnnarch.train.trainer.Trainer` for any run (docs/cifar_fast.md):

- ``whiten``: the first convolution's ``k x k x C`` filters are the eigenvectors of the covariance of
  ``k x k`` patches of (normalised) training images divided by the square roots of their eigenvalues,
  and the same filters negated; then frozen (its bias still trains): decorrelated, unit-variance input.
- ``bn_momentum``: torch's batch-norm ``momentum`` (weight of the newest batch in the running
  statistics) for every BN layer; a short run needs statistics that follow the weights quickly.
- ``progressive_size``/``progressive_epochs``: the first epochs train on batches downscaled (shorter
  side to ``N``, antialiased bilinear), so those steps cost about ``(N/32)^2`` of a full one on CIFAR;
  the last epochs, evaluation and TTA are at full size (Howard's progressive resizing, fast.ai DAWNBench
  2018; train-test resolution: Touvron et al., "Fixing the train-test resolution discrepancy", 2019).

The others live where they act: ``bias_lr_scale`` in :func:`cnnarch.train.optim.param_groups`, ``tta``
in :func:`cnnarch.train.evaluate.tta_logits`, ``target_accuracy`` in the trainer's clock.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def apply_speedrun(model: nn.Module, cfg: TrainConfig, train, resuming: bool) -> None:
    """``bn_momentum`` and ``whiten`` on a new model; a resumed run only freezes the whitening layer,
    whose weights come from the checkpoint."""
    from cnnarch.models import first_conv  # the registry's: cifar_fast's ``whiten``

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms and (cfg.speedrun.bn_momentum is not None or cfg.speedrun.bias_lr_scale != 1):
        raise ValueError(
            f"--bn-momentum and --bias-lr-scale act on batch-norm layers, and {cfg.model} has none; "
            "drop them (--bias-lr-scale 1)"
        )
    for m in norms:
        if cfg.speedrun.bn_momentum is not None:
            m.momentum = cfg.speedrun.bn_momentum
    if not cfg.speedrun.whiten:
        return
    if resuming:
        first_conv(model).weight.requires_grad_(False)
        return
    norm = getattr(getattr(train, "transform", None), "normalize", None)
    if norm is None or not hasattr(train, "images"):
        raise ValueError("--whiten needs in-memory training images (cnnarch.data.TensorLoader)")
    init_whitening(first_conv(model), norm(train.images[:WHITEN_IMAGES]))


def check_progressive(model: nn.Module, cfg: TrainConfig, epochs: int, in_channels: int = 3) -> None:
    """Refuse a progressive-resizing schedule without a full-size epoch among the run's ``epochs`` (which
    ``--iterations`` may cut short), or a size the network cannot take; before any training."""
    if cfg.speedrun.progressive_size is None:
        return
    if cfg.speedrun.progressive_epochs >= epochs:
        raise ValueError(
            f"--progressive-epochs {cfg.speedrun.progressive_epochs} of the run's {epochs} epoch(s) leaves "
            "no epoch at full size; the network would be tested at a size it never trained on. Use fewer "
            "--progressive-epochs"
        )
    from cnnarch.models._input_size import min_input_size

    try:
        smallest = min_input_size(model, in_channels)
    except ValueError:
        return  # the network's own check speaks at the first step
    if cfg.speedrun.progressive_size < smallest:
        raise ValueError(
            f"--progressive-size {cfg.speedrun.progressive_size} is below the smallest input {cfg.model} "
            f"accepts ({smallest}x{smallest}); use --progressive-size {smallest} or more"
        )


def downscale(x: torch.Tensor, size: int) -> torch.Tensor:
    """A batch ``(N, C, H, W)`` with its shorter side resized to ``size`` (aspect kept), antialiased
    bilinear, so every input pixel counts as a lower-resolution camera would see it. Never enlarges."""
    h, w = x.shape[-2:]
    if size >= min(h, w):
        raise ValueError(
            f"--progressive-size {size} is not smaller than the training images ({h}x{w}); it only "
            "downscales. Use a smaller size, or drop it"
        )
    scale = size / min(h, w)
    # the antialiased kernel is float32/64 only on a CPU; the recipe's batches may already be bfloat16
    out = F.interpolate(
        x.float(),
        size=(round(h * scale), round(w * scale)),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    ).to(x.dtype)
    last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return out.contiguous(memory_format=torch.channels_last if last else torch.contiguous_format)


def training_flops(model: nn.Module, image_shape, images_per_epoch: int, epochs: float) -> float:
    """Training FLOPs of a schedule from the analyzer: 3x the forward FLOPs (forward, and backward to
    activations and weights) per image seen; evaluation not included."""
    from cnnarch.analysis.profiler import profile

    fwd = profile(model, tuple(image_shape)).flops
    return 3.0 * fwd * images_per_epoch * epochs
