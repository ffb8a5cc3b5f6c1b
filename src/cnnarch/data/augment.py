"""Batched augmentation: tensor operations on whole ``uint8`` batches, on the training device.

The lecture's data augmentation (AlexNet, Krizhevsky et al. 2012, section 4.1; ResNet on CIFAR, He et
al. 2015, section 4.2):

- random crops: pad by ``padding`` pixels (zeros), then cut a ``crop x crop`` window at a random
  offset (He et al.: 4-pixel padding, 32x32 crops; AlexNet: 224x224 crops of 256x256 images, no padding);
  ``pad_mode="reflect"`` mirrors the border instead of adding zeros (airbench, Jordan 2024,
  arXiv:2404.00498, translates by 2 pixels that way);
- horizontal flips with probability 1/2, or airbench's alternating flips (``alternate_flip``): a random
  half of the images is mirrored in epoch 0, and every later epoch mirrors exactly those that were not
  mirrored in the epoch before, so that each image is seen both ways in every two consecutive epochs
  (:func:`alternating_flips`);
- "fancy PCA" lighting (AlexNet): add ``P @ (alpha * lambda)`` to every pixel of an image, where ``P``
  and ``lambda`` are the eigenvectors and eigenvalues of the 3x3 covariance of RGB pixel values over the
  training set and ``alpha ~ N(0, 0.1^2)`` is drawn once per image. We use pixel values scaled to
  [0, 1] and the eigenvalues themselves, as the paper writes it (some implementations scale by the
  square root instead);
- normalisation by per-channel mean and standard deviation;
- 10-crop evaluation: the four corner crops and the centre crop, and the same of the mirrored image
  (torchvision's ``ten_crop`` order), whose softmax outputs are averaged.

Randomness is split from the operations: :meth:`TrainTransform.sample` draws every random number
for ``n`` images from a ``torch.Generator`` and :meth:`TrainTransform.apply` uses them. The loaders
draw one epoch's numbers at once, by position in the epoch's order, so an image gets the same crop
whether it is processed by one process or by rank 1 of 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

PAD_MODES = ("constant", "reflect")
# The alternating flips' per-image bits come from their own generator, seeded far from the loaders'
# ``seed + epoch`` (torch keeps 32 bits of a seed, so the offset stays below 2**32).
FLIP_SEED_OFFSET = 2**31


# ---------------------------------------------------------------------------------------------
# Statistics from the training set


def channel_stats(images: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation of ``uint8 (N, C, H, W)`` images, in [0, 1] units."""
    s, s2, n = _moments(images, chunk)
    mean = s / n
    var = s2.diagonal() / n - mean**2
    return mean.float(), var.clamp_min(0).sqrt().float()


