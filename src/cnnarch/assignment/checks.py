"""The grader's checks: for every exercise, inputs chosen to expose its usual bugs, and the values the
student's function must reproduce.

Every check builds seeded float64 inputs, computes the expected outputs here, in the grader's process,
and sends only the inputs to the student's process (:mod:`cnnarch.assignment.grader`). The oracles:

- torch (autograd for gradients): ``F.conv2d``, ``F.max_pool2d``, ``F.cross_entropy``,
  ``F.multi_margin_loss``, ``F.batch_norm``, ``F.layer_norm``, ``F.group_norm``;
- arithmetic written out here (affine, ReLU, the update rules' formulas, dropout's statistics);
- the reference engine :mod:`cnnarch.scratch` (itself proven against torch and numerical gradients in
  its tests) for the networks' loss, which the student's network computes on the reference layers
  (the student's layer functions are swapped for proxies that ask the grader), so that a bug in a
  layer fails that layer only.

The inputs catch what random small inputs miss: scores in the thousands (softmax without subtracting
the row maximum overflows), inputs exactly 0 (``relu_backward`` with ``x >= 0``), ties and overlapping
windows in max pooling, non-square kernels, inputs and strides, non-zero biases and gammas (L2 on
biases), test-mode batch norm (the running averages must not move), and every array argument is
compared after every call (a function must not change its inputs).

A relative error is ``|got - expected| / max(1e-8, |got| + |expected|)``, the assignment's
``rel_error``, element by element; a failure names the output, its worst element and a hint.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cnnarch.assignment.exercises import PARTS
from cnnarch.assignment.harness import Opaque

FORWARD_TOL = 1e-8
GRAD_TOL = 1e-7


class Failed(Exception):
    """A check failed: ``detail`` says why, ``error`` is the relative error when one was computed."""

    def __init__(self, detail: str, error: float | None = None):
        super().__init__(detail)
        self.detail, self.error = detail, error


@dataclass(frozen=True)
class Check:
    part: str
    module: str
    function: str
    name: str
    limit: float
    run: Callable  # run(ctx) -> largest relative error
    modules: tuple[str, ...] = field(default=())

    def needs(self, module: str) -> bool:
        return module in self.modules


CHECKS: list[Check] = []
_PART = {(m, f): part for part, exercises in PARTS.items() for m, f in exercises}


def check(module, function, name, limit=FORWARD_TOL, extra_modules=()):
    def register(fn):
        modules = (module, *extra_modules)
        CHECKS.append(Check(_PART[module, function], module, function, name, limit, fn, modules))
        return fn

    return register


def seed_of(c: Check) -> int:
    return zlib.crc32(f"{c.function}/{c.name}".encode()) % 2**32


# ---------------------------------------------------------------------------------------------
# Talking to the student's process


def ref(name, *index):
    """An argument that is an earlier step's result (or part of it), kept in the student's process."""
    return {"$ref": [name, *index]}


def call(module, function, *args, **opts):
    """A step calling ``cs231n.<module>.<function>(*args)``; ``module`` None calls a stored object's
    method (``"net.loss"``). ``opts``: as (store the result), send (index path of the part to return;
    False for nothing), send_args, send_attr, seed, proxies, watch."""
    if "as_" in opts:
        opts["as"] = opts.pop("as_")
    step = {"call": function, "args": list(args), **opts}
    if module is not None:
        step["module"] = module
    return step


def _exception_text(answer: dict, memory_limit: int) -> str:
    if answer.get("violation"):
        return f"{answer['violation']}; graded code must not use the answer key"
    kind, message, where = answer["type"], answer["message"], answer["where"]
    if kind == "NotImplementedError":
        return f"not implemented ({message})" if message else "not implemented"
    if kind == "MemoryError":
        cap = f"{memory_limit / 2**30:g} GiB" if memory_limit else "no cap"
        return f"raised MemoryError{where}: ran out of memory (the grader's cap: {cap})"
    return f"raised {kind}: {message}{where}" if message else f"raised {kind}{where}"


class Context:
    """What a check sees: its random generator, a way to run steps in the student's process, and a
    memo for expected values (the same inputs every time, so they are computed once per process)."""

    def __init__(self, check: Check, session, child, timeout: float, memory_limit: int):
        self.check, self.session, self.child = check, session, child
        self.timeout, self.memory_limit = timeout, memory_limit
        self.rng = np.random.RandomState(seed_of(check))

    def run(self, *steps) -> list[dict]:
        """Run the steps; a step that raises or changes an input fails the check with that."""
        self.session.proxies_open = any(step.get("proxies") for step in steps)
        try:
            answers = self.child.request(list(steps), self.timeout)
        finally:
            self.session.proxies_open = False
        for step, answer in zip(steps, answers, strict=False):
            name = self._function_of(step)
            if not answer["ok"]:
                text = _exception_text(answer, self.memory_limit)
                if name != self.check.function and text.startswith("not implemented"):
                    text = f"needs {name}, which is {text}"
                elif name != self.check.function:
                    text = f"{name} (called first, for its output) {text}"
                raise Failed(text)
            if answer["mutated"] and name == self.check.function:
                arg = answer["mutated"][0]
                raise Failed(
                    f"{name} changed its input {arg} in place; work on a copy or write into a new array "
                    f"(the caller still needs {arg})"
                )
        return answers

    def _function_of(self, step) -> str:
        """The exercise a step calls: ``affine_forward``, ``TwoLayerNet.__init__``, ``TwoLayerNet.loss``."""
        if "set" in step:
            return "setting the parameters"
        name = step["call"]
        if "module" in step:
            return f"{name}.__init__" if name[:1].isupper() else name
        owner, _, method = self.check.function.partition(".")
        if not method:  # a method of what the checked function returned (make_model's network)
            return self.check.function
        return f"{owner}.{name.partition('.')[2] or '__call__'}"

    def value(self, step) -> object:
        return self.run(step)[0]["value"]

    def memo(self, key, fn):
        full = (self.check.function, self.check.name, key)
        if full not in _MEMO:
            _MEMO[full] = fn()
        return _MEMO[full]


def run_check(c: Check, session, child, timeout: float, memory_limit: int):
    """``(error, passed, detail)`` of one check."""
    session.handles.clear()
    ctx = Context(c, session, child, timeout, memory_limit)
    session.proxies_open = False
    try:
        error = float(c.run(ctx))
    except Failed as e:
        return e.error, False, e.detail
    finally:
        session.proxies_open = False
    passed = error <= c.limit
    return error, passed, "" if passed else f"error {error:.1e} above {c.limit:.0e}"


# Expected values by (function, check, case): the inputs are seeded, so they are the same every time.
_MEMO: dict = {}


class Session:
    """The grader's side of one grading: the reference layers served to the student's network while
    its loss is checked."""

    def __init__(self):
        self.handles: dict[int, object] = {}
        self.proxies_open = False

    def serve(self, message: dict) -> dict:
        from cnnarch.assignment.harness import Handle
        from cnnarch.scratch import layers as R

        name = message["rpc"]
        module, function = name.split(".")
        if not self.proxies_open or module != "layers" or ("layers", function) not in _EXERCISES:
            return {"error": f"the grader's {name} is only available inside a network's check"}

        def resolve(v):
            if isinstance(v, Handle):
                return self.handles[v.token]
            if isinstance(v, (list, tuple)):
                return type(v)(resolve(x) for x in v)
            if isinstance(v, dict):
                return {k: resolve(x) for k, x in v.items()}
            return v

        args = [resolve(a) for a in message["args"]]
        result = getattr(R, function)(*args)
        if function.endswith("_forward"):
            token = len(self.handles)
            self.handles[token] = result[1]
            result = (result[0], Handle(token))
        return {"value": result, "dicts": [a if isinstance(a, dict) else None for a in args]}


_EXERCISES = {ex for part in PARTS.values() for ex in part}
LAYER_EXERCISES = [f"layers.{f}" for m, f in _EXERCISES if m == "layers"]


# ---------------------------------------------------------------------------------------------
# Comparing


def compare(got, want, what: str, hint: str = "", tol: float = FORWARD_TOL) -> float:
    """The largest relative error of ``got`` against ``want``; Failed naming the worst element when it
    is above ``tol`` or when ``got`` has the wrong form."""
    want = np.asarray(want, dtype=np.float64)
    hint = f" Hint: {hint}" if hint else ""
    if got is None or isinstance(got, (Opaque, str, dict, list, tuple)):
        form = "None" if got is None else repr(got) if isinstance(got, Opaque) else type(got).__name__
        raise Failed(f"{what} is {form}, expected an array of shape {want.shape}.{hint}")
    got = np.asarray(got)
    if got.dtype.kind not in "biuf":
        raise Failed(f"{what} has dtype {got.dtype}, expected real numbers.{hint}")
    got = got.astype(np.float64)
    if got.shape != want.shape and not (got.size == 1 and want.size == 1):
        raise Failed(f"{what} has shape {got.shape}, expected {want.shape}.{hint}")
    got = got.reshape(want.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(got - want) / np.maximum(1e-8, np.abs(got) + np.abs(want))
    err = np.where(np.isfinite(err), err, np.inf)
    idx = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
    worst = float(err[idx]) if err.size else 0.0
    if worst > tol:
        where = f" at {list(map(int, idx))}" if want.ndim else ""
        raise Failed(
            f"{what} is wrong{where}: expected {want[idx]:.6g}, got {got[idx]:.6g} "
            f"(relative error {worst:.1e}, tolerance {tol:.0e}).{hint}",
            worst,
        )
    return worst


def compare_all(got, wants: dict, hints: dict, tol: float) -> float:
    """A tuple of results against ``wants`` (name -> expected), in order."""
    names = list(wants)
    if not isinstance(got, (tuple, list)) or len(got) != len(names):
        form = f"a {type(got).__name__}" if not isinstance(got, (tuple, list)) else f"{len(got)} values"
        raise Failed(f"returned {form}, expected the {len(names)} values ({', '.join(names)})")
    return max(compare(g, wants[n], n, hints.get(n, ""), tol) for g, n in zip(got, names, strict=True))


def torch_vjp(fn, arrays, dout):
    """Gradients of ``sum(fn(*arrays) * dout)`` with respect to every array, by torch's autograd."""
    import torch

    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(torch.tensor(dout))
    return [t.grad.numpy() for t in ts]


