"""Fast training (``--trainer fast``, recipe ``cifar-fast``): the CIFAR-10 speedrun tricks on top of
:class:`cnnarch.train.trainer.Trainer`.

What it adds, each switched by a :class:`TrainConfig` field (docs/cifar_fast.md has the ablation):

- ``whiten``: patch-whitening initialisation of the first convolution. Its ``k x k x C`` filters are
  the eigenvectors of the covariance of ``k x k`` patches of (normalised) training images, divided by
  the square roots of their eigenvalues, and the same filters negated; the layer's weights are then
  frozen (its bias still trains). The network starts from decorrelated, unit-variance input features
  (Page's ResNet-9 experiments; hlb-CIFAR10; airbench).
- ``bias_lr_scale``: batch-norm shifts learn ``s`` times faster (with ``1/s`` the weight decay, so that
  their decay per step is unchanged).
- ``bn_momentum``: torch's batch-norm ``momentum`` (weight of the newest batch in the running
  statistics) for every BN layer; a short run needs statistics that follow the weights quickly.
- ``tta``: test-time augmentation: ``flip`` averages the logits of an image and its mirror image;
  ``flip-translate`` also averages (with weight 1/2) those of copies shifted by one pixel up-left and
  down-right (reflect padding).
- ``milestones``: test accuracy after every epoch, and the training time at which it first reaches
  each milestone; evaluation time is kept off the training clock and reported separately.

The schedule (``--sched onecycle``), label smoothing, Nesterov momentum, bf16 autocast and channels-last
are the standard trainer's. No checkpoint is written until the end: a fast run is short, so it is not
resumable (``--resume`` is refused), and its ``last.pt`` serves ``cnnarch eval``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from cnnarch.train import distributed as D
from cnnarch.train.checkpoint import atomic_save
from cnnarch.train.config import TrainConfig
from cnnarch.train.metrics import MetricsLog, plot_curves, topk_correct
from cnnarch.train.optim import LRSchedule, build_optimizer
from cnnarch.train.trainer import (
    DataBundle,
    EvalResult,
    Trainer,
    autocast_context,
    cpu_has_fast_bf16,
    evaluate,
    pick_device,
    split_outputs,
)

WHITEN_IMAGES = 5000  # training images whose patches estimate the covariance
WHITEN_EPS = 5e-4  # added to the eigenvalues: the smallest are noise


@torch.no_grad()
def init_whitening(conv: nn.Conv2d, images: torch.Tensor, eps: float = WHITEN_EPS) -> None:
    """Set ``conv``'s filters to a whitening transform of its input patches, and freeze them.

    ``images (N, C, H, W)`` are normalised float training images. ``conv`` must have
    ``2 * C * kh * kw`` output channels: filter ``i`` is eigenvector ``i`` of the (uncentred) patch
    covariance scaled by ``1 / sqrt(eigenvalue_i + eps)`` (largest eigenvalue first), and filter
    ``i + C*kh*kw`` is its negation. Then ``conv`` (without bias) maps patches to features whose
    covariance is the identity, up to ``eps``.
    """
    kh, kw = conv.kernel_size
    c = images.shape[1]
    d = c * kh * kw
    if conv.out_channels != 2 * d or conv.in_channels != c:
        raise ValueError(
            f"whitening needs a {c}->{2 * d} channel convolution for {kh}x{kw} patches of {c}-channel "
            f"images, got {conv.in_channels}->{conv.out_channels}; use --no-whiten for this model"
        )
    x = images.float().contiguous()
    patches = x.unfold(2, kh, 1).unfold(3, kw, 1)  # N, C, H', W', kh, kw
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, d).double()
    cov = patches.T @ patches / len(patches)
    vals, vecs = torch.linalg.eigh(cov)  # ascending
    vals, vecs = vals.flip(0), vecs.flip(1)
    filters = (vecs.T / (vals.clamp_min(0) + eps).sqrt()[:, None]).reshape(d, c, kh, kw)
    conv.weight.copy_(torch.cat([filters, -filters]).to(conv.weight))
    conv.weight.requires_grad_(False)


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The model's ``whiten`` layer, else its first convolution."""
    conv = getattr(model, "whiten", None)
    if isinstance(conv, nn.Conv2d):
        return conv
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def _mirror(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (split_outputs(model(x))[0].float() + split_outputs(model(x.flip(-1)))[0].float())


def tta_logits(model: nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    """Logits of ``x`` averaged over test-time views: ``none``, ``flip`` or ``flip-translate``."""
    if mode == "none":
        return split_outputs(model(x))[0].float()
    logits = _mirror(model, x)
    if mode == "flip":
        return logits
    nhwc = x.is_contiguous(memory_format=torch.channels_last)
    memory = torch.channels_last if nhwc else torch.contiguous_format
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = [padded[..., :-2, :-2], padded[..., 2:, 2:]]
    shifted_logits = [_mirror(model, s.contiguous(memory_format=memory)) for s in shifted]
    return 0.5 * logits + 0.25 * (shifted_logits[0] + shifted_logits[1])


@torch.no_grad()
def evaluate_tta(
    model: nn.Module, batches: Iterable, device: torch.device, cfg: TrainConfig, mode: str
) -> EvalResult:
    """Like :func:`cnnarch.train.trainer.evaluate`, on TTA-averaged logits (one process)."""
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64)
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_context(cfg, device):
            logits = tta_logits(model, x, mode)
        loss = F.cross_entropy(logits, y, reduction="sum")
        c1, c5 = topk_correct(logits, y)
        sums += torch.tensor([loss.item(), c1, c5, len(y)], dtype=torch.float64)
    n = max(1.0, sums[3].item())
    return EvalResult(sums[0].item() / n, 100 * sums[1].item() / n, 100 * sums[2].item() / n, int(sums[3]))


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """Trainable parameters: batch-norm shifts in their own group when ``bias_lr_scale != 1``."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if cfg.bias_lr_scale == 1:
        return [{"params": trainable}]
    shifts = {
        id(m.bias): m.bias
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.bias is not None and m.bias.requires_grad
    }
    s = cfg.bias_lr_scale
    return [
        {"params": [p for p in trainable if id(p) not in shifts]},
        {"params": list(shifts.values()), "lr": cfg.lr * s, "weight_decay": cfg.weight_decay / s},
    ]


class FastTrainer(Trainer):
    """:class:`Trainer` with the fast-training options above and time-to-accuracy reporting."""

    def __init__(self, cfg: TrainConfig, data: DataBundle, model=None, log=None):
        if cfg.resume:
            raise ValueError("--trainer fast runs are short and not resumable; drop --resume")
        if len(data.train) == 0:
            raise ValueError(
                f"-b {cfg.batch_size} is more than the training images; lower -b or use more images"
            )
        wall0 = time.perf_counter()
        super().__init__(cfg, data, model, log)
        if self.dist.enabled:
            raise ValueError("--trainer fast runs in one process; use --trainer standard under torchrun")
        if cfg.bn_momentum is not None:
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.momentum = cfg.bn_momentum
        if cfg.whiten:
            loader = data.train
            norm = getattr(getattr(loader, "transform", None), "normalize", None)
            if norm is None or not hasattr(loader, "images"):
                raise ValueError("--whiten needs in-memory training images (cnnarch.data.TensorLoader)")
            init_whitening(first_conv(self.model), norm(loader.images[:WHITEN_IMAGES]))
        self.optimizer = build_optimizer(param_groups(self.model, cfg), cfg)
        self.schedule = LRSchedule(self.optimizer, cfg, self.steps_per_epoch)
        self.setup_seconds = time.perf_counter() - wall0  # model, whitening: on the training clock

    def fit(self) -> dict:
        cfg = self.cfg
        wall0 = time.perf_counter() - self.setup_seconds
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(cfg.to_json())
        self.log(f"training {cfg.model} -> {self.out}\n{cfg.format()}")
        self.log(
            f"device {self.device}, threads {torch.get_num_threads()}, {self.steps_per_epoch} steps/epoch, "
            f"{self.total_epochs} epochs ({self.total_steps} steps)"
        )
        eval_set = self.data.test if self.data.test is not None else self.data.val
        metrics = MetricsLog(self.out / "metrics.csv", None)
        train_s, eval_s = self.setup_seconds, 0.0
        reached: dict[float, tuple[int, float]] = {}
        row: dict = {}
        for epoch in range(self.total_epochs):
            row = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            train_s += row["seconds"]
            row.update(step=self.step, lr=self.lr(), train_seconds=train_s)
            last = epoch + 1 == self.total_epochs
            acc = ""
            if eval_set is not None and (cfg.milestones or last):
                t = time.perf_counter()
                res = evaluate(self.net, eval_set, self.data.eval_transform, self.device, cfg)
                eval_s += time.perf_counter() - t
                row.update(val_loss=res.loss, val_top1=res.top1, val_top5=res.top5)
                acc = f" | test top-1 {res.top1:.2f}%"
                for m in cfg.milestones:
                    if m not in reached and res.top1 >= m:
                        reached[m] = (epoch + 1, train_s)
            metrics.append(row)
            self.log(
                f"epoch {epoch + 1}/{self.total_epochs} lr {row['lr']:.4g} loss {row['train_loss']:.4f} "
                f"top-1 {row['train_top1']:.2f}%{acc} | {row['images_per_s']:.0f} img/s, "
                f"training clock {train_s:.1f} s"
            )
        if eval_set is not None and cfg.tta != "none":
            t = time.perf_counter()
            res = evaluate_tta(self.net, eval_set, self.device, cfg, cfg.tta)
            tta_s = time.perf_counter() - t
            train_s += tta_s  # the final answer's cost counts, as in the speedruns
            row.update(tta_top1=res.top1, tta_seconds=tta_s)
            self.log(f"test with TTA ({cfg.tta}, {res.images} images): top-1 {res.top1:.2f}% ({tta_s:.1f} s)")
            for m in cfg.milestones:
                if m not in reached and res.top1 >= m:
                    reached[m] = (self.total_epochs, train_s)
        if "val_top1" in row:
            row.update(test_top1=row["val_top1"], test_top5=row["val_top5"])
        wall = time.perf_counter() - wall0
        row.update(train_seconds=train_s, eval_seconds=eval_s, wall_seconds=wall, milestones=reached)
        for m in cfg.milestones:
            if m in reached:
                e, s = reached[m]
                self.log(f"milestone {m:g}%: reached after epoch {e}, {s:.1f} s of training")
            else:
                self.log(f"milestone {m:g}%: not reached")
        self.log(
            f"time: {train_s:.1f} s training (setup, epochs, final TTA), {eval_s:.1f} s per-epoch test "
            f"evaluation, {wall:.1f} s wall"
        )
        final = self.total_epochs - 1
        atomic_save(self._checkpoint(final), self.out / "last.pt")
        plot_curves(self.out / "metrics.csv", self.out / "curves.png")
        D.barrier(self.dist)
        return row


def adapt_to_machine(cfg: TrainConfig, overrides: dict) -> tuple[TrainConfig, str | None]:
    """A fast recipe's bf16 autocast only where it is fast: on a CPU without AMX or AVX512-BF16 units
    (AVX2 only) torch has no fast bf16 convolution and falls back to a slow path (measured: cifar_fast
    training 2 images/s in bf16 against 20-30 in fp32 on one AVX2 core), so ``amp`` is turned off there
    unless ``--amp`` was given explicitly. Returns the config and a note saying what changed."""
    if cfg.trainer != "fast" or not cfg.amp or "amp" in overrides:
        return cfg, None
    if pick_device(cfg.device).type != "cpu" or cpu_has_fast_bf16():
        return cfg, None
    return cfg.replace(amp=False), (
        "amp off: this CPU has no AMX or AVX512-BF16 units, and bf16 autocast there is several times "
        "slower than fp32 (--amp forces it)"
    )


def trainer_class(cfg: TrainConfig) -> type[Trainer]:
    return FastTrainer if cfg.trainer == "fast" else Trainer


def training_flops(model: nn.Module, image_shape, images_per_epoch: int, epochs: float) -> float:
    """Training FLOPs of a schedule from the analyzer: 3x the forward FLOPs (forward, and backward to
    activations and weights) per image seen; evaluation not included."""
    from cnnarch.analysis.profiler import profile

    fwd = profile(model, tuple(image_shape)).flops
    return 3.0 * fwd * images_per_epoch * epochs
