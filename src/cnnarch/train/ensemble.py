"""Evaluation of trained checkpoints, alone and as an ensemble.

AlexNet's best ILSVRC result averaged the predictions of 7 CNNs; here the ensemble's prediction is the
mean of the members' softmax probabilities (not of their logits, whose scales differ from net to net).
With ten-crop evaluation, each network's probability for an image is itself the mean over the ten crops
(four corners and the centre, and their mirror images), as in AlexNet's test procedure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from cnnarch.train.checkpoint import load_checkpoint
from cnnarch.train.metrics import topk_correct
from cnnarch.train.trainer import split_outputs


@dataclass(frozen=True)
class Accuracy:
    name: str
    top1: float
    top5: float
    images: int


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    """The trained network of a checkpoint, in eval mode."""
    from cnnarch.models import create_model

    model = create_model(ckpt["model_name"], num_classes=ckpt["num_classes"])
    model.load_state_dict(ckpt["model"])
    return model.eval()


@torch.no_grad()
def predict_probs(
    model: nn.Module,
    batches: Iterable,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities ``(N, classes)`` and labels ``(N,)`` over a batch source, in its order.

    When ``transform`` turns a batch into crops ``(B, K, C, h, w)`` (ten-crop: K = 10), the network
    sees all ``B * K`` crops and each image's probabilities are the mean over its K crops."""
    model.eval().to(device)
    probs, labels = [], []
    for x, y in batches:
        x = x.to(device)
        x = x if transform is None else transform(x)
        if x.dim() == 5:
            b, k = x.shape[:2]
            p = split_outputs(model(x.flatten(0, 1)))[0].float().softmax(1).view(b, k, -1).mean(1)
        else:
            p = split_outputs(model(x))[0].float().softmax(1)
        probs.append(p.cpu())
        labels.append(y.cpu())
    return torch.cat(probs), torch.cat(labels)


def accuracy(name: str, probs: torch.Tensor, labels: torch.Tensor) -> Accuracy:
    c1, c5 = topk_correct(probs, labels)
    n = len(labels)
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
    ckpts = {p: load_checkpoint(p) for p in paths}
    first = next(iter(ckpts.values()))
    for p, c in ckpts.items():
        if c["num_classes"] != first["num_classes"] or c.get("classes") != first.get("classes"):
            raise ValueError(
                f"{p} classifies {c['num_classes']} classes {c.get('classes')}, but {paths[0]} classifies "
                f"{first['num_classes']} {first.get('classes')}: an ensemble needs the same classes"
            )
    return ckpts