def with_zeros(rng, shape, fraction=0.25):
    """Gaussian values with about ``fraction`` of them exactly 0.0."""
    x = rng.randn(*shape)
    x[rng.rand(*shape) < fraction] = 0.0
    return x


# ---------------------------------------------------------------------------------------------
# Fully connected networks


@check("layers", "affine_forward", "out on (N, d1, d2) inputs, non-zero bias")
def _(ctx):
    x, w, b = ctx.rng.randn(3, 2, 4), ctx.rng.randn(8, 5), ctx.rng.randn(5)
    out = ctx.value(call("layers", "affine_forward", x, w, b, send=[0]))
    want = x.reshape(3, 8) @ w + b
    return compare(out, want, "out", "flatten each sample with x.reshape(N, -1), then x @ w + b")


@check("layers", "affine_backward", "dx, dw, db on (N, d1, d2) inputs", GRAD_TOL)
def _(ctx):
    x, w, b, dout = ctx.rng.randn(4, 3, 2), ctx.rng.randn(6, 5), ctx.rng.randn(5), ctx.rng.randn(4, 5)
    answers = ctx.run(
        call("layers", "affine_forward", x, w, b, as_="fwd", send=False),
        call("layers", "affine_backward", dout, ref("fwd", 1)),
    )
    wants = {"dx": (dout @ w.T).reshape(x.shape), "dw": x.reshape(4, 6).T @ dout, "db": dout.sum(0)}
    hints = {
        "dx": "dx = dout @ w.T, reshaped back to x's shape",
        "dw": "dw = x.reshape(N, -1).T @ dout",
        "db": "db: sum dout over the batch axis (axis 0)",
    }
    return compare_all(answers[1]["value"], wants, hints, GRAD_TOL)


@check("layers", "relu_forward", "out with inputs exactly 0")
def _(ctx):
    x = with_zeros(ctx.rng, (5, 6))
    out = ctx.value(call("layers", "relu_forward", x, send=[0]))
    return compare(out, np.maximum(x, 0), "out", "out = max(0, x) elementwise (np.maximum, not np.max)")


@check("layers", "relu_backward", "dx with inputs exactly 0 (torch)", GRAD_TOL)
def _(ctx):
    import torch

    x, dout = with_zeros(ctx.rng, (5, 6)), ctx.rng.randn(5, 6)
    answers = ctx.run(
        call("layers", "relu_forward", x, as_="fwd", send=False),
        call("layers", "relu_backward", dout, ref("fwd", 1)),
    )
    (want,) = ctx.memo("dx", lambda: torch_vjp(torch.relu, [x], dout))
    hint = "the gradient passes only where x > 0; where x == 0 it is 0 (as in torch), so use x > 0, not >="
    return compare(answers[1]["value"], want, "dx", hint, GRAD_TOL)


