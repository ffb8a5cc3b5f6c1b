"""The CIFAR-10 speedrun (recipe ``cifar-fast``; docs/cifar_fast.md), top to bottom in the order of the
public speedrun scripts (Page 2018's ResNet-9, hlb-CIFAR10, airbench94 and airbench94_muon, Jordan 2024,
arXiv:2404.00498): data, network, whitening, optimizer and schedule, the step, evaluation.

Every technique is an option of the one :class:`cnnarch.train.trainer.Trainer`, off unless a recipe or
the command line sets it, so the optimizers and learning-rate schedules of every recipe live here too:
the speedrun's SGD with scaled batch-norm shifts and its one-cycle schedule are settings of them.

Learning rates, the whitening bias's training and lookahead's decay are functions of the step (nanoGPT's
``get_lr(it)``): a resumed run restores weights, optimizer buffers and the step, and every rate follows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from cnnarch.data.augment import pad_crop
from cnnarch.train.config import SpeedrunOptions, TrainConfig
from cnnarch.train.evaluate import plain_logits

# ---------------------------------------------------------------------------------------------- data
# Random crops of 2-pixel reflect-padded images and airbench's alternating flips are options of
# cnnarch.data.augment (``pad_mode``, ``alternate_flip``). Progressive resizing (recipe
# ``cifar-fast-93-short``; Howard's fast.ai DAWNBench 2018; Touvron et al., "Fixing the train-test
# resolution discrepancy", 2019) trains the first epochs on smaller images: a step costs about
# ``(N/32)^2`` of a full one. Downscaled, the objects shrink and the first full-size epoch meets them at a
# scale it never saw; cropped, they keep the scale the test images show them at. Stages follow one another
# (``--progressive-size 24 28 --progressive-epochs 6 3``: 6 epochs at 24, 3 at 28, then full size), each
# downscaled or cropped (``--progressive-mode``).


def progressive_stage(speedrun: SpeedrunOptions, epoch: int) -> tuple[int, str] | None:
    """The size and mode (``resize`` or ``crop``) of epoch ``epoch``'s (0-based) training images, or None
    for full size."""
    modes = speedrun.progressive_mode
    if len(modes) == 1:  # one mode for every stage
        modes *= len(speedrun.progressive_size)
    end = 0
    for size, epochs, mode in zip(speedrun.progressive_size, speedrun.progressive_epochs, modes, strict=True):
        end += epochs
        if epoch < end:
            return size, mode
    return None


def describe_progressive(speedrun: SpeedrunOptions) -> str:
    """The stages in words: ``epochs 1-6 on images downscaled to 24 pixels (shorter side), epochs 7-9 on
    images cropped to 28x28``."""
    words, first = [], 1
    for size, epochs in zip(speedrun.progressive_size, speedrun.progressive_epochs, strict=True):
        _, mode = progressive_stage(speedrun, first - 1)
        last = first + epochs - 1
        when = f"epoch {first}" if last == first else f"epochs {first}-{last}"
        how = (
            f"downscaled to {size} pixels (shorter side)" if mode == "resize" else f"cropped to {size}x{size}"
        )
        words.append(f"{when} on images {how}")
        first = last + 1
    return ", ".join(words)


def downscale(x: torch.Tensor, size: int) -> torch.Tensor:
    """A batch ``(N, C, H, W)`` with its shorter side resized to ``size`` (aspect kept), antialiased
    bilinear, so every input pixel counts as a lower-resolution camera would see it. Never enlarges."""
    h, w = x.shape[-2:]
    if size >= min(h, w):
        raise ValueError(
            f"--progressive-size {size} is not smaller than the training images ({h}x{w}); it only "
            "downscales. Use a smaller size, or drop it"
        )
    scale = size / min(h, w)
    # the antialiased kernel is float32/64 only on a CPU; the recipe's batches may already be bfloat16
    out = F.interpolate(
        x.float(),
        size=(round(h * scale), round(w * scale)),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    ).to(x.dtype)
    last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return out.contiguous(memory_format=torch.channels_last if last else torch.contiguous_format)


def random_crop(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A ``size x size`` window of each image of a batch ``(N, C, H, W)``, at its own random place, the
    pixels unscaled. Never enlarges."""
    n, _, h, w = x.shape
    if size >= min(h, w):
        raise ValueError(
            f"--progressive-size {size} is not smaller than the training images ({h}x{w}); it only "
            "crops. Use a smaller size, or drop it"
        )
    top = torch.randint(0, h - size + 1, (n,), generator=generator, device=x.device)
    left = torch.randint(0, w - size + 1, (n,), generator=generator, device=x.device)
    last = x.is_contiguous(memory_format=torch.channels_last)
    return pad_crop(x, top, left, size).contiguous(
        memory_format=torch.channels_last if last else torch.contiguous_format
    )


