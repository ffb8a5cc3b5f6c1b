import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "cnnarch_train_synthetic", Path(__file__).with_name("synthetic.py")
)
synthetic = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = synthetic
_spec.loader.exec_module(synthetic)

import pytest  # noqa: E402


@pytest.fixture
def syn():
    """tests/train/synthetic.py: tiny data sources, transforms and networks."""
    return synthetic
