"""Update rules against torch.optim, and the Solver's contract."""

import numpy as np
import pytest
import torch

from cnnarch.scratch import optim
from cnnarch.scratch.classifiers.fc_net import FullyConnectedNet
from cnnarch.scratch.gradient_check import rel_error
from cnnarch.scratch.solver import Solver

# Each rule with its assignment defaults, and the torch optimizer that computes the same trajectory.
RULES = {
    "sgd": (lambda p: torch.optim.SGD(p, lr=1e-2)),
    "sgd_momentum": (lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9)),
    "rmsprop": (lambda p: torch.optim.RMSprop(p, lr=1e-2, alpha=0.99, eps=1e-8)),
    "adam": (lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)),
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_update_rule_matches_torch(rng, name):
    w = rng.randn(4, 5)
    tw = torch.tensor(w.copy(), requires_grad=True)
    opt = RULES[name]([tw])
    config = None
    for _ in range(6):
        dw = rng.randn(4, 5)
        w, config = getattr(optim, name)(w, dw, config)
        tw.grad = torch.tensor(dw)
        opt.step()
        assert rel_error(w, tw.detach().numpy()) <= 1e-10
    assert config["learning_rate"] == (1e-3 if name == "adam" else 1e-2)
    if name == "adam":
        assert config["t"] == 6 and config["beta1"] == 0.9 and config["beta2"] == 0.999


def small_data(rng, n=60, d=8, c=3):
    centers = 3 * rng.randn(c, d)
    y = rng.randint(c, size=n)
    X = centers[y] + rng.randn(n, d)
    return {"X_train": X[:40], "y_train": y[:40], "X_val": X[40:], "y_val": y[40:]}


def test_solver_errors(rng):
    model = FullyConnectedNet([5], input_dim=8, num_classes=3)
    data = small_data(rng)
    with pytest.raises(ValueError, match="Unrecognized arguments learning_rate"):
        Solver(model, data, learning_rate=1e-3)
    with pytest.raises(ValueError, match='Invalid update_rule "adagrad"'):
        Solver(model, data, update_rule="adagrad")
    with pytest.raises(ValueError, match="X_val"):
        Solver(model, {"X_train": data["X_train"], "y_train": data["y_train"]})


def test_solver_trains_with_histories_and_checkpoints(rng, tmp_path):
    data = small_data(rng)
    np.random.seed(0)
    model = FullyConnectedNet([16], input_dim=8, num_classes=3, weight_scale=0.1)
    solver = Solver(
        model,
        data,
        update_rule="adam",
        optim_config={"learning_rate": 1e-2},
        lr_decay=0.5,
        num_epochs=3,
        batch_size=10,
        verbose=False,
        checkpoint_name=str(tmp_path / "ck"),
    )
    solver.train()
    assert len(solver.loss_history) == 3 * 4  # 40 images, batch 10
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 1 + 3  # first iteration + epochs
    assert solver.loss_history[-1] < solver.loss_history[0]
    assert solver.best_val_acc == max(solver.val_acc_history) > 0.5
    assert all(np.array_equal(model.params[k], v) for k, v in solver.best_params.items())
    # learning rate decayed after each of the 3 epochs
    assert all(abs(c["learning_rate"] - 1e-2 * 0.5**3) < 1e-15 for c in solver.optim_configs.values())
    ck = Solver.load_checkpoint(tmp_path / "ck_epoch_3.pkl")
    assert ck["epoch"] == 3 and ck["loss_history"] == solver.loss_history
    assert set(ck["model"].params) == set(model.params)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ck_epoch_{e}.pkl" for e in (0, 1, 2, 3)]


def test_solver_seeded_run_repeats(rng):
    data = small_data(rng)

    def run():
        np.random.seed(7)
        model = FullyConnectedNet(
            [16], input_dim=8, num_classes=3, dropout_keep_ratio=0.7, normalization="batchnorm"
        )
        solver = Solver(model, data, update_rule="sgd_momentum", num_epochs=2, batch_size=8, verbose=False)
        solver.train()
        return solver.loss_history, model.params

    (l1, p1), (l2, p2) = run(), run()
    assert l1 == l2 and all(np.array_equal(p1[k], p2[k]) for k in p1)


def test_solver_nan_loss_names_the_step(rng):
    data = small_data(rng)
    np.random.seed(0)
    model = FullyConnectedNet([16], input_dim=8, num_classes=3, weight_scale=1e3, dtype=np.float64)
    solver = Solver(
        model, data, optim_config={"learning_rate": 1e30}, num_epochs=5, batch_size=10, verbose=False
    )
    with pytest.raises(FloatingPointError, match=r"epoch \d+, iteration \d+"):
        with np.errstate(all="ignore"):
            solver.train()
