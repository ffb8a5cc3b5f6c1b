"""Every fast layer equals its naive twin: outputs, gradients and interchangeable caches."""

import numpy as np
import pytest

from cnnarch.scratch import fast_layers as FL
from cnnarch.scratch import layers as L
from cnnarch.scratch.gradient_check import rel_error


@pytest.mark.parametrize(
    "x_shape,w_shape,stride,pad",
    [
        ((2, 3, 8, 8), (4, 3, 3, 3), 1, 1),
        ((3, 3, 9, 9), (5, 3, 3, 3), 2, 1),
        ((2, 4, 7, 7), (3, 4, 5, 5), 2, 2),
        ((2, 3, 6, 6), (2, 3, 1, 1), 1, 0),
        ((2, 2, 8, 9), (3, 2, 2, 3), 2, 0),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_fast_equals_naive(rng, x_shape, w_shape, stride, pad, dtype):
    x, w, b = (
        rng.randn(*x_shape).astype(dtype),
        rng.randn(*w_shape).astype(dtype),
        rng.randn(w_shape[0]).astype(dtype),
    )
    cp = {"stride": stride, "pad": pad}
    out_n, cache_n = L.conv_forward_naive(x, w, b, cp)
    out_f, cache_f = FL.conv_forward_fast(x, w, b, cp)
    assert out_f.dtype == dtype and out_f.flags.c_contiguous
    tol = 1e-12 if dtype == np.float64 else 1e-4
    assert rel_error(out_n, out_f) <= tol
    dout = rng.randn(*out_n.shape).astype(dtype)
    keep = dout.copy()
    grads_n = L.conv_backward_naive(dout, cache_n)
    for grads_f in (
        FL.conv_backward_fast(dout, cache_f),
        FL.conv_backward_fast(dout, cache_n),
        L.conv_backward_naive(dout, cache_f),
    ):
        for gn, gf in zip(grads_n, grads_f, strict=True):
            assert gn.shape == gf.shape and gf.dtype == dtype
            assert rel_error(gn, gf) <= tol
    assert np.array_equal(dout, keep)


@pytest.mark.parametrize(
    "ph,pw,stride,hw", [(2, 2, 2, (8, 8)), (3, 3, 2, (9, 7)), (3, 3, 1, (6, 6)), (2, 3, 1, (5, 6))]
)
def test_max_pool_fast_equals_naive(rng, ph, pw, stride, hw):
    x = rng.randn(2, 3, *hw)
    x[0, 0, :2, :2] = 1.5  # a tie: both send the gradient to the first maximum
    pp = {"pool_height": ph, "pool_width": pw, "stride": stride}
    out_n, cache_n = L.max_pool_forward_naive(x, pp)
    out_f, cache_f = FL.max_pool_forward_fast(x, pp)
    assert np.array_equal(out_n, out_f)
    dout = rng.randn(*out_n.shape)
    dx_n = L.max_pool_backward_naive(dout, cache_n)
    assert rel_error(dx_n, FL.max_pool_backward_fast(dout, cache_f)) <= 1e-12
    assert rel_error(dx_n, FL.max_pool_backward_fast(dout, cache_n)) <= 1e-12
    assert rel_error(dx_n, L.max_pool_backward_naive(dout, cache_f)) <= 1e-12


def test_fast_on_non_contiguous_input(rng):
    x = rng.randn(3, 8, 8, 2).transpose(0, 3, 1, 2)
    w, b = rng.randn(4, 2, 3, 3), rng.randn(4)
    cp = {"stride": 1, "pad": 1}
    assert rel_error(L.conv_forward_naive(x, w, b, cp)[0], FL.conv_forward_fast(x, w, b, cp)[0]) <= 1e-12
    pp = {"pool_height": 2, "pool_width": 2, "stride": 2}
    assert np.array_equal(L.max_pool_forward_naive(x, pp)[0], FL.max_pool_forward_fast(x, pp)[0])


def test_conv_backward_weights_equals_full_backward(rng):
    x, w, b = rng.randn(2, 3, 7, 7), rng.randn(4, 3, 3, 3), rng.randn(4)
    out, cache = FL.conv_forward_fast(x, w, b, {"stride": 2, "pad": 1})
    dout = rng.randn(*out.shape)
    _, dw, db = L.conv_backward_naive(dout, cache)
    dw2, db2 = FL.conv_backward_weights(dout, cache)
    assert rel_error(dw, dw2) <= 1e-12 and rel_error(db, db2) <= 1e-12
