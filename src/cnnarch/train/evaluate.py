"""Evaluation: one loop over a batch source, with the logits of each batch given by a function.

``logits(model, x)`` is :func:`plain_logits` (one view; crops ``(B, K, C, h, w)`` such as ten-crop are
averaged as probabilities), or the speedrun's test-time augmentation
(:func:`cnnarch.train.speedrun.tta_logits`). :func:`evaluate` sums loss
and top-k hits across ``torchrun`` processes; :func:`predict_probs` keeps every image's probabilities
and :func:`evaluate_ensemble` scores trained checkpoints alone and together. An empty set is no error: it
has 0 images and NaN accuracies everywhere.

AlexNet's best ILSVRC result averaged the predictions of 7 CNNs; here the ensemble's prediction is the
mean of the members' softmax probabilities (not of their logits, whose scales differ from net to net).
With ten-crop evaluation, each network's probability for an image is itself the mean over the ten crops
(four corners and the centre, and their mirror images), as in AlexNet's test procedure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cnnarch.progress import progress
from cnnarch.train import distributed as D
from cnnarch.train.checkpoint import load_checkpoint
from cnnarch.train.device import Precision, autocast


@dataclass
class EvalResult:
    loss: float
    top1: float
    top5: float
    images: int


@dataclass(frozen=True)
class Accuracy:
    name: str
    top1: float
    top5: float
    images: int


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks=(1, 5)) -> list[int]:
    """How many rows have their target among the ``k`` highest scores, for each ``k``.

    ``k`` larger than the number of classes counts every row as correct (top-5 of a 3-class problem)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hit = top == target[:, None]
    return [int(hit[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


def split_outputs(out) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Main logits and auxiliary logits (GoogLeNet returns a tuple in training mode)."""
    if isinstance(out, torch.Tensor):
        return out, []
    return out[0], [o for o in out[1:] if o is not None]


def plain_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's logits; for crops ``(B, K, C, h, w)`` the log of the mean of the K crops'
    probabilities (AlexNet's ten-crop test)."""
    if x.dim() == 5:
        b, k = x.shape[:2]
        probs = split_outputs(model(x.flatten(0, 1)))[0].float().softmax(1).view(b, k, -1).mean(1)
        return probs.log()
    return split_outputs(model(x))[0].float()


def prepare(x, y, transform, device, cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch on ``device``: ``transform(x)`` (``transform(x, generator)`` in training, a partial) and
    channels-last when ``cfg`` asks for it."""
    x = x.to(device, non_blocking=True)
    x = x if transform is None else transform(x)
    if cfg is not None and cfg.run.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def _batches(
    model, batches, transform, device, cfg, logits, precision: Precision | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(logits, labels)`` of every batch, in eval mode, without gradients: in ``cfg``'s autocast and
    memory format (training), or at ``precision`` (a trained network's inference)."""
    model.eval()
    for x, y in batches:
        x, y = prepare(x, y, transform, device, cfg)
        if precision is not None:
            x = precision.layout(x)
        with torch.no_grad(), autocast(cfg, device) if precision is None else precision.autocast(device):
            z = logits(model, x).float()
        yield z, y


def evaluate(
    model: nn.Module,
    batches: Iterable,
    transform: Callable | None = None,
    device: torch.device | str = "cpu",
    cfg=None,
    dist: D.DistInfo | None = None,
    logits: Callable[[nn.Module, torch.Tensor], torch.Tensor] = plain_logits,
    desc: str | None = None,
) -> EvalResult:
    """Cross-entropy (without label smoothing), top-1 and top-5 (%) over a batch source, summed across
    processes. ``cfg`` (a TrainConfig) supplies autocast and channels-last. ``desc`` names the phase in
    the progress shown (by the first process); None shows none."""
    sums = torch.zeros(4, dtype=torch.float64)
    shown = desc is not None and (dist is None or dist.is_main)
    with progress(_length(batches), desc or "", "batch", enabled=shown) as bar:
        for z, y in _batches(model, batches, transform, device, cfg, logits):
            loss = F.cross_entropy(z, y, reduction="sum")
            c1, c5 = topk_correct(z, y)
            sums += torch.tensor([loss.item(), c1, c5, len(y)], dtype=torch.float64)
            bar.update(1)
    D.all_reduce_sum(sums, dist or D.DistInfo())
    n = sums[3].item()
    if n == 0:
        return EvalResult(math.nan, math.nan, math.nan, 0)
    return EvalResult(sums[0].item() / n, 100 * sums[1].item() / n, 100 * sums[2].item() / n, int(n))


def _length(batches) -> int | None:
    return len(batches) if hasattr(batches, "__len__") else None


def predict_probs(
    model: nn.Module,
    batches: Iterable,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    desc: str | None = "evaluation",
    precision: Precision | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities ``(N, classes)`` and labels ``(N,)`` over a batch source, in its order
    (one process), at ``precision`` (None: fp32; bf16 also turns ``model`` channels-last). Crops
    ``(B, K, C, h, w)``: each image's probabilities are the mean over its K crops. ``desc`` names the
    phase in the progress shown; None shows none."""
    model.to(device)
    if precision is not None:
        precision.layout(model)
    probs, labels = [], []
    with progress(_length(batches), desc or "", "batch", enabled=desc is not None) as bar:
        for z, y in _batches(model, batches, transform, device, None, plain_logits, precision):
            probs.append(z.softmax(1).cpu())
            labels.append(y.cpu())
            bar.update(1)
    if not probs:
        return torch.empty(0, 0), torch.empty(0, dtype=torch.long)
    return torch.cat(probs), torch.cat(labels)


def model_from_checkpoint(ckpt: dict, model: nn.Module | None = None) -> nn.Module:
    """The trained network of a checkpoint (built as it was trained, ``in_channels`` included, unless
    ``model`` is given), in eval mode."""
    if model is None:
        from cnnarch.train.trainer import build_model

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
