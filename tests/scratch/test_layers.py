"""Every layer of cnnarch.scratch.layers against numerical gradients and torch autograd (float64)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnarch.scratch import layers as L
from cnnarch.scratch.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error

TOL = 1e-7
# Centered differences: truncation error O(h^2), rounding error O(eps / h); h = 1e-4 balances the two
# for these float64 layers better than the usual 1e-5 (several layers are linear in each argument).
H = 1e-4


def numeric_grads(forward, args, dout):
    """Numerical vector-Jacobian products of ``forward(*args)`` with ``dout`` for each array argument."""
    grads = []
    for i in range(len(args)):

        def f(a, i=i):
            return forward(*args[:i], a, *args[i + 1 :])

        grads.append(eval_numerical_gradient_array(f, args[i], dout, h=H))
    return grads


def distinct(rng, shape):
    """Values at least 1e-2 apart, so that no max switches within a finite-difference step."""
    return (rng.permutation(int(np.prod(shape))) * 1e-2).reshape(shape) - 0.5


def t(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def torch_grads(out, tensors, dout):
    out.backward(torch.tensor(dout))
    return [x.grad.numpy() for x in tensors]


def assert_close(ours, ref, tol=TOL):
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape
        assert rel_error(a, b) <= tol, rel_error(a, b)


def test_affine(rng):
    x, w, b = rng.randn(4, 2, 3), rng.randn(6, 5), rng.randn(5)
    out, cache = L.affine_forward(x, w, b)
    dout = rng.randn(*out.shape)
    grads = L.affine_backward(dout, cache)
    assert_close(grads, numeric_grads(lambda x, w, b: L.affine_forward(x, w, b)[0], [x, w, b], dout))
    tx, tw, tb = t(x), t(w), t(b)
    tout = tx.reshape(4, -1) @ tw + tb
    assert_close([out], [tout.detach().numpy()])
    assert_close(grads, torch_grads(tout, [tx, tw, tb], dout))


def test_relu(rng):
    x = rng.randn(5, 7)
    out, cache = L.relu_forward(x)
    dout = rng.randn(*out.shape)
    dx = L.relu_backward(dout, cache)
    assert_close([dx], numeric_grads(lambda x: L.relu_forward(x)[0], [x], dout))
    tx = t(x)
    tout = F.relu(tx)
    assert_close([out], [tout.detach().numpy()])
    assert_close([dx], torch_grads(tout, [tx], dout))


@pytest.mark.parametrize("backward", [L.batchnorm_backward, L.batchnorm_backward_alt])
def test_batchnorm_gradients(rng, backward):
    x, gamma, beta = 5 * rng.randn(6, 4) + 12, rng.randn(4), rng.randn(4)
    out, cache = L.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dout = rng.randn(*out.shape)
    grads = backward(dout, cache)
    num = numeric_grads(
        lambda x, g, b: L.batchnorm_forward(x, g, b, {"mode": "train"})[0], [x, gamma, beta], dout
    )
    assert_close(grads, num)
    tx, tg, tb = t(x), t(gamma), t(beta)
    tout = F.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-5)
    assert_close([out], [tout.detach().numpy()])
    assert_close(grads, torch_grads(tout, [tx, tg, tb], dout))


def test_batchnorm_alt_equals_backward(rng):
    x, gamma, beta = rng.randn(50, 30) * 3 + 1, rng.randn(30), rng.randn(30)
    out, cache = L.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dout = rng.randn(*out.shape)
    assert_close(L.batchnorm_backward(dout, cache), L.batchnorm_backward_alt(dout, cache), tol=1e-12)


def test_batchnorm_train_statistics(rng):
    x = rng.randn(200, 3) * np.array([1.0, 5.0, 0.1]) + np.array([-3.0, 10.0, 2.0])
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.0, -1.0, 4.0])
    out, _ = L.batchnorm_forward(x, gamma, beta, {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-12)
    # std of the normalized output is gamma * sqrt(var / (var + eps))
    np.testing.assert_allclose(out.std(axis=0), gamma * np.sqrt(x.var(0) / (x.var(0) + 1e-5)), rtol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), gamma, rtol=1e-3)


def test_batchnorm_test_mode_uses_running_averages(rng):
    gamma, beta = rng.randn(4), rng.randn(4)
    bn_param = {"mode": "train", "momentum": 0.8}
    mean, var = np.zeros(4), np.zeros(4)
    for _ in range(30):
        x = 2 * rng.randn(64, 4) + 5
        L.batchnorm_forward(x, gamma, beta, bn_param)
        mean = 0.8 * mean + 0.2 * x.mean(0)
        var = 0.8 * var + 0.2 * x.var(0)
    np.testing.assert_allclose(bn_param["running_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], var, rtol=1e-12)
    bn_param["mode"] = "test"
    x = rng.randn(3, 4)
    out, _ = L.batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(out, gamma * (x - mean) / np.sqrt(var + 1e-5) + beta, rtol=1e-12)
    # the same running statistics given to torch in eval mode
    ref = F.batch_norm(
        torch.tensor(x),
        torch.tensor(mean),
        torch.tensor(var),
        torch.tensor(gamma),
        torch.tensor(beta),
        training=False,
        eps=1e-5,
    )
    assert rel_error(out, ref.numpy()) <= TOL
    with pytest.raises(ValueError, match="mode"):
        L.batchnorm_forward(x, gamma, beta, {"mode": "eval"})


def test_layernorm(rng):
    x, gamma, beta = 3 * rng.randn(4, 5) - 2, rng.randn(5), rng.randn(5)
    out, cache = L.layernorm_forward(x, gamma, beta, {})
    dout = rng.randn(*out.shape)
    grads = L.layernorm_backward(dout, cache)
    assert_close(
        grads, numeric_grads(lambda x, g, b: L.layernorm_forward(x, g, b, {})[0], [x, gamma, beta], dout)
    )
    tx, tg, tb = t(x), t(gamma), t(beta)
    tout = F.layer_norm(tx, (5,), tg, tb, eps=1e-5)
    assert_close([out], [tout.detach().numpy()])
    assert_close(grads, torch_grads(tout, [tx, tg, tb], dout))


def test_dropout_semantics(rng):
    x = rng.randn(500, 500) + 10
    for p in (0.25, 0.4, 0.7):
        out, _ = L.dropout_forward(x, {"mode": "train", "p": p})
        kept = out != 0
        assert abs(kept.mean() - p) < 0.01  # p is the probability of KEEPING a unit
        np.testing.assert_allclose(out[kept], x[kept] / p)  # inverted dropout
        assert abs(out.mean() - x.mean()) < 0.02 * x.mean()  # expectation preserved
        out_test, _ = L.dropout_forward(x, {"mode": "test", "p": p})
        assert out_test is x or np.array_equal(out_test, x)
    a, _ = L.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 7})
    b, _ = L.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 7})
    c, _ = L.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 8})
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ValueError, match="KEEPING|keeping"):
        L.dropout_forward(x, {"mode": "train", "p": 0.0})


def test_dropout_gradient(rng):
    x = rng.randn(10, 10) + 10
    param = {"mode": "train", "p": 0.2, "seed": 123}
    out, cache = L.dropout_forward(x, param)
    dout = rng.randn(*x.shape)
    dx = L.dropout_backward(dout, cache)
    assert_close([dx], numeric_grads(lambda x: L.dropout_forward(x, param)[0], [x], dout))
    mask = out / x  # torch oracle: the same mask as a constant factor
    tx = t(x)
    assert_close([dx], torch_grads(tx * torch.tensor(mask), [tx], dout))
    _, cache = L.dropout_forward(x, {"mode": "test", "p": 0.2})
    assert np.array_equal(L.dropout_backward(dout, cache), dout)


@pytest.mark.parametrize("stride,pad", [(1, 1), (2, 1), (2, 0), (3, 1)])
def test_conv_naive(rng, stride, pad):
    x, w, b = rng.randn(2, 3, 5, 5), rng.randn(3, 3, 3, 3), rng.randn(3)
    cp = {"stride": stride, "pad": pad}
    out, cache = L.conv_forward_naive(x, w, b, cp)
    dout = rng.randn(*out.shape)
    grads = L.conv_backward_naive(dout, cache)
    assert_close(grads, numeric_grads(lambda x, w, b: L.conv_forward_naive(x, w, b, cp)[0], [x, w, b], dout))
    tx, tw, tb = t(x), t(w), t(b)
    tout = F.conv2d(tx, tw, tb, stride=stride, padding=pad)
    assert_close([out], [tout.detach().numpy()])
    assert_close(grads, torch_grads(tout, [tx, tw, tb], dout))


def test_conv_assignment_output():
    """The assignment's forward check: linspace inputs, compared with torch here (not pasted numbers)."""
    x = np.linspace(-0.1, 0.5, num=2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    w = np.linspace(-0.2, 0.3, num=3 * 3 * 4 * 4).reshape(3, 3, 4, 4)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = L.conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    ref = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2, padding=1).numpy()
    assert out.shape == (2, 3, 2, 2) and rel_error(out, ref) <= 1e-12


