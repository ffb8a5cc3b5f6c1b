"""The grader on the reference solution, the untouched stubs, planted bugs and misbehaving code."""

import json
import time

import pytest

from cnnarch.assignment.checks import CHECKS
from cnnarch.assignment.exercises import EXERCISES, PARTS
from cnnarch.assignment.grader import grade
from cnnarch.cli import main

from .conftest import solve

pytestmark = pytest.mark.slow


def failing(rows):
    return {r["function"] for r in rows if r["result"] != "pass"}


def test_every_exercise_has_a_check():
    assert {c.function for c in CHECKS} == {name for _, name in EXERCISES}


def test_reference_solution_passes_every_check_and_json_is_gradescopes_schema(workspace, capsys):
    solve(workspace)
    assert main(["assignment", "check", str(workspace), "--format", "json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results["tests"]) == len(CHECKS)
    assert results["score"] == len(CHECKS)
    for test in results["tests"]:
        assert set(test) == {"name", "score", "max_score", "output", "status"}
        assert (test["score"], test["max_score"], test["status"]) == (1.0, 1.0, "passed")


def test_untouched_stubs_fail_every_check_as_not_implemented(workspace, capsys):
    assert main(["assignment", "check", str(workspace)]) == 1
    out = capsys.readouterr().out
    why = [line for line in out.splitlines() if line.startswith("- ")]
    assert len(why) == len(CHECKS)
    # a stubbed __init__ runs (the rest of the constructor is given) and leaves params empty
    # (the nn.Module's: no layers, so no parameters)
    empty = ("not implemented", "self.params is empty", "has no parameters")
    assert all(any(words in line for words in empty) for line in why), why
    assert f"total: 0/{len(CHECKS)} checks passed; 0/{len(EXERCISES)} functions" in out


# Planted bugs: name -> (module of the reference, old, new, the function that must fail alone, words its
# message must hold). Every other function of the part, the networks' loss included, must still pass.
BUGS = {
    # the bugs a grader with small random inputs missed
    "softmax without subtracting the row maximum": (
        "layers",
        "    shifted = x - x.max(axis=1, keepdims=True)\n",
        "    shifted = x\n",
        "softmax_loss",
        ["scores near 1000", "got inf", "subtract each row's maximum"],
    ),
    "max-pool backward sends the gradient to every tied maximum": (
        "layers",
        "                    a, bb = np.unravel_index(np.argmax(window), window.shape)\n"
        "                    dx[n, c, i * s + a, j * s + bb] += dout[n, c, i, j]\n",
        "                    mask = window == window.max()\n"
        "                    dx[n, c, i * s : i * s + ph, j * s : j * s + pw] += mask * dout[n, c, i, j]\n",
        "max_pool_backward_naive",
        ["with ties", "ONE maximum"],
    ),
    "max-pool backward assigns where overlapping windows should add": (
        "layers",
        "dx[n, c, i * s + a, j * s + bb] += dout[n, c, i, j]",
        "dx[n, c, i * s + a, j * s + bb] = dout[n, c, i, j]",
        "max_pool_backward_naive",
        ["'stride': 1", "add (+=)"],
    ),
    "L2 regularization applied to the biases too": (
        "classifiers.fc_net",
        '        for i in range(1, L + 1):\n            W = p[f"W{i}"]\n',
        '        for i in range(1, L + 1):\n            W = p[f"W{i}"]\n'
        '            loss += 0.5 * self.reg * np.sum(p[f"b{i}"] ** 2)\n',
        "FullyConnectedNet.loss",
        ["loss is wrong", "weight matrices only"],
    ),
    "relu_backward lets the gradient through at x == 0": (
        "layers",
        "    return dout * (x > 0)\n",
        "    return dout * (x >= 0)\n",
        "relu_backward",
        ["dx is wrong", "expected 0, got", "x == 0"],
    ),
    "conv backward assumes a square kernel": (
        "layers",
        '    F, _, HH, WW = w.shape\n    s, pad = conv_param["stride"], conv_param["pad"]\n    _, _, Ho, Wo',
        '    F, _, HH, WW = w.shape\n    WW = HH\n    s, pad = conv_param["stride"], conv_param["pad"]\n'
        "    _, _, Ho, Wo",
        "conv_backward_naive",
        ["raised", "(cs231n/layers.py line"],
    ),
    "batch norm in test mode updates the running averages": (
        "layers",
        "        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta\n"
        "        cache = None\n",
        "        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta\n        cache = None\n"
        "        running_mean = momentum * running_mean + (1 - momentum) * x.mean(axis=0)\n",
        "batchnorm_forward",
        ["test mode changed bn_param['running_mean']"],
    ),
    "softmax_loss mutates its input": (
        "layers",
        "    shifted = x - x.max(axis=1, keepdims=True)\n",
        "    x -= x.max(axis=1, keepdims=True)\n    shifted = x\n",
        "softmax_loss",
        ["changed its input x in place"],
    ),
    "relu_forward mutates its input": (
        "layers",
        "    return np.maximum(x, 0), x\n",
        "    np.maximum(x, 0, out=x)\n    return x, x\n",
        "relu_forward",
        ["changed its input x in place"],
    ),
    "svm_loss counts the correct class's own margin": (
        "layers",
        "    margins[np.arange(N), y] = 0\n",
        "",
        "svm_loss",
        ["loss (small scores) is wrong", "j != y[i]"],
    ),
    # and more
    "affine_forward forgets the bias": (
        "layers",
        "    out = x.reshape(x.shape[0], -1) @ w + b\n",
        "    out = x.reshape(x.shape[0], -1) @ w\n",
        "affine_forward",
        ["out is wrong", "x @ w + b"],
    ),
    "affine_backward returns dx flattened": (
        "layers",
        "    dx = (dout @ w.T).reshape(x.shape)\n",
        "    dx = dout @ w.T\n",
        "affine_backward",
        ["dx has shape (4, 6), expected (4, 3, 2)"],
    ),
    "affine_backward averages db": (
        "layers",
        "    db = dout.sum(axis=0)\n    return dx, dw, db",
        "    db = dout.mean(axis=0)\n    return dx, dw, db",
        "affine_backward",
        ["db is wrong", "sum dout over the batch axis"],
    ),
    "softmax gradient not averaged over the batch": (
        "layers",
        "    return loss, dx / N\n",
        "    return loss, dx\n",
        "softmax_loss",
        ["dx (small scores) is wrong", "/ N"],
    ),
    "TwoLayerNet starts its biases at one": (
        "classifiers.fc_net",
        '        self.params["b1"] = np.zeros(hidden_dim)\n',
        '        self.params["b1"] = np.ones(hidden_dim)\n',
        "TwoLayerNet.__init__",
        ["params['b1'] should be all 0"],
    ),
    "TwoLayerNet draws weights with std weight_scale ** 2": (
        "classifiers.fc_net",
        '        self.params["W1"] = weight_scale * np.random.randn(input_dim, hidden_dim)\n',
        '        self.params["W1"] = weight_scale**2 * np.random.randn(input_dim, hidden_dim)\n',
        "TwoLayerNet.__init__",
        ["params['W1'] has mean", "weight_scale = 0.02"],
    ),
    "TwoLayerNet forgets the regularization of W2's gradient": (
        "classifiers.fc_net",
        '        grads["W2"] += self.reg * p["W2"]\n',
        "",
        "TwoLayerNet.loss",
        ["grads['W2'] is wrong", "reg * W"],
    ),
    "TwoLayerNet's scores pass through a softmax": (
        "classifiers.fc_net",
        "        if y is None:\n            return scores\n        loss, dscores = softmax_loss(scores, y)\n"
        "        loss += 0.5 * self.reg * (",
        "        if y is None:\n            return np.exp(scores)\n"
        "        loss, dscores = softmax_loss(scores, y)\n"
        "        loss += 0.5 * self.reg * (",
        "TwoLayerNet.loss",
        ["scores (y=None) is wrong", "no softmax"],
    ),
    "FullyConnectedNet starts its gammas at zero": (
        "classifiers.fc_net",
        '                self.params[f"gamma{i + 1}"] = np.ones(dims[i + 1])\n',
        '                self.params[f"gamma{i + 1}"] = np.zeros(dims[i + 1])\n',
        "FullyConnectedNet.__init__",
        ["params['gamma1'] should be all 1"],
    ),
    "FullyConnectedNet forgets the last layer's weights": (
        "classifiers.fc_net",
        "        for i in range(self.num_layers):\n",
        "        for i in range(self.num_layers - 1):\n",
        "FullyConnectedNet.__init__",
        ["missing W3, b3"],
    ),
    "FullyConnectedNet halves the regularization gradient": (
        "classifiers.fc_net",
        '            grads[f"W{i}"] += self.reg * W\n',
        '            grads[f"W{i}"] += 0.5 * self.reg * W\n',
        "FullyConnectedNet.loss",
        ["grads['W", "reg * W"],
    ),
    "sgd_momentum subtracts the velocity": (
        "optim",
        "    return w + v, config\n",
        "    return w - v, config\n",
        "sgd_momentum",
        ["next_w of step 1 is wrong", "next_w = w + v"],
    ),
    "rmsprop forgets the square root": (
        "optim",
        'dw / (np.sqrt(cache) + config["epsilon"])',
        'dw / (cache + config["epsilon"])',
        "rmsprop",
        ["next_w of step 1", "sqrt(cache)"],
    ),
    "adam without bias correction": (
        "optim",
        '    m_hat = config["m"] / (1 - b1 ** config["t"])\n'
        '    v_hat = config["v"] / (1 - b2 ** config["t"])\n',
        '    m_hat = config["m"]\n    v_hat = config["v"]\n',
        "adam",
        ["next_w of step 1", "bias correction"],
    ),
    "batch norm keeps the running variance of the std": (
        "layers",
        "        running_var = momentum * running_var + (1 - momentum) * var\n"
        "        cache = (x_hat, xc, std, gamma)",
        "        running_var = momentum * running_var + (1 - momentum) * std\n"
        "        cache = (x_hat, xc, std, gamma)",
        "batchnorm_forward",
        ["bn_param['running_var'] after 1 call is wrong"],
    ),
    "batch norm ignores a given momentum": (
        "layers",
        '    momentum = bn_param.get("momentum", 0.9)\n    D = x.shape[1]',
        "    momentum = 0.9\n    D = x.shape[1]",
        "batchnorm_forward",
        ["after a 2nd call with momentum 0.8"],
    ),
    "batchnorm_backward's dgamma multiplies by x instead of x_hat": (
        "layers",
        "    dgamma = (dout * x_hat).sum(axis=0)\n    dx_hat = dout * gamma",
        "    dgamma = (dout * xc).sum(axis=0)\n    dx_hat = dout * gamma",
        "batchnorm_backward",
        ["dgamma is wrong", "dout * x_hat"],
    ),
    "batchnorm_backward_alt drops the variance path": (
        "layers",
        "    dx = (gamma / std) * (dout - dout.mean(axis=0) - x_hat * (dout * x_hat).mean(axis=0))\n",
        "    dx = (gamma / std) * (dout - dout.mean(axis=0))\n",
        "batchnorm_backward_alt",
        ["dx is wrong", "three paths"],
    ),
    "layer norm adds beta before scaling": (
        "layers",
        "    return gamma * x_hat + beta, (x_hat, std, gamma)\n",
        "    return gamma * (x_hat + beta), (x_hat, std, gamma)\n",
        "layernorm_forward",
        ["out is wrong", "out = gamma * x_hat + beta"],
    ),
    "dropout keeps a unit with probability 1 - p": (
        "layers",
        "        mask = (rng.rand(*x.shape) < p) / p\n",
        "        mask = (rng.rand(*x.shape) >= p) / p\n",
        "dropout_forward",
        ["of the units with p = 0.3", "probability of KEEPING"],
    ),
    "dropout scales at test time too": (
        "layers",
        "        mask = None\n        out = x\n",
        "        mask = None\n        out = x * p\n",
        "dropout_forward",
        ["out (test mode) is wrong", "no scaling"],
    ),
    "dropout_backward ignores the mask": (
        "layers",
        '    if dropout_param["mode"] == "train":\n'
        "        return (dout * mask).astype(dout.dtype, copy=False)\n",
        "",
        "dropout_backward",
        ["dx (train) is wrong", "mask"],
    ),
    "conv forward ignores the stride": (
        "layers",
        "                    window = xp[n, :, i * s : i * s + HH, j * s : j * s + WW]\n",
        "                    window = xp[n, :, i : i + HH, j : j + WW]\n",
        "conv_forward_naive",
        ["stride 2", "i * stride"],
    ),
    "conv backward keeps the padding in dx": (
        "layers",
        "    dx = dxp[:, :, pad : pad + H, pad : pad + W]\n",
        "    dx = dxp\n",
        "conv_backward_naive",
        ["dx (w (4, 3, 3, 3), stride 2, pad 1) has shape"],
    ),
    "max-pool forward uses the pool height for both sides": (
        "layers",
        '    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]\n    Ho',
        '    ph, pw, s = pool_param["pool_height"], pool_param["pool_height"], pool_param["stride"]\n    Ho',
        "max_pool_forward_naive",
        ["'pool_height': 3, 'pool_width': 2"],
    ),
    "spatial batch norm forgets beta in train mode": (
        "layers",
        "        out = gamma[:, None, None] * x_hat + beta[:, None, None]\n",
        "        out = gamma[:, None, None] * x_hat\n",
        "spatial_batchnorm_forward",
        ["out is wrong", "out = gamma * x_hat + beta"],
    ),
    "ThreeLayerConvNet assumes a square input": (
        "classifiers.cnn",
        "np.random.randn(F * (H // 2) * (W // 2), hidden_dim)",
        "np.random.randn(F * (H // 2) * (H // 2), hidden_dim)",
        "ThreeLayerConvNet.__init__",
        ["params['W2'] has shape (256, 40), expected (192, 40)"],
    ),
    "ThreeLayerConvNet forgets to regularize W1": (
        "classifiers.cnn",
        '        for k in ("W1", "W2", "W3"):\n',
        '        for k in ("W2", "W3"):\n',
        "ThreeLayerConvNet.loss",
        ["loss is wrong"],
    ),
    # the PyTorch part
    "three_layer_convnet pads the 5x5 convolution by 1": (
        "pytorch_nets",
        "    h = F.relu(F.conv2d(x, conv_w1, conv_b1, padding=2))\n",
        "    h = F.relu(F.conv2d(x, conv_w1, conv_b1, padding=1))\n",
        "three_layer_convnet",
        ["raised RuntimeError", "(cs231n/pytorch_nets.py line"],
    ),
    "three_layer_convnet forgets the second ReLU": (
        "pytorch_nets",
        "    h = F.relu(F.conv2d(h, conv_w2, conv_b2, padding=1))\n",
        "    h = F.conv2d(h, conv_w2, conv_b2, padding=1)\n",
        "three_layer_convnet",
        ["scores is wrong", "ReLU"],
    ),
    "three_layer_convnet flattens channels last": (
        "pytorch_nets",
        "    return h.flatten(1) @ fc_w + fc_b\n",
        "    return h.permute(0, 2, 3, 1).flatten(1) @ fc_w + fc_b\n",
        "three_layer_convnet",
        ["scores is wrong", "flatten(1)"],
    ),
    "ThreeLayerConvNetModule keeps PyTorch's default initialization": (
        "pytorch_nets",
        "        for conv in (self.conv1, self.conv2):\n"
        '            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")\n'
        "            nn.init.zeros_(conv.bias)\n",
        "",
        "ThreeLayerConvNetModule.__init__",
        ["Kaiming's normal initialization gives mean 0 and std"],
    ),
    "ThreeLayerConvNetModule.forward skips the first ReLU": (
        "pytorch_nets",
        "        x = F.relu(self.conv1(x))\n",
        "        x = self.conv1(x)\n",
        "ThreeLayerConvNetModule.forward",
        ["scores is wrong", "ReLU"],
    ),
    "make_model forgets nn.Flatten": (
        "pytorch_nets",
        "        nn.Flatten(),\n",
        "",
        "make_model",
        ["raised RuntimeError", "nn.Flatten() before the first nn.Linear"],
    ),
    "make_model's network has 9 outputs": (
        "pytorch_nets",
        "        nn.Linear(64 * 8 * 8, 10),\n",
        "        nn.Linear(64 * 8 * 8, 9),\n",
        "make_model",
        ["have shape (4, 9), expected (4, 10)"],
    ),
    "make_model's network starts with every parameter zero": (
        "pytorch_nets",
        "        nn.Linear(64 * 8 * 8, 10),\n    )\n",
        "        nn.Linear(64 * 8 * 8, 10),\n"
        "    ).apply(lambda m: [nn.init.zeros_(p) for p in m.parameters()])\n",
        "make_model",
        ["the target is 90%", "weights all zero"],
    ),
}


def _family(function: str) -> str:
    """Functions whose checks call each other: a layer's forward and backward, a class's methods."""
    for suffix in ("_backward_alt", "_forward", "_backward", "_naive"):
        function = function.replace(suffix, "")
    return function.split(".")[0]


def _batches() -> list[list[str]]:
    """The bugs in as few workspaces as can hold them with at most one bug per family, so that a grading
    run checks several of them at once and each still has its function to itself."""
    batches: list[list[str]] = []
    for bug, (_, _, _, function, _) in BUGS.items():
        free = [b for b in batches if _family(function) not in {_family(BUGS[o][3]) for o in b}]
        if not free:
            batches.append([])
            free = [batches[-1]]
        free[0].append(bug)
    return batches


@pytest.mark.parametrize("batch", _batches(), ids=lambda b: f"{len(b)}-bugs-from-{b[0][:20]}")
def test_planted_bugs_each_fail_exactly_their_function_and_say_why(workspace, batch):
    edits: dict[str, list] = {}
    for bug in batch:
        module, old, new, _, _ = BUGS[bug]
        edits.setdefault(module, []).append((old, new))
    solve(workspace, edits)
    # a bug in the NumPy modules cannot reach the PyTorch part (nor the other way round): grade that
    # part, whose process imports torch, only where the batch plants a bug in it
    parts = [p for p in PARTS if p != "pytorch" or "pytorch_nets" in edits]
    rows = grade(workspace, parts)
    assert failing(rows) == {BUGS[bug][3] for bug in batch}
    for bug in batch:
        _, _, _, function, words = BUGS[bug]
        detail = " | ".join(r["detail"] for r in rows if r["function"] == function and r["result"] != "pass")
        for word in words:
            assert word in detail, (bug, word, detail)


def test_more_than_twenty_bugs_beyond_the_issues_are_planted():
    assert len(BUGS) >= 10 + 20


def test_a_failure_names_the_output_the_worst_element_the_tolerance_and_a_hint(workspace):
    module, old, new, function, _ = BUGS["affine_backward averages db"]
    solve(workspace, {module: [(old, new)]})
    (row,) = grade(workspace, functions=[function])
    # the oracle: db = dout.sum(0) from the check's inputs, and the bug's db = dout.mean(0), 4 samples
    assert row["detail"].startswith("db is wrong at [")
    assert "relative error 6.0e-01, tolerance 1e-07" in row["detail"]  # |s - s/4| / (|s| + |s/4|) = 0.6
    assert row["detail"].endswith("Hint: db: sum dout over the batch axis (axis 0)")


def test_a_loop_an_exception_and_a_crash_fail_only_their_functions(workspace):
    solve(
        workspace,
        {
            "optim": [
                (
                    '    config.setdefault("momentum", 0.9)\n',
                    '    config.setdefault("momentum", 0.9)\n    while True:\n        pass\n',
                )
            ],
            "layers": [
                (
                    "    N = x.shape[0]\n    shifted",
                    "    import os\n\n    os._exit(3)\n    N = x.shape[0]\n    shifted",
                ),
                (
                    "    return np.maximum(x, 0), x\n",
                    "    print('debugging')\n    return np.maximum(x, 0), x\n",
                ),
            ],
            "classifiers.fc_net": [
                (
                    "        X = X.astype(self.dtype)\n",
                    "        X = X.astype(self.dtype)\n        raise KeyError('W9')\n",
                )
            ],
        },
    )
    rows = grade(workspace, parts=["fc"], timeout=1.5)
    assert [r["function"] for r in rows] == [c.function for c in CHECKS if c.part == "fc"]
    detail = {r["function"]: r["detail"] for r in rows if r["result"] != "pass"}
    assert detail == {
        "softmax_loss": "the grading process died (exit code 3) while running it",
        "FullyConnectedNet.loss": "raised KeyError: 'W9' (cs231n/classifiers/fc_net.py line "
        + detail["FullyConnectedNet.loss"].split(" line ")[1],
        "sgd_momentum": "timed out after 1.5 s (an endless loop?)",
    }


def test_an_import_that_hangs_is_reported_once_at_once(workspace):
    solve(workspace)
    layers = workspace / "cs231n" / "layers.py"
    layers.write_text("while True:\n    pass\n" + layers.read_text())
    start = time.monotonic()
    rows = grade(workspace, import_timeout=2)
    assert time.monotonic() - start < 15  # not a timeout per check
    imports = [r for r in rows if r["check"] == "import"]
    assert imports[0]["function"] == "cs231n/layers.py"
    assert "importing cs231n.layers did not finish within 2 s" in imports[0]["detail"]
    # the networks import layers and would hang too; the update rules do not and are graded. The PyTorch
    # part does not import layers either: it is graded, unless importing torch alone outlasts the 2 s
    # (a loaded machine), which its own import row then reports
    blocked = {r["function"] for r in rows if r["detail"].startswith("not graded")}
    torch_part = {c.function for c in CHECKS if c.module == "pytorch_nets"}
    assert blocked - torch_part == {c.function for c in CHECKS if c.module not in ("optim", "pytorch_nets")}
    if blocked & torch_part:
        assert any(r["function"] == "cs231n/pytorch_nets.py" for r in imports)
    assert all(r["result"] == "pass" for r in rows if r["function"] in ("sgd_momentum", "rmsprop", "adam"))


def test_an_import_that_crashes_or_raises_is_reported_once(workspace):
    solve(workspace)
    (workspace / "cs231n" / "optim.py").write_text("import os\nos._exit(7)\n")
    fc = workspace / "cs231n" / "classifiers" / "fc_net.py"
    fc.write_text(fc.read_text() + "\nundefined_name\n")
    rows = grade(workspace, parts=["fc"], import_timeout=10)
    imports = {r["function"]: r["detail"] for r in rows if r["check"] == "import"}
    assert imports["cs231n/optim.py"] == "importing cs231n.optim killed the grading process (exit code 7)"
    assert imports["cs231n/classifiers/fc_net.py"].startswith("raised NameError: name 'undefined_name'")
    assert failing(rows) - {"cs231n/optim.py", "cs231n/classifiers/fc_net.py"} == {
        "TwoLayerNet.__init__",
        "TwoLayerNet.loss",
        "FullyConnectedNet.__init__",
        "FullyConnectedNet.loss",
        "sgd_momentum",
        "rmsprop",
        "adam",
    }


CHEATS = {
    # the student's package replaces the grader's check function: the grader is not importable there
    "patches the grader from cs231n/__init__.py": (
        "__init__.py",
        "import cnnarch.assignment.checks as c\nc.compare = lambda *a, **k: 0.0\n",
        "imports cnnarch",
    ),
    "returns the answer key's function": (
        "layers.py",
        "\ntry:\n    from cnnarch.scratch.layers import affine_forward\nexcept ImportError:\n    pass\n",
        "imports cnnarch",
    ),
    "reads the answer key's source": (
        "layers.py",
        "\nSOURCE = open({path!r}).read()\n",
        "a file of the grader's package",
    ),
    "asks another Python for the answer": (
        "layers.py",
        "\nimport subprocess\nsubprocess.run(['python3', '-c', 'import cnnarch'])\n",
        "starts another process",
    ),
}


@pytest.mark.parametrize("cheat", list(CHEATS))
def test_student_code_cannot_reach_the_grader_or_the_answer_key_and_is_reported(workspace, cheat):
    import cnnarch.scratch.layers

    solve(workspace)
    name, code, words = CHEATS[cheat]
    path = workspace / "cs231n" / name
    path.write_text(path.read_text() + code.format(path=cnnarch.scratch.layers.__file__))
    rows = grade(workspace, functions=["affine_forward", "sgd_momentum"])
    assert rows[0]["check"] == "import" and words in rows[0]["detail"], rows[0]
    assert "graded code must not use it" in rows[0]["detail"]
    assert not any(r["result"] == "pass" and r["function"] == "affine_forward" for r in rows)


def test_a_cheat_inside_a_function_fails_that_function(workspace):
    solve(
        workspace,
        {
            "layers": [
                (
                    "    N = x.shape[0]\n    correct",
                    "    __import__('cnnarch' + '.scratch')\n    N = x.shape[0]\n    correct",
                )
            ]
        },
    )
    rows = grade(workspace, parts=["fc"])
    detail = {r["function"]: r["detail"] for r in rows if r["result"] != "pass"}
    assert set(detail) == {"svm_loss"}
    assert (
        "imports cnnarch.scratch, the grader's package (the answer key) (cs231n/layers.py line"
        in detail["svm_loss"]
    )


def test_a_huge_allocation_fails_its_check_not_the_machine(workspace):
    big = "        np.ones(20 * 2**30 // 8).sum()  # 20 GiB\n        return (dout * mask)"
    solve(workspace, {"layers": [("        return (dout * mask)", big)]})
    rows = grade(workspace, parts=["dropout"])
    detail = {r["function"]: r["detail"] for r in rows if r["result"] != "pass"}
    assert set(detail) == {"dropout_backward"}
    assert detail["dropout_backward"].startswith("raised MemoryError (cs231n/layers.py line")
    assert "the grader's cap: 4 GiB" in detail["dropout_backward"]


def test_summary_of_a_folder_of_submissions(tmp_path, capsys):
    from cnnarch.assignment.workspace import init_workspace

    empty = tmp_path / "no-notebooks"
    empty.mkdir()
    for student in ("ada", "bob"):
        init_workspace(tmp_path / "class" / student, notebooks=empty)
    solve(tmp_path / "class" / "ada", {"layers": [BUGS["affine_forward forgets the bias"][1:3]]})
    (tmp_path / "class" / "notes.txt").write_text("not a submission")
    assert (
        main(["assignment", "summary", str(tmp_path / "class"), "--part", "dropout", "--format", "json"]) == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["student"] for r in rows] == ["ada", "bob"]
    assert rows[0]["checks"] == "3/3" and rows[0]["failing"] == ""
    assert rows[1]["checks"] == "0/3" and rows[1]["failing"] == "dropout_forward, dropout_backward"


def test_bad_arguments_name_the_way_out(workspace, tmp_path, capsys):
    assert main(["assignment", "check", str(tmp_path)]) == 2
    assert "cnnarch assignment init" in capsys.readouterr().err
    assert main(["assignment", "check", str(workspace), "--timeout", "0"]) == 2
    assert "--timeout must be a positive number" in capsys.readouterr().err
    assert main(["assignment", "check", str(workspace), "--function", "affine_fwd"]) == 2
    assert "unknown function affine_fwd" in capsys.readouterr().err
    assert main(["assignment", "summary", str(tmp_path / "no-notebooks")]) == 2
    assert "holds no submissions" in capsys.readouterr().err
