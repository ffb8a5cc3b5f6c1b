"""CIFAR-10 for the NumPy engine, split the way CS231n assignment 2 splits it.

Images come from an ImageFolder copy of CIFAR-10 (``train/`` and ``test/``, one folder per class), read
through :func:`cnnarch.data.load_image_folder`, which decodes the JPEGs once into a uint8 cache.

Deliberate differences from the assignment's ``get_CIFAR10_data``:
- the ImageFolder lists images sorted by class, so the training set is shuffled with a fixed seed
  before the train/validation split, and a test subset (``num_test`` < 10000) is a fixed random one;
  the assignment reads the original, already shuffled, pickled batches;
- arrays are float32 by default (``dtype``), half the memory of float64 for 49,000 images.
"""

import os
from pathlib import Path

import numpy as np

from cnnarch.data import load_image_folder

DEFAULT_ROOT = Path("..") / "shared" / "data" / "cifar10-jpeg"


def cifar10_root(root=None) -> Path:
    """``root``, else $CNNARCH_CIFAR10, else ../shared/data/cifar10-jpeg; must hold train/ and test/."""
    path = Path(root or os.environ.get("CNNARCH_CIFAR10") or DEFAULT_ROOT).expanduser()
    if not (path / "train").is_dir() or not (path / "test").is_dir():
        raise FileNotFoundError(
            f"CIFAR-10 ImageFolder copy not found at {path} (needs train/ and test/ with one folder per "
            "class); pass root= or set CNNARCH_CIFAR10"
        )
    return path


def load_cifar10(root=None, split="train", limit=None, **load_kwargs):
    """``(X, y)``: uint8 images (N, 3, 32, 32) and int64 labels of one split, in folder order.

    ``limit`` reads only that many images, spread over the classes; ``load_kwargs`` go to
    :func:`cnnarch.data.load_image_folder` (e.g. ``use_cache=False, workers=1`` for a handful).
    """
    data = load_image_folder(cifar10_root(root), split, limit=limit, **load_kwargs)
    return data.numpy("NCHW")


def get_CIFAR10_data(  # noqa: N802 (the assignment's name)
    num_training=49000,
    num_validation=1000,
    num_test=1000,
    subtract_mean=True,
    *,
    root=None,
    dtype=np.float32,
    seed=0,
):
    """The assignment's data dict: 'X_train', 'y_train', 'X_val', 'y_val', 'X_test', 'y_test'.

    Images are (N, 3, 32, 32) of ``dtype`` in 0..255, minus the mean image of the training split when
    ``subtract_mean``. Training and validation images are disjoint parts of CIFAR-10's 50,000 training
    images (shuffled with ``seed``); test images come from its 10,000 test images.
    """
    X, y = load_cifar10(root, "train")
    if num_training + num_validation > len(X):
        raise ValueError(f"num_training + num_validation = {num_training + num_validation} > {len(X)} images")
    X_test, y_test = load_cifar10(root, "test")
    if num_test > len(X_test):
        raise ValueError(f"num_test = {num_test} > {len(X_test)} test images")
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(X))
    train_idx, val_idx = order[:num_training], order[num_training : num_training + num_validation]
    test_idx = np.sort(rng.permutation(len(X_test))[:num_test])
    data = {
        "X_train": X[train_idx].astype(dtype),
        "y_train": y[train_idx],
        "X_val": X[val_idx].astype(dtype),
        "y_val": y[val_idx],
        "X_test": X_test[test_idx].astype(dtype),
        "y_test": y_test[test_idx],
    }
    if subtract_mean:
        mean_image = data["X_train"].mean(axis=0)
        for k in ("X_train", "X_val", "X_test"):
            data[k] -= mean_image
    return data