def rgb_pca(images: Tensor, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Eigenvalues (descending) and eigenvectors (columns) of the RGB covariance of ``images``.

    This is AlexNet's "PCA on the set of RGB pixel values throughout the training set"; pixel
    values are scaled to [0, 1]. Returns ``(eigvals (3,), eigvecs (3, 3))`` with
    ``cov @ eigvecs[:, i] == eigvals[i] * eigvecs[:, i]``.
    """
    if images.shape[1] != 3:
        raise ValueError(f"fancy PCA needs RGB images, got {images.shape[1]} channels")
    s, s2, n = _moments(images, chunk)
    mean = s / n
    cov = (s2 - n * torch.outer(mean, mean)) / (n - 1)
    vals, vecs = torch.linalg.eigh(cov)  # ascending
    return vals.flip(0).float(), vecs.flip(1).float()


def _moments(images: Tensor, chunk: int) -> tuple[Tensor, Tensor, int]:
    """Sum and sum of outer products of the pixel vectors, in float64 (the sums of 50M pixels)."""
    c = images.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, c, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].to("cpu", torch.float64).div_(255)
        x = x.transpose(0, 1).reshape(c, -1)
        s += x.sum(1)
        s2 += x @ x.T
    return s, s2, images.shape[0] * images.shape[2] * images.shape[3]


# ---------------------------------------------------------------------------------------------
# Single operations on batches


def pad_crop(
    images: Tensor,
    dy: Tensor,
    dx: Tensor,
    size: int,
    padding: int = 0,
    flip: Tensor | None = None,
    mode: str = "constant",
) -> Tensor:
    """Crop each image ``i`` of ``images (N, C, H, W)`` at ``(dy[i], dx[i])`` after padding,
    and mirror it where ``flip[i]`` is set.

    Image ``i`` of the result equals ``F.pad(images[i], [padding] * 4, mode=mode)[:, dy:dy + size,
    dx:dx + size]``, then ``.flip(-1)`` if ``flip[i]``; ``mode`` is ``"constant"`` (zeros) or
    ``"reflect"`` (the border mirrored, without repeating the edge pixel). One ``gather`` does it all
    (a separate flip, or a padded copy for reflection, would cost another pass over the batch); any dtype.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"padding mode must be one of {', '.join(PAD_MODES)}, got {mode!r}")
    reflect = mode == "reflect" and padding > 0
    src_h, src_w = images.shape[-2:]
    if reflect and padding >= min(src_h, src_w):
        raise ValueError(
            f"reflect padding by {padding} needs images larger than {padding} pixels, got {src_h}x{src_w}; "
            "pad less or use zero padding"
        )
    x = F.pad(images, (padding,) * 4) if padding and not reflect else images
    n, c = x.shape[:2]
    h, w = src_h + 2 * padding, src_w + 2 * padding
    if len(dy) and (
        int(dy.min()) < 0 or int(dx.min()) < 0 or int(dy.max()) + size > h or int(dx.max()) + size > w
    ):
        top = (int(dy.max()), int(dx.max()))
        raise ValueError(f"a {size}x{size} crop at offsets up to {top} leaves the {h}x{w} padded image")
    dev = x.device
    cols = torch.arange(size, device=dev).expand(n, size)
    if flip is not None:
        cols = torch.where(flip.to(dev)[:, None], size - 1 - cols, cols)
    rows = dy.to(dev)[:, None] + torch.arange(size, device=dev)  # (N, size)
    cols = dx.to(dev)[:, None] + cols
    if reflect:  # coordinates in the padded image -> the source pixels they mirror
        rows, cols = _reflect(rows - padding, src_h), _reflect(cols - padding, src_w)
        h, w = src_h, src_w
    offset = (rows[:, :, None] * w + cols[:, None, :]).reshape(n, 1, size * size).expand(n, c, -1)
    return x.reshape(n, c, h * w).gather(2, offset).reshape(n, c, size, size)


def _reflect(i: Tensor, n: int) -> Tensor:
    """Source index of position ``i`` (``-n < i < 2n - 1``) of a length-``n`` axis mirrored at both ends."""
    i = i.abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i)


def alternating_flips(index: Tensor, n: int, epoch: int, seed: int = 0) -> Tensor:
    """airbench's alternating flips: whether to mirror images ``index`` (of a dataset of ``n``) in ``epoch``.

    Every image gets one random bit, fixed for the run by ``seed``; epoch ``e`` mirrors the image iff
    its bit XOR (``e`` is odd). So epoch 0 mirrors a random half, and each later epoch mirrors exactly
    the images the previous one did not. Nothing but ``(seed, epoch)`` decides it, so a resumed run
    flips as the uninterrupted one.
    """
    first = torch.rand(n, generator=torch.Generator().manual_seed(seed + FLIP_SEED_OFFSET)) < 0.5
    flip = first[index]
    return ~flip if epoch % 2 else flip


def flip_where(images: Tensor, flip: Tensor) -> Tensor:
    """Mirror (left-right) the images where the boolean ``flip (N,)`` is set."""
    return torch.where(flip.to(images.device)[:, None, None, None], images.flip(-1), images)


def lighting(images: Tensor, alpha: Tensor, eigvals: Tensor, eigvecs: Tensor) -> Tensor:
    """AlexNet's PCA lighting: add ``eigvecs @ (alpha[i] * eigvals)`` to every pixel of float image ``i``."""
    delta = (
        alpha.to(images.device, eigvals.dtype) * eigvals
    ) @ eigvecs.T  # (N, 3): row i = P (alpha_i * lambda)
    return images + delta.to(images.dtype)[:, :, None, None]


def five_crop_offsets(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """(top, left) of torchvision's five crops: top-left, top-right, bottom-left, bottom-right, centre."""
    if size > min(height, width):
        raise ValueError(f"crop {size} is larger than the {height}x{width} image")
    centre = (int(round((height - size) / 2.0)), int(round((width - size) / 2.0)))
    return [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size), centre]


