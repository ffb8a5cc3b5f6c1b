"""Accuracy counting, the run's ``metrics.csv`` and its ``curves.png``."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import torch

from cnnarch.data.base import atomic_file

COLUMNS = tuple(
    "epoch step lr train_loss train_top1 train_top5 val_loss val_top1 val_top5 images_per_s data_seconds "
    "seconds".split()
)


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks=(1, 5)) -> list[int]:
    """How many rows have their target among the ``k`` highest scores, for each ``k``.

    ``k`` larger than the number of classes counts every row as correct (top-5 of a 3-class problem)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hit = top == target[:, None]
    return [int(hit[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


class MetricsLog:
    """Appends one row per epoch to ``metrics.csv``; on resume, rows after the resumed epoch are dropped."""

    def __init__(self, path: str | os.PathLike, resume_epoch: int | None = None):
        self.path = Path(path)
        self.rows: list[dict] = []
        if resume_epoch is not None and self.path.is_file():
            with self.path.open(newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= resume_epoch]
        self._write()

    def append(self, row: dict) -> None:
        self.rows.append({k: row.get(k, "") for k in COLUMNS})
        self._write()

    def _write(self) -> None:
        text = io.StringIO(newline="")
        w = csv.DictWriter(text, COLUMNS)
        w.writeheader()
        w.writerows(self.rows)
        with atomic_file(self.path) as f:
            f.write(text.getvalue().encode())


def plot_curves(metrics_csv: str | os.PathLike, out_png: str | os.PathLike) -> None:
    """Loss and top-1 accuracy per epoch, training and validation, side by side."""
    from matplotlib.figure import Figure  # no pyplot: a caller's (a notebook's) backend stays as it is

    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))

    def col(name):
        return [float(r[name]) if r[name] not in ("", None) else math.nan for r in rows]

    epochs = col("epoch")
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, metric, label in ((ax_loss, "loss", "loss"), (ax_acc, "top1", "top-1 accuracy (%)")):
        ax.plot(epochs, col(f"train_{metric}"), "o-", label="train")
        ax.plot(epochs, col(f"val_{metric}"), "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
