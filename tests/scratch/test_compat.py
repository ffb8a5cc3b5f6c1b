"""What docs/scratch.md tells a student about running assignment-2 code on cnnarch.scratch, one test per
statement: the assignment's module and function names, its data, and the differences that remain."""

import importlib
import pickle

import numpy as np
import pytest
from PIL import Image

from cnnarch.scratch import data_utils, fast_layers, layers
from cnnarch.scratch.classifiers.fc_net import FullyConnectedNet
from cnnarch.scratch.vis_utils import vis_grid, vis_nn, visualize_grid

# The public names of the 2019 assignment's cs231n package (its layout, written out here).
ASSIGNMENT = {
    "layers": [
        "affine_forward", "affine_backward", "relu_forward", "relu_backward", "batchnorm_forward",
        "batchnorm_backward", "batchnorm_backward_alt", "layernorm_forward", "layernorm_backward",
        "dropout_forward", "dropout_backward", "conv_forward_naive", "conv_backward_naive",
        "max_pool_forward_naive", "max_pool_backward_naive", "spatial_batchnorm_forward",
        "spatial_batchnorm_backward", "spatial_groupnorm_forward", "spatial_groupnorm_backward",
        "svm_loss", "softmax_loss",
    ],
    "layer_utils": [
        "affine_relu_forward", "affine_relu_backward", "conv_relu_forward", "conv_relu_backward",
        "conv_bn_relu_forward", "conv_bn_relu_backward", "conv_relu_pool_forward", "conv_relu_pool_backward",
    ],
    "fast_layers": [
        "conv_forward_im2col", "conv_forward_strides", "conv_backward_strides", "conv_backward_im2col",
        "conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast", "max_pool_backward_fast",
        "max_pool_forward_reshape", "max_pool_backward_reshape", "max_pool_forward_im2col",
        "max_pool_backward_im2col",
    ],
    "optim": ["sgd", "sgd_momentum", "rmsprop", "adam"],
    "solver": ["Solver"],
    "classifiers.fc_net": ["TwoLayerNet", "FullyConnectedNet"],
    "classifiers.cnn": ["ThreeLayerConvNet"],
    "data_utils": ["load_CIFAR10", "get_CIFAR10_data"],
    "gradient_check": ["eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse"],
    "vis_utils": ["visualize_grid", "vis_grid", "vis_nn"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(ASSIGNMENT))
def test_every_assignment_name_exists_under_cnnarch_scratch(module):
    mod = importlib.import_module(f"cnnarch.scratch.{module}")
    assert [n for n in ASSIGNMENT[module] if not callable(getattr(mod, n, None))] == []


def test_fast_layer_variants_are_the_one_numpy_implementation(rng):
    assert (
        fast_layers.conv_forward_im2col is fast_layers.conv_forward_strides is fast_layers.conv_forward_fast
    )
    assert (
        fast_layers.conv_backward_im2col
        is fast_layers.conv_backward_strides
        is fast_layers.conv_backward_fast
    )
    assert fast_layers.max_pool_forward_reshape is fast_layers.max_pool_forward_im2col
    assert fast_layers.max_pool_forward_reshape is fast_layers.max_pool_forward_fast
    assert fast_layers.max_pool_backward_reshape is fast_layers.max_pool_backward_im2col
    assert fast_layers.max_pool_backward_reshape is fast_layers.max_pool_backward_fast
    # The notebook's comparison: the strided forward with the im2col backward, against the naive pair.
    x, w, b = rng.randn(2, 3, 8, 8), rng.randn(4, 3, 3, 3), rng.randn(4)
    cp = {"stride": 1, "pad": 1}
    out, cache = fast_layers.conv_forward_strides(x, w, b, cp)
    out_naive, cache_naive = layers.conv_forward_naive(x, w, b, cp)
    dout = rng.randn(*out.shape)
    np.testing.assert_allclose(out, out_naive, rtol=1e-12, atol=1e-12)
    for a, n in zip(
        fast_layers.conv_backward_im2col(dout, cache),
        layers.conv_backward_naive(dout, cache_naive),
        strict=True,
    ):
        np.testing.assert_allclose(a, n, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Data


def write_batches(directory, per_batch=4, n_test=6, seed=0):
    """The official cifar-10-batches-py: protocol-2 pickles with bytes keys, rows of 3072 bytes
    (1024 red, 1024 green, 1024 blue, each 32x32 row-major).

    Returns (train rows, train labels, test rows, test labels)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    rows, labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, n)]
        batch = {b"batch_label": b"x", b"data": data, b"labels": y, b"filenames": [b"f.png"] * n}
        (directory / name).write_bytes(pickle.dumps(batch, protocol=2))
        rows.append(data)
        labels.append(y)
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)], b"num_vis": 3072}
    (directory / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return np.concatenate(rows[:5]), sum(labels[:5], []), rows[5], labels[5]


def as_images(rows):
    out = np.empty((len(rows), 3, 32, 32))
    for c in range(3):
        for y in range(32):
            out[:, c, y, :] = rows[:, c * 1024 + y * 32 : c * 1024 + y * 32 + 32]
    return out


@pytest.fixture
def assignment_datasets(tmp_path, monkeypatch):
    """The assignment's own download, cs231n/datasets/cifar-10-batches-py; $CNNARCH_DATA names
    cs231n/datasets."""
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    datasets = tmp_path / "cs231n" / "datasets"
    monkeypatch.setenv("CNNARCH_DATA", str(datasets))
    return datasets, write_batches(datasets / "cifar-10-batches-py")


def test_get_CIFAR10_data_reads_the_assignment_batches_through_CNNARCH_DATA_and_splits_like_it(
    assignment_datasets,
):
    _, (train, y_train, test, y_test) = assignment_datasets
    data = data_utils.get_CIFAR10_data(num_training=15, num_validation=5, num_test=4, dtype=np.float64)
    images = as_images(train)
    mean = images[:15].mean(axis=0)
    assert sorted(data) == ["X_test", "X_train", "X_val", "y_test", "y_train", "y_val"]
    assert data["X_train"].dtype == np.float64 and data["X_train"].shape == (15, 3, 32, 32)
    # The assignment's split of the (already shuffled) batches: first 15, next 5, first 4 test images.
    np.testing.assert_array_equal(data["X_train"], images[:15] - mean)
    np.testing.assert_array_equal(data["X_val"], images[15:20] - mean)
    np.testing.assert_array_equal(data["X_test"], as_images(test)[:4] - mean)
    assert data["y_train"].tolist() == y_train[:15] and data["y_val"].tolist() == y_train[15:]
    assert data["y_test"].tolist() == y_test[:4]
    # float32 unless asked otherwise; root= finds the same copy
    datasets = assignment_datasets[0]
    for root in (datasets, datasets / "cifar-10-batches-py"):
        data32 = data_utils.get_CIFAR10_data(15, 5, 4, root=root)
        assert data32["X_train"].dtype == np.float32
        np.testing.assert_allclose(data32["X_val"], data["X_val"], rtol=1e-6, atol=1e-4)


def test_load_CIFAR10_returns_the_assignment_arrays(assignment_datasets):
    datasets, (train, y_train, test, y_test) = assignment_datasets
    for root in (datasets / "cifar-10-batches-py", datasets, None):
        Xtr, Ytr, Xte, Yte = data_utils.load_CIFAR10(root)
        assert Xtr.dtype == np.float64 and Xtr.shape == (20, 32, 32, 3) and Xte.shape == (6, 32, 32, 3)
        np.testing.assert_array_equal(Xtr, as_images(train).transpose(0, 2, 3, 1))
        np.testing.assert_array_equal(Xte, as_images(test).transpose(0, 2, 3, 1))
        assert Ytr.tolist() == y_train and Yte.tolist() == y_test


def test_get_CIFAR10_data_shuffles_an_image_folder_copy(tmp_path, monkeypatch):
    """An ImageFolder tree lists its images by class: training and validation images are drawn from
    all classes, disjoint, and repeat for the same seed."""
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 2)):
        for c in range(10):
            (tmp_path / "jpeg" / split / f"class{c}").mkdir(parents=True)
            for i in range(n):
                # pixel (0, 0) encodes the image's index, so the test can tell images apart after loading
                img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                img[0, 0] = (c, i, 7)
                Image.fromarray(img).save(tmp_path / "jpeg" / split / f"class{c}" / f"{i}.png")
    kw = {
        "num_training": 30,
        "num_validation": 10,
        "num_test": 5,
        "subtract_mean": False,
        "root": tmp_path / "jpeg",
    }
    data = data_utils.get_CIFAR10_data(**kw)

    def ids(X):
        return [(int(x[0, 0, 0]), int(x[1, 0, 0])) for x in X]

    train, val = ids(data["X_train"]), ids(data["X_val"])
    assert len(set(train)) == 30 and len(set(val)) == 10 and not set(train) & set(val)
    assert [c for c, _ in train] != sorted(c for c, _ in train)  # not in class order
    assert [c for c, _ in train] == data["y_train"].tolist()
    assert ids(data_utils.get_CIFAR10_data(**kw)["X_train"]) == train
    assert ids(data_utils.get_CIFAR10_data(**kw, seed=1)["X_train"]) != train


def test_the_shared_jpeg_copy_is_found_through_CNNARCH_DATA(cifar_jpeg_root, monkeypatch):
    monkeypatch.setenv("CNNARCH_DATA", str(cifar_jpeg_root.parent))  # the folder that holds cifar10-jpeg
    if cifar_jpeg_root.name != "cifar10-jpeg":
        monkeypatch.setenv("CNNARCH_DATA", str(cifar_jpeg_root))
    from cnnarch.scratch.data import load_cifar10

    X, y = load_cifar10(split="test", limit=20, use_cache=False, workers=1, progress=False)
    assert X.shape == (20, 3, 32, 32) and X.dtype == np.uint8 and np.bincount(y).tolist() == [2] * 10


# ---------------------------------------------------------------------------------------------
# Remaining differences


def test_dropout_keep_probability_and_both_keyword_names():
    x = np.ones((200, 200))
    out, _ = layers.dropout_forward(x, {"mode": "train", "p": 0.25, "seed": 1})
    assert abs((out != 0).mean() - 0.25) < 0.02  # p keeps, as in the 2019 assignment
    a = FullyConnectedNet([5], input_dim=4, num_classes=3, dropout=0.5)
    b = FullyConnectedNet([5], input_dim=4, num_classes=3, dropout_keep_ratio=0.5)
    assert a.dropout_param["p"] == b.dropout_param["p"] == 0.5


def test_seeded_dropout_draws_the_assignment_mask_without_reseeding_numpy():
    x = np.ones((30, 40))
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    out, _ = layers.dropout_forward(x, {"mode": "train", "p": 0.6, "seed": 5})
    # the assignment: np.random.seed(seed); mask = (np.random.rand(*x.shape) < p) / p
    np.testing.assert_array_equal(out, (np.random.RandomState(5).rand(30, 40) < 0.6) / 0.6)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


# ---------------------------------------------------------------------------------------------
# vis_utils


def test_visualize_grid_tiles_rescaled_images_row_by_row():
    Xs = np.arange(5 * 2 * 3 * 1, dtype=float).reshape(5, 2, 3, 1)
    grid = visualize_grid(Xs, ubound=255.0, padding=1)
    assert grid.shape == (3 * 2 + 2, 3 * 3 + 2, 1)  # 3x3 tiles for 5 images, 1-pixel gaps
    tile = 255.0 * np.arange(6).reshape(2, 3, 1) / 5  # each image rescaled to [0, 255] on its own
    for k in range(5):
        r, c = divmod(k, 3)
        np.testing.assert_allclose(grid[3 * r : 3 * r + 2, 4 * c : 4 * c + 3], tile)
    assert grid[2].max() == 0 and grid[:, 3].max() == 0 and grid[3:5, 8:11].max() == 0  # gaps, empty slot


def test_vis_grid_and_vis_nn_place_images_and_rescale_to_unit_range():
    Xs = np.stack([np.full((2, 2, 3), v, dtype=float) for v in (1.0, 3.0, 5.0)])
    G = vis_grid(Xs)
    assert G.shape == (2 * 2 + 2, 2 * 2 + 2, 3) and G.min() == 0 and G.max() == 1
    np.testing.assert_allclose(G[0:2, 3:5], 0.5)  # image 2 of 3 (value 3 between 1 and 5)
    np.testing.assert_allclose(G[3:5, 3:5], 0.0)  # the empty slot takes the minimum
    V = vis_nn([[Xs[0], Xs[1]], [Xs[2], Xs[0]]])
    assert V.shape == (2 * 2 + 2, 2 * 2 + 2, 3)
    np.testing.assert_allclose(V[3:5, 0:2], 1.0)