def _loss_check(function, oracle, hints):
    @check("layers", function, "loss and dx, small and large scores (torch)")
    def _(ctx):
        rng = ctx.rng
        cases = {
            "small scores": (3 * rng.randn(7, 5), rng.randint(5, size=7)),
            "scores near 1000": (1000 + 20 * rng.randn(6, 4), rng.randint(4, size=6)),
        }
        error = 0.0
        for case, (x, y) in cases.items():
            got = ctx.value(call("layers", function, x, y))
            loss, dx = ctx.memo(case, lambda x=x, y=y: oracle(x, y))
            extra = hints.get(case, "")
            wants = {f"loss ({case})": loss, f"dx ({case})": dx}
            case_hints = {f"loss ({case})": extra or hints["loss"], f"dx ({case})": extra or hints["dx"]}
            error = max(error, compare_all(got, wants, case_hints, FORWARD_TOL))
        return error


def _softmax_oracle(x, y):
    import torch
    import torch.nn.functional as F

    tx = torch.tensor(x, requires_grad=True)
    loss = F.cross_entropy(tx, torch.tensor(y))
    loss.backward()
    return loss.item(), tx.grad.numpy()


def _svm_oracle(x, y):
    import torch
    import torch.nn.functional as F

    tx = torch.tensor(x, requires_grad=True)
    # torch divides the hinge sum by the number of classes as well; the assignment does not
    loss = F.multi_margin_loss(tx, torch.tensor(y), margin=1.0) * x.shape[1]
    loss.backward()
    return loss.item(), tx.grad.numpy()


_loss_check(
    "softmax_loss",
    _softmax_oracle,
    {
        "loss": "loss = mean over the batch of -log(softmax(x)[i, y[i]])",
        "dx": "dx = (softmax(x) - one_hot(y)) / N",
        "scores near 1000": "subtract each row's maximum before np.exp: exp(1000) overflows to inf",
    },
)
_loss_check(
    "svm_loss",
    _svm_oracle,
    {
        "loss": "loss = mean over the batch of sum over j != y[i] of max(0, x[i, j] - x[i, y[i]] + 1)",
        "dx": "each positive margin adds +1 at its class and -1 at the correct class, then divide by N",
    },
)


def _init_stats(params, expected: dict, weight_scale: float, dtype=None) -> float:
    """Keys and shapes of ``params``; weights with mean 0 and std weight_scale, biases and betas 0,
    gammas 1."""
    if not isinstance(params, dict) or not params:
        raise Failed(
            "self.params is empty: write the weight initialization in __init__ (between the YOUR CODE "
            "markers)"
        )
    missing, extra = sorted(set(expected) - set(params)), sorted(set(params) - set(expected))
    if missing or extra:
        raise Failed(
            f"self.params has keys {sorted(params)}; expected {sorted(expected)}"
            + (f" (missing {', '.join(missing)})" if missing else "")
        )
    for key, shape in expected.items():
        value = params[key]
        if isinstance(value, Opaque) or np.shape(value) != shape:
            raise Failed(f"params['{key}'] has shape {np.shape(value)}, expected {shape}")
        if dtype is not None and np.asarray(value).dtype != dtype:
            raise Failed(f"params['{key}'] has dtype {np.asarray(value).dtype}, expected {dtype}")
        value = np.asarray(value, dtype=np.float64)
        if key[0] == "W":
            n = value.size
            # the sample std of n Gaussians is within 5 standard errors (std / sqrt(2n)) of the truth
            std, tol = value.std(), 5 / np.sqrt(2 * n)
            if abs(std / weight_scale - 1) > tol or abs(value.mean()) > 5 * weight_scale / np.sqrt(n):
                raise Failed(
                    f"params['{key}'] has mean {value.mean():.3g} and std {std:.3g}; expected draws from "
                    f"N(0, weight_scale^2) with weight_scale = {weight_scale}. Hint: "
                    "weight_scale * np.random.randn(fan_in, fan_out)"
                )
        else:
            target = 1.0 if key.startswith("gamma") else 0.0
            if not np.all(value == target):
                raise Failed(f"params['{key}'] should be all {target:g} at initialization")
    return 0.0


def _random_params(rng, params: dict) -> dict:
    """Parameters of the given shapes, all non-zero (biases, gammas and betas included), so that
    L2 on biases or a forgotten gamma shows."""
    return {
        k: (1.0 if k.startswith("gamma") else 0.0) + 0.5 * rng.randn(*np.shape(v)) for k, v in params.items()
    }


def _net_check(ctx, module, cls, kwargs, X, y, reference):
    """The student's ``cls(**kwargs)`` given ``reference``'s parameters: loss, every gradient, and the
    scores without labels, computed on the reference layers."""
    params = {k: np.asarray(v) for k, v in reference.params.items()}
    answers = ctx.run(
        call(module, cls, kwargs=kwargs, as_="net", send=False, seed=0),
        {"set": "net", "attr": "params", "value": params, "call": "set params"},
        call(None, "net.loss", X, y, proxies=LAYER_EXERCISES),
        call(None, "net.loss", X, proxies=LAYER_EXERCISES),
    )
    want_loss, want_grads = reference.loss(X, y)
    want_scores = reference.loss(X)
    got = answers[2]["value"]
    if not isinstance(got, tuple) or len(got) != 2 or not isinstance(got[1], dict):
        raise Failed("loss(X, y) must return (loss, grads) with grads a dict keyed like params")
    loss, grads = got
    hint_reg = "add 0.5 * reg * sum(W ** 2) for the weight matrices only (not biases, gammas, betas)"
    error = compare(loss, want_loss, "loss", hint_reg)
    missing = sorted(set(want_grads) - set(grads))
    if missing:
        raise Failed(f"grads has no {', '.join(missing)}; every parameter needs its gradient")
    for key in want_grads:
        hint = (
            "add reg * W to the gradient of each weight matrix"
            if key[0] == "W"
            else ("biases, gammas and betas are not regularized")
        )
        error = max(error, compare(grads[key], want_grads[key], f"grads['{key}']", hint))
    hint = "without y, return the scores of the last affine layer (no softmax; test mode)"
    return max(error, compare(answers[3]["value"], want_scores, "scores (y=None)", hint))


@check("classifiers.fc_net", "TwoLayerNet.__init__", "params: shapes and initial values")
def _(ctx):
    kwargs = {"input_dim": 300, "hidden_dim": 200, "num_classes": 10, "weight_scale": 0.02}
    answer = ctx.run(
        call("classifiers.fc_net", "TwoLayerNet", kwargs=kwargs, send=False, send_attr=["params"])
    )
    expected = {"W1": (300, 200), "b1": (200,), "W2": (200, 10), "b2": (10,)}
    return _init_stats(answer[0]["attr"]["params"], expected, 0.02)


