"""The grader's checks: for every exercise, what the student's function must reproduce.

Every check builds seeded random float64 inputs at grading time and returns one error, the largest
relative error ``|a - b| / max(1e-8, |a| + |b|)`` over everything it compares (the assignment's
``rel_error``); the check passes when the error is at most its limit. The oracles:

- ``reference``: :mod:`cnnarch.scratch` on the same inputs (itself proven against torch and numerical
  gradients in its tests), limit 1e-8 as the assignment's forward checks;
- ``numeric gradient``: centered differences (h = 1e-4) of the reference forward pass, limit 1e-7; the
  backward pass under test gets the cache of the student's own forward pass, as in the notebooks;
- ``torch``: ``F.cross_entropy`` and ``F.conv2d`` (with autograd for the loss's gradient), limit 1e-8.

A network's ``loss`` is checked on the reference layers (the student's layer functions are swapped for
the reference ones while it runs), so a bug in a layer fails that layer only.
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from cnnarch.assignment.exercises import PACKAGE, PARTS
from cnnarch.scratch import layers as R
from cnnarch.scratch import optim as ropt
from cnnarch.scratch.classifiers.cnn import ThreeLayerConvNet
from cnnarch.scratch.classifiers.fc_net import FullyConnectedNet
from cnnarch.scratch.gradient_check import eval_numerical_gradient_array, rel_error

FORWARD_TOL = 1e-8
GRAD_TOL = 1e-7
H = 1e-4


class Mismatch(Exception):
    """The student's result has the wrong form (shape, count, missing key): no error can be computed."""


@dataclass(frozen=True)
class Check:
    part: str
    module: str
    function: str
    name: str
    limit: float
    run: Callable  # run(student_function, get, rng) -> error


CHECKS: list[Check] = []
_PART = {(m, f): part for part, exercises in PARTS.items() for m, f in exercises}


def check(module, function, name, limit):
    def register(fn):
        CHECKS.append(Check(_PART[module, function], module, function, name, limit, fn))
        return fn

    return register


def seed_of(c: Check) -> int:
    return zlib.crc32(f"{c.function}/{c.name}".encode())


def compare(got, want, what) -> float:
    if got is None:
        raise Mismatch(f"{what} is None")
    got = np.asarray(got)
    want = np.asarray(want)
    if got.shape != want.shape:
        raise Mismatch(f"{what} has shape {got.shape}, expected {want.shape}")
    return rel_error(got, want)


def compare_all(got, want, names) -> float:
    if not isinstance(got, (tuple, list)) or len(got) != len(want):
        raise Mismatch(f"expected {len(want)} results ({', '.join(names)}), got {type(got).__name__}")
    return max(compare(g, w, n) for g, w, n in zip(got, want, names, strict=True))


def numeric_grads(forward, args, dout):
    """Numerical vector-Jacobian products of ``forward(*args)`` with ``dout``, one per argument."""
    grads = []
    for i in range(len(args)):

        def f(a, i=i):
            return forward(*args[:i], a, *args[i + 1 :])

        grads.append(eval_numerical_gradient_array(f, args[i].copy(), dout, h=H))
    return grads


def student_forward(get, name):
    """The student's forward function ``name``, whose cache a backward check needs."""
    forward = get("layers", name)

    def call(*args):
        try:
            return forward(*args)
        except NotImplementedError as e:
            raise NotImplementedError(f"needs {name} for its cache: {e}") from e

    return call


def gradient_check(backward, forward, make_args, extra=tuple, grads=("dx", "dgamma", "dbeta")):
    """Register the check of ``backward``: the student's function on the cache of their ``forward``,
    called as ``forward(*make_args(rng), *extra())``, against numerical gradients of the reference
    ``forward`` with respect to each of ``make_args``'s arrays."""

    @check("layers", backward, "numeric gradient", GRAD_TOL)
    def _(f, get, rng):
        args = make_args(rng)
        out, cache = student_forward(get, forward)(*[a.copy() for a in args], *extra())
        dout = rng.randn(*np.shape(out))
        got = f(dout.copy(), cache)
        if len(grads) == 1:
            got = (got,)
        ref = getattr(R, forward)
        want = numeric_grads(lambda *a: ref(*a, *extra())[0], args, dout)
        return compare_all(got, want, grads)


