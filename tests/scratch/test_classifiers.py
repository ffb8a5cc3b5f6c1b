"""Models' ``loss`` against numerical gradients (float64) and their documented structure."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnarch.scratch.classifiers.cnn import ThreeLayerConvNet
from cnnarch.scratch.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from cnnarch.scratch.gradient_check import eval_numerical_gradient, rel_error

# Bound for whole networks, float64, h = 1e-5: the norm-wise relative error of each parameter's
# gradient, ||num - ana|| / max(||num|| + ||ana||, 1e-3), is at most 1e-7. Norm-wise rather than
# elementwise because in a network some gradient entries are ~1e-6 or exactly zero (biases before batch
# norm) and a relu kink crossed by one of the 2 * size perturbations spoils single entries; the 1e-3
# floor turns the check into an absolute one for gradients that vanish.
NET_TOL = 1e-7


def net_error(num, ana):
    return float(np.linalg.norm(num - ana) / max(1e-3, np.linalg.norm(num) + np.linalg.norm(ana)))


def check_model_grads(model, X, y, tol=NET_TOL):
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name in sorted(model.params):
        num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], verbose=False)
        assert grads[name].shape == model.params[name].shape
        assert net_error(num, grads[name]) <= tol, (name, net_error(num, grads[name]))
    return loss


@pytest.mark.parametrize("reg", [0.0, 3.14])
@pytest.mark.parametrize(
    "normalization,keep", [(None, 1), ("batchnorm", 1), ("layernorm", 1), (None, 0.5), ("batchnorm", 0.75)]
)
def test_fc_net_gradients(rng, reg, normalization, keep):
    np.random.seed(0)
    N, D, H1, H2, C = 6, 5, 8, 9, 4
    X, y = rng.randn(N, D), rng.randint(C, size=N)
    model = FullyConnectedNet(
        [H1, H2],
        input_dim=D,
        num_classes=C,
        reg=reg,
        weight_scale=0.3,
        dtype=np.float64,
        normalization=normalization,
        dropout_keep_ratio=keep,
        seed=123,
    )
    for i in (1, 2, 3):  # zero biases put a relu exactly on its kink when dropout zeroes a whole row
        model.params[f"b{i}"] = 0.1 * rng.randn(*model.params[f"b{i}"].shape)
    check_model_grads(model, X, y)


def test_fc_net_structure_and_initial_loss(rng):
    np.random.seed(1)
    model = FullyConnectedNet([10, 20, 30], input_dim=15, num_classes=6, normalization="batchnorm", reg=0.5)
    assert model.num_layers == 4
    assert {k: v.shape for k, v in model.params.items()} == {
        "W1": (15, 10),
        "b1": (10,),
        "gamma1": (10,),
        "beta1": (10,),
        "W2": (10, 20),
        "b2": (20,),
        "gamma2": (20,),
        "beta2": (20,),
        "W3": (20, 30),
        "b3": (30,),
        "gamma3": (30,),
        "beta3": (30,),
        "W4": (30, 6),
        "b4": (6,),
    }
    assert all(v.dtype == np.float32 for v in model.params.values())
    X, y = rng.randn(40, 15), rng.randint(6, size=40)
    scores = model.loss(X)
    assert scores.shape == (40, 6) and scores.dtype == np.float32
    loss, _ = model.loss(X, y)
    reg_term = 0.5 * 0.5 * sum(np.sum(model.params[f"W{i}"].astype(np.float64) ** 2) for i in range(1, 5))
    assert abs(loss - reg_term - np.log(6)) < 0.05  # small weights: near-uniform scores
    with pytest.raises(ValueError, match="normalization"):
        FullyConnectedNet([10], normalization="groupnorm")
    assert FullyConnectedNet([10], dropout=0.5).dropout_param["p"] == 0.5  # the 2019 notebooks' keyword
    with pytest.raises(ValueError, match="not both"):
        FullyConnectedNet([10], dropout=0.5, dropout_keep_ratio=0.7)


def test_fc_net_matches_torch(rng):
    """Scores and gradients of a batchnorm + dropout net equal a torch re-implementation with the same
    weights and the same dropout mask."""
    np.random.seed(2)
    model = FullyConnectedNet(
        [8, 9],
        input_dim=6,
        num_classes=4,
        dropout_keep_ratio=0.6,
        normalization="batchnorm",
        reg=0.1,
        weight_scale=0.3,
        dtype=np.float64,
        seed=5,
    )
    X, y = rng.randn(12, 6), rng.randint(4, size=12)
    loss, grads = model.loss(X, y)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    h = torch.tensor(X)
    for i in (1, 2):
        a = F.batch_norm(
            h @ P[f"W{i}"] + P[f"b{i}"], None, None, P[f"gamma{i}"], P[f"beta{i}"], training=True
        )
        h = F.relu(a)
        mask = np.random.RandomState(5).rand(*h.shape) < 0.6
        h = h * torch.tensor(mask) / 0.6
    scores = h @ P["W3"] + P["b3"]
    tloss = F.cross_entropy(scores, torch.tensor(y)) + 0.05 * sum((P[f"W{i}"] ** 2).sum() for i in (1, 2, 3))
    tloss.backward()
    assert rel_error(loss, tloss.item()) <= 1e-12
    for k in model.params:  # b1, b2 feed batch norm: both gradients are rounding noise around 0
        np.testing.assert_allclose(grads[k], P[k].grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=k)


def test_two_layer_net(rng):
    np.random.seed(3)
    model = TwoLayerNet(input_dim=6, hidden_dim=12, num_classes=4, weight_scale=0.5, reg=0.7)
    assert model.params["W1"].shape == (6, 12) and model.params["b2"].shape == (4,)
    X, y = rng.randn(5, 6), rng.randint(4, size=5)
    check_model_grads(model, X, y)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    scores = F.relu(torch.tensor(X) @ P["W1"] + P["b1"]) @ P["W2"] + P["b2"]
    assert rel_error(model.loss(X), scores.detach().numpy()) <= 1e-12
    tloss = F.cross_entropy(scores, torch.tensor(y)) + 0.35 * ((P["W1"] ** 2).sum() + (P["W2"] ** 2).sum())
    assert rel_error(model.loss(X, y)[0], tloss.item()) <= 1e-12


def test_three_layer_convnet(rng):
    np.random.seed(4)
    model = ThreeLayerConvNet(
        input_dim=(3, 8, 8),
        num_filters=3,
        filter_size=3,
        hidden_dim=7,
        num_classes=5,
        weight_scale=1e-1,
        reg=0.3,
        dtype=np.float64,
    )
    assert model.params["W1"].shape == (3, 3, 3, 3) and model.params["W2"].shape == (3 * 4 * 4, 7)
    X, y = rng.randn(2, 3, 8, 8), rng.randint(5, size=2)
    check_model_grads(model, X, y)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    h = F.max_pool2d(F.relu(F.conv2d(torch.tensor(X), P["W1"], P["b1"], padding=1)), 2)
    scores = F.relu(h.flatten(1) @ P["W2"] + P["b2"]) @ P["W3"] + P["b3"]
    assert rel_error(model.loss(X), scores.detach().numpy()) <= 1e-12
    with pytest.raises(ValueError, match="odd"):
        ThreeLayerConvNet(filter_size=4)