@check(
    "classifiers.fc_net",
    "TwoLayerNet.loss",
    "loss, grads, scores; non-zero biases, reg 0.3",
    extra_modules=("layers",),
)
def _(ctx):
    from cnnarch.scratch.classifiers.fc_net import TwoLayerNet

    kwargs = {"input_dim": 6, "hidden_dim": 5, "num_classes": 4, "reg": 0.3}
    reference = TwoLayerNet(**kwargs)
    reference.params = _random_params(ctx.rng, reference.params)
    X, y = ctx.rng.randn(7, 6), ctx.rng.randint(4, size=7)
    return _net_check(ctx, "classifiers.fc_net", "TwoLayerNet", kwargs, X, y, reference)


def _fc_kwargs(normalization, keep):
    return {
        "input_dim": 60,
        "num_classes": 7,
        "normalization": normalization,
        "dropout_keep_ratio": keep,
        "reg": 0.1,
        "weight_scale": 0.05,
        "dtype": "float64",
        "seed": 3,
    }


@check("classifiers.fc_net", "FullyConnectedNet.__init__", "params: shapes and initial values, norms")
def _(ctx):
    error = 0.0
    for normalization in (None, "batchnorm"):
        answer = ctx.run(
            call(
                "classifiers.fc_net",
                "FullyConnectedNet",
                [50, 40],
                kwargs=_fc_kwargs(normalization, 1),
                send=False,
                send_attr=["params"],
            )
        )
        expected = {"W1": (60, 50), "b1": (50,), "W2": (50, 40), "b2": (40,), "W3": (40, 7), "b3": (7,)}
        if normalization:
            expected.update({f"{p}{i}": (d,) for i, d in ((1, 50), (2, 40)) for p in ("gamma", "beta")})
        error = max(error, _init_stats(answer[0]["attr"]["params"], expected, 0.05, np.float64))
    return error


@check(
    "classifiers.fc_net",
    "FullyConnectedNet.loss",
    "plain, batchnorm, layernorm + dropout; reg 0.1",
    extra_modules=("layers",),
)
def _(ctx):
    from cnnarch.scratch.classifiers.fc_net import FullyConnectedNet

    X, y = ctx.rng.randn(6, 8), ctx.rng.randint(4, size=6)
    error = 0.0
    for normalization, keep in ((None, 1), ("batchnorm", 1), ("layernorm", 0.75)):
        kwargs = {**_fc_kwargs(normalization, keep), "input_dim": 8, "num_classes": 4}
        reference = FullyConnectedNet([7, 5], **kwargs)
        reference.params = _random_params(ctx.rng, reference.params)
        net_kwargs = {"hidden_dims": [7, 5], **kwargs}
        error = max(
            error, _net_check(ctx, "classifiers.fc_net", "FullyConnectedNet", net_kwargs, X, y, reference)
        )
    return error


def _update_check(name, config, formula, hint):
    @check("optim", name, f"next_w over 3 steps, config {config or 'defaults'}")
    def _(ctx):
        w = ctx.rng.randn(4, 5)
        dws = [ctx.rng.randn(4, 5) for _ in range(3)]
        steps = [call("optim", name, w, dws[0], dict(config) if config else None, as_="s0", send=[0])]
        for t in (1, 2):
            steps.append(
                call("optim", name, ref(f"s{t - 1}", 0), dws[t], ref(f"s{t - 1}", 1), as_=f"s{t}", send=[0])
            )
        answers = ctx.run(*steps)
        want, state = w, {}
        error = 0.0
        for t, answer in enumerate(answers):
            want = formula(want, dws[t], state, config)
            error = max(error, compare(answer["value"], want, f"next_w of step {t + 1}", hint))
        return error


def _momentum(w, dw, s, c):
    lr, mu = c.get("learning_rate", 1e-2), c.get("momentum", 0.9)
    s["v"] = mu * s.get("v", 0) - lr * dw
    return w + s["v"]


def _rmsprop(w, dw, s, c):
    lr, decay, eps = c.get("learning_rate", 1e-2), c.get("decay_rate", 0.99), c.get("epsilon", 1e-8)
    s["cache"] = decay * s.get("cache", 0) + (1 - decay) * dw**2
    return w - lr * dw / (np.sqrt(s["cache"]) + eps)


def _adam(w, dw, s, c):
    lr, b1, b2, eps = (
        c.get(k, d) for k, d in (("learning_rate", 1e-3), ("beta1", 0.9), ("beta2", 0.999), ("epsilon", 1e-8))
    )
    s["t"] = s.get("t", 0) + 1
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * dw
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * dw**2
    m_hat, v_hat = s["m"] / (1 - b1 ** s["t"]), s["v"] / (1 - b2 ** s["t"])
    return w - lr * m_hat / (np.sqrt(v_hat) + eps)


_update_check(
    "sgd_momentum",
    {"learning_rate": 0.05, "momentum": 0.5},
    _momentum,
    "v = momentum * v - learning_rate * dw; next_w = w + v; keep v in config['velocity']",
)
_update_check("sgd_momentum", {}, _momentum, "the defaults are learning_rate 1e-2, momentum 0.9")
_update_check(
    "rmsprop",
    {"learning_rate": 0.05, "decay_rate": 0.9},
    _rmsprop,
    "cache = decay_rate * cache + (1 - decay_rate) * dw**2; next_w = w - lr * dw / (sqrt(cache) + epsilon)",
)
_update_check(
    "adam",
    {"learning_rate": 0.05, "beta1": 0.8},
    _adam,
    "increment t first, then m and v, then divide by (1 - beta ** t) (bias correction)",
)
_update_check("adam", {}, _adam, "the defaults are learning_rate 1e-3, beta1 0.9, beta2 0.999")


# ---------------------------------------------------------------------------------------------
# Batch, layer and group normalization


def _torch_norm(kind):
    """out(x, gamma, beta) of a normalization, by torch, on (N, D) or (N, C, H, W) inputs."""
    import torch.nn.functional as F

    def batch(x, gamma, beta):
        return F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5)

    def layer(x, gamma, beta):
        return F.layer_norm(x, x.shape[1:], gamma, beta, eps=1e-5)

    def group(x, gamma, beta):
        return F.group_norm(x, 3, gamma.reshape(-1), beta.reshape(-1), eps=1e-5)

    return {"batch": batch, "layer": layer, "group": group}[kind]


_NORM_HINTS = {
    "dx": "three paths lead from x to the output (directly, through the mean, through the variance)",
    "dgamma": "dgamma = sum of dout * x_hat over the axes the statistics were taken over",
    "dbeta": "dbeta = sum of dout over the axes the statistics were taken over",
}


