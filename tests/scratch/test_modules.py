"""The NumPy building blocks against their PyTorch twins (same weights, float64), numerical gradient
checks of whole models, and training through the Solver."""

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models.googlenet import Inception as TVInception

from cnnarch.models.googlenet import BasicConv2d
from cnnarch.models.googlenet import Inception as TorchInception
from cnnarch.models.resnet import BasicBlock as TorchBasicBlock
from cnnarch.scratch import modules as M
from cnnarch.scratch.gradient_check import rel_error
from cnnarch.scratch.solver import Solver

BRIDGE_TOL = 1e-8
TINY_ROWS = ((6, 2, 2, 3, 2, 2, 2), "M", (9, 3, 2, 3, 2, 2, 2))


def randomize_torch(module, seed):
    """Non-trivial batch-norm affine parameters and running statistics (fresh ones are 1 and 0)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = 1 + 0.3 * torch.randn(m.weight.shape, generator=g, dtype=torch.float64)
            m.bias.data = 0.3 * torch.randn(m.bias.shape, generator=g, dtype=torch.float64)
            m.running_mean = 0.5 * torch.randn(m.running_mean.shape, generator=g, dtype=torch.float64)
            m.running_var = 0.5 + torch.rand(m.running_var.shape, generator=g, dtype=torch.float64)


def check_bridge(ours_layers, torch_net, x_shape, seed=0):
    """Load the torch twin's weights into ours; compare train-mode outputs, input and parameter
    gradients, and test-mode outputs (running statistics)."""
    torch_net = torch_net.double()
    randomize_torch(torch_net, seed)
    model = M.Model(*ours_layers, dtype=np.float64, input_grad=True)
    model.load_state_dict(torch_net.state_dict())
    rng = np.random.RandomState(seed)
    x = rng.randn(*x_shape)

    torch_net.train()
    tx = torch.tensor(x, requires_grad=True)
    tout = torch_net(tx)
    out = model.forward(x, "train")
    assert out.shape == tuple(tout.shape)
    assert rel_error(out, tout.detach().numpy()) <= BRIDGE_TOL
    dout = rng.randn(*out.shape)
    tout.backward(torch.tensor(dout))
    grads = {}
    dx = model.net.backward(dout, grads)
    assert rel_error(dx, tx.grad.numpy()) <= BRIDGE_TOL
    named = dict(torch_net.named_parameters())
    assert set(grads) == set(named)
    for k, p in named.items():
        ref = p.grad.numpy()
        if np.abs(ref).max() < 1e-12:  # a bias right before batch norm: exactly 0, both give rounding noise
            assert np.abs(grads[k]).max() < 1e-12, k
        else:
            assert rel_error(grads[k], ref) <= BRIDGE_TOL, k

    torch_net.eval()
    model.load_state_dict(torch_net.state_dict())  # running statistics as torch has them
    with torch.no_grad():
        ref = torch_net(torch.tensor(x)).numpy()
    assert rel_error(model.forward(x, "test"), ref) <= BRIDGE_TOL


@pytest.mark.parametrize("in_c,c,stride", [(6, 6, 1), (4, 8, 2), (4, 8, 1)])
def test_basic_block_matches_torch(in_c, c, stride):
    downsample = None
    if stride != 1 or in_c != c:
        downsample = nn.Sequential(nn.Conv2d(in_c, c, 1, stride=stride, bias=False), nn.BatchNorm2d(c))
    twin = nn.Sequential(TorchBasicBlock(in_c, c, stride, downsample))
    check_bridge([M.BasicBlock(in_c, c, stride)], twin, (3, in_c, 8, 8))


def test_inception_matches_cnnarch_models():
    # the paper's module: convolutions with bias and ReLU, a real 5x5 branch, pool 3x3/1 pad 1
    twin = nn.Sequential(TorchInception(6, 4, 3, 5, 2, 3, 2))
    check_bridge([M.Inception(6, 4, 3, 5, 2, 3, 2)], twin, (2, 6, 7, 7))
    # torchvision's variant through the same building block: BasicConv2d, 3x3 in the "5x5" branch
    twin = nn.Sequential(TorchInception(6, 4, 3, 5, 2, 3, 2, conv_block=BasicConv2d, kernel_5x5=3))
    ours = M.Inception(6, 4, 3, 5, 2, 3, 2, conv_block=M.ConvBNReLU, kernel_5x5=3)
    check_bridge([ours], twin, (2, 6, 7, 7), seed=1)


def test_inception_matches_torchvision():
    # torchvision's own GoogLeNet Inception: 3x3 in the "5x5" branch, batch norm eps 1e-3
    twin = nn.Sequential(TVInception(6, 4, 3, 5, 2, 3, 2))
    ours = M.Inception(6, 4, 3, 5, 2, 3, 2, conv_block=M.ConvBNReLU, kernel_5x5=3)
    check_bridge([ours], twin, (2, 6, 7, 7))


def test_vgg_stack_and_head_match_torch():
    cfg = [4, "M", 6, 6, "M"]
    twin_layers = []
    in_c = 3
    for v in cfg:
        if v == "M":
            twin_layers.append(nn.MaxPool2d(2))
        else:
            twin_layers += [nn.Conv2d(in_c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
            in_c = v
    twin = nn.Sequential(*twin_layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))
    ours = [*M.vgg_stack(3, cfg, batch_norm=True), M.GlobalAvgPool(), M.Flatten(), M.Linear(6, 5)]
    # torch's conv has a bias here too: the stack's batch_norm=True drops it, so rebuild with biases
    for m in ours:
        if isinstance(m, M.Conv2d):
            m.has_bias = True
            m.init["bias"] = np.zeros(m.init["weight"].shape[0])
    check_bridge(ours, twin, (2, 3, 8, 8))


def test_load_state_dict_errors():
    model = M.Model(M.Linear(3, 2), dtype=np.float64)
    with pytest.raises(KeyError, match="missing"):
        model.load_state_dict({"0.weight": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="shape"):
        model.load_state_dict({"0.weight": np.zeros((3, 2)), "0.bias": np.zeros(2)})


def sparse_net_error(model, X, y, per_tensor=4, h=1e-5, seed=0):
    """Norm-wise relative error of the analytic gradient against centered differences at
    ``per_tensor`` random entries of every parameter tensor."""
    rng = np.random.RandomState(seed)
    _, grads = model.loss(X, y)
    num, ana = [], []
    for k, w in model.params.items():
        for _ in range(per_tensor):
            ix = tuple(rng.randint(s) for s in w.shape)
            old = w[ix]
            w[ix] = old + h
            lp = model.loss(X, y)[0]
            w[ix] = old - h
            lm = model.loss(X, y)[0]
            w[ix] = old
            num.append((lp - lm) / (2 * h))
            ana.append(grads[k][ix])
    num, ana = np.array(num), np.array(ana)
    return np.linalg.norm(num - ana) / max(1e-3, np.linalg.norm(num) + np.linalg.norm(ana))


@pytest.mark.parametrize(
    "build",
    [
        lambda: M.mini_resnet(widths=(4, 6, 8), reg=0.1, dtype=np.float64, augment=False),
        lambda: M.mini_vgg(reg=0.1, dtype=np.float64, augment=False),
        lambda: M.mini_googlenet(rows=TINY_ROWS, reg=0.1, dtype=np.float64, augment=False),
    ],
    ids=["resnet", "vgg", "googlenet"],
)
def test_mini_models_numerical_gradients(build):
    np.random.seed(0)
    model = build()
    rng = np.random.RandomState(1)
    X, y = rng.randn(4, 3, 8, 8), rng.randint(10, size=4)
    # same bound as the fully connected nets (tests/scratch/test_classifiers.py), on sampled entries
    assert sparse_net_error(model, X, y) <= 1e-7


def test_random_crop_flip():
    layer = M.RandomCropFlip(padding=2)
    x = np.arange(2 * 3 * 5 * 5, dtype=np.float64).reshape(2, 3, 5, 5)
    assert layer.forward(x, "test") is x
    np.random.seed(0)
    out = layer.forward(x, "train")
    assert out.shape == x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for n in range(2):  # every output image is one crop of the padded image, possibly mirrored
        found = [
            (dy, dx, f)
            for dy in range(5)
            for dx in range(5)
            for f in (False, True)
            if np.array_equal(
                out[n], (lambda c: c[:, :, ::-1] if f else c)(padded[n, :, dy : dy + 5, dx : dx + 5])
            )
        ]
        assert found


@pytest.mark.parametrize(
    "build",
    [
        lambda: M.mini_resnet(num_classes=2, widths=(4, 8, 8), augment=False),
        lambda: M.mini_vgg(num_classes=2, augment=False),
        lambda: M.mini_googlenet(num_classes=2, rows=TINY_ROWS, augment=False),
    ],
    ids=["resnet", "vgg", "googlenet"],
)
def test_mini_models_train_through_solver(build):
    rng = np.random.RandomState(0)
    X = rng.randn(64, 3, 8, 8).astype(np.float32)
    y = (X[:, 0].mean(axis=(1, 2)) > 0).astype(np.int64)  # learnable: sign of the red channel's mean
    data = {"X_train": X[:48], "y_train": y[:48], "X_val": X[48:], "y_val": y[48:]}
    np.random.seed(0)
    model = build()
    solver = Solver(
        model,
        data,
        update_rule="adam",
        optim_config={"learning_rate": 1e-2},
        num_epochs=8,
        batch_size=16,
        verbose=False,
    )
    solver.train()
    assert np.mean(solver.loss_history[-3:]) < np.mean(solver.loss_history[:3])
    assert max(solver.train_acc_history) >= 0.8
    # the Solver's final assignment of best_params reaches the modules
    assert all(np.array_equal(model.params[k], solver.best_params[k]) for k in model.params)


def test_mini_googlenet_checks_rows():
    with pytest.raises(ValueError, match="takes 9 channels but receives 8"):
        M.mini_googlenet(rows=((4, 2, 2, 2, 2, 2, 2), (9, 2, 2, 2, 2, 2, 2)))
