import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar10-jpeg"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _no_project_data(monkeypatch):
    """Tests find data only where they put it: the checkout's ../shared/data copy is not looked at
    (tests of that rule delete this variable)."""
    monkeypatch.setenv("CNNARCH_PROJECT_DATA", "")


@pytest.fixture(scope="session")
def cifar_jpeg_root() -> Path:
    """The shared CIFAR-10 JPEG copy (ImageFolder layout). CI must have it; elsewhere a missing copy skips."""
    root = Path(os.environ.get("CNNARCH_TEST_DATA", SHARED_CIFAR))
    if not (root / "train").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CIFAR-10 JPEG copy not found at {root}; CI needs ../shared/data/cifar10-jpeg")
        pytest.skip(f"CIFAR-10 JPEG copy not found at {root} (set CNNARCH_TEST_DATA)")
    return root