def _norm_args(rng, shape, channels):
    """Inputs far from zero mean and unit variance, and non-trivial gamma and beta."""
    return [4 * rng.randn(*shape) + 7, 1 + 0.5 * rng.randn(*channels), rng.randn(*channels)]


def normalization_checks(forward, backward, shape, stat_axes, channels, kind, extra=(), bn=True):
    """Forward checks (train mode; test mode for batch norm) and the backward check of one norm."""
    hint = (
        f"statistics over axes {stat_axes} of an input of shape {shape}; x_hat = (x - mean) / "
        "sqrt(var + eps) with the biased variance; out = gamma * x_hat + beta"
    )

    @check("layers", forward, "out in train mode (torch)" + (", running averages over 2 calls" if bn else ""))
    def _(ctx):
        x, gamma, beta = _norm_args(ctx.rng, shape, channels)
        import torch

        want = _torch_norm(kind)(*(torch.tensor(a) for a in (x, gamma, beta))).numpy()
        param = {"mode": "train"} if bn else {}
        answers = ctx.run(
            call("layers", forward, x, gamma, beta, *extra, param, send=[0], send_args=[3 + len(extra)])
        )
        error = compare(answers[0]["value"], want, "out", hint)
        if not bn:
            return error
        # running = momentum * running + (1 - momentum) * batch statistic, from zeros, momentum 0.9
        running_hint = "running = momentum * running + (1 - momentum) * batch statistic (biased var)"
        first_hint = running_hint + "; start from zeros, momentum defaults to 0.9"
        stats = (("running_mean", np.mean), ("running_var", np.var))
        after = answers[0]["after"][0]
        for key, stat in stats:
            expected = 0.1 * stat(x, axis=stat_axes)
            what = f"bn_param['{key}'] after 1 call"
            error = max(error, compare(after.get(key), expected, what, first_hint))
        x2 = x + 3
        after2 = ctx.run(
            call("layers", forward, x2, gamma, beta, {**after, "momentum": 0.8}, send=False, send_args=[3])
        )[0]["after"][0]
        for key, stat in stats:
            expected = 0.8 * after[key] + 0.2 * stat(x2, axis=stat_axes)
            what = f"bn_param['{key}'] after a 2nd call with momentum 0.8"
            error = max(error, compare(after2.get(key), expected, what, running_hint))
        return error

    if bn:

        @check("layers", forward, "test mode: running averages used, not changed")
        def _(ctx):
            x, gamma, beta = _norm_args(ctx.rng, shape, channels)
            C = channels[0]
            running = {"running_mean": 7 + ctx.rng.randn(C), "running_var": 16 * (ctx.rng.rand(C) + 0.5)}
            param = {"mode": "test", **{k: v.copy() for k, v in running.items()}}
            answer = ctx.run(call("layers", forward, x, gamma, beta, param, send=[0], send_args=[3]))[0]
            bshape = (1, C) + (1,) * (len(shape) - 2)
            rm, rv = (running[k].reshape(bshape) for k in ("running_mean", "running_var"))
            want = gamma.reshape(bshape) * (x - rm) / np.sqrt(rv + 1e-5) + beta.reshape(bshape)
            error = compare(
                answer["value"],
                want,
                "out (test mode)",
                "test mode normalizes with bn_param's running_mean and running_var",
            )
            for key, value in running.items():
                if not np.array_equal(np.asarray(answer["after"][0].get(key)), value):
                    raise Failed(
                        f"test mode changed bn_param['{key}']; test mode must only read the running "
                        "averages (update them in train mode only)"
                    )
            return error

    for name in backward if isinstance(backward, tuple) else (backward,):

        @check("layers", name, "dx, dgamma, dbeta (torch)", GRAD_TOL)
        def _(ctx, name=name):
            x, gamma, beta = _norm_args(ctx.rng, shape, channels)
            dout = ctx.rng.randn(*shape)
            param = {"mode": "train"} if bn else {}
            answers = ctx.run(
                call("layers", forward, x, gamma, beta, *extra, param, as_="fwd", send=False),
                call("layers", name, dout, ref("fwd", 1)),
            )
            want = ctx.memo("grads", lambda: torch_vjp(_torch_norm(kind), [x, gamma, beta], dout))
            wants = dict(zip(("dx", "dgamma", "dbeta"), want, strict=True))
            return compare_all(answers[1]["value"], wants, _NORM_HINTS, GRAD_TOL)


normalization_checks(
    "batchnorm_forward", ("batchnorm_backward", "batchnorm_backward_alt"), (6, 5), 0, (5,), "batch"
)
normalization_checks("layernorm_forward", "layernorm_backward", (4, 7), 1, (7,), "layer", bn=False)
normalization_checks(
    "spatial_batchnorm_forward", "spatial_batchnorm_backward", (3, 4, 3, 5), (0, 2, 3), (4,), "batch"
)
normalization_checks(
    "spatial_groupnorm_forward",
    "spatial_groupnorm_backward",
    (2, 6, 3, 4),
    (2, 3, 4),
    (1, 6, 1, 1),
    "group",
    extra=(3,),
    bn=False,
)


# ---------------------------------------------------------------------------------------------
# Dropout (p is the probability of keeping a unit, as in the 2019 assignment)


# 0.03: six standard deviations of the fraction kept out of 100,000 units, relative to p = 0.3
@check("layers", "dropout_forward", "train: keeps a fraction p, scales by 1/p, same seed same mask", 0.03)
def _(ctx):
    p = 0.3
    x = 1 + ctx.rng.rand(400, 250)
    answers = ctx.run(
        call("layers", "dropout_forward", x, {"mode": "train", "p": p, "seed": 7}, send=[0]),
        call("layers", "dropout_forward", x, {"mode": "train", "p": p, "seed": 7}, send=[0]),
    )
    out, again = answers[0]["value"], answers[1]["value"]
    compare(out, x, "out", tol=np.inf)  # its form only
    out = np.asarray(out, dtype=np.float64)
    if not np.array_equal(out, np.asarray(again, dtype=np.float64)):
        raise Failed("the same dropout_param['seed'] gave two different masks; seed a generator with it")
    kept = out != 0
    fraction = kept.mean()
    if abs(fraction - p) / p > 0.03:
        raise Failed(
            f"kept {fraction:.3f} of the units with p = {p}; p is the probability of KEEPING a "
            "unit: mask = np.random.rand(*x.shape) < p",
            abs(fraction - p) / p,
        )
    return max(
        abs(fraction - p) / p,
        compare(out[kept], x[kept] / p, "out (kept units)", "inverted dropout divides the kept units by p"),
    )


