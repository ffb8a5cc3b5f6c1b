"""The workspace's own CIFAR-10 loader (NumPy and Pillow only) against cnnarch's, on small copies in
both layouts: the official pickled batches and an ImageFolder tree of JPEGs."""

import pickle

import numpy as np
import pytest
from PIL import Image

from cnnarch.assignment import data_utils
from cnnarch.data import cifar10

CLASSES = [f"class{i}" for i in range(10)]


@pytest.fixture
def batches(tmp_path):
    """An official-layout folder: five training batches of 20 images and a test batch of 30."""
    rng = np.random.RandomState(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, n in [*((f"data_batch_{i}", 20) for i in range(1, 6)), ("test_batch", 30)]:
        batch = {
            "data": rng.randint(0, 256, (n, 3072), dtype=np.uint8),
            "labels": rng.randint(10, size=n).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CLASSES}))
    return folder


@pytest.fixture
def jpegs(tmp_path):
    """An ImageFolder copy: 3 to 5 JPEGs per class and split, unequal so that limits round-robin."""
    rng = np.random.RandomState(1)
    root = tmp_path / "cifar10-jpeg"
    for split in ("train", "test"):
        for c, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(3 + c % 3):
                pixels = rng.randint(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i:04d}.jpg")
    return root


@pytest.mark.parametrize("layout", ["batches", "jpegs"])
@pytest.mark.parametrize("limit", [None, 17])
def test_same_images_and_labels_as_cnnarchs_loader(layout, limit, request, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    root = request.getfixturevalue(layout)
    for split in ("train", "test"):
        X, y = data_utils.load_cifar10(root, split, limit=limit, progress=False)
        want = cifar10(root, split, limit=limit, download=False, cache_dir=tmp_path / "theirs")
        want_X, want_y = want.numpy("NCHW")
        assert X.dtype == np.uint8 and X.shape[1:] == (3, 32, 32)
        np.testing.assert_array_equal(X, want_X)
        np.testing.assert_array_equal(y, want_y)
    if layout == "jpegs":  # decoded once, then read from the cache
        assert list((tmp_path / "cache" / "assignment").glob("*.npz"))


def test_found_from_cnnarch_data_and_a_clear_error_for_a_wrong_folder(batches, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNARCH_DATA", str(batches.parent))
    X, y = data_utils.load_cifar10(split="test")
    assert X.shape == (30, 3, 32, 32) and y.shape == (30,)
    with pytest.raises(FileNotFoundError, match="holds no CIFAR-10: expected the cifar-10-batches-py"):
        data_utils.load_cifar10(tmp_path / "nothing")


def test_get_cifar10_data_splits_disjointly_and_subtracts_the_training_mean(batches):
    data = data_utils.get_CIFAR10_data(60, 20, 10, root=batches)
    assert [len(data[k]) for k in ("X_train", "X_val", "X_test")] == [60, 20, 10]
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0, atol=1e-3)
    X, _ = data_utils.load_cifar10(batches, "train")
    raw = data_utils.get_CIFAR10_data(60, 20, 10, subtract_mean=False, root=batches)
    rows = {x.tobytes() for x in X.astype(np.float32)}
    train = {x.tobytes() for x in raw["X_train"]}
    val = {x.tobytes() for x in raw["X_val"]}
    assert train <= rows and val <= rows and not train & val
