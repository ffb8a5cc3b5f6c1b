import csv
import json
import re

import pytest

from cnnarch.cli import main


@pytest.fixture
def tree(tmp_path, monkeypatch, colour_tree):
    """A 3-class ImageFolder tree of 8x8 PNGs whose class is their dominant colour."""
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    colour_tree(tmp_path / "data", n_train=16, n_test=4)
    return tmp_path


def train(tree, *extra):
    return main(
        [
            "train",
            "--data",
            str(tree / "data"),
            "--model",
            "resnet18",
            "-b",
            "8",
            "--lr",
            "0.05",
            "--val-split",
            "0.25",
            "--log-interval",
            "0",
            "--output",
            str(tree / "run"),
            *extra,
        ]
    )


def test_train_eval_resume_from_the_command_line(tree, capsys):
    assert train(tree, "--epochs", "2") == 0
    out = capsys.readouterr().out
    # a short summary of the configuration is printed (no JSON), ...
    head = out[: out.index("epoch 1/2")].splitlines()
    assert len(head) <= 6 and not any(line.startswith(("{", '  "')) for line in head)
    assert "sgd lr 0.05 (cosine)" in out and "batch 8" in out
    saved = json.loads((tree / "run/config.json").read_text())  # ... the whole one saved
    assert saved["optim"]["lr"] == 0.05 and saved["model"] == "resnet18"
    assert saved["schedule"]["batch_size"] == 8
    assert "test (12 images): top-1" in out

    # --resume alone continues the run in --output (docs/cli.md)
    assert main(["train", "--output", str(tree / "run"), "--resume", "--epochs", "3"]) == 0
    with open(tree / "run/metrics.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2", "3"]

    capsys.readouterr()
    assert main(["eval", str(tree / "run/last.pt"), str(tree / "run/best.pt"), "--ten-crop"]) == 0
    out = capsys.readouterr().out
    assert "test set: 12 images, ten-crop" in out and "ensemble of 2" in out
    assert main(["eval", str(tree / "run/last.pt"), "--limit-val", "6", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["checkpoint"], r["images"], r["crops"]) for r in rows] == [
        (str(tree / "run/last.pt"), 6, "single crop")
    ]
    assert 0 <= rows[0]["top1"] <= rows[0]["top5"] == 100  # 3 classes: the top 5 holds every label

    assert main(["train", "--resume", str(tree / "run/last.pt"), "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "lr: checkpoint has 0.05, command line gives 0.5" in err
    assert main(["train", "--resume", str(tree / "run/last.pt"), "--model", "resnet34"]) == 2
    assert "holds a 'resnet18', not 'resnet34'" in capsys.readouterr().err


def test_recipes_command_shows_every_value(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in ("alexnet", "vgg", "googlenet", "resnet-imagenet", "resnet-cifar"):
        assert re.search(rf"\n{name} +source +", out), name
    assert re.search(r"resnet-cifar +decay_milestones +32000, 48000\n", out) and re.search(
        r"googlenet +aux_loss_weight +0.3\n", out
    )
    assert "the paper uses 1e-4" in " ".join(out.split())  # a note may wrap onto the next line
    assert main(["recipes", "resnet-cifar", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"recipe": "resnet-cifar", "option": "decay_milestones", "value": [32000, 48000]} in rows
    assert {"recipe": "resnet-cifar", "option": "lr", "value": 0.1} in rows
    assert main(["train", "--recipe", "alexnet", "--lr", "0.02", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["optim"]["lr"] == 0.02 and printed["optim"]["weight_decay"] == 0.0005


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--output", str(tmp_path / "r")]) == 2
    assert "no such directory, and not a dataset name" in capsys.readouterr().err


def test_resume_through_the_real_data_path_is_bit_identical(tree):
    """Crops and flips drawn by cnnarch.data's loaders continue exactly (dropout: test_trainer.py)."""
    import torch

    from cnnarch.train.checkpoint import load_checkpoint

    args = [
        "--data",
        str(tree / "data"),
        "--model",
        "resnet20",
        "-b",
        "8",
        "--lr",
        "0.01",
        "--val-split",
        "0.25",
        "--log-interval",
        "0",
        "--sched",
        "step",
        "--decay-epochs",
        "1",
    ]
    assert main(["train", *args, "--epochs", "3", "--output", str(tree / "a")]) == 0
    assert main(["train", *args, "--epochs", "1", "--output", str(tree / "b")]) == 0
    assert main(["train", "--resume", str(tree / "b/last.pt"), "--epochs", "3"]) == 0
    a, b = load_checkpoint(tree / "a/last.pt"), load_checkpoint(tree / "b/last.pt")
    assert a["step"] == b["step"] == 3 * 4
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k


def test_every_train_option_reaches_the_config():
    """An option whose name is not a TrainConfig field would be dropped silently."""
    from cnnarch.cli import build_parser
    from cnnarch.train.config import TrainConfig

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    dests = {a.dest for a in sub._actions} - {"help", "print_config"}
    names = set(TrainConfig.option_names())
    assert dests <= names, dests - names


def test_the_device_is_picked_and_the_process_group_joined_once_per_run(tree, monkeypatch):
    from cnnarch.train import device, distributed

    calls = []
    for module, name in ((device, "pick_device"), (distributed, "init_distributed")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    assert train(tree, "--epochs", "1") == 0
    assert sorted(calls) == ["init_distributed", "pick_device"]
