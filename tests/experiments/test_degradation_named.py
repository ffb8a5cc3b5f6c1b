"""The degradation experiment's named budgets: the run commands, the report on partial run folders (no
training: metrics written here), and the verdicts computed from the numbers, both ways."""

import csv
import dataclasses
import datetime as dt
import json
import shlex

import pytest
import torch

from cnnarch.cli import build_parser, main
from cnnarch.cli.cmd_train import overrides_from
from cnnarch.experiments import Context, degradation, run_experiment
from cnnarch.experiments.runner import fast_precision, load_data
from cnnarch.models import create_model
from cnnarch.models.weights import load_weights_file, save_weights
from cnnarch.train import Trainer
from cnnarch.train.checkpoint import load_checkpoint
from cnnarch.train.config import resolve_config, resume_conflicts
from cnnarch.train.trainer import METRICS_COLUMNS

# the shipped ResNet-20's recipe (docs/use.md) at 15 epochs, written out by hand
COSINE15 = (
    "--recipe resnet-cifar --epochs 15 --iterations 1000000 --sched cosine --sched-unit iter "
    "--warmup-epochs 1 --val-split 0 --weight-decay 5e-4 --nesterov --smoothing 0.1"
)


def ctx_for(tmp_path, budget="cosine15", **kw):
    return Context(
        name="degradation",
        output=tmp_path / "deg",
        budget=budget,
        data="/data/cifar10-jpeg",
        command="test degradation",
        log=lambda s: None,
        **kw,
    )


def cli_config(command: str):
    args = build_parser().parse_args(shlex.split(command)[1:])
    return resolve_config(**overrides_from(args))


@pytest.mark.parametrize("budget", ["cosine15", "paper"])
def test_each_run_is_its_train_command(tmp_path, budget):
    ctx = ctx_for(tmp_path, budget)
    specs = degradation.named_specs(ctx)
    assert len(specs) == len(degradation.BUDGETS[budget].runs) >= 10
    for spec in specs:
        cmd = degradation.train_command(ctx, spec)
        assert f"--model {spec.cfg.model} " in cmd and f"--output {ctx.runs / spec.name}" in cmd
        cfg = cli_config(cmd)
        ours = {k: v for k, v in spec.cfg.flat().items() if k != "notes"}
        assert resume_conflicts(cfg, ours) == [], spec.name  # the command's run would be adopted


def test_cosine15_is_the_shipped_recipe_at_15_epochs(tmp_path):
    ctx = ctx_for(tmp_path)
    spec = degradation.named_specs(ctx)[0]
    hand = cli_config(f"cnnarch train {COSINE15} --model plain20 --seed 0")
    ours = {k: spec.cfg.flat()[k] for k in ("lr", "momentum", "batch_size", "augment", "epochs", "sched")}
    assert ours == {"lr": 0.1, "momentum": 0.9, "batch_size": 128, "augment": "crop,flip", "epochs": 15} | {
        "sched": "cosine"
    }
    skip = {"notes", "output", "data", "device", "workers", "log_interval", "target_accuracy", "amp"}
    skip |= {"channels_last"}
    for k in hand.option_names():
        if k not in skip:
            assert hand.flat()[k] == spec.cfg.flat()[k], k
    assert (spec.cfg.run.amp, spec.cfg.run.channels_last) == tuple(fast_precision(ctx).values())
    assert [(s.cfg.model, s.cfg.run.seed) for s in degradation.named_specs(ctx)][:4] == [
        ("plain20", 0),
        ("resnet20", 0),
        ("plain56", 0),
        ("resnet56", 0),
    ]


def test_unknown_budget_names_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="cosine15, paper"):
        run_experiment(ctx_for(tmp_path, "cosine51"))
    assert main(["experiment", "dropout", "--budget", "cosine15", "--output", str(tmp_path / "d")]) == 2
    assert "no named budgets" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["experiment", "degradation", "--budget", "0.5x", "--output", str(tmp_path / "e")])
    assert ctx_for(tmp_path, "2").budget == 2.0