def ten_crop(images: Tensor, size: int) -> Tensor:
    """The ten crops of every image, ``(N, C, H, W) -> (N, 10, C, size, size)``, in torchvision's
    ``ten_crop`` order: five crops of the image, then five crops of its mirror image."""
    h, w = images.shape[-2:]
    crops = []
    for x in (images, images.flip(-1)):
        crops += [x[..., t : t + size, l : l + size] for t, l in five_crop_offsets(h, w, size)]
    return torch.stack(crops, dim=1)


# ---------------------------------------------------------------------------------------------
# Whole pipelines


@dataclass
class Normalize:
    """``uint8`` to float: ``(x / 255 - mean) / std`` per channel.

    ``mean``/``std`` are per-channel sequences (None: 0 and 1, so values stay in [0, 1]); ``dtype`` is
    the output type (float32, or bfloat16 for AMP); ``channels_last`` returns NHWC memory format
    for convolutions that prefer it.
    """

    mean: Tensor | tuple[float, ...] | None = None
    std: Tensor | tuple[float, ...] | None = None
    dtype: torch.dtype = torch.float32
    channels_last: bool = False

    def to_float(self, images: Tensor) -> Tensor:
        """Scale to [0, 1] as float32 (before lighting, which works in those units)."""
        if self.channels_last and images.dim() == 4:  # reorder the 1-byte values, not the floats
            images = images.contiguous(memory_format=torch.channels_last)
        return images.to(torch.float32, copy=True).mul_(1 / 255)

    def finish(self, x: Tensor) -> Tensor:
        """Subtract the mean and divide by the std of floats in [0, 1]; cast to ``dtype``."""
        if self.mean is not None:
            x = x.sub_(torch.as_tensor(self.mean, dtype=torch.float32, device=x.device)[:, None, None])
        if self.std is not None:
            x = x.mul_(1 / torch.as_tensor(self.std, dtype=torch.float32, device=x.device)[:, None, None])
        return x.to(self.dtype)

    def __call__(self, images: Tensor) -> Tensor:
        return self.finish(self.to_float(images))


@dataclass
class TrainTransform:
    """Training augmentation of ``uint8 (N, C, H, W)`` batches: crop, flip, lighting, normalise.

    Args:
        crop: output size (None: keep H x W, no crop).
        padding: padding on each side before cropping (4 for CIFAR).
        flip: mirror half of the images.
        lighting_std: standard deviation of AlexNet's ``alpha`` (0.1 in the paper; 0 turns it off).
        pca: ``(eigvals, eigvecs)`` from :func:`rgb_pca` on the training set (needed for lighting).
        normalize: :class:`Normalize` with the training set's mean and std, output dtype, layout.
        pad_mode: ``"constant"`` (zeros, He et al.) or ``"reflect"`` (airbench).
        alternate_flip: with ``flip``, airbench's alternating flips (:func:`alternating_flips`) instead
            of independent coin tosses; they need the epoch and the images' dataset indices, which
            the loaders pass to :meth:`sample`.
    """

    crop: int | None = None
    padding: int = 0
    flip: bool = True
    lighting_std: float = 0.0
    pca: tuple[Tensor, Tensor] | None = None
    normalize: Normalize | None = None
    pad_mode: str = "constant"
    alternate_flip: bool = False

    def __post_init__(self):
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {', '.join(PAD_MODES)}, got {self.pad_mode!r}")
        if self.alternate_flip and not self.flip:
            raise ValueError("alternate_flip=True needs flip=True (it changes how images are flipped)")
        if self.lighting_std and self.pca is None:
            raise ValueError(
                "lighting_std > 0 needs pca=(eigvals, eigvecs); compute them with rgb_pca(train.images)"
            )
        if self.normalize is None:
            self.normalize = Normalize()

    def sample(
        self,
        n: int,
        image_hw: tuple[int, int],
        generator: torch.Generator | None = None,
        *,
        epoch: int = 0,
        index: Tensor | None = None,
        seed: int = 0,
    ) -> dict:
        """Draw the random numbers for ``n`` images of size ``image_hw`` (on the CPU).

        ``index`` (default ``0..n-1``) are the images' positions in the ``n``-image dataset; with
        ``epoch`` and ``seed`` they decide alternating flips (and nothing else)."""
        params = {}
        if self.crop is not None:
            h, w = image_hw
            span_y, span_x = h + 2 * self.padding - self.crop, w + 2 * self.padding - self.crop
            if min(span_y, span_x) < 0:
                raise ValueError(
                    f"crop {self.crop} is larger than the {h}x{w} images padded by {self.padding}"
                )
            params["dy"] = torch.randint(0, span_y + 1, (n,), generator=generator)
            params["dx"] = torch.randint(0, span_x + 1, (n,), generator=generator)
        if self.flip and self.alternate_flip:
            params["flip"] = alternating_flips(torch.arange(n) if index is None else index, n, epoch, seed)
        elif self.flip:
            params["flip"] = torch.rand(n, generator=generator) < 0.5
        if self.lighting_std:
            params["alpha"] = torch.randn(n, 3, generator=generator) * self.lighting_std
        return params

    def apply(self, images: Tensor, params: dict) -> Tensor:
        """Augment ``images`` with numbers from :meth:`sample`; returns a float batch."""
        flip = params["flip"] if self.flip else None
        if self.crop is not None:
            x = pad_crop(images, params["dy"], params["dx"], self.crop, self.padding, flip, self.pad_mode)
        else:
            x = images if flip is None else flip_where(images, flip)
        x = self.normalize.to_float(x)
        if self.lighting_std:
            vals, vecs = (t.to(x.device) for t in self.pca)
            x = lighting(x, params["alpha"], vals, vecs)
        return self.normalize.finish(x)

    def __call__(
        self, images: Tensor, generator: torch.Generator | None = None, *, epoch: int = 0, seed: int = 0
    ) -> Tensor:
        params = self.sample(len(images), tuple(images.shape[-2:]), generator, epoch=epoch, seed=seed)
        return self.apply(images, params)


