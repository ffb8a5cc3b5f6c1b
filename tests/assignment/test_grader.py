"""The grader on the reference solution, the untouched stubs, planted bugs and misbehaving code."""

import pytest

from cnnarch.assignment.checks import CHECKS
from cnnarch.assignment.exercises import EXERCISES, PARTS
from cnnarch.assignment.grader import grade
from cnnarch.cli import main

from .conftest import solve

pytestmark = pytest.mark.slow


def failing(rows):
    return {(r["function"], r["check"]) for r in rows if r["result"] != "pass"}


def test_every_exercise_has_a_check():
    assert {c.function for c in CHECKS} == {name for _, name in EXERCISES}


def test_reference_solution_passes_every_check(workspace, capsys):
    solve(workspace)
    assert main(["assignment", "check", str(workspace), "--format", "json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(CHECKS)
    assert all(r["result"] == "pass" and r["error"] <= r["limit"] for r in rows), rows


def test_untouched_stubs_fail_every_check_as_not_implemented(workspace, capsys):
    assert main(["assignment", "check", str(workspace)]) == 1
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "FAIL" in line]
    assert len(rows) == len(CHECKS)
    assert all("not implemented" in line for line in rows)
    assert f"total: 0/{len(CHECKS)} checks passed; 0/{len(EXERCISES)} functions" in out


# Planted bugs, each in one function of the reference solution: (edit of layers.py, the checks that must
# fail). Every other check, the networks' loss included, must still pass.
BUGS = {
    "affine_backward forgets to transpose w": (
        ("dx = (dout @ w.T).reshape(x.shape)", "dx = (dout @ w).reshape(x.shape)"),
        {("affine_backward", "numeric gradient")},
    ),
    "dropout scales at test time too": (
        ("        mask = None\n        out = x\n", "        mask = None\n        out = x * p\n"),
        {("dropout_forward", "test mode: identity")},
    ),
    "batch norm normalizes with the running averages in training": (
        (
            "        out = gamma * x_hat + beta\n        running_mean",
            "        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta\n"
            "        running_mean",
        ),
        {("batchnorm_forward", "reference, train mode")},
    ),
    "softmax gradient not averaged over the batch": (
        ("    return loss, dx / N\n", "    return loss, dx\n"),
        {("softmax_loss", "torch")},
    ),
    "conv weight gradient ignores the stride": (
        (
            "dw[f] += g * xp[n, :, i * s : i * s + HH, j * s : j * s + WW]",
            "dw[f] += g * xp[n, :, i : i + HH, j : j + WW]",
        ),
        {("conv_backward_naive", "numeric gradient")},
    ),
}


@pytest.mark.parametrize("bug", list(BUGS))
def test_a_planted_bug_fails_exactly_the_function_it_touches(workspace, bug):
    edit, expected = BUGS[bug]
    solve(workspace, {"layers": [edit]})
    rows = grade(workspace)
    assert failing(rows) == expected
    (detail,) = {r["detail"] for r in rows if r["result"] != "pass"}
    if bug.startswith("affine_backward"):  # a shape error, with the line it comes from
        assert detail.startswith("raised ValueError: matmul") and "(cs231n/layers.py line " in detail
    else:
        assert detail in ("error above 1e-08", "error above 1e-07")


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
    rows = grade(workspace, parts=["fc"], timeout=8)  # generous: the checks also compute references
    assert [r["function"] for r in rows] == [name for _, name in PARTS["fc"]]
    detail = {r["function"]: r["detail"] for r in rows if r["result"] != "pass"}
    assert detail == {
        "softmax_loss": "the grading process died (exit code 3) while running it",
        "FullyConnectedNet.loss": detail["FullyConnectedNet.loss"],
        "sgd_momentum": "timed out after 8 s (an endless loop?)",
    }
    assert detail["FullyConnectedNet.loss"].startswith(
        "raised KeyError: 'W9' (cs231n/classifiers/fc_net.py line "
    )


def test_bad_arguments_name_the_way_out(workspace, tmp_path, capsys):
    assert main(["assignment", "check", str(tmp_path)]) == 2
    assert "cnnarch assignment init" in capsys.readouterr().err
    assert main(["assignment", "check", str(workspace), "--timeout", "0"]) == 2
    assert "--timeout must be a positive number" in capsys.readouterr().err


def test_code_that_allocates_past_the_memory_cap_fails_its_check_with_a_memory_error(workspace):
    big = "        np.ones(2**27).sum()  # 1 GiB\n        return (dout * mask)"
    solve(workspace, {"layers": [("        return (dout * mask)", big)]})
    capped = grade(workspace, parts=["dropout"], memory_limit=256 * 2**20)
    detail = {r["function"]: r["detail"] for r in capped if r["result"] != "pass"}
    assert set(detail) == {"dropout_backward"}
    assert detail["dropout_backward"].startswith("raised MemoryError")
    # the oracle: without the cap the same code allocates its GiB and passes
    assert all(r["result"] == "pass" for r in grade(workspace, parts=["dropout"], memory_limit=None))
