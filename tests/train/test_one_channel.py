"""A 1-channel 28x28 (MNIST-shaped) dataset trains, evaluates and resumes: the checkpoint keeps the
network's ``in_channels``."""

import csv

import numpy as np
import torch

from cnnarch.cli import main
from cnnarch.train.checkpoint import load_checkpoint


def write_idx(path, arr):
    """LeCun's idx format written out: magic (0, 0, 0x08 = uint8, ndim), big-endian sizes, the bytes."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    path.write_bytes(header + arr.tobytes())


def test_mnist_shaped_data_trains_evaluates_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    data = tmp_path / "mnist"
    data.mkdir()
    for prefix, n in (("train", 48), ("t10k", 12)):
        labels = (np.arange(n) % 3).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for c in range(3):  # class c: a bright horizontal band in the c-th third
            images[labels == c, 9 * c : 9 * c + 9, :] += 150
        write_idx(data / f"{prefix}-images-idx3-ubyte", images)
        write_idx(data / f"{prefix}-labels-idx1-ubyte", labels)

    run = tmp_path / "run"
    args = [
        "--data",
        str(data),
        "--model",
        "resnet18",
        "-b",
        "12",
        "--val-split",
        "0.25",
        "--log-interval",
        "0",
        "--lr",
        "0.01",
        "--sched",
        "none",
    ]
    assert main(["train", *args, "--epochs", "1", "--output", str(run)]) == 0
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["in_channels"] == 1 and ckpt["model"]["conv1.weight"].shape[1] == 1

    capsys.readouterr()
    assert main(["eval", str(run / "last.pt")]) == 0
    assert "test set: 12 images" in capsys.readouterr().out

    assert main(["train", "--resume", str(run / "last.pt"), "--epochs", "2"]) == 0
    with open(run / "metrics.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
    resumed = load_checkpoint(run / "last.pt")
    assert resumed["step"] == 2 * 3 and not torch.equal(
        resumed["model"]["fc.weight"], ckpt["model"]["fc.weight"]
    )