@check("layers", "dropout_forward", "test mode: the identity")
def _(ctx):
    x = ctx.rng.randn(20, 30)
    out = ctx.value(call("layers", "dropout_forward", x, {"mode": "test", "p": 0.3}, send=[0]))
    return compare(out, x, "out (test mode)", "inverted dropout does nothing at test time (no scaling)")


@check("layers", "dropout_backward", "train: the forward's mask; test: identity")
def _(ctx):
    x = 1 + ctx.rng.rand(20, 30)
    dout = ctx.rng.randn(20, 30)
    answers = ctx.run(
        call("layers", "dropout_forward", x, {"mode": "train", "p": 0.6, "seed": 3}, as_="fwd", send=[0]),
        call("layers", "dropout_backward", dout, ref("fwd", 1)),
        call("layers", "dropout_forward", x, {"mode": "test", "p": 0.6}, as_="test", send=False),
        call("layers", "dropout_backward", dout, ref("test", 1)),
    )
    out = answers[0]["value"]
    # d out / d x is the mask, and out / x is the mask (x is nonzero)
    hint = "dx = dout * mask, with the mask (already divided by p) kept in the cache"
    error = compare(answers[1]["value"], dout * np.asarray(out, dtype=np.float64) / x, "dx (train)", hint)
    return max(error, compare(answers[3]["value"], dout, "dx (test mode)", "at test time dx = dout"))


# ---------------------------------------------------------------------------------------------
# Convolutional networks

# (input shape, weight shape, stride, pad): non-square inputs, kernels and strides that do not tile
_CONVS = [
    ((2, 3, 7, 6), (4, 3, 3, 3), 2, 1),
    ((2, 2, 6, 7), (3, 2, 3, 2), 1, 2),
    ((1, 2, 8, 9), (2, 2, 2, 4), 3, 0),
]
_CONV_HINT = (
    "H' = 1 + (H + 2 * pad - HH) // stride, W' = 1 + (W + 2 * pad - WW) // stride; window (i, j) "
    "starts at (i * stride, j * stride) of the padded input; use HH and WW separately"
)


def _conv_torch(stride, pad):
    import torch.nn.functional as F

    return lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=pad)


@check("layers", "conv_forward_naive", "out: non-square kernels, inputs, strides (torch)")
def _(ctx):
    import torch

    error = 0.0
    for xs, ws, stride, pad in _CONVS:
        x, w, b = ctx.rng.randn(*xs), ctx.rng.randn(*ws), ctx.rng.randn(ws[0])
        out = ctx.value(
            call("layers", "conv_forward_naive", x, w, b, {"stride": stride, "pad": pad}, send=[0])
        )
        want = _conv_torch(stride, pad)(*(torch.tensor(a) for a in (x, w, b))).numpy()
        what = f"out (x {xs}, w {ws}, stride {stride}, pad {pad})"
        error = max(error, compare(out, want, what, _CONV_HINT + "; add b[f] to every output of filter f"))
    return error