def away_from_zero(rng, shape):
    """Values with |v| >= 0.1, so that no relu kink lies within a finite-difference step."""
    return np.sign(rng.randn(*shape)) * (0.1 + np.abs(rng.randn(*shape)))


def distinct(rng, shape):
    """Values at least 1e-2 apart, so that no maximum switches within a finite-difference step."""
    return (rng.permutation(int(np.prod(shape))) * 1e-2).reshape(shape) - 0.5


# ---------------------------------------------------------------------------------------------
# Fully connected networks


def _affine_args(rng):
    return [rng.randn(3, 2, 3), rng.randn(6, 5), rng.randn(5)]


@check("layers", "affine_forward", "reference", FORWARD_TOL)
def _(f, get, rng):
    x, w, b = _affine_args(rng)
    out, _cache = f(x.copy(), w.copy(), b.copy())
    return compare(out, R.affine_forward(x, w, b)[0], "out")


gradient_check("affine_backward", "affine_forward", _affine_args, grads=("dx", "dw", "db"))


@check("layers", "relu_forward", "reference", FORWARD_TOL)
def _(f, get, rng):
    x = rng.randn(4, 6)
    out, _cache = f(x.copy())
    return compare(out, R.relu_forward(x)[0], "out")


gradient_check("relu_backward", "relu_forward", lambda rng: [away_from_zero(rng, (4, 6))], grads=("dx",))


@check("layers", "softmax_loss", "torch", FORWARD_TOL)
def _(f, get, rng):
    import torch
    import torch.nn.functional as F

    x, y = 3 * rng.randn(7, 5), rng.randint(5, size=7)
    loss, dx = f(x.copy(), y.copy())
    tx = torch.tensor(x, requires_grad=True)
    tloss = F.cross_entropy(tx, torch.tensor(y))
    tloss.backward()
    return max(compare(loss, tloss.item(), "loss"), compare(dx, tx.grad.numpy(), "dx"))


@contextmanager
def reference_layers():
    """Swap every exercise function of the student's ``layers`` and ``optim`` for the reference one,
    in every loaded workspace module, while a network's ``loss`` is checked."""
    swapped = []
    student = {}
    for module, name in (ex for part in PARTS.values() for ex in part):
        if "." not in name and f"{PACKAGE}.{module}" in sys.modules:
            fn = getattr(sys.modules[f"{PACKAGE}.{module}"], name, None)
            if fn is not None:
                student[id(fn)] = getattr({"layers": R, "optim": ropt}[module], name)
    for modname, mod in list(sys.modules.items()):
        if modname == PACKAGE or modname.startswith(PACKAGE + "."):
            for key, value in list(vars(mod).items()):
                if id(value) in student:
                    swapped.append((mod, key, value))
                    setattr(mod, key, student[id(value)])
    try:
        yield
    finally:
        for mod, key, value in swapped:
            setattr(mod, key, value)


def compare_nets(student, reference, X, y) -> float:
    """Loss, gradients and test-time scores of two networks with the same parameters."""
    loss, grads = student.loss(X, y)
    ref_loss, ref_grads = reference.loss(X, y)
    if not isinstance(grads, dict):
        raise Mismatch(f"grads is a {type(grads).__name__}, expected a dict keyed like params")
    missing = sorted(set(ref_grads) - set(grads))
    if missing:
        raise Mismatch(f"grads has no {', '.join(missing)}")
    errors = [compare(loss, ref_loss, "loss")]
    errors += [compare(grads[k], ref_grads[k], f"grads['{k}']") for k in ref_grads]
    errors.append(compare(student.loss(X), reference.loss(X), "scores (y=None)"))
    return max(errors)


def _same_params(student, reference):
    student.params = {k: v.copy() for k, v in reference.params.items()}


@check("classifiers.fc_net", "FullyConnectedNet.loss", "reference (on reference layers)", FORWARD_TOL)
def _(f, get, rng):
    cls = get("classifiers.fc_net", "FullyConnectedNet")
    X, y = rng.randn(6, 8), rng.randint(4, size=6)
    errors = []
    configs = [{}, {"normalization": "batchnorm"}, {"normalization": "layernorm", "dropout_keep_ratio": 0.75}]
    with reference_layers():
        for i, config in enumerate(configs):
            kw = {"input_dim": 8, "num_classes": 4, "reg": 0.1, "weight_scale": 0.5, "dtype": np.float64}
            kw.update(config, seed=i)
            np.random.seed(i)
            reference = FullyConnectedNet([7, 5], **kw)
            student = cls([7, 5], **kw)
            _same_params(student, reference)
            errors.append(compare_nets(student, reference, X, y))
    return max(errors)