def test_conv_bad_shape():
    with pytest.raises(ValueError, match="smaller than the kernel"):
        L.conv_forward_naive(
            np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)), np.zeros(1), {"stride": 1, "pad": 0}
        )


@pytest.mark.parametrize("ph,pw,stride", [(2, 2, 2), (3, 3, 1), (3, 2, 2)])
def test_max_pool_naive(rng, ph, pw, stride):
    shape = (2, 3, 7 if stride == 1 or ph == 3 else 6, 6 if pw == 2 else 7)
    x = distinct(rng, shape)
    pp = {"pool_height": ph, "pool_width": pw, "stride": stride}
    out, cache = L.max_pool_forward_naive(x, pp)
    dout = rng.randn(*out.shape)
    dx = L.max_pool_backward_naive(dout, cache)
    assert_close([dx], numeric_grads(lambda x: L.max_pool_forward_naive(x, pp)[0], [x], dout))
    tx = t(x)
    tout = F.max_pool2d(tx, (ph, pw), stride=stride)
    assert_close([out], [tout.detach().numpy()])
    assert_close([dx], torch_grads(tout, [tx], dout))


def test_spatial_batchnorm(rng):
    x, gamma, beta = 4 * rng.randn(3, 2, 4, 5) + 10, rng.randn(2), rng.randn(2)
    out, cache = L.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dout = rng.randn(*out.shape)
    grads = L.spatial_batchnorm_backward(dout, cache)
    f = lambda x, g, b: L.spatial_batchnorm_forward(x, g, b, {"mode": "train"})[0]  # noqa: E731
    assert_close(grads, numeric_grads(f, [x, gamma, beta], dout))
    tx, tg, tb = t(x), t(gamma), t(beta)
    tout = F.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-5)
    assert_close([out], [tout.detach().numpy()])
    assert_close(grads, torch_grads(tout, [tx, tg, tb], dout))
    # test mode: per-channel running averages
    bn = {"mode": "train"}
    L.spatial_batchnorm_forward(x, gamma, beta, bn)
    np.testing.assert_allclose(bn["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    bn["mode"] = "test"
    out_test, _ = L.spatial_batchnorm_forward(x, gamma, beta, bn)
    ref = F.batch_norm(
        torch.tensor(x),
        torch.tensor(bn["running_mean"]),
        torch.tensor(bn["running_var"]),
        torch.tensor(gamma),
        torch.tensor(beta),
        training=False,
        eps=1e-5,
    )
    assert rel_error(out_test, ref.numpy()) <= TOL


def test_spatial_groupnorm(rng):
    N, C, H, W, G = 2, 6, 4, 5, 2
    x = 4 * rng.randn(N, C, H, W) + 10
    gamma, beta = rng.randn(1, C, 1, 1), rng.randn(1, C, 1, 1)
    out, cache = L.spatial_groupnorm_forward(x, gamma, beta, G, {})
    dout = rng.randn(*out.shape)
    grads = L.spatial_groupnorm_backward(dout, cache)
    assert grads[1].shape == grads[2].shape == (1, C, 1, 1)
    f = lambda x, g, b: L.spatial_groupnorm_forward(x, g, b, G, {})[0]  # noqa: E731
    assert_close(grads, numeric_grads(f, [x, gamma, beta], dout))
    tx, tg, tb = t(x), t(gamma), t(beta)
    tout = F.group_norm(tx, G, tg.reshape(C), tb.reshape(C), eps=1e-5)
    assert_close([out], [tout.detach().numpy()])
    assert_close(grads, torch_grads(tout, [tx, tg, tb], dout))
    with pytest.raises(ValueError, match="groups"):
        L.spatial_groupnorm_forward(x, gamma, beta, 4, {})


@pytest.mark.parametrize("name", ["svm_loss", "softmax_loss"])
def test_losses(rng, name):
    N, C = 20, 7
    x, y = 0.5 * rng.randn(N, C), rng.randint(C, size=N)
    loss_fn = getattr(L, name)
    loss, dx = loss_fn(x, y)
    num = eval_numerical_gradient(lambda x: loss_fn(x, y)[0], x, verbose=False, h=H)
    assert rel_error(dx, num) <= TOL
    tx = t(x)
    if name == "svm_loss":  # torch divides the hinge sum by the number of classes
        tloss = C * F.multi_margin_loss(tx, torch.tensor(y), margin=1.0)
    else:
        tloss = F.cross_entropy(tx, torch.tensor(y))
    tloss.backward()
    assert rel_error(loss, tloss.item()) <= TOL
    assert rel_error(dx, tx.grad.numpy()) <= TOL
    if name == "softmax_loss":  # near-uniform scores: loss close to log C
        assert abs(loss_fn(1e-3 * x, y)[0] - np.log(C)) < 1e-2


def test_backward_does_not_mutate_dout(rng):
    x = rng.randn(4, 3, 6, 6)
    w, b = rng.randn(2, 3, 3, 3), rng.randn(2)
    out, cache = L.conv_forward_naive(x, w, b, {"stride": 1, "pad": 1})
    dout = rng.randn(*out.shape)
    keep = dout.copy()
    L.conv_backward_naive(dout, cache)
    bn_out, bn_cache = L.spatial_batchnorm_forward(out, np.ones(2), np.zeros(2), {"mode": "train"})
    L.spatial_batchnorm_backward(dout, bn_cache)
    L.relu_backward(dout, out)
    assert np.array_equal(dout, keep)
