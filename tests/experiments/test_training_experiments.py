"""Each training experiment on a tiny CIFAR-10 subset: it runs, resumes where it stopped, and writes its
report folder. Conclusions are not checked here (a few dozen images decide nothing): see
test_conclusions.py."""

import csv
import json

import pytest

from cnnarch.experiments import ensemble, run_experiment
from cnnarch.experiments.runner import read_rows


def stop_after(ctx, checks):
    """Make ``ctx`` report its time limit as reached after ``checks`` calls of ``time_up``."""
    calls = {"n": 0}

    def time_up():
        calls["n"] += 1
        return calls["n"] > checks

    ctx.time_up = time_up
    ctx.time_limit = 1.0


def assert_report(out, figures):
    text = (out / "README.md").read_text()
    for part in ("## How this report was made", "command: `test", "machine:", "wall time:", "## Conclusions"):
        assert part in text, part
    for fig in figures:
        assert (out / fig).stat().st_size > 1000
        assert f"]({fig})" in text
    with (out / "metrics.csv").open() as f:
        assert next(csv.reader(f))[0] in ("run", "module", "model")
    return text, json.loads((out / "metrics.json").read_text())


def test_degradation_stops_resumes_and_reports(tiny):
    ctx = tiny("degradation", budget=0.0125)  # 8 iterations: 2 epochs of 4 batches of 8 images
    stop_after(ctx, 3)  # plain20, plain56 and resnet20 get epoch 1, then the "time limit" stops it
    run_experiment(ctx)
    text, _ = assert_report(ctx.output, ["degradation.png"])
    assert "stopped by the time limit" in text
    runs = ctx.output / "runs"
    assert [len(read_rows(runs / n)) for n in ("plain20", "plain56", "resnet20", "resnet56")] == [1, 1, 1, 0]
    first = (runs / "plain20" / "metrics.csv").read_text()

    with pytest.raises(ValueError, match="--resume"):
        run_experiment(tiny("degradation", budget=0.0125, output=ctx.output))
    with pytest.raises(ValueError, match="budget"):
        run_experiment(tiny("degradation", budget=0.02, output=ctx.output, resume=True))

    again = tiny("degradation", budget=0.0125, output=ctx.output, resume=True)
    run_experiment(again)
    text, metrics = assert_report(ctx.output, ["degradation.png"])
    assert "stopped by the time limit" not in text
    for name in ("plain20", "plain56", "resnet20", "resnet56"):
        rows = read_rows(runs / name)
        assert [r["epoch"] for r in rows] == [1, 2] and rows[-1]["step"] == 8
        assert metrics["runs"][name]["state"] == "done"
    # epoch 1 of plain20 was resumed from its checkpoint, not trained again
    assert (runs / "plain20" / "metrics.csv").read_text().startswith(first)
    assert len(json.loads((ctx.output / "state.json").read_text())["invocations"]) == 2
    assert metrics["conclusions"] and all(s in text for s in metrics["conclusions"])


def test_ensemble_members_and_resume(tiny, monkeypatch):
    monkeypatch.setattr(ensemble, "MEMBERS", 3)
    ctx = tiny("ensemble", budget=0.01)
    stop_after(ctx, 2)  # member 1 trains its 2 epochs, then the "time limit" stops it before member 2
    run_experiment(ctx)
    probs = sorted(p.parent.name for p in (ctx.output / "runs").glob("*/test_probs.pt"))
    assert probs == ["seed0"]
    again = tiny("ensemble", budget=0.01, output=ctx.output, resume=True)
    run_experiment(again)
    text, metrics = assert_report(ctx.output, ["ensemble.png"])
    assert [c["k"] for c in metrics["ensemble"]] == [1, 2, 3]
    assert "| 3 |" in text


@pytest.mark.parametrize(
    "name, budget, figure, runs",
    [
        ("normalization", 0.002, "normalization.png", 6),
        ("dropout", 0.05, "dropout.png", 2),
    ],
)
def test_small_network_experiments(tiny, name, budget, figure, runs):
    ctx = tiny(name, budget=budget)
    run_experiment(ctx)
    _, metrics = assert_report(ctx.output, [figure])
    assert len(metrics["runs"]) == runs
    for r in metrics["runs"].values():
        assert r["state"] in ("done", "diverged")
        assert 1 <= len(r["curve"]) <= r["planned_epochs"]
