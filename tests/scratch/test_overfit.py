"""The assignment's sanity check on real data: deep fully connected nets overfit 50 CIFAR-10 images."""

import numpy as np
import pytest

from cnnarch.scratch.classifiers.fc_net import FullyConnectedNet
from cnnarch.scratch.data import load_cifar10
from cnnarch.scratch.solver import Solver


@pytest.fixture(scope="module")
def small_cifar(cifar_jpeg_root):
    X, y = load_cifar10(cifar_jpeg_root, "train", limit=50, use_cache=False, workers=1, progress=False)
    assert X.shape == (50, 3, 32, 32) and np.bincount(y).tolist() == [5] * 10
    X = X.astype(np.float32)
    X -= X.mean(axis=0)
    return {"X_train": X, "y_train": y, "X_val": X[:10], "y_val": y[:10]}


@pytest.mark.parametrize("hidden_dims,weight_scale,lr", [([100, 100], 2e-2, 5e-3), ([100] * 4, 7e-2, 2e-3)])
def test_fc_net_overfits_50_images(small_cifar, hidden_dims, weight_scale, lr):
    np.random.seed(0)
    model = FullyConnectedNet(hidden_dims, weight_scale=weight_scale, dtype=np.float64)
    solver = Solver(
        model,
        small_cifar,
        update_rule="sgd",
        optim_config={"learning_rate": lr},
        num_epochs=20,
        batch_size=25,
        print_every=10**6,
        verbose=False,
    )
    solver.train()
    assert len(solver.train_acc_history) == 21
    assert solver.train_acc_history[-1] == 1.0, solver.train_acc_history


def test_missing_cifar_copy_names_the_way_out(tmp_path):
    with pytest.raises(FileNotFoundError, match="looked in .*nowhere.*expected cifar-10-batches-py"):
        load_cifar10(tmp_path / "nowhere")
