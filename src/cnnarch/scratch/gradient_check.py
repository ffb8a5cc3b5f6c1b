"""Numerical gradients by centered differences, to check analytic backward passes (CS231n assignment 2).

Use float64: with h = 1e-5 the centered difference has truncation error O(h^2) and rounding error
O(eps / h), both far below 1e-7 relative in double precision and useless in single precision.
"""

from random import randrange

import numpy as np


def rel_error(x, y):
    """Largest elementwise relative error ``|x - y| / max(1e-8, |x| + |y|)``."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """Gradient of a scalar function ``f(x)`` at ``x`` (an array, perturbed in place and restored)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Gradient with respect to ``x`` of ``sum(f(x) * df)``: the vector-Jacobian product of an
    array-valued function ``f`` with upstream gradient ``df``."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), copy=True)
        x[ix] = old - h
        neg = np.array(f(x), copy=True)
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5):
    """Compare ``analytic_grad`` with the numerical gradient of scalar ``f`` at ``num_checks`` random
    coordinates; prints each comparison and returns the list of relative errors."""
    errors = []
    for _ in range(num_checks):
        ix = tuple(randrange(m) for m in x.shape)
        old = x[ix]
        x[ix] = old + h
        fxph = f(x)
        x[ix] = old - h
        fxmh = f(x)
        x[ix] = old
        numeric = (fxph - fxmh) / (2 * h)
        analytic = analytic_grad[ix]
        err = abs(numeric - analytic) / (abs(numeric) + abs(analytic) + 1e-300)
        errors.append(err)
        print(f"numerical: {numeric:f} analytic: {analytic:f}, relative error: {err:e}")
    return errors
