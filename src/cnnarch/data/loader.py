"""Batch iterators: in memory for small images (:class:`TensorLoader`), streaming for large ones
(:class:`StreamLoader`), with the same interface, and a seeded validation split.

Both follow ``torch.utils.data.DistributedSampler``'s rules: call ``set_epoch(epoch)`` before each
epoch; the order of epoch ``e`` is ``torch.randperm(N)`` from a generator seeded with ``seed + e``;
with ``world_size > 1`` the order is padded (repeating its start; ``pad=False`` skips this, for
evaluation) to a multiple of ``world_size`` and rank ``r`` takes positions ``r, r + world_size, ...``.
So batch ``k`` of every rank together is batch ``k`` of one process with a ``world_size`` times
larger batch, and the augmentation's random numbers, drawn per position of the epoch's order, are
the same too. Nothing but ``(seed, epoch)``
decides an epoch, so resuming at an epoch boundary repeats a run exactly.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torchvision
import torchvision.transforms.v2.functional as TF
from PIL import Image

from cnnarch.data.augment import EvalTransform, TrainTransform
from cnnarch.data.base import CorruptImageError, ImageTensors, first_per_class
from cnnarch.data.folder import IMG_EXTENSIONS, scan_image_folder

Tensor = torch.Tensor


def val_split(data: ImageTensors, val: float | int, seed: int = 0) -> tuple[ImageTensors, ImageTensors]:
    """Carve a validation set out of a training set: ``(train, val)``, disjoint, stratified by class.

    ``val`` is a fraction (0.1) or a number of images (5000); the validation set has exactly
    ``round(fraction * N)`` (or that number of) images, shared among the classes in proportion to
    their sizes (largest remainders get the odd ones), chosen at random with ``seed``. The same
    seed always gives the same split. Both parts keep the dataset order.
    """
    n = len(data)
    count = val if isinstance(val, int) and not isinstance(val, bool) and val >= 1 else round(float(val) * n)
    if not (0 < count < n and (isinstance(val, int) or 0 < val < 1)):
        raise ValueError(f"val_split must be a fraction in (0, 1) or a count in [1, {n - 1}], got {val!r}")
    sizes = torch.bincount(data.labels, minlength=len(data.classes)).double()
    share = sizes * count / n
    per_class = share.floor().long()
    extra = count - int(per_class.sum())
    per_class[torch.argsort(share - share.floor(), descending=True, stable=True)[:extra]] += 1
    g = torch.Generator().manual_seed(seed)
    is_val = torch.zeros(n, dtype=torch.bool)
    for c, k in enumerate(per_class.tolist()):
        idx = (data.labels == c).nonzero().flatten()
        is_val[idx[torch.randperm(len(idx), generator=g)[:k]]] = True
    return data.subset(torch.nonzero(~is_val).flatten()), data.subset(torch.nonzero(is_val).flatten())


class _EpochPlan:
    """Order, sharding and augmentation numbers of one epoch (shared by both loaders)."""

    def __init__(self, n, batch_size, shuffle, drop_last, seed, rank, world_size, pad=True):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if n == 0:
            raise ValueError("the dataset is empty")
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.pad = pad
        self.per_rank = math.ceil(n / world_size) if pad else len(range(rank, n, world_size))

    def __len__(self) -> int:
        return (
            self.per_rank // self.batch_size if self.drop_last else math.ceil(self.per_rank / self.batch_size)
        )

    def positions(self, epoch: int, transform, image_hw) -> tuple[Tensor, dict]:
        """This rank's dataset indices for ``epoch`` and the augmentation numbers for them."""
        g = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        params = {}
        if isinstance(transform, TrainTransform):
            params = transform.sample(self.n, image_hw, g, epoch=epoch, index=order, seed=self.seed)
        total = math.ceil(self.n / self.world_size) * self.world_size if self.pad else self.n
        if total > self.n:  # pad like DistributedSampler: repeat the start of the order (and its numbers)
            order = torch.cat([order, order[: total - self.n]])
            params = {k: torch.cat([v, v[: total - self.n]]) for k, v in params.items()}
        mine = slice(self.rank, total, self.world_size)
        return order[mine], {k: v[mine] for k, v in params.items()}

    def batches(self, count: int):
        for b in range(len(self)):
            yield slice(b * self.batch_size, min((b + 1) * self.batch_size, count))


def _transform(transform, x: Tensor, params: dict, where) -> Tensor:
    """Apply ``transform`` to a batch; a TrainTransform takes the epoch's numbers at ``where``."""
    if isinstance(transform, TrainTransform):
        return transform.apply(x, {k: v[where] for k, v in params.items()})
    return x if transform is None else transform(x)