def _update_rule_check(name):
    @check("optim", name, "reference, 3 steps", FORWARD_TOL)
    def _(f, get, rng):
        w = rng.randn(4, 5)
        config = {"learning_rate": 1e-2}
        ref_w, ref_config = w.copy(), {"learning_rate": 1e-2}
        errors = []
        for step in range(3):
            dw = rng.randn(4, 5)
            w, config = f(w, dw.copy(), config)
            ref_w, ref_config = getattr(ropt, name)(ref_w, dw, ref_config)
            errors.append(compare(w, ref_w, f"next_w of step {step + 1}"))
        return max(errors)


for _rule in ("sgd_momentum", "rmsprop", "adam"):
    _update_rule_check(_rule)


# ---------------------------------------------------------------------------------------------
# Batch and layer normalization


def _bn_args(rng, D=4):
    return [5 * rng.randn(6, D) + 12, rng.randn(D), rng.randn(D)]


def normalization_checks(forward, backward, make_args):
    """Register the train- and test-mode checks of a batch norm ``forward`` and the gradient check of
    its ``backward``."""

    @check("layers", forward, "reference, train mode", FORWARD_TOL)
    def _(f, get, rng):
        x, gamma, beta = make_args(rng)
        param, ref_param = {"mode": "train"}, {"mode": "train"}
        errors = []
        for step in range(2):  # the second call starts from the running averages of the first
            out, _cache = f(x + step, gamma, beta, param)
            errors.append(compare(out, getattr(R, forward)(x + step, gamma, beta, ref_param)[0], "out"))
        for key in ("running_mean", "running_var"):
            errors.append(compare(param.get(key), ref_param[key], f"bn_param['{key}']"))
        return max(errors)

    @check("layers", forward, "reference, test mode", FORWARD_TOL)
    def _(f, get, rng):
        x, gamma, beta = make_args(rng)
        D = len(gamma)
        running = {"running_mean": rng.randn(D), "running_var": rng.rand(D) + 0.5}
        out, _cache = f(x, gamma, beta, {"mode": "test", **running})
        return compare(out, getattr(R, forward)(x, gamma, beta, {"mode": "test", **running})[0], "out")

    gradient_check(backward, forward, make_args, lambda: ({"mode": "train"},))


normalization_checks("batchnorm_forward", "batchnorm_backward", _bn_args)
gradient_check("batchnorm_backward_alt", "batchnorm_forward", _bn_args, lambda: ({"mode": "train"},))


@check("layers", "layernorm_forward", "reference", FORWARD_TOL)
def _(f, get, rng):
    x, gamma, beta = _bn_args(rng)
    out, _cache = f(x.copy(), gamma, beta, {})
    return compare(out, R.layernorm_forward(x, gamma, beta, {})[0], "out")


gradient_check("layernorm_backward", "layernorm_forward", _bn_args, lambda: ({},))


# ---------------------------------------------------------------------------------------------
# Dropout (p is the probability of keeping a unit, as in the 2019 assignment)


# 0.03: six standard deviations of the fraction kept out of 100,000 units, relative to p = 0.3
@check("layers", "dropout_forward", "train: keeps p, scales by 1/p", 0.03)
def _(f, get, rng):
    p = 0.3
    x = 1 + rng.rand(400, 250)
    out, _cache = f(x.copy(), {"mode": "train", "p": p, "seed": 7})
    again, _cache = f(x.copy(), {"mode": "train", "p": p, "seed": 7})
    out = np.asarray(out)
    compare(out, x, "out")
    if not np.array_equal(out, np.asarray(again)):
        raise Mismatch("the same seed gave two different masks")
    kept = out != 0
    return max(
        abs(kept.mean() - p) / p,  # the fraction kept
        abs(out.mean() / x.mean() - 1),  # the expectation preserved
        rel_error(out[kept], x[kept] / p),  # each kept unit divided by p
    )


@check("layers", "dropout_forward", "test mode: identity", FORWARD_TOL)
def _(f, get, rng):
    x = rng.randn(20, 30)
    out, _cache = f(x.copy(), {"mode": "test", "p": 0.3})
    return compare(out, x, "out")


