"""CIFAR-10 for the NumPy engine, split the way CS231n assignment 2 splits it.

The images are found like every other dataset of cnnarch (:func:`cnnarch.data.cifar10`): ``root``, else
``$CNNARCH_DATA``, else the project's ``shared/data``, else the cache, else a download; each place may
hold the official ``cifar-10-batches-py`` folder (the one the assignment's ``get_datasets.sh`` fetches),
its archive, or an ImageFolder copy with ``train/`` and ``test/`` such as the JPEG copy ``cifar10-jpeg``.

Deliberate differences from the assignment's ``get_CIFAR10_data``:
- an ImageFolder copy lists its images sorted by class, so such a training set is shuffled with a
  fixed ``seed`` before the train/validation split, and its test subset (``num_test`` < 10000) is a
  fixed random one; the official batches, already shuffled, are split as the assignment splits them
  (the first ``num_training`` images, the next ``num_validation``, the first ``num_test`` test images);
- arrays are float32 by default (``dtype``), half the memory of the assignment's float64.
"""

import numpy as np

from cnnarch.data import cifar10


def load_cifar10(root=None, split="train", limit=None, **load_kwargs):
    """``(X, y)``: uint8 images (N, 3, 32, 32) and int64 labels of one split, in stored order.

    ``limit`` reads only that many images, spread over the classes; ``load_kwargs`` go to
    :func:`cnnarch.data.cifar10` (e.g. ``use_cache=False, workers=1`` for a handful of JPEGs).
    """
    return cifar10(root, split, limit=limit, **load_kwargs).numpy("NCHW")


def _sorted_by_class(y) -> bool:
    return bool(np.all(y[1:] >= y[:-1]))


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
    images; test images come from its 10,000 test images.
    """
    X, y = load_cifar10(root, "train")
    if num_training + num_validation > len(X):
        raise ValueError(f"num_training + num_validation = {num_training + num_validation} > {len(X)} images")
    X_test, y_test = load_cifar10(root, "test")
    if num_test > len(X_test):
        raise ValueError(f"num_test = {num_test} > {len(X_test)} test images")
    train_idx = np.arange(num_training + num_validation)
    test_idx = np.arange(num_test)
    if _sorted_by_class(y):
        rng = np.random.RandomState(seed)
        train_idx = rng.permutation(len(X))[: num_training + num_validation]
        test_idx = np.sort(rng.permutation(len(X_test))[:num_test])
    val_idx, train_idx = train_idx[num_training:], train_idx[:num_training]
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
