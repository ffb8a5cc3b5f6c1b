import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar10-jpeg"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# Tests find data only where they put it: the checkout's ../shared/data copy is not looked at, by any test,
# module-scoped fixture or the processes they start (tests of that rule delete this variable for themselves).
os.environ["CNNARCH_PROJECT_DATA"] = ""


def write_colour_tree(root: Path, size=8, classes=("blue", "green", "red"), test_classes=None, n_train=12,
                      n_test=3, seed=0) -> Path:  # fmt: skip
    """An ImageFolder tree (``train/``, ``test/``) of ``size`` x ``size`` PNGs whose class is their
    dominant colour, so that a few steps of training learn it; returns ``root``."""
    rng = np.random.default_rng(seed)
    for split, n, names in (("train", n_train, classes), ("test", n_test, test_classes or classes)):
        for name in names:
            c = ("blue", "green", "red").index(name)
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
                img[..., 2 - c] += 150
                Image.fromarray(img).save(d / f"{i}.png")
    return root


@pytest.fixture
def colour_tree():
    """:func:`write_colour_tree`, for tests to call with their own sizes."""
    return write_colour_tree


@pytest.fixture(scope="session")
def cifar_jpeg_root() -> Path:
    """The shared CIFAR-10 JPEG copy (ImageFolder layout). CI must have it; elsewhere a missing copy skips."""
    root = Path(os.environ.get("CNNARCH_TEST_DATA", SHARED_CIFAR))
    if not (root / "train").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CIFAR-10 JPEG copy not found at {root}; CI needs ../shared/data/cifar10-jpeg")
        pytest.skip(f"CIFAR-10 JPEG copy not found at {root} (set CNNARCH_TEST_DATA)")
    return root