@check("layers", "dropout_backward", "train: the forward's mask", FORWARD_TOL)
def _(f, get, rng):
    x = 1 + rng.rand(20, 30)
    out, cache = student_forward(get, "dropout_forward")(x.copy(), {"mode": "train", "p": 0.6, "seed": 3})
    dout = rng.randn(20, 30)
    # d out / d x is the mask, and out / x is the mask where x is nonzero
    return compare(f(dout.copy(), cache), dout * np.asarray(out) / x, "dx")


@check("layers", "dropout_backward", "test mode: identity", FORWARD_TOL)
def _(f, get, rng):
    x = rng.randn(20, 30)
    _out, cache = student_forward(get, "dropout_forward")(x.copy(), {"mode": "test", "p": 0.6})
    dout = rng.randn(20, 30)
    return compare(f(dout.copy(), cache), dout, "dx")


# ---------------------------------------------------------------------------------------------
# Convolutional networks


@check("layers", "conv_forward_naive", "torch", FORWARD_TOL)
def _(f, get, rng):
    import torch
    import torch.nn.functional as F

    errors = []
    for stride, pad, kernel in ((2, 1, (3, 3)), (1, 2, (3, 2))):
        x, w, b = rng.randn(2, 3, 7, 6), rng.randn(4, 3, *kernel), rng.randn(4)
        out, _cache = f(x.copy(), w.copy(), b.copy(), {"stride": stride, "pad": pad})
        want = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=stride, padding=pad)
        errors.append(compare(out, want.numpy(), f"out (stride {stride}, pad {pad})"))
    return max(errors)


gradient_check(
    "conv_backward_naive",
    "conv_forward_naive",
    lambda rng: [rng.randn(2, 3, 5, 5), rng.randn(2, 3, 3, 3), rng.randn(2)],
    lambda: ({"stride": 2, "pad": 1},),
    grads=("dx", "dw", "db"),
)


_POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


@check("layers", "max_pool_forward_naive", "reference", FORWARD_TOL)
def _(f, get, rng):
    errors = []
    for pool_param in (_POOL, {"pool_height": 3, "pool_width": 2, "stride": 1}):
        x = rng.randn(2, 3, 6, 5)
        out, _cache = f(x.copy(), dict(pool_param))
        errors.append(compare(out, R.max_pool_forward_naive(x, pool_param)[0], "out"))
    return max(errors)


gradient_check(
    "max_pool_backward_naive",
    "max_pool_forward_naive",
    lambda rng: [distinct(rng, (2, 3, 6, 4))],
    lambda: (dict(_POOL),),
    grads=("dx",),
)


def _sbn_args(rng):
    return [4 * rng.randn(3, 4, 3, 5) + 10, rng.randn(4), rng.randn(4)]


normalization_checks("spatial_batchnorm_forward", "spatial_batchnorm_backward", _sbn_args)


def _gn_args(rng):
    return [4 * rng.randn(2, 6, 3, 4) + 10, rng.randn(1, 6, 1, 1), rng.randn(1, 6, 1, 1)]


@check("layers", "spatial_groupnorm_forward", "reference", FORWARD_TOL)
def _(f, get, rng):
    x, gamma, beta = _gn_args(rng)
    out, _cache = f(x.copy(), gamma, beta, 3, {})
    return compare(out, R.spatial_groupnorm_forward(x, gamma, beta, 3, {})[0], "out")


gradient_check("spatial_groupnorm_backward", "spatial_groupnorm_forward", _gn_args, lambda: (3, {}))


@check("classifiers.cnn", "ThreeLayerConvNet.loss", "reference (on reference layers)", FORWARD_TOL)
def _(f, get, rng):
    cls = get("classifiers.cnn", "ThreeLayerConvNet")
    kw = {"input_dim": (3, 8, 8), "num_filters": 3, "filter_size": 3, "hidden_dim": 7, "num_classes": 4}
    kw.update(weight_scale=0.5, reg=0.05, dtype=np.float64)
    X, y = rng.randn(3, 3, 8, 8), rng.randint(4, size=3)
    with reference_layers():
        np.random.seed(0)
        reference = ThreeLayerConvNet(**kw)
        student = cls(**kw)
        _same_params(student, reference)
        return compare_nets(student, reference, X, y)