class TensorLoader:
    """Batches of an in-memory :class:`ImageTensors`, augmented on ``device``.

    Yields ``(images, labels)``: ``images`` is the transform's float batch (or the ``uint8`` batch
    when ``transform`` is None), ``labels`` int64, both on ``device``. The whole dataset is moved
    to ``device`` once (150 MiB for CIFAR-10), so a batch is one index, one gather and a few
    element-wise kernels, with no worker processes and no per-image Python.

    Args:
        data: the dataset.
        batch_size: images per batch on this rank (the global batch is ``batch_size * world_size``).
        shuffle: a new order every epoch (see ``set_epoch``); False keeps the dataset order.
        drop_last: leave out the last, partial batch.
        seed: the run's seed; epoch ``e`` uses ``seed + e``.
        rank, world_size: this process's share under DistributedDataParallel.
        pad: repeat images so that every rank gets as many (training, DistributedSampler's
            default); False gives every image to exactly one rank (evaluation: no double counting;
            ranks may then differ by one image).
        transform: :class:`TrainTransform`, :class:`EvalTransform` or None.
        device: where batches are produced ("cpu", "cuda", a torch.device).
    """

    def __init__(
        self,
        data: ImageTensors,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pad: bool = True,
        transform: TrainTransform | EvalTransform | None = None,
        device: str | torch.device = "cpu",
    ):
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.transform = transform
        self.plan = _EpochPlan(len(data), batch_size, shuffle, drop_last, seed, rank, world_size, pad)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.plan)

    @property
    def num_images(self) -> int:
        """Images this rank yields per epoch."""
        return sum(s.stop - s.start for s in self.plan.batches(self.plan.per_rank))

    def __iter__(self):
        index, params = self.plan.positions(self.epoch, self.transform, tuple(self.images.shape[-2:]))
        index = index.to(self.device)
        for s in self.plan.batches(len(index)):
            idx = index[s]
            # index_select copies whole images; advanced indexing goes byte by byte (10x slower on uint8)
            x = self.images.index_select(0, idx)
            yield _transform(self.transform, x, params, s), self.labels.index_select(0, idx)


class _FolderImages(torch.utils.data.Dataset):
    """ImageFolder files decoded to fixed-size ``uint8`` tensors in DataLoader workers."""

    def __init__(self, folder: torchvision.datasets.ImageFolder, size: int, skip_corrupt: bool):
        self.samples, self.size, self.skip_corrupt = folder.samples, size, skip_corrupt

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, item):
        pos, index = item
        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                img = TF.center_crop(TF.resize(img.convert("RGB"), self.size), self.size)
                x = TF.pil_to_tensor(img)
        except Exception as e:
            if self.skip_corrupt:
                return None
            raise CorruptImageError(
                f"cannot decode image {path} ({type(e).__name__}: {e}); delete or replace it, or pass "
                "skip_corrupt=True (--skip-corrupt) to leave such files out",
                path,
            ) from e
        return x, label, pos


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMG_EXTENSIONS)


def _collate(items):
    kept = [it for it in items if it is not None]
    if not kept:
        return None, len(items)
    x = torch.stack([it[0] for it in kept])
    labels, positions = (torch.tensor([it[k] for it in kept]) for k in (1, 2))
    return (x, labels, positions), len(items) - len(kept)


class StreamLoader:
    """Batches of a large-image ImageFolder tree through a ``torch.utils.data.DataLoader``.

    Workers decode each image with Pillow, resize its shorter side to ``load_size`` and cut the
    centre ``load_size x load_size`` square (AlexNet's 256x256 images), and collate ``uint8``
    batches; the transform then runs on whole batches on ``device`` exactly as in
    :class:`TensorLoader` (for AlexNet: ``TrainTransform(crop=224, ...)``; for evaluation
    ``EvalTransform(crop=224, ten_crop=True)``). Same arguments, ordering and sharding rules as
    :class:`TensorLoader`; corrupt files raise :class:`CorruptImageError` naming the file, or with
    ``skip_corrupt=True`` are left out and counted in ``.skipped``. Images are read from
    ``root/split`` (or ``root``); ``limit`` keeps the first ``limit`` images round-robin over classes.
    """

    def __init__(
        self,
        root: str | Path,
        batch_size: int,
        *,
        split: str | None = None,
        load_size: int = 256,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pad: bool = True,
        transform: TrainTransform | EvalTransform | None = None,
        device: str | torch.device = "cpu",
        workers: int = 2,
        skip_corrupt: bool = False,
        limit: int | None = None,
    ):
        directory = Path(root) / split if split is not None else Path(root)
        scan_image_folder(directory, limit=1)  # the same layout checks and messages as the cache
        folder = torchvision.datasets.ImageFolder(str(directory), is_valid_file=_is_image)
        if limit is not None:  # the same round-robin choice as load_image_folder(limit=...)
            keep = first_per_class(torch.tensor(folder.targets), limit).tolist()
            folder.samples = [folder.samples[i] for i in keep]
        self.classes = folder.classes
        self.dataset = _FolderImages(folder, load_size, skip_corrupt)
        self.load_size, self.transform, self.workers = load_size, transform, workers
        self.device = torch.device(device)
        self.plan = _EpochPlan(
            len(folder.samples), batch_size, shuffle, drop_last, seed, rank, world_size, pad
        )
        self.epoch = 0
        self.skipped = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.plan)

    def __iter__(self):
        index, params = self.plan.positions(self.epoch, self.transform, (self.load_size, self.load_size))
        batches = [
            [(p, int(index[p])) for p in range(s.start, s.stop)] for s in self.plan.batches(len(index))
        ]
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=batches,
            num_workers=self.workers,
            collate_fn=_collate,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        for batch, skipped in loader:
            self.skipped += skipped
            if batch is None:
                continue
            x, y, pos = batch
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            yield _transform(self.transform, x, params, pos), y
