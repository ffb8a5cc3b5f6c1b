"""cnnarch.data: datasets as uint8 tensors in memory, batched augmentation, fast loaders.

Small images (CIFAR, MNIST, any ImageFolder tree of images up to ~64x64) are decoded once into a
tensor cache and held in memory as :class:`ImageTensors`; large images stream through a DataLoader.
"""

from cnnarch.data.augment import (
    EvalTransform,
    Normalize,
    TrainTransform,
    alternating_flips,
    channel_stats,
    flip_where,
    lighting,
    make_transforms,
    pad_crop,
    rgb_pca,
    ten_crop,
)
from cnnarch.data.base import CorruptImageError, ImageTensors, default_cache_dir
from cnnarch.data.datasets import (
    DatasetNotFoundError,
    cifar10,
    cifar100,
    fashion_mnist,
    load_dataset,
    mnist,
    read_idx,
)
from cnnarch.data.download import DownloadError, download, extract
from cnnarch.data.folder import load_image_folder, scan_image_folder
from cnnarch.data.loader import StreamLoader, TensorLoader, val_split

__all__ = [
    "EvalTransform",
    "Normalize",
    "StreamLoader",
    "TensorLoader",
    "TrainTransform",
    "alternating_flips",
    "channel_stats",
    "flip_where",
    "lighting",
    "make_transforms",
    "pad_crop",
    "rgb_pca",
    "ten_crop",
    "val_split",
    "CorruptImageError",
    "DatasetNotFoundError",
    "DownloadError",
    "ImageTensors",
    "cifar10",
    "cifar100",
    "default_cache_dir",
    "download",
    "extract",
    "fashion_mnist",
    "load_dataset",
    "load_image_folder",
    "mnist",
    "read_idx",
    "scan_image_folder",
]
