"""One rule finds the data for every command: --data, $CNNARCH_DATA, the project's shared/data (from
the current directory up), the cache; a run records the directory it read, and eval reads it again."""

import json
import os

import pytest
import torch

from cnnarch.cli import main
from cnnarch.data.datasets import find_dataset, project_data_dirs
from cnnarch.train.data import locate

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture
def cifar_like(tmp_path, write_tree):
    """Writes a tiny CIFAR-10-shaped ImageFolder tree (10 classes of 32x32 images) at a given path."""

    def make(root, train=2, test=1):
        write_tree(root / "train", classes=CIFAR10_CLASSES, per_class=train, size=(32, 32))
        write_tree(root / "test", classes=CIFAR10_CLASSES, per_class=test, size=(32, 32))
        return root

    return make


def test_project_data_found_from_any_folder_below_it(tmp_path, monkeypatch, cifar_like, cache_dir):
    monkeypatch.delenv("CNNARCH_PROJECT_DATA")
    monkeypatch.delenv("CNNARCH_DATA", raising=False)
    shared = cifar_like(tmp_path / "shared" / "data" / "cifar10-jpeg")
    deep = tmp_path / "project" / "runs" / "deep"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert project_data_dirs()[0] == tmp_path / "shared" / "data"
    assert find_dataset("cifar10") == shared
    assert locate(None) == ("cifar10", str(shared))


def test_order_data_then_env_then_project_then_cache(tmp_path, monkeypatch, cifar_like, cache_dir):
    project = cifar_like(tmp_path / "proj" / "cifar10")
    env = cifar_like(tmp_path / "env" / "cifar10-jpeg")
    mine = cifar_like(tmp_path / "mine")
    cached = cifar_like(cache_dir / "datasets" / "cifar-10")
    monkeypatch.delenv("CNNARCH_DATA", raising=False)
    assert find_dataset("cifar10") == cached  # nothing else: the cache
    monkeypatch.setenv("CNNARCH_PROJECT_DATA", os.pathsep.join([str(tmp_path / "none"), str(project.parent)]))
    assert find_dataset("cifar10") == project
    monkeypatch.setenv("CNNARCH_DATA", str(env.parent))
    assert find_dataset("CIFAR-10") == env
    assert find_dataset("cifar10", root=mine) == mine
    assert find_dataset("cifar100") is None  # to be downloaded
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        find_dataset("svhn")


@pytest.mark.slow
def test_eval_after_a_run_that_found_its_data(tmp_path, monkeypatch, cifar_like, cache_dir, capsys):
    """A run without --data records where its data was; eval needs no --data, from another directory
    and with $CNNARCH_DATA gone."""
    data = cifar_like(tmp_path / "env" / "cifar10-jpeg", train=3, test=2)
    monkeypatch.setenv("CNNARCH_DATA", str(data.parent))
    run = tmp_path / "run"
    args = ["train", "--model", "resnet20", "--epochs", "1", "-b", "10", "--val-split", "0"]
    assert main([*args, "--log-interval", "0", "--output", str(run)]) == 0
    ckpt = torch.load(run / "best.pt", weights_only=True, map_location="cpu")
    assert ckpt["data_info"]["root"] == str(data)
    # the configuration names the data the run read, not the rule that found it
    assert ckpt["config"]["dataset"]["data"] == str(data)
    assert json.loads((run / "config.json").read_text())["dataset"]["data"] == str(data)
    monkeypatch.delenv("CNNARCH_DATA")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["eval", str(run / "best.pt"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["images"] == 20  # the 2 test images of each of the 10 classes
    # ten crops of 32x32 images: said to cost accuracy, in one line
    assert main(["eval", str(run / "best.pt"), "--ten-crop"]) == 0
    assert capsys.readouterr().err.count("--ten-crop: on 32x32 images") == 1
