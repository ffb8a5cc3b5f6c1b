import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _write_tree(root: Path, classes=("cat", "dog"), per_class=3, size=(8, 6), seed=0, fmt="png"):
    """An ImageFolder tree of random images; returns {relative path: HxWx3 uint8 array} (PNG: lossless)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            rel = f"{c}/{i:04d}.{fmt}"
            Image.fromarray(arr).save(root / rel)
            arrays[rel] = arr
    return arrays


def _jpeg_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("CNNARCH_CACHE", str(d))
    return d


@pytest.fixture
def write_tree():
    return _write_tree


@pytest.fixture
def jpeg_bytes():
    return _jpeg_bytes
