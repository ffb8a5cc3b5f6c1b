"""Each training experiment on a tiny CIFAR-10 subset: it runs, resumes where it stopped, and writes its
report folder. Conclusions are not checked here (a few dozen images decide nothing): see
test_conclusions.py."""

import csv
import json

import pytest
import torch

from cnnarch.experiments import (
    degradation,
    dropout,
    ensemble,
    googlenet_aux,
    normalization,
    run_experiment,
)
from cnnarch.experiments.runner import adoptable, read_machines, read_rows
from cnnarch.models import create_model


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
    logged = []
    ctx = tiny("degradation", budget=0.0125, log=logged.append)  # 8 iterations: 2 epochs of 4 batches of 8
    stop_after(ctx, 3)  # plain20, plain56 and resnet20 get epoch 1, then the "time limit" stops it
    run_experiment(ctx)
    # one line per run and epoch, from the trainer's metrics (its configuration dump is not shown)
    progress = [s for s in logged if s.startswith("[degradation] ")]
    assert [s.split(" step ")[0] for s in progress] == [
        f"[degradation] {n} epoch 1/2" for n in ("plain20", "plain56", "resnet20")
    ]
    assert all(" step 4: train err " in s and ", test err " in s for s in progress)
    assert len(logged) == len(progress) + 1 and logged[-1].startswith("time limit")
    text, _ = assert_report(ctx.output, ["degradation.png"])
    assert "stopped by the time limit" in text
    runs = ctx.output / "runs"
    assert [len(read_rows(runs / n)) for n in ("plain20", "plain56", "resnet20", "resnet56")] == [1, 1, 1, 0]
    first = (runs / "plain20" / "metrics.csv").read_text()

    with pytest.raises(ValueError, match="--resume"):
        run_experiment(tiny("degradation", budget=0.0125, output=ctx.output))
    with pytest.raises(ValueError, match="budget"):
        run_experiment(tiny("degradation", budget=0.02, output=ctx.output, resume=True))
    # a run folder is resumed only by the configuration that made it
    spec = degradation.plan(ctx)[0][0]
    with pytest.raises(ValueError, match=r"lr: checkpoint has 0.1, the experiment has 0.2"):
        adoptable(spec.cfg.replace(lr=0.2), runs / "plain20" / "last.pt")
    assert adoptable(spec.cfg, runs / "plain20" / "last.pt").run.resume == str(runs / "plain20" / "last.pt")
    machines = read_machines(runs / "plain20")
    assert len(machines) == 1 and machines[0]["from_epoch"] == 0 and machines[0]["cores"] > 0

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
        pytest.param("googlenet-aux", 0.25, "googlenet_aux.png", 2, marks=pytest.mark.slow),
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


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_small_networks_are_vgg_features():
    # conv3x3 layers 3->32->64->128 (weights 9*cin*cout, plus biases), then the experiment's head
    convs = 9 * (3 * 32 + 32 * 64 + 64 * 128)
    biases = 32 + 64 + 128
    fc = (2048 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10)
    assert n_params(dropout.vgg_small(0.5, 10)) == convs + biases + fc
    assert n_params(normalization.small_net("none", 10)) == convs + biases + 128 * 10 + 10
    # batch norm: no convolution biases, a scale and a shift per channel
    assert n_params(normalization.small_net("bn", 10)) == convs + 2 * biases + 128 * 10 + 10
    kinds = [type(m).__name__ for m in normalization.small_net("lrn").features]
    assert kinds == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"] * 3
    net = dropout.vgg_small(0.3, 7)
    assert [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)] == [0.3, 0.3]
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    with pytest.raises(ValueError, match="norm must be one of"):
        normalization.small_net("ln")


def test_googlenet_aux_gradients_are_those_of_autograd():
    """Per stage, the gradient of the main loss and of main + 0.3 aux, as ``backward()`` on each loss
    gives it; stages that no auxiliary head draws on (4e and above) get exactly the main gradient."""
    model = create_model("googlenet", num_classes=10)
    x, y = torch.randn(4, 3, 80, 80), torch.randint(0, 10, (4,))
    got = googlenet_aux.stage_gradients(model, [(x, y)])
    ce = torch.nn.functional.cross_entropy
    for aux_weight, key in ((0.0, "main"), (0.3, "with_aux")):
        model.zero_grad()
        torch.manual_seed(0)  # the same dropout masks as stage_gradients draws
        out = model(x)
        (ce(out.logits, y) + aux_weight * (ce(out.aux_logits1, y) + ce(out.aux_logits2, y))).backward()
        for stage in ("conv1", "inception4a", "inception5b", "fc"):
            grads = [p.grad for n, p in model.named_parameters() if n.split(".")[0] == stage]
            norm = torch.sqrt(sum(g.pow(2).sum() for g in grads)).item()
            assert got[stage][key] == pytest.approx(norm, rel=1e-4), (stage, key)
    for stage in ("inception4e", "inception5a", "inception5b", "fc"):
        assert got[stage]["main"] == got[stage]["with_aux"]
    assert got["conv1"]["with_aux"] != got["conv1"]["main"]
