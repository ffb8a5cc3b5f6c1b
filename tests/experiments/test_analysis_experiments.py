"""The two experiments without training, and the command line."""

import json

import pytest

from cnnarch.cli import build_parser, main
from cnnarch.experiments import Context, architectures, run_experiment


def ctx_for(name, tmp_path):
    return Context(name=name, output=tmp_path / name, command=f"test {name}", log=lambda s: None)


def test_inception_cost(tmp_path):
    ctx = ctx_for("inception-cost", tmp_path)
    run_experiment(ctx)
    m = json.loads((ctx.output / "metrics.json").read_text())
    # the lecture's naive module on 28x28x256, written out: 1x1x128, 3x3x192, 5x5x96 convolutions
    assert m["lecture"]["naive"]["macs"] == 28 * 28 * 256 * (128 + 9 * 192 + 25 * 96)
    assert m["lecture"]["naive"]["params"] == 256 * (128 + 9 * 192 + 25 * 96) + 128 + 192 + 96
    # reduced: 1x1 reductions to 64 before the 3x3 and 5x5, a 1x1x64 after the pool
    red = 28 * 28 * (256 * 128 + 256 * 64 + 9 * 64 * 192 + 256 * 64 + 25 * 64 * 96 + 256 * 64)
    assert m["lecture"]["reduced"]["macs"] == red
    # GoogLeNet inception 3a (Table 1: 64, 96-128, 16-32, 32 on 28x28x192) and its naive twin
    g3a = next(x for x in m["googlenet"] if x["module"] == "3a")
    assert g3a["macs_reduced"] == 28 * 28 * (
        192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32
    )
    assert g3a["macs_naive"] == 28 * 28 * 192 * (64 + 9 * 128 + 25 * 32)
    assert g3a["output_naive"] == [192 + 64 + 128 + 32, 28, 28]
    text = (ctx.output / "README.md").read_text()
    assert f"{m['lecture']['naive']['macs'] / red:.2f}x fewer operations" in text
    assert (ctx.output / "inception_cost.png").stat().st_size > 1000


def test_architectures_reads_our_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(
        architectures, "imagenet_models", lambda: ["alexnet", "vgg16", "googlenet", "resnet18"]
    )
    monkeypatch.setattr(architectures, "cifar_models", lambda: ["resnet20", "plain20"])
    (tmp_path / "degradation").mkdir()
    final = {"epoch": 3, "step": 300, "train_err": 10.0, "test_err": 12.34}
    runs = {"resnet20": {"model": "resnet20", "state": "done", "final": final}}
    (tmp_path / "degradation" / "metrics.json").write_text(
        json.dumps({"runs": runs, "schedule": {"budget": 1.0, "train_images": 10000}})
    )
    ctx = ctx_for("architectures", tmp_path)
    run_experiment(ctx)
    text = (ctx.output / "README.md").read_text()
    assert "| resnet20 | 0.27M |" in text and "12.34% (done, 300 it." in text
    assert "| plain20 | 0.27M | 40.6 | - |" in text
    assert "Our best CIFAR-10 result: resnet20, 12.34% test error" in text
    m = json.loads((ctx.output / "metrics.json").read_text())
    vgg, goog = (next(r for r in m["imagenet"] if r["name"] == n) for n in ("vgg16", "googlenet"))
    assert f"VGG-16 needs {vgg['gmacs'] / goog['gmacs']:.1f}x GoogLeNet's operations" in text
    assert (ctx.output / "architectures.png").stat().st_size > 1000


def test_architectures_without_runs():
    lines = architectures.conclusions([{"name": "a", "gmacs": 1.0, "params": 5e6, "top1_err": 30.0}], [])
    assert "Most accurate (published top-1): a, 30.00% error" in lines[0]
    assert "No CIFAR-10 runs of ours were found" in lines[-1]


def test_cli_errors(tmp_path, capsys):
    assert main(["experiment", "degradaton", "--output", str(tmp_path / "x")]) == 2
    assert "did you mean degradation" in capsys.readouterr().err
    assert main(["experiment", "inception-cost", "--output", str(tmp_path / "ic")]) == 0
    assert main(["experiment", "inception-cost", "--output", str(tmp_path / "ic")]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert (
        main(["experiment", "inception-cost", "--output", str(tmp_path / "ic"), "--report-only", "--resume"])
        == 0
    )
    with pytest.raises(SystemExit):
        main(["experiment", "degradation", "--budget"])
    args = build_parser().parse_args(["experiment", "dropout", "--limit-train", "64", "--limit-val", "32"])
    assert (args.limit_train, args.limit_val) == (64, 32)


def test_architectures_vgg_googlenet_falls_back_to_top5():
    rows = [
        {"name": "vgg16", "gmacs": 15.0, "params": 138e6, "top1_err": 28.0, "top5_err": 9.0},
        {"name": "googlenet", "gmacs": 1.5, "params": 7e6, "top1_err": None, "top5_err": 10.0},
    ]
    text = "\n".join(architectures.conclusions(rows, []))
    assert (
        "VGG-16 needs 10.0x GoogLeNet's operations and 19.7x its parameters, for 9.00% vs 10.00% top-5"
        in text
    )


def test_a_budget_below_limit_val_is_said(tmp_path, capsys):
    from cnnarch.experiments.runner import Context

    ctx = Context(name="dropout", output=tmp_path, limit_val=5000)
    assert (
        ctx.cap_val(2000) == 2000
        and "--limit-val 5000: the budget holds out 2,000" in capsys.readouterr().err
    )
    assert ctx.cap_val(8000) == 5000 and capsys.readouterr().err == ""
