"""cnnarch.data: datasets as uint8 tensors in memory, batched augmentation, fast loaders.

Small images (CIFAR, MNIST, any ImageFolder tree of images up to ~64x64) are decoded once into a
tensor cache and held in memory as :class:`ImageTensors`; large images stream through a DataLoader.
"""

from cnnarch.data.base import CorruptImageError, ImageTensors, default_cache_dir
from cnnarch.data.folder import load_image_folder, scan_image_folder

__all__ = [
    "CorruptImageError",
    "ImageTensors",
    "default_cache_dir",
    "load_image_folder",
    "scan_image_folder",
]
