"""The assignment's ``cs231n.data_utils`` names on top of :mod:`cnnarch.scratch.data`.

``load_CIFAR10(ROOT)`` returns what the assignment's does: ``Xtr, Ytr, Xte, Yte`` with images
(N, 32, 32, 3) float64 (channels last) and integer labels. ``ROOT`` may be the assignment's
``cs231n/datasets/cifar-10-batches-py``, its parent, an ImageFolder copy, or None for the usual
lookup (``$CNNARCH_DATA``, the project's ``shared/data``, the cache, a download).
"""

import numpy as np

from cnnarch.scratch.data import get_CIFAR10_data, load_cifar10

__all__ = ["get_CIFAR10_data", "load_CIFAR10"]


def load_CIFAR10(ROOT=None):  # noqa: N802, N803 (the assignment's names)
    """``Xtr, Ytr, Xte, Yte``: the 50,000 training and 10,000 test images, (N, 32, 32, 3) float64."""
    out = []
    for split in ("train", "test"):
        X, y = load_cifar10(ROOT, split)
        out += [X.transpose(0, 2, 3, 1).astype(np.float64), y]
    return tuple(out)