@dataclass
class EvalTransform:
    """Evaluation transform: optional centre crop, or 10-crop, then normalise.

    With ``ten_crop=True`` the output is ``(N, 10, C, crop, crop)``: run the model on
    ``x.flatten(0, 1)`` and average the softmax over dim 1. ``padding`` pads first (so 32x32 CIFAR
    images give ten distinct 32x32 crops with ``padding=4``).
    """

    crop: int | None = None
    padding: int = 0
    ten_crop: bool = False
    normalize: Normalize | None = None

    def __post_init__(self):
        if self.normalize is None:
            self.normalize = Normalize()
        if self.ten_crop and self.crop is None:
            raise ValueError("ten_crop needs crop=SIZE")

    def __call__(self, images: Tensor) -> Tensor:
        x = F.pad(images, (self.padding,) * 4) if self.padding else images
        if self.ten_crop:
            return self.normalize(ten_crop(x, self.crop))
        if self.crop is not None:
            t, l = five_crop_offsets(x.shape[-2], x.shape[-1], self.crop)[4]
            x = x[..., t : t + self.crop, l : l + self.crop]
        return self.normalize(x)


def make_transforms(
    train: Tensor,
    *,
    crop: int | None = None,
    padding: int = 0,
    flip: bool = True,
    lighting_std: float = 0.0,
    eval_crop: int | None = None,
    eval_padding: int = 0,
    ten_crop: bool = False,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    pad_mode: str = "constant",
    alternate_flip: bool = False,
) -> tuple[TrainTransform, EvalTransform]:
    """The training and evaluation transforms of a recipe, with the mean, std and (for lighting)
    RGB eigenvectors computed from the ``uint8`` training images ``train (N, C, H, W)``.

    CIFAR (He et al.): ``make_transforms(train.images, crop=32, padding=4)``; AlexNet on 256x256
    images: ``make_transforms(x, crop=224, lighting_std=0.1, eval_crop=224, ten_crop=True)``.
    """
    mean, std = channel_stats(train)
    norm = Normalize(mean, std, dtype, channels_last)
    pca = rgb_pca(train) if lighting_std else None
    train_t = TrainTransform(crop, padding, flip, lighting_std, pca, norm, pad_mode, alternate_flip)
    return train_t, EvalTransform(eval_crop, eval_padding, ten_crop, norm)