def check_progressive(model: nn.Module, cfg: TrainConfig, epochs: int, in_channels: int = 3) -> None:
    """Refuse a progressive-resizing schedule without a full-size epoch among the run's ``epochs`` (which
    ``--iterations`` may cut short), or a size the network cannot take; before any training."""
    sizes, lengths = cfg.speedrun.progressive_size, cfg.speedrun.progressive_epochs
    if not sizes:
        return
    if sum(lengths) >= epochs:
        raise ValueError(
            f"--progressive-epochs {' '.join(map(str, lengths))} of the run's {epochs} epoch(s) leave no "
            "epoch at full size; the network would be tested at a size it never trained on. Use fewer "
            "--progressive-epochs"
        )
    from cnnarch.models._input_size import min_input_size

    try:
        smallest = min_input_size(model, in_channels)
    except ValueError:
        return  # the network's own check speaks at the first step
    if min(sizes) < smallest:
        raise ValueError(
            f"--progressive-size {min(sizes)} is below the smallest input {cfg.model} "
            f"accepts ({smallest}x{smallest}); use --progressive-size {smallest} or more"
        )


# ------------------------------------------------------------------------------------------- network
# The network is the zoo's ``cifar_fast`` (cnnarch.models.cifar_fast). A short run needs batch-norm
# statistics that follow the weights quickly: ``bn_momentum`` is torch's ``momentum`` (the weight of the
# newest batch) for every BN layer, 0.4 in the recipe where torch's default is 0.1.


def batch_norms(model: nn.Module, cfg: TrainConfig) -> list[nn.Module]:
    """The model's batch-norm layers, with ``--bn-momentum`` set; refused where there are none for it
    and ``--bias-lr-scale`` to act on."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms and (cfg.speedrun.bn_momentum is not None or cfg.speedrun.bias_lr_scale != 1):
        raise ValueError(
            f"--bn-momentum and --bias-lr-scale act on batch-norm layers, and {cfg.model} has none; "
            "drop them (--bias-lr-scale 1)"
        )
    for m in norms:
        if cfg.speedrun.bn_momentum is not None:
            m.momentum = cfg.speedrun.bn_momentum
    return norms


# ----------------------------------------------------------------------------------------- whitening
# The first convolution's ``k x k x C`` filters are the eigenvectors of the covariance of ``k x k``
# patches of (normalised) training images divided by the square roots of their eigenvalues, and the same
# filters negated; then frozen: decorrelated, unit-variance input. Its bias trains for the first
# ``whiten_bias_epochs`` epochs (3 in airbench) and then stops, so that later steps no longer shift the
# features the whole network is built on.

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


def whiten(model: nn.Module, cfg: TrainConfig, train, resuming: bool) -> None:
    """``--whiten``: the first convolution initialised from ``train``'s images and frozen; a resumed
    run's filters come from the checkpoint and are only frozen."""
    if not cfg.speedrun.whiten:
        return
    from cnnarch.models import first_conv  # the registry's: cifar_fast's ``whiten``

    if resuming:
        first_conv(model).weight.requires_grad_(False)
        return
    norm = getattr(getattr(train, "transform", None), "normalize", None)
    if norm is None or not hasattr(train, "images"):
        raise ValueError("--whiten needs in-memory training images (cnnarch.data.TensorLoader)")
    init_whitening(first_conv(model), norm(train.images[:WHITEN_IMAGES]))


def whitening_layer(model: nn.Module) -> nn.Conv2d:
    """The model's ``whiten`` convolution (``cifar_fast``, ``cifar_fast_93``), with the bias that
    ``--whiten-bias-epochs`` freezes."""
    conv = getattr(model, "whiten", None)
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(
            f"{type(model).__name__} has no `whiten` convolution; freezing the whitening bias needs a "
            "cifar_fast network (set the whitening-bias epochs to 0 for other models)"
        )
    if conv.bias is None:
        raise ValueError("the `whiten` convolution has no bias to freeze; build it with bias=True")
    return conv


