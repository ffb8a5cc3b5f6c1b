"""Evaluation of trained checkpoints, alone and as an ensemble.

AlexNet's best ILSVRC result averaged the predictions of 7 CNNs; here the ensemble's prediction is the
mean of the members' softmax probabilities (not of their logits, whose scales differ from net to net).
With ten-crop evaluation, each network's probability for an image is itself the mean over the ten crops
(four corners and the centre, and their mirror images), as in AlexNet's test procedure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cnnarch.train.checkpoint import load_checkpoint
from cnnarch.train.evaluate import predict_probs
from cnnarch.train.metrics import topk_correct
from cnnarch.train.trainer import build_model

__all__ = ["Accuracy", "evaluate_ensemble", "load_members", "model_from_checkpoint", "predict_probs"]


@dataclass(frozen=True)
class Accuracy:
    name: str
    top1: float
    top5: float
    images: int


def model_from_checkpoint(ckpt: dict, model: nn.Module | None = None) -> nn.Module:
    """The trained network of a checkpoint (built as it was trained, ``in_channels`` included, unless
    ``model`` is given), in eval mode."""
    if model is None:
        model = build_model(ckpt["model_name"], ckpt["num_classes"], ckpt.get("in_channels", 3))
    model.load_state_dict(ckpt["model"])
    return model.eval()


def accuracy(name: str, probs: torch.Tensor, labels: torch.Tensor) -> Accuracy:
    n = len(labels)
    if n == 0:
        return Accuracy(name, math.nan, math.nan, 0)
    c1, c5 = topk_correct(probs, labels)
    return Accuracy(name, 100 * c1 / n, 100 * c5 / n, n)


def evaluate_ensemble(members: dict[str, torch.Tensor], labels: torch.Tensor) -> list[Accuracy]:
    """Accuracy of each member's probabilities and, for two or more, of their mean ("ensemble")."""
    rows = [accuracy(name, p, labels) for name, p in members.items()]
    if len(members) > 1:
        rows.append(
            accuracy(f"ensemble of {len(members)}", torch.stack(list(members.values())).mean(0), labels)
        )
    return rows


def load_members(paths: list[str]) -> dict[str, dict]:
    """Checkpoints by path; all must classify the same classes, or their probabilities cannot be averaged."""
    from cnnarch.models.weights import check_finite

    ckpts = {p: load_checkpoint(p) for p in paths}
    for p, c in ckpts.items():
        check_finite(c["model"], p)
    first = next(iter(ckpts.values()))
    for p, c in ckpts.items():
        if c["num_classes"] != first["num_classes"] or c.get("classes") != first.get("classes"):
            raise ValueError(
                f"{p} classifies {c['num_classes']} classes {c.get('classes')}, but {paths[0]} classifies "
                f"{first['num_classes']} {first.get('classes')}: an ensemble needs the same classes"
            )
    return ckpts
