"""From a :class:`TrainConfig` to the trainer's :class:`DataBundle`, using ``cnnarch.data``; where
``--data`` is found and how its images reach the network is docs/training.md's "Data". Small images (up
to :data:`SMALL_SIDE`) are held as ``uint8`` tensors and augmented whole batches at a time on the training
device; larger ones stream through a DataLoader. The training images' channel mean and std normalise
every split and go into the checkpoints (``data_info``), so that ``cnnarch eval`` normalises alike.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from cnnarch.data import (
    EvalTransform,
    ImageTensors,
    Normalize,
    StreamLoader,
    TensorLoader,
    TrainTransform,
    load_dataset,
    make_transforms,
    val_split,
)
from cnnarch.data.datasets import DATASETS, DatasetNotFoundError, find_dataset
from cnnarch.data.folder import scan_image_folder
from cnnarch.train import distributed as D
from cnnarch.train.config import TrainConfig
from cnnarch.train.device import Placement, input_dtype, place
from cnnarch.train.trainer import DataBundle

SMALL_SIDE = 64  # images up to this size are held in memory as uint8 tensors
STREAM_LOAD, STREAM_CROP = 256, 224  # AlexNet: 224x224 crops of 256x256 images


def is_dataset_name(data: str) -> bool:
    return data.lower().replace("_", "-") in {*DATASETS, "cifar-10", "cifar-100", "fashionmnist"}


def locate(data: str | None) -> tuple[str, str | None]:
    """``(dataset name, root directory)`` for a ``--data`` value: a dataset name (None: CIFAR-10) is
    looked for by :func:`cnnarch.data.datasets.find_dataset`'s rule ($CNNARCH_DATA, the project's
    ``shared/data``, the cache); its root is None only when it is still to be downloaded."""
    if data is None or is_dataset_name(data):
        name = data or "cifar10"
        found = find_dataset(name)
        return name, None if found is None else str(found)
    root = Path(data).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"--data {data}: no such directory, and not a dataset name ({', '.join(DATASETS)})"
        )
    if (root / "train").is_dir():
        return "folder", str(root)
    for name in DATASETS:
        try:
            load_dataset(name, "test", root, download=False, limit=1)
            return name, str(root)
        except (DatasetNotFoundError, FileNotFoundError):
            continue
    raise FileNotFoundError(
        f"--data {data}: found neither an ImageFolder tree ({root}/train/<class>/<image>) nor the files "
        f"of {', '.join(DATASETS)} there"
    )


def _is_large_folder(root: str) -> bool:
    from PIL import Image

    _, files, _ = scan_image_folder(Path(root) / "train", limit=1)
    with Image.open(Path(root) / "train" / files[0]) as img:
        return max(img.size) > SMALL_SIDE


def _random_subset(data: ImageTensors, n: int | None, seed: int) -> ImageTensors:
    if n is None or n >= len(data):
        return data
    keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return data.subset(keep.sort().values)


def load_splits(cfg: TrainConfig, progress: bool = True):
    """``(train, val, test)`` ImageTensors for ``cfg`` (val/test may be None), limits applied."""
    name, root = locate(cfg.dataset.data)
    limit = None
    if cfg.dataset.limit_train is not None:
        limit = math.ceil(cfg.dataset.limit_train / (1 - cfg.dataset.val_split))
    train = load_split(name, root, "train", limit, progress, cfg.dataset.skip_corrupt, cfg.dataset.image_size)
    val = None
    if cfg.dataset.val_split > 0:
        held = round(cfg.dataset.val_split * len(train))
        if not 0 < held < len(train):
            raise ValueError(
                f"--val-split {cfg.dataset.val_split} of {len(train)} training images holds out {held}: no "
                f"{'validation' if held == 0 else 'training'} images would be left; use a "
                f"{'larger' if held == 0 else 'smaller'} --val-split, more images, or --val-split 0"
            )
        train, val = val_split(train, cfg.dataset.val_split, seed=cfg.run.seed)
        val = _random_subset(val, cfg.dataset.limit_val, cfg.run.seed)
    train = _random_subset(train, cfg.dataset.limit_train, cfg.run.seed)
    test = load_split(
        name, root, "test", cfg.dataset.limit_val, progress, cfg.dataset.skip_corrupt, cfg.dataset.image_size
    )
    if test is not None:
        check_classes("test", test.classes, train.classes)
    return train, val, test


def load_split(
    name: str,
    root: str | None,
    split: str,
    limit: int | None = None,
    progress: bool = True,
    skip_corrupt: bool = False,
    size: int | None = None,
):
    """The ``split`` of a dataset as ImageTensors; None for an ImageFolder tree without it. ``size``
    resizes the images of an ImageFolder tree (the named datasets have one size already)."""
    kw = (
        {"progress": progress, "skip_corrupt": skip_corrupt}
        if name in ("folder", "cifar10", "cifar100")
        else {}
    )
    if name == "folder" and not (Path(root) / split).is_dir():
        return None
    if name == "folder" and size is not None:
        kw["size"] = size
    data = load_dataset(name, split, root, limit=limit, **kw)
    if data.skipped:  # --skip-corrupt: say what was left out, never drop images silently
        shown = ", ".join(data.skipped[:3]) + (", ..." if len(data.skipped) > 3 else "")
        print(
            f"--skip-corrupt: left out {len(data.skipped)} of {len(data) + len(data.skipped)} images of "
            f"{data.source} that cannot be decoded ({shown})",
            file=sys.stderr,
        )
    return data


def check_classes(split: str, classes: list[str], trained: list[str]) -> None:
    """Labels are indices into the class list: a split whose classes differ from the training classes
    (one missing shifts every later label) would be scored against the wrong answers."""
    if list(classes) != list(trained):
        missing = sorted(set(trained) - set(classes))
        extra = sorted(set(classes) - set(trained))
        detail = f"missing {missing}, extra {extra}" if missing or extra else "in another order"
        raise ValueError(
            f"the {split} set's classes differ from the training classes ({detail}): its labels would "
            f"not match the network's outputs; give the {split} split the same class directories"
        )


def check_padding(cfg: TrainConfig, padding: int) -> None:
    """Refuse ``--pad-mode reflect`` for random crops of images that are not padded (the rest of the rule,
    no crops at all, is :meth:`TrainConfig.validate`'s)."""
    if cfg.speedrun.pad_mode == "reflect" and "crop" in cfg.dataset.augmentations and padding == 0:
        raise ValueError(
            "--pad-mode reflect mirrors the border of padded random crops, and this run pads nothing; use "
            "crop in --augment and --crop-padding > 0 (in-memory images, up to 64x64), or --pad-mode constant"
        )


def build_data(cfg: TrainConfig, progress: bool = True, placement: Placement | None = None) -> DataBundle:
    """The trainer's data for ``cfg``: loaders sharded for this process, transforms on its device
    (``placement``, else :func:`cnnarch.train.device.place` of ``cfg.run.device``, carried in the bundle)."""
    placement = placement or place(cfg.run.device)
    device, info = placement.device, placement.dist
    cfg = cfg.validate(device.type)  # the input dtype follows the precision chosen for the device
    if cfg.schedule.batch_size % info.world_size:
        raise ValueError(
            f"-b {cfg.schedule.batch_size} is the global batch; it must divide evenly over "
            f"{info.world_size} processes"
        )
    per_rank = cfg.schedule.batch_size // info.world_size
    shard = dict(seed=cfg.run.seed, rank=info.rank, world_size=info.world_size, device=device)
    name, root = locate(cfg.dataset.data)
    if name == "folder" and cfg.dataset.image_size is None and _is_large_folder(root):
        return _stream_data(cfg, root, per_rank, shard, placement)

    # a cold cache is downloaded and decoded by one process per machine, then read by the others
    train, val, test = D.local_main_first(
        lambda: load_splits(cfg, progress=progress and info.is_main), info, device
    )
    c, h, w = train.image_shape
    aug = cfg.dataset.augmentations
    padding = h // 8 if cfg.dataset.crop_padding is None else cfg.dataset.crop_padding  # CIFAR: 4 (He 4.2)
    check_padding(cfg, padding)
    train_tf, eval_tf = make_transforms(
        train.images,
        crop=h if "crop" in aug else None,
        padding=padding if "crop" in aug else 0,
        flip="flip" in aug,
        lighting_std=0.1 if "pca" in aug else 0.0,
        dtype=input_dtype(cfg, device),
        channels_last=cfg.run.channels_last,
        pad_mode=cfg.speedrun.pad_mode,
        alternate_flip=cfg.speedrun.alternate_flip and "flip" in aug,
    )
    norm = train_tf.normalize
    data_info = {
        "dataset": name,
        "root": root if root is not None else train.source,  # where it was found, or downloaded to
        "mean": norm.mean.tolist(),
        "std": norm.std.tolist(),
        "image_shape": [c, h, w],
        "crop": h,
        "padding": h // 8,
        "stream": False,
        "train_images": len(train),
    }

    def loader(d, shuffle, tf):
        if d is None:
            return None
        return TensorLoader(d, per_rank, shuffle=shuffle, drop_last=shuffle, transform=tf, **shard)

    return DataBundle(
        train=loader(train, True, train_tf),
        val=loader(val, False, eval_tf),
        test=loader(test, False, eval_tf),
        num_classes=len(train.classes),
        classes=list(train.classes),
        info=data_info,
        in_channels=c,
        placement=placement,
    )


def _stream_data(cfg: TrainConfig, root: str, per_rank: int, shard: dict, placement: Placement) -> DataBundle:
    """Large images: DataLoader workers decode, the transform runs on whole batches."""
    split = "val" if (Path(root) / "val").is_dir() else "test"
    # ImageNet's mean/std: computing them would mean decoding the whole training set first
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    dtype = input_dtype(cfg, shard["device"])
    normalize = Normalize(mean=mean, std=std, dtype=dtype, channels_last=cfg.run.channels_last)
    aug = cfg.dataset.augmentations
    if "pca" in aug:
        raise ValueError("--augment pca needs in-memory data (images up to 64x64); drop pca for large images")
    check_padding(cfg, padding=0)
    train_tf = TrainTransform(
        crop=STREAM_CROP if "crop" in aug else None,
        flip="flip" in aug,
        normalize=normalize,
        alternate_flip=cfg.speedrun.alternate_flip and "flip" in aug,
    )
    data_info = {
        "dataset": "folder",
        "root": root,
        "mean": list(mean),
        "std": list(std),
        "image_shape": [3, STREAM_LOAD, STREAM_LOAD],
        "crop": STREAM_CROP,
        "padding": 0,
        "stream": True,
    }
    eval_tf = EvalTransform(crop=STREAM_CROP, normalize=normalize)
    common = dict(load_size=STREAM_LOAD, workers=cfg.dataset.workers, **shard)
    train = StreamLoader(
        Path(root) / "train", per_rank, shuffle=True, drop_last=True, transform=train_tf, **common
    )
    val = None
    if (Path(root) / split).is_dir():
        val = StreamLoader(Path(root) / split, per_rank, shuffle=False, transform=eval_tf, **common)
        check_classes(split, val.classes, train.classes)
    return DataBundle(
        train=train,
        val=val,
        num_classes=len(train.classes),
        classes=list(train.classes),
        info=data_info,
        placement=placement,
    )