@check("layers", "conv_backward_naive", "dx, dw, db: non-square kernels and strides (torch)", GRAD_TOL)
def _(ctx):
    error = 0.0
    for xs, ws, stride, pad in _CONVS:
        x, w, b = ctx.rng.randn(*xs), ctx.rng.randn(*ws), ctx.rng.randn(ws[0])
        Ho, Wo = (1 + (xs[k] + 2 * pad - ws[k]) // stride for k in (2, 3))
        dout = ctx.rng.randn(xs[0], ws[0], Ho, Wo)
        answers = ctx.run(
            call(
                "layers", "conv_forward_naive", x, w, b, {"stride": stride, "pad": pad}, as_="fwd", send=False
            ),
            call("layers", "conv_backward_naive", dout, ref("fwd", 1)),
        )
        want = ctx.memo(
            xs, lambda x=x, w=w, b=b, s=stride, p=pad, d=dout: torch_vjp(_conv_torch(s, p), [x, w, b], d)
        )
        label = f" (w {ws}, stride {stride}, pad {pad})"
        hints = {
            "dx" + label: "add (+=) each window's gradient into the padded dx, then cut the padding off",
            "dw" + label: "dw[f] += dout[n, f, i, j] * window; use HH and WW separately",
            "db" + label: "db = dout summed over N, H' and W'",
        }
        wants = dict(zip(hints, want, strict=True))
        error = max(error, compare_all(answers[1]["value"], wants, hints, GRAD_TOL))
    return error


# (input shape, pool_param): non-square windows, and a stride below the window (overlapping windows)
_POOLS = [
    ((2, 3, 6, 5), {"pool_height": 2, "pool_width": 2, "stride": 2}),
    ((2, 2, 6, 5), {"pool_height": 3, "pool_width": 2, "stride": 1}),
    ((1, 2, 7, 8), {"pool_height": 2, "pool_width": 3, "stride": 2}),
]


def _pool_torch(pp):
    import torch.nn.functional as F

    return lambda x: F.max_pool2d(x, (pp["pool_height"], pp["pool_width"]), pp["stride"])


@check("layers", "max_pool_forward_naive", "out: non-square and overlapping windows (torch)")
def _(ctx):
    import torch

    error = 0.0
    for xs, pp in _POOLS:
        x = ctx.rng.randn(*xs)
        out = ctx.value(call("layers", "max_pool_forward_naive", x, dict(pp), send=[0]))
        want = _pool_torch(pp)(torch.tensor(x)).numpy()
        hint = "H' = 1 + (H - pool_height) // stride; window (i, j) starts at (i * stride, j * stride)"
        error = max(error, compare(out, want, f"out (x {xs}, {pp})", hint))
    return error


@check("layers", "max_pool_backward_naive", "dx: overlapping windows, ties (torch)", GRAD_TOL)
def _(ctx):
    error = 0.0
    cases = [(xs, pp, ctx.rng.randn(*xs)) for xs, pp in _POOLS]
    # small integers: many windows have several maxima, which must get the gradient only once
    cases += [(xs, pp, ctx.rng.randint(0, 3, size=xs).astype(np.float64)) for xs, pp in _POOLS[1:]]
    for k, (xs, pp, x) in enumerate(cases):
        Ho, Wo = (
            1 + (xs[2] - pp["pool_height"]) // pp["stride"],
            1 + (xs[3] - pp["pool_width"]) // pp["stride"],
        )
        dout = ctx.rng.randn(xs[0], xs[1], Ho, Wo)
        answers = ctx.run(
            call("layers", "max_pool_forward_naive", x, dict(pp), as_="fwd", send=False),
            call("layers", "max_pool_backward_naive", dout, ref("fwd", 1)),
        )
        (want,) = ctx.memo(k, lambda x=x, pp=pp, d=dout: torch_vjp(_pool_torch(pp), [x], d))
        ties = " with ties" if k >= len(_POOLS) else ""
        hint = (
            "each window sends its gradient to ONE maximum (the first, as np.argmax picks), and windows "
            "that overlap add (+=) into dx"
        )
        error = max(error, compare(answers[1]["value"], want, f"dx (x {xs}, {pp}{ties})", hint, GRAD_TOL))
    return error


@check("classifiers.cnn", "ThreeLayerConvNet.__init__", "params: shapes and initial values, 8x6 input")
def _(ctx):
    kwargs = {
        "input_dim": (3, 8, 6),
        "num_filters": 16,
        "filter_size": 5,
        "hidden_dim": 40,
        "num_classes": 5,
        "weight_scale": 0.05,
        "dtype": "float64",
    }
    answer = ctx.run(
        call("classifiers.cnn", "ThreeLayerConvNet", kwargs=kwargs, send=False, send_attr=["params"])
    )
    expected = {
        "W1": (16, 3, 5, 5),
        "b1": (16,),
        "W2": (16 * 4 * 3, 40),
        "b2": (40,),
        "W3": (40, 5),
        "b3": (5,),
    }
    return _init_stats(answer[0]["attr"]["params"], expected, 0.05, np.float64)


@check(
    "classifiers.cnn",
    "ThreeLayerConvNet.loss",
    "loss, grads, scores; 8x6 input, non-zero biases",
    extra_modules=("layers",),
)
def _(ctx):
    from cnnarch.scratch.classifiers.cnn import ThreeLayerConvNet

    kwargs = {
        "input_dim": (3, 8, 6),
        "num_filters": 3,
        "filter_size": 3,
        "hidden_dim": 7,
        "num_classes": 4,
        "weight_scale": 0.5,
        "reg": 0.05,
        "dtype": "float64",
    }
    reference = ThreeLayerConvNet(**kwargs)
    reference.params = _random_params(ctx.rng, reference.params)
    X, y = ctx.rng.randn(3, 3, 8, 6), ctx.rng.randint(4, size=3)
    return _net_check(ctx, "classifiers.cnn", "ThreeLayerConvNet", kwargs, X, y, reference)


# ---------------------------------------------------------------------------------------------
# PyTorch: the network on bare tensors, as an nn.Module, as an nn.Sequential that trains


CONVNET_HINT = (
    "conv 5x5 with padding=2, ReLU, conv 3x3 with padding=1, ReLU, then the activations flattened "
    "per image (h.flatten(1)) @ fc_w + fc_b"
)


def _convnet_oracle(x, params):
    """The three-layer network written out with torch's functions."""
    import torch
    import torch.nn.functional as F

    x, w1, b1, w2, b2, fc_w, fc_b = (torch.from_numpy(a) for a in (x, *params))
    h = torch.relu(F.conv2d(x, w1, b1, padding=2))
    h = torch.relu(F.conv2d(h, w2, b2, padding=1))
    return (h.reshape(len(h), -1) @ fc_w + fc_b).numpy()


def _convnet_params(rng, C, C1, C2, HW, K):
    return [
        0.3 * rng.randn(C1, C, 5, 5),
        rng.randn(C1),
        0.3 * rng.randn(C2, C1, 3, 3),
        rng.randn(C2),
        0.1 * rng.randn(C2 * HW, K),
        rng.randn(K),
    ]


@check("pytorch_nets", "three_layer_convnet", "scores on a 7x5 batch (torch)")
def _(ctx):
    x = ctx.rng.randn(2, 3, 7, 5)
    params = _convnet_params(ctx.rng, 3, 4, 6, 7 * 5, 5)
    got = ctx.value(call("pytorch_nets", "three_layer_convnet", x, params, tensors=True))
    return compare(got, _convnet_oracle(x, params), "scores", CONVNET_HINT)


@check("pytorch_nets", "three_layer_convnet", "scores worked out by hand")
def _(ctx):
    # A 3x3 image of ones, every weight one, fc_b = 1. With conv_b1 = -8 the 5x5 filter sees all 9
    # pixels from every position (9 - 8 = 1 everywhere); the 3x3 filter then sums 4 ones at a corner,
    # 6 at an edge, 9 at the centre: 4 * 4 + 4 * 6 + 9 = 49, plus fc_b: 50. With conv_b1 = -10 every
    # first-layer output is -1, which the ReLU makes 0, and the score is fc_b alone: 1.
    error = 0.0
    for conv_b1, want, hint in (
        (-8.0, 50.0, "zero padding keeps the 3x3 size: padding=2 for the 5x5 conv, padding=1 for the 3x3"),
        (-10.0, 1.0, "a ReLU after each convolution: negative activations become 0"),
    ):
        params = [np.ones((1, 1, 5, 5)), np.array([conv_b1]), np.ones((1, 1, 3, 3)), np.zeros(1)]
        params += [np.ones((9, 1)), np.ones(1)]
        got = ctx.value(
            call("pytorch_nets", "three_layer_convnet", np.ones((1, 1, 3, 3)), params, tensors=True)
        )
        what = f"the score of a 3x3 image of ones, all weights 1, conv_b1 = {conv_b1:g}"
        error = max(error, compare(got, np.array([[want]]), what, hint))
    return error


MODULE_KWARGS = {"in_channel": 3, "channel_1": 8, "channel_2": 12, "num_classes": 5, "size": 6}


def _module_parameters(ctx) -> dict:
    """{name: array} of a fresh ThreeLayerConvNetModule's state_dict, seeded."""
    answer = ctx.run(
        call("pytorch_nets", "ThreeLayerConvNetModule", kwargs=MODULE_KWARGS, as_="net", send=False, seed=0),
        call(None, "net.state_dict"),
    )
    state = answer[1]["value"]
    if not isinstance(state, dict) or not state:
        raise Failed(
            "ThreeLayerConvNetModule has no parameters: make its layers in __init__ and assign them to "
            "self (self.conv1 = nn.Conv2d(...)), so that nn.Module registers them"
        )
    return state


def _module_shapes(kw=MODULE_KWARGS) -> dict:
    """Role -> shape of the module's parameters (nn.Linear stores its weight as (out, in))."""
    c, c1, c2, k, hw = kw["in_channel"], kw["channel_1"], kw["channel_2"], kw["num_classes"], kw["size"] ** 2
    return {
        "conv1 weight": (c1, c, 5, 5),
        "conv1 bias": (c1,),
        "conv2 weight": (c2, c1, 3, 3),
        "conv2 bias": (c2,),
        "fc weight": (k, c2 * hw),
        "fc bias": (k,),
    }


def _roles(state: dict) -> dict:
    """Parameter name -> role, by shape (the fully connected weight either way round)."""
    shapes = {shape: role for role, shape in _module_shapes().items()}
    fc_in = _module_shapes()["fc weight"][::-1]
    roles = {}
    for name, value in state.items():
        shape = tuple(np.shape(value))
        role = shapes.get(shape) or ("fc weight (in, out)" if shape == fc_in else None)
        if role is None:
            expected = ", ".join(f"{r} {s}" for r, s in _module_shapes().items())
            raise Failed(
                f"parameter {name} has shape {shape}; with in_channel=3, channel_1=8, channel_2=12, "
                f"num_classes=5, size=6 the parameters are {expected}. Hint: {CONVNET_HINT}"
            )
        roles[name] = role
    missing = sorted(set(_module_shapes()) - {r.replace(" (in, out)", "") for r in roles.values()})
    if missing:
        raise Failed(f"ThreeLayerConvNetModule has no {', '.join(missing)} (parameters: {sorted(state)})")
    return roles


@check(
    "pytorch_nets", "ThreeLayerConvNetModule.__init__", "layers' shapes; Kaiming normal weights, zero biases"
)
def _(ctx):
    state = _module_parameters(ctx)
    roles = _roles(state)
    error = 0.0
    for name, role in roles.items():
        value = np.asarray(state[name], dtype=np.float64)
        if role.startswith("conv") and role.endswith("bias"):
            error = max(error, compare(value, np.zeros_like(value), f"{name} ({role})", "zero the biases"))
        elif role.startswith("conv"):
            fan_in = value[0].size
            std, want = value.std(), np.sqrt(2.0 / fan_in)
            # the sample std of n Gaussians is within 5 standard errors (std / sqrt(2n)) of the truth
            if abs(std - want) > 5 * want / np.sqrt(2 * value.size) or abs(value.mean()) > 5 * want / np.sqrt(
                value.size
            ):
                raise Failed(
                    f"{name} ({role}) has mean {value.mean():.3g} and std {std:.3g}; Kaiming's normal "
                    f"initialization gives mean 0 and std sqrt(2 / fan_in) = {want:.3g} (fan_in "
                    f"{fan_in}). Hint: nn.init.kaiming_normal_(conv.weight), then nn.init.zeros_(conv.bias)"
                )
    return error


@check("pytorch_nets", "ThreeLayerConvNetModule.forward", "scores with given weights (torch)")
def _(ctx):
    try:
        roles = _roles(_module_parameters(ctx))
    except Failed as e:
        raise Failed(f"needs ThreeLayerConvNetModule.__init__: {e.detail}") from None
    kw = MODULE_KWARGS
    params = _convnet_params(
        ctx.rng, kw["in_channel"], kw["channel_1"], kw["channel_2"], kw["size"] ** 2, kw["num_classes"]
    )
    by_role = dict(zip(_module_shapes(), params, strict=True))
    by_role["fc weight (in, out)"] = by_role["fc weight"]
    by_role["fc weight"] = by_role["fc weight"].T.copy()
    x = ctx.rng.randn(3, kw["in_channel"], kw["size"], kw["size"])
    answer = ctx.run(
        call("pytorch_nets", "ThreeLayerConvNetModule", kwargs=kw, as_="net", send=False, seed=0),
        call(None, "net.double", send=False),
        call(
            None, "net.load_state_dict", {n: by_role[r] for n, r in roles.items()}, send=False, tensors=True
        ),
        call(None, "net.forward", x, tensors=True),
    )
    return compare(answer[3]["value"], _convnet_oracle(x, params), "scores", CONVNET_HINT)


@check("pytorch_nets", "make_model", "an nn.Sequential from (N, 3, 32, 32) images to (N, 10) scores")
def _(ctx):
    hint = "nn.Flatten() before the first nn.Linear, whose input size is channels * height * width"
    x = ctx.rng.randn(4, 3, 32, 32).astype(np.float32)
    try:
        answer = ctx.run(
            call("pytorch_nets", "make_model", as_="model", seed=0),
            call(None, "model.forward", x, tensors=True),
        )
    except Failed as e:
        if e.detail.startswith("not implemented"):
            raise
        raise Failed(f"{e.detail} (on 4 images of 3x32x32). Hint: {hint}") from None
    made = answer[0]["value"]
    if not isinstance(made, Opaque) or made.type_name != "Sequential":
        raise Failed(f"make_model() returned {made!r}, expected an nn.Sequential")
    scores = answer[1]["value"]
    if isinstance(scores, Opaque) or np.shape(scores) != (4, 10):
        raise Failed(
            f"the network's scores for 4 images have shape {np.shape(scores)}, expected (4, 10). Hint: {hint}"
        )
    return 0.0


TRAIN_TARGET = 0.9


def learnable_images(rng, n, noise=2.0):
    """``n`` 32x32 colour images of 10 classes and their labels: each class a coarse 4x4 colour
    pattern of its own, scaled up to 32x32, under Gaussian noise twice its size. Any network that
    learns separates them in a few hundred steps; one that cannot learn (all weights zero, frozen
    parameters, no gradient through a layer) stays near chance, 10%."""
    patterns = np.kron(np.random.RandomState(0).randn(10, 3, 4, 4), np.ones((8, 8)))
    y = rng.randint(10, size=n)
    X = patterns[y] + noise * rng.randn(n, 3, 32, 32)
    return X.astype(np.float32), y.astype(np.int64)


@check("pytorch_nets", "make_model", f"trains: {TRAIN_TARGET:.0%} on held-out images of a learnable task")
def _(ctx):
    X, y = learnable_images(ctx.rng, 1000)
    X_val, y_val = learnable_images(ctx.rng, 500)
    spec = {"data": [X, y, X_val, y_val], "epochs": 2, "batch_size": 50, "lr": 1e-3, "seed": 0}
    answer = ctx.run(
        call("pytorch_nets", "make_model", as_="model", send=False, seed=0),
        {"call": "model", "train": spec},
    )
    acc = answer[1]["value"]
    if not isinstance(acc, float) or acc < TRAIN_TARGET:
        raise Failed(
            f"trained for 2 epochs of 1,000 images (Adam, lr 1e-3, batches of 50), the network "
            f"classifies {acc:.1%} of 500 held-out images right; the target is {TRAIN_TARGET:.0%}. Hint: "
            "a network that stays near 10% does not learn: are its weights all zero (no gradient "
            "reaches the layers below), or its parameters frozen (requires_grad=False)?"
        )
    return 0.0