def train_whitening_bias(model: nn.Module, trains: bool) -> None:
    """Whether the whitening bias trains in the coming step (before its forward pass). A frozen bias gets
    no gradient, so the optimizer skips it: no momentum or weight decay moves it (``torch.optim`` skips
    parameters whose ``grad`` is None). airbench94 sets ``requires_grad`` per epoch in the same way;
    airbench94_muon instead decays the bias's learning rate linearly to zero over the same epochs."""
    bias = whitening_layer(model).bias
    bias.requires_grad_(trains)
    if not trains:
        bias.grad = None


# ---------------------------------------------------------------------------- optimizer and schedule
# SGD (or Adam, AdamW) over every trainable parameter, weight decay L2 in SGD and Adam and decoupled in
# AdamW, biases and batch-norm parameters decayed too as in the lecture's papers. The speedrun gives the
# batch-norm shifts 64x the learning rate and 1/64 the weight decay (``bias_lr_scale``), and under
# ``--muon`` the convolution filters to Muon. One learning-rate schedule (plateau, step, multistep,
# cosine, one cycle; in epochs or steps, times an optional linear warm-up) drives both.


def filter_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(filters, others)``: the trainable convolution filters (4-D parameters) for :class:`Muon`, and
    every other trainable parameter, for SGD (airbench94_muon's split)."""
    filters, others = [], []
    for p in model.parameters():
        if p.requires_grad:
            (filters if p.dim() == 4 else others).append(p)
    return filters, others


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """Trainable parameters (without the convolution filters under ``--muon``: :func:`build_muon`);
    batch-norm shifts in their own group, with ``bias_lr_scale`` times the lr and ``1/bias_lr_scale``
    the weight decay (so that their decay per step is unchanged), when it is not 1 (the speedruns' 64)."""
    filters = {id(p) for p in filter_params(model)[0]} if cfg.speedrun.muon else set()
    trainable = [p for p in model.parameters() if p.requires_grad and id(p) not in filters]
    if cfg.speedrun.bias_lr_scale == 1:
        return [{"params": trainable}]
    shifts = {
        id(m.bias): m.bias
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.bias is not None and m.bias.requires_grad
    }
    s = cfg.speedrun.bias_lr_scale
    return [
        {"params": [p for p in trainable if id(p) not in shifts]},
        {"params": list(shifts.values()), "lr": cfg.optim.lr * s, "weight_decay": cfg.optim.weight_decay / s},
    ]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of ``cfg`` over ``model``'s trainable parameters (:func:`param_groups`)."""
    params = param_groups(model, cfg)
    if cfg.optim.opt == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.optim.lr,
            momentum=cfg.optim.momentum,
            nesterov=cfg.optim.nesterov,
            weight_decay=cfg.optim.weight_decay,
        )
    cls = torch.optim.Adam if cfg.optim.opt == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)


NS_COEFFS = (3.4445, -4.7750, 2.0315)


