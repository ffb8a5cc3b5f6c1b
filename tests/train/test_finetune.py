"""Fine-tuning: weights trained on seven CIFAR-10 classes help a network learn the other three from few
images, and the freeze options train exactly the layers they name."""

import json
from pathlib import Path

import pytest
import torch

from cnnarch.cli import main

PRETRAIN = ("airplane", "automobile", "deer", "dog", "frog", "horse", "truck")
FINETUNE = ("bird", "cat", "ship")


def image_folder(root: Path, source: Path, classes, train: int, test: int) -> Path:
    """An ImageFolder tree of links to the first ``train``/``test`` images of each class."""
    for split, n in (("train", train), ("test", test)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for f in sorted((source / split / c).iterdir())[:n]:
                (root / split / c / f.name).symlink_to(f)
    return root


def train(tmp_path, name, data, *extra):
    out = tmp_path / name
    common = ["--model", "resnet20", "--val-split", "0", "--sched", "cosine", "--log-interval", "0"]
    assert main(["train", "--data", str(data), "--output", str(out), *common, *extra]) == 0
    return json.loads((out / "results.json").read_text())["test_top1"], out


@pytest.mark.slow
def test_finetuning_beats_training_from_scratch(cifar_jpeg_root, tmp_path, capsys):
    seven = image_folder(tmp_path / "seven", cifar_jpeg_root, PRETRAIN, train=250, test=10)
    three = image_folder(tmp_path / "three", cifar_jpeg_root, FINETUNE, train=100, test=200)
    _, pre = train(tmp_path, "pre", seven, "--epochs", "4", "-b", "64", "--lr", "0.1")
    budget = ["--epochs", "3", "-b", "32", "--lr", "0.05"]
    scratch, _ = train(tmp_path, "scratch", three, *budget)
    capsys.readouterr()
    tuned, run = train(tmp_path, "tuned", three, *budget, "--initial-checkpoint", str(pre / "last.pt"))
    out = capsys.readouterr().out
    assert "replaced fc" in out and "start untrained" in out
    assert tuned > scratch + 2, (tuned, scratch)
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["num_classes"] == 3 and ckpt["model"]["fc.weight"].shape == (3, 64)


@pytest.mark.parametrize("what", ["features", "all-but-head"])
def test_freeze_options(what):
    from cnnarch.models import create_model
    from cnnarch.train.trainer import freeze

    vgg = create_model("vgg11", num_classes=3)
    freeze(vgg, what)
    trainable = {n for n, p in vgg.named_parameters() if p.requires_grad}
    head = {"classifier.6.weight", "classifier.6.bias"}
    fcs = {f"classifier.{i}.{k}" for i in (0, 3, 6) for k in ("weight", "bias")}
    assert trainable == (fcs if what == "features" else head)
    g = create_model("googlenet", num_classes=3)
    freeze(g, "all-but-head")
    assert {n for n, p in g.named_parameters() if p.requires_grad} == {
        f"{m}.{k}" for m in ("fc", "aux1.fc2", "aux2.fc2") for k in ("weight", "bias")
    }


def test_bad_finetuning_options_are_refused(capsys):
    assert main(["train", "--freeze", "features", "--print-config"]) == 2
    assert "add --pretrained or --initial-checkpoint" in capsys.readouterr().err
    assert main(["train", "--pretrained", "--initial-checkpoint", "x.pt", "--print-config"]) == 2
    assert "give one" in capsys.readouterr().err