def write_run(root, name, train_errs, test_errs, steps_per_epoch=390, seconds=60.0, cpu="AMD EPYC"):
    d = root / "runs" / name
    d.mkdir(parents=True, exist_ok=True)
    with (d / "metrics.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRICS_COLUMNS)
        w.writeheader()
        for i, (tr, te) in enumerate(zip(train_errs, test_errs, strict=True)):
            w.writerow(
                {k: "" for k in METRICS_COLUMNS}
                | {"epoch": i + 1, "step": (i + 1) * steps_per_epoch, "lr": 0.1, "train_loss": 1.0}
                | {"train_top1": 100 - tr, "val_top1": 100 - te, "val_loss": 1.0, "seconds": seconds}
            )
    record = {"cpu": cpu, "cores": 2, "cpu_flags": "avx2 avx512_bf16 avx512f", "threads": 1, "from_epoch": 0}
    (d / "machines.jsonl").write_text(json.dumps(record) + "\n")


def falling(start, end, n=15):
    return [start + (end - start) * i / (n - 1) for i in range(n)]


def test_report_of_partial_runs_says_how_far_they_got(tmp_path):
    ctx = ctx_for(tmp_path)
    out = ctx.output
    # seed 0: plain-20 finished; plain-56 above it at every epoch, 6 of 15 epochs so far
    write_run(out, "plain20-s0", falling(60, 10), falling(62, 14))
    write_run(out, "plain56-s0", falling(70, 15)[:6], falling(72, 18)[:6], seconds=150.0)
    write_run(out, "resnet20-s0", falling(55, 8), falling(58, 12.0))
    write_run(out, "resnet56-s0", falling(50, 4), falling(55, 10.5))
    write_run(out, "resnet20-s1", falling(55, 8), falling(58, 12.4))
    write_run(out, "resnet56-s1", falling(50, 4)[:3], falling(55, 10.5)[:3], cpu="Intel Xeon")
    path = run_experiment(ctx, report_only=True)
    text = path.read_text()
    assert "CIFAR-10 (JPEG copy)" in text and "8.75% (0.27M)" in text and "6.43% (1.7M)" in text
    assert "- command: `test degradation`: a report of run folders that `cnnarch train` made" in text
    # the 6th epoch: 70 - 55 * 5/14 = 50.357 and 72 - 54 * 5/14 = 52.714
    assert "| plain-56 (seed 0) | partial | 6/15 | 50.36% | 52.71% | 15.0 |" in text
    planned = 15 * 10  # plain-20, ResNet-20, plain-56, ResNet-56 with 2 seeds each, ResNet-32, ResNet-44
    trained = 15 + 6 + 15 + 15 + 15 + 3
    assert f"{trained} of {planned} epochs trained over the 10 runs; 4 of 10 runs finished" in text
    assert "| ResNet-110 | 1.73M | not in the `cosine15` budget |  | 6.43% (1.7M) |" in text
    assert "Holds (seed 0): plain-56 has higher training and higher test error than plain-20 at every" in text
    assert "epochs 4-6 of 15; the runs have reached 6 of 15 epochs" in text
    # ResNet-56 seed 1 is unfinished: the spread is ResNet-20's two seeds' (12.4 - 12.0)
    assert (
        "Holds: ResNet-56 is below ResNet-20 by 1.70 points (mean final test error of 1 and 2 seed(s): "
        "10.50% against 12.20%); the largest seed-to-seed spread of the two is 0.40 points." in text
    )
    assert "Holds: ResNet test error falls with depth among the finished ResNets (seed means): " in text
    assert "ResNet-20 12.20%, ResNet-56 10.50%; not finished: ResNet-32 (seed 0: 0 of 15 epochs)" in text
    assert "seed 1: 48.64% at epoch 3 of 15" in text  # 55 - 44.5 * 2/14
    assert "Intel Xeon (2 cores; avx2 avx512_bf16 avx512f), 1 thread(s)" in text
    assert (out / "degradation.png").stat().st_size > 1000
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["runs"]["plain56-s0"]["state"] == "partial"
    assert metrics["runs"]["plain20-s1"]["state"] == "not started"


def named(curves: dict, planned=15) -> dict:
    """``collect_named``-like runs from ``{name: (train errors, test errors)}``."""
    runs = {}
    for name, (tr, te) in curves.items():
        model, seed = name.rsplit("-s", 1)
        pairs = enumerate(zip(tr, te, strict=True))
        curve = [{"epoch": i + 1, "train_err": a, "test_err": b} for i, (a, b) in pairs]
        runs[name] = {
            "model": model,
            "seed": int(seed),
            "curve": curve,
            "epochs": len(curve),
            "planned_epochs": planned,
            "state": "done" if len(curve) >= planned else "partial" if curve else "not started",
            "final": curve[-1] if curve else None,
        }
    return runs


def flat(v, n=15):
    return [v] * n


def test_degradation_fails_where_plain56_dips_below():
    p56_train = flat(20.0)
    p56_train[9] = 9.0  # epoch 10: plain-56 trains better than plain-20 there
    lines = degradation.named_conclusions(
        named({"plain20-s0": (flat(10.0), flat(12.0)), "plain56-s0": (p56_train, flat(22.0))}), skip=3
    )
    assert lines[0].startswith("Does not hold (seed 0): plain-56 against plain-20, not higher in training")
    assert "epoch(s) 10 (epochs 4-15 of 15)" in lines[0] and "test error" not in lines[0].split("(")[1]


def test_degradation_early_epochs_are_not_judged():
    lines = degradation.named_conclusions(
        named({"plain20-s0": (flat(10.0, 3), flat(12.0, 3)), "plain56-s0": (flat(5.0, 2), flat(6.0, 2))}),
        skip=3,
    )
    assert lines[0] == (
        "plain-56 against plain-20 (seed 0): not judged yet; plain-20 has 3 and plain-56 2 of 15 epochs, "
        "and the first 3 are left out."
    )


@pytest.mark.parametrize(
    ("r56_seeds", "verdict"),
    [((10.0, 10.3), "Holds: ResNet-56 is below ResNet-20 by 2.00 points"), ((9.0, 11.6), "Does not hold")],
)
def test_resnet56_against_resnet20_needs_more_than_the_seed_spread(r56_seeds, verdict):
    curves = {"resnet20-s0": (flat(5.0), flat(12.0)), "resnet20-s1": (flat(5.0), flat(12.3))}
    curves |= {f"resnet56-s{i}": (flat(3.0), flat(v)) for i, v in enumerate(r56_seeds)}
    text = " ".join(degradation.named_conclusions(named(curves), skip=3))
    assert verdict in text
    gap = (12.0 + 12.3) / 2 - sum(r56_seeds) / 2
    noise = max(0.3, abs(r56_seeds[1] - r56_seeds[0]))
    assert f"by {gap:.2f} points" in text and f"spread of the two is {noise:.2f} points" in text
    assert "ResNet-56 ended with lower training error" not in text  # no plain-56 to compare with


def test_error_against_depth_names_the_depths_that_break_it():
    errors = {20: 12.0, 32: 11.0, 44: 11.5, 56: 10.0}
    curves = {f"resnet{d}-s0": (flat(5.0), flat(e)) for d, e in errors.items()}
    text = " ".join(degradation.named_conclusions(named(curves), skip=3))
    assert "Does not hold (32 to 44): ResNet test error falls with depth" in text
    assert "(32 to 44: up 0.50 points; no network has two finished seeds yet to set it beside)." in text
    assert "not finished" not in text  # only the depths the budget trains are waited for
    curves["resnet20-s1"] = (flat(5.0), flat(12.4))  # a second seed: 0.4 points from the first
    text = " ".join(degradation.named_conclusions(named(curves), skip=3))
    assert "ResNet-20 12.20%, ResNet-32 11.00%" in text
    assert "(32 to 44: up 0.50 points; the largest seed-to-seed spread measured is 0.40 points)." in text
    curves["resnet110-s0"] = (flat(5.0, 4), flat(9.0, 4))
    text = " ".join(degradation.named_conclusions(named(curves), skip=3))
    assert "spread measured is 0.40 points); not finished: ResNet-110 (seed 0: 4 of 15 epochs)." in text


def test_the_data_is_named_as_what_it_is():
    assert degradation.data_label("../shared/data/cifar10-jpeg") == "CIFAR-10 (JPEG copy)"
    assert degradation.data_label(None) == degradation.data_label("cifar10") == "CIFAR-10"
    assert degradation.data_label("/data/cifar-png/") == "CIFAR-10 (cifar-png)"


def test_finished_runs_ship_as_cifar10_weights(tmp_path, cifar_jpeg_root):
    ctx = ctx_for(tmp_path, limit_train=32, limit_val=16)
    ctx.data = str(cifar_jpeg_root)
    spec = degradation.named_specs(ctx)[0]
    assert spec.name == "plain20-s0"
    run = ctx.runs / spec.name
    Trainer(spec.cfg, load_data(spec.cfg), log=lambda _: None).fit(until_epoch=1)  # a real last.pt
    write_run(ctx.output, spec.name, falling(60, 20), falling(62, 25))  # the run as if finished
    (run / "results.json").write_text(json.dumps({"test_top1": 42.5, "test_images": 16}))
    write_run(ctx.output, "resnet20-s0", falling(60, 20)[:3], falling(62, 25)[:3])  # unfinished
    into = tmp_path / "weights"

    lines = degradation.export_weights(ctx, into)
    path = into / "plain20-cifar10.safetensors"
    assert lines[0] == f"plain20: {path} from plain20-s0 (42.50% on 16 test images)"
    assert "resnet20: no finished run yet" in lines and len(list(into.iterdir())) == 1
    net = create_model("plain20", weights=path)
    saved = load_checkpoint(run / "last.pt")["model"]
    assert all(torch.equal(v, saved[k]) for k, v in net.state_dict().items())
    extra = net.weights_meta.extra
    assert (extra["test_top1"], extra["run"], extra["seed"], extra["data"]) == (
        42.5,
        "plain20-s0",
        0,
        "CIFAR-10 (JPEG copy)",
    )
    assert extra["cpu"] == "AMD EPYC (2 cores; avx2 avx512_bf16 avx512f), 1 thread(s)"
    assert extra["command"].startswith("cnnarch train --recipe resnet-cifar --model plain20 --data ")
    assert "--seed 0 " in extra["command"] and str(tmp_path) not in extra["command"]
    assert extra["date"] == dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")

    # a file there that records at least the same accuracy is kept; a worse one is replaced
    before = path.read_bytes()
    (line,) = [ln for ln in degradation.export_weights(ctx, into) if ln.startswith("plain20")]
    assert (
        line.startswith(f"plain20: kept {path} (42.50% from plain20-s0/last.pt")
        and path.read_bytes() == before
    )
    worse = dataclasses.replace(net.weights_meta, extra={**extra, "test_top1": 10.0})
    save_weights(net, worse, path)
    degradation.export_weights(ctx, into)
    assert load_weights_file(path).meta.extra["test_top1"] == 42.5


def test_export_weights_needs_a_named_budget(tmp_path, capsys):
    args = ["experiment", "degradation", "--output", str(tmp_path / "d"), "--report-only"]
    assert main([*args, "--export-weights", str(tmp_path / "w")]) == 2
    assert "trains no networks to ship" in capsys.readouterr().err
    assert main(["experiment", "dropout", "--budget", "1", "--export-weights", "w"]) == 2