def newton_schulz5(g: torch.Tensor, steps: int = 5, eps: float = 1e-7, dtype=torch.float32) -> torch.Tensor:
    """Approximately orthogonalise the matrix ``g (m, n)``: about ``U V^T`` for ``g = U S V^T``.

    Keller Jordan's quintic iteration ``X <- a X + (b A + c A^2) X``, ``A = X X^T``,
    ``(a, b, c) = (3.4445, -4.7750, 2.0315)``, started from ``g / ||g||_F``, on the wider orientation
    (``X X^T`` the smaller Gram matrix); returns ``dtype``. The coefficients trade exactness for speed,
    leaving singular values spread over roughly (0.5, 1.5) rather than equal to 1.
    """
    if g.dim() != 2:
        raise ValueError(f"Newton-Schulz orthogonalises matrices, got a tensor of shape {tuple(g.shape)}")
    a, b, c = NS_COEFFS
    x = g.to(dtype)
    x = x / (x.norm() + eps)  # the largest singular value at most 1, where the iteration converges
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Muon (Keller Jordan, "Muon: An optimizer for hidden layers in neural networks", 2024) as in
    airbench94_muon (94 % in 8 epochs, where airbench94 takes 9.9 with SGD), for parameters of two or
    more dimensions (a filter bank is flattened to ``(out_channels, in_channels * kh * kw)``). One step:
    ``buf = momentum * buf + grad``, the direction ``g = grad + momentum * buf`` (Nesterov) or ``buf``;
    ``p *= sqrt(out_channels) / ||p||_F`` (``normalize_weights``: a fixed norm, so that the step is
    relative; airbench94_muon has no weight decay on filters); ``p -= lr * newton_schulz5(g)`` with
    ``ns_steps`` iterations (3 in airbench94_muon, 5 in the Muon reference code). Defaults: airbench94_muon's.

    ``ns_dtype`` (not saved in ``state_dict``: a matter of the machine) is float32 by default, a
    deliberate difference: airbench runs it in bfloat16, several times slower on a CPU without bf16 units.
    The state is one momentum buffer per parameter in torch's ``state_dict``: a resume continues bit for bit.
    """

    def __init__(
        self,
        params,
        lr: float = 0.24,
        momentum: float = 0.6,
        nesterov: bool = True,
        ns_steps: int = 3,
        normalize_weights: bool = True,
        ns_dtype: torch.dtype = torch.float32,
    ):
        if lr < 0:
            raise ValueError(f"Muon: learning rate must be >= 0, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"Muon: momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("Muon: Nesterov momentum needs momentum > 0")
        if ns_steps < 1:
            raise ValueError(f"Muon: ns_steps must be at least 1, got {ns_steps}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            ns_steps=ns_steps,
            normalize_weights=normalize_weights,
        )
        super().__init__(params, defaults)
        self.ns_dtype = ns_dtype
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() < 2:
                    raise ValueError(
                        f"Muon orthogonalises matrices and filter banks, got a parameter of shape "
                        f"{tuple(p.shape)}; give biases and norm parameters to SGD "
                        "(cnnarch.train.speedrun.filter_params splits a model's parameters)"
                    )

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            momentum = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grad)
                buf = state["momentum_buffer"]
                buf.mul_(momentum).add_(grad)
                g = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
                if group["normalize_weights"]:
                    p.mul_(len(p) ** 0.5 / p.norm().clamp_min(torch.finfo(p.dtype).tiny))
                update = newton_schulz5(g.reshape(len(g), -1), group["ns_steps"], dtype=self.ns_dtype)
                p.add_(update.view(p.shape).to(p.dtype), alpha=-group["lr"])
        return loss


def build_muon(model: nn.Module, cfg: TrainConfig, device: torch.device) -> tuple[Muon, TrainConfig]:
    """Muon over ``model``'s trainable convolution filters (airbench94_muon), and the configuration
    of its schedule: the run's, with every learning rate scaled by ``muon_lr / lr``, so that both
    optimizers follow the same curve. The iteration runs in float32 on a CPU (bfloat16 elsewhere)."""
    filters = filter_params(model)[0]
    if not filters:
        raise ValueError(
            f"--muon trains convolution filters, and {cfg.model} has no trainable ones; drop --muon"
        )
    muon = Muon(
        filters,
        lr=cfg.speedrun.muon_lr,
        momentum=cfg.speedrun.muon_momentum,
        nesterov=True,
        ns_steps=cfg.speedrun.muon_ns_steps,
        ns_dtype=torch.float32 if device.type == "cpu" else torch.bfloat16,
    )
    k = cfg.speedrun.muon_lr / cfg.optim.lr
    return muon, cfg.replace(
        lr=cfg.speedrun.muon_lr, warmup_lr=cfg.schedule.warmup_lr * k, min_lr=cfg.schedule.min_lr * k
    )


def one_cycle(i: int, up: int, length: int, start: float, end: float) -> float:
    """Learning-rate factor at step ``i`` of a triangular cycle (Smith's one cycle, as in Page's
    ResNet-9 and airbench): linear from ``start`` to 1 over ``up`` steps, then linear to ``end`` at
    ``length``."""
    if i < up:
        return start + (1 - start) * i / up
    return 1 + (end - 1) * min(1.0, (i - up) / max(1, length - up))


class LRSchedule:
    """Every group's learning rate as a function of the step alone, as nanoGPT's ``get_lr(it)``: :meth:`set`
    puts ``lr(step)`` into the groups before each step (the epoch of step ``s`` is ``s // steps_per_epoch``),
    so a resumed run needs only its step (and a ``plateau``'s state: best accuracy, bad epochs, rates)."""

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
        self.optimizer, self.cfg, self.steps_per_epoch, sc = optimizer, cfg, steps_per_epoch, cfg.schedule
        self.bases = [g["lr"] for g in optimizer.param_groups]
        self.per_iter = sc.sched_unit == "iter"
        total = sc.total_steps(steps_per_epoch)
        self.length = total if self.per_iter else sc.total_epochs(steps_per_epoch)
        self.warmup = round(sc.warmup_epochs * steps_per_epoch)
        self.up = self.warmup if self.per_iter else math.ceil(sc.warmup_epochs)
        self.best, self.bad_epochs, self.plateau = -math.inf, 0, list(self.bases)
        self.set(0)

    def lr(self, group: int, step: int) -> float:
        sc, base = self.cfg.schedule, self.bases[group]
        t = step if self.per_iter else step // self.steps_per_epoch
        if sc.sched == "onecycle":  # its rising half is the warm-up
            start, end = sc.warmup_lr / self.cfg.optim.lr, sc.min_lr / self.cfg.optim.lr
            return base * one_cycle(t, self.up, self.length, start, end)
        lr = base
        if sc.sched == "plateau":
            lr = self.plateau[group]
        elif sc.sched == "cosine":
            lr = sc.min_lr + (base - sc.min_lr) * (1 + math.cos(math.pi * t / max(1, self.length))) / 2
        elif sc.sched in ("step", "multistep"):
            drops = t // sc.decay_epochs if sc.sched == "step" else sum(m <= t for m in sc.decay_milestones)
            for _ in range(drops):  # as torch's StepLR/MultiStepLR multiply, to the last bit
                lr *= sc.decay_rate
        if step < self.warmup:
            start = min(1.0, sc.warmup_lr / self.cfg.optim.lr)
            lr *= start + (1 - start) * step / self.warmup
        return lr

    def set(self, step: int) -> None:
        """The rates of optimizer step ``step`` (0-based)."""
        for i, group in enumerate(self.optimizer.param_groups):
            group["lr"] = self.lr(i, step)

    def step_epoch(self, val_top1: float | None) -> None:
        """After an epoch's validation: ``plateau`` divides the rates by ``--decay-rate`` when the
        accuracy has not improved (by 1e-4 relative, as torch's ReduceLROnPlateau) for more than
        ``--patience-epochs`` epochs, down to ``--min-lr``."""
        if self.cfg.schedule.sched != "plateau":
            return
        if val_top1 is None or math.isnan(val_top1):
            raise ValueError("--sched plateau needs a validation set: use --val-split > 0")
        if val_top1 > self.best * (1 + 1e-4) or self.best == -math.inf:
            self.best, self.bad_epochs = val_top1, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.cfg.schedule.patience_epochs:
            sc = self.cfg.schedule
            self.plateau = [max(lr * sc.decay_rate, sc.min_lr) for lr in self.plateau]
            self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "plateau": list(self.plateau)}

    def load_state_dict(self, state: dict) -> None:
        """Also reads the torch scheduler states of earlier checkpoints (``warmup``/``main``): only a
        plateau's state means anything; every other rate follows from the step."""
        if "main" in state:
            main = state["main"] or {}
            state = {"best": main.get("best", -math.inf), "bad_epochs": main.get("num_bad_epochs", 0)}
            state["plateau"] = main.get("_last_lr", self.bases)
        self.best, self.bad_epochs, self.plateau = state["best"], state["bad_epochs"], list(state["plateau"])


# ------------------------------------------------------------------------------------------ the step
# One step (Trainer.train_epoch): the whitening bias trains or not (a function of the step), forward
# under autocast, label-smoothed cross-entropy, backward, every optimizer steps, the rates of the next
# step are set, and lookahead averages the weights (Zhang et al. 2019, "Lookahead optimizer: k steps
# forward, 1 step back", as airbench): every ``every`` steps a slow copy of the floating-point state
# (weights and batch-norm statistics) moves towards the trained ("fast") one and the fast state jumps
# back to it, ``slow <- slow + alpha (fast - slow); fast <- slow``, with ``1 - alpha`` growing over the
# run as ``0.95**5 * (t / T)**3`` at step ``t`` of ``T``: early on the slow copy simply follows, late in
# training it averages the last few hundred steps. After the last step the model takes the slow weights.
# Deliberate difference: the slow copy is taken when :class:`Lookahead` is built, after the whitening
# initialisation; airbench takes it before, so its frozen whitening filters get a ``decay(5)`` (about
# 1e-4) share of their random initialisation at the first update.

LOOKAHEAD_EVERY = 5  # airbench: an update every 5 steps
LOOKAHEAD_DECAY = 0.95**5
LOOKAHEAD_POWER = 3


class Lookahead:
    """airbench's lookahead over ``model``'s floating-point ``state_dict`` entries: :meth:`update` after
    every optimizer step, with the number of steps done (1, ..., ``total_steps``)."""

    def __init__(
        self,
        model: nn.Module,
        total_steps: int,
        every: int = LOOKAHEAD_EVERY,
        decay: float = LOOKAHEAD_DECAY,
        power: float = LOOKAHEAD_POWER,
    ):
        if total_steps < 1 or every < 1:
            raise ValueError(
                f"lookahead needs total_steps >= 1 and every >= 1, got {total_steps} and {every}"
            )
        if not 0 <= decay <= 1:
            raise ValueError(f"lookahead decay must be in [0, 1], got {decay}")
        self.model, self.total_steps, self.every = model, total_steps, every
        self.decay_max, self.power = decay, power
        self.slow = {k: v.detach().clone() for k, v in self._fast().items()}

    def _fast(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.model.state_dict().items() if v.is_floating_point()}

    def decay(self, step: int) -> float:
        """``1 - alpha`` at ``step``: ``decay * (step / total_steps) ** power``."""
        return self.decay_max * (step / self.total_steps) ** self.power

    @torch.no_grad()
    def update(self, step: int) -> None:
        """After optimizer step number ``step``: average on multiples of ``every``, and at the last step
        put the slow weights into the model."""
        if step % self.every == 0:
            alpha = 1 - self.decay(step)
            for k, fast in self._fast().items():
                self.slow[k].lerp_(fast, alpha)
                fast.copy_(self.slow[k])
        if step == self.total_steps:
            for k, fast in self._fast().items():
                fast.copy_(self.slow[k])

    def state_dict(self) -> dict:
        return {"slow": dict(self.slow), "total_steps": self.total_steps, "every": self.every}

    def load_state_dict(self, state: dict) -> None:
        if (state["total_steps"], state["every"]) != (self.total_steps, self.every):
            raise ValueError(
                f"lookahead state for {state['total_steps']} steps (every {state['every']}) does not fit "
                f"this run's {self.total_steps} (every {self.every}); resume with the same schedule"
            )
        if state["slow"].keys() != self.slow.keys():
            raise ValueError("lookahead state was saved for a different model (its tensors differ)")
        for k, v in state["slow"].items():
            self.slow[k].copy_(v)


# ---------------------------------------------------------------------------------------- evaluation
# The test set after every epoch times the target accuracies (the trainer's clock); the final test adds
# test-time augmentation, whose time counts as training time, as in the speedruns.


def _mirror(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (plain_logits(model, x) + plain_logits(model, x.flip(-1)))


def tta_logits(model: nn.Module, x: torch.Tensor, mode: str, margin: float | None = None) -> torch.Tensor:
    """Logits of ``x`` averaged over test-time views: ``none``, ``flip`` (the image and its mirror) or
    ``flip-translate`` (also, with weight 1/2, copies shifted by one pixel up-left and down-right with
    reflect padding). ``margin``: the shifted views only for the images whose mirrored prediction has its
    two highest probabilities closer than ``margin``; the others keep the mirrored logits (None: all)."""
    if mode == "none":
        return plain_logits(model, x)
    logits = _mirror(model, x)
    if mode == "flip":
        return logits
    unsure = None
    if margin is not None:
        top2 = logits.float().softmax(1).topk(2, dim=1).values
        unsure = (top2[:, 0] - top2[:, 1] < margin).nonzero().squeeze(1)
        if len(unsure) == 0:
            return logits
        x = x[unsure]
    nhwc = x.is_contiguous(memory_format=torch.channels_last)
    memory = torch.channels_last if nhwc else torch.contiguous_format
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = [padded[..., :-2, :-2], padded[..., 2:, 2:]]
    shifted_logits = [_mirror(model, s.contiguous(memory_format=memory)) for s in shifted]
    if unsure is None:
        return 0.5 * logits + 0.25 * (shifted_logits[0] + shifted_logits[1])
    logits = logits.clone()
    logits[unsure] = 0.5 * logits[unsure] + 0.25 * (shifted_logits[0] + shifted_logits[1])
    return logits


def logits_for(tta: str, margin: float | None = None) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
    return plain_logits if tta == "none" else partial(tta_logits, mode=tta, margin=margin)
