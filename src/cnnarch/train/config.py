"""Training configuration and the lecture's named recipes.

A run is described by one frozen :class:`TrainConfig` made of groups (``dataset``, ``optim``,
``schedule``, ``regularization``, ``speedrun``, ``run``), each a frozen dataclass that checks its own
values. Code reads an option in its group (``cfg.optim.lr``); the flat names of the command line and of
files are the boundary: ``cfg.replace(lr=0.05)``, ``resolve_config(lr=0.05)`` and ``from_dict`` put each
in its group. A configuration is resolved in three layers, each overriding the one before: the defaults
below, a named recipe (``--recipe``), then whatever was given on the command line. Then
:meth:`TrainConfig.validate` applies every rule between options: it refuses a setting that would have no
effect (or, where the recipe set it, notes that it is ignored) and picks the precision for the device.
The validated configuration is printed (JSON) at start, saved as ``config.json`` in the run directory and
stored in every checkpoint, so a run can always be read back and resumed.

Field names follow timm's command line where timm has the idea (``decay_rate``, ``decay_milestones``,
``patience_epochs``, ``warmup_epochs``, ``smoothing``, ``drop``); ``-b/--batch-size`` is the *global*
batch (split evenly across ``torchrun`` processes, unlike timm's per-process batch) so that a recipe's
batch size means the same thing however many processes run it. ``decay_milestones`` are learning-rate
steps (epochs or iterations); ``target_accuracy`` are held-out accuracies (%) whose time is reported.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("plateau", "step", "multistep", "cosine", "onecycle", "none")
TTA_MODES = ("none", "flip", "flip-translate")
SCHED_UNITS = ("epoch", "iter")
AUGMENTATIONS = ("crop", "flip", "pca")
AMP_DTYPES = ("bfloat16", "float16")
PRECISIONS = ("auto", "bf16", "fp32")  # a trained network's evaluation and inference (--precision)
PAD_MODES = ("constant", "reflect")
PROGRESSIVE_MODES = ("resize", "crop")


def _bad(name, value, allowed):
    raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def option(default, help: str = "", **cli):
    """A field with its ``cnnarch train`` help; ``cli`` holds argparse extras (``choices``, ``metavar``,
    ``nargs``, ``aliases``). The command line is built from these fields (``cnnarch.cli.cmd_train``)."""
    return field(default=default, metadata={"help": help, **cli})


class _Options:
    """A group of options: values outside a field's ``choices`` are refused, then the group's ``check``."""

    def __post_init__(self):
        for f in fields(self):
            if "choices" not in f.metadata:
                continue
            value = getattr(self, f.name)
            for item in value if isinstance(value, tuple) else (value,):
                if item not in f.metadata["choices"]:
                    _bad("--" + f.name.replace("_", "-"), item, f.metadata["choices"])
        self.check()

    def check(self) -> None:
        pass


@dataclass(frozen=True)
class DatasetOptions(_Options):
    data: str | None = option(
        None,
        "dataset directory or name (cifar10, cifar100, mnist, fashion-mnist); "
        "else $CNNARCH_DATA, the cache, then a download",
    )
    val_split: float = option(0.1, "fraction of train held out")
    limit_train: int | None = option(None, "use only N training images", metavar="N")
    limit_val: int | None = option(None, "use only N validation/test images", metavar="N")
    augment: str = option("crop,flip", "comma list of crop, flip, pca, or none")
    crop_padding: int | None = option(None, "padding before random crops (unset: 1/8 of the side)")
    workers: int = option(4, "loader processes for large images", aliases=("-j",))
    skip_corrupt: bool = option(False, "leave out image files that cannot be decoded (else: an error)")
    image_size: int | None = option(
        None, "resize images of a directory to NxN (needed when their sizes differ)", metavar="N"
    )

    def check(self):
        for name in self.augmentations:
            if name not in AUGMENTATIONS:
                _bad("--augment item", name, (*AUGMENTATIONS, "none"))
        if not 0.0 <= self.val_split < 1.0:
            raise ValueError(f"--val-split must be in [0, 1), got {self.val_split}")
        for name in ("limit_train", "limit_val", "image_size"):
            n = getattr(self, name)
            if n is not None and n < 1:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be >= 1 (or left out for all images), got {n}"
                )

    @property
    def augmentations(self) -> tuple[str, ...]:
        return tuple(a for a in self.augment.replace(" ", "").split(",") if a and a != "none")


@dataclass(frozen=True)
class OptimOptions(_Options):
    opt: str = option("sgd", choices=OPTIMIZERS)
    lr: float = option(0.1)
    momentum: float = option(0.9)
    nesterov: bool = option(False)
    weight_decay: float = option(1e-4)

    def check(self):
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class ScheduleOptions(_Options):
    epochs: int = option(10)
    iterations: int | None = option(None, "stop after this many steps if sooner than --epochs")
    batch_size: int = option(128, "global batch", aliases=("-b",))
    sched: str = option("cosine", choices=SCHEDULES)
    sched_unit: str = option(
        "epoch", "whether decay epochs/milestones count epochs or steps", choices=SCHED_UNITS
    )
    decay_epochs: int = option(30, "step schedule period")
    decay_milestones: tuple[int, ...] = option((), "multistep: lr steps, in epochs or steps (--sched-unit)")
    decay_rate: float = option(0.1, "lr factor at each decay")
    patience_epochs: int = option(5, "plateau patience")
    min_lr: float = option(0.0)
    warmup_epochs: float = option(0.0, "linear warm-up length")
    warmup_lr: float = option(1e-3, "lr at the start of warm-up")

    def check(self):
        if self.batch_size < 1 or self.epochs < 1:
            raise ValueError(f"--batch-size and --epochs must be >= 1, got {self.batch_size}, {self.epochs}")
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(
                f"--iterations must be >= 1 (or left out: --epochs decides), got {self.iterations}"
            )

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps of the run: ``epochs`` epochs, or ``iterations`` steps if sooner."""
        n = self.epochs * steps_per_epoch
        return min(n, self.iterations) if self.iterations else n

    def total_epochs(self, steps_per_epoch: int) -> int:
        """Epochs the run trains (the last may be cut short by ``iterations``)."""
        return math.ceil(self.total_steps(steps_per_epoch) / steps_per_epoch)


@dataclass(frozen=True)
class RegularizationOptions(_Options):
    drop: float | None = option(None, "dropout probability (unset: the model's own)")
    smoothing: float = option(0.0, "label smoothing")
    aux_loss_weight: float | None = option(None, "weight of auxiliary losses (GoogLeNet: 0.3)")

    def check(self):
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"--smoothing must be in [0, 1), got {self.smoothing}")
        if self.drop is not None and not 0.0 <= self.drop < 1.0:
            raise ValueError(f"--drop must be in [0, 1), got {self.drop}")


@dataclass(frozen=True)
class SpeedrunOptions(_Options):
    """The CIFAR-10 speedrun techniques (recipe cifar-fast; docs/cifar_fast.md); each applies to any run."""

    whiten: bool = option(False, "patch-whitening first layer, frozen")
    bias_lr_scale: float = option(1.0, "lr factor of BN shifts (1/it for their weight decay)")
    bn_momentum: float | None = option(None, "batch-norm momentum (unset: torch's 0.1)")
    tta: str = option("none", "test-time augmentation of the final test", choices=TTA_MODES)
    tta_margin: float | None = option(
        None,
        "flip-translate's shifted views only for the images whose mirrored prediction is unsure: its two "
        "highest probabilities closer than this (unset: every image)",
    )
    target_accuracy: tuple[float, ...] = option(
        (), "held-out top-1 %% to time, e.g. 90 93 94 (not lr steps)", metavar="PERCENT", nargs="*"
    )
    pad_mode: str = option("constant", "padding of the random crops: zeros or mirrored", choices=PAD_MODES)
    alternate_flip: bool = option(False, "flip each image in every other epoch (needs flip in --augment)")
    whiten_bias_epochs: int = option(0, "epochs the whitening bias trains, then frozen (0: always)")
    lookahead: bool = option(False, "lookahead averaging of the weights; ends on the slow weights")
    muon: bool = option(False, "Muon for the convolution filters, --opt for the rest")
    muon_lr: float = option(0.24, "Muon's peak lr (the schedule scales it as --lr)")
    muon_momentum: float = option(0.6, "Muon's Nesterov momentum")
    muon_ns_steps: int = option(3, "Muon's Newton-Schulz iterations")
    progressive_size: tuple[int, ...] = option(
        (),
        "train the first epochs on NxN images, in stages: one size per stage (--progressive-epochs)",
        metavar="N",
    )
    progressive_epochs: tuple[int, ...] = option(
        (), "epochs of each --progressive-size stage, in order, before the full size", metavar="E"
    )
    progressive_mode: tuple[str, ...] = option(
        ("resize",),
        "the small epochs' images: the whole image downscaled, or a random NxN crop of it; one mode for "
        "every stage or one per stage",
        choices=PROGRESSIVE_MODES,
    )

    def check(self):
        if any(n < 1 for n in self.progressive_size + self.progressive_epochs):
            raise ValueError(
                f"--progressive-size and --progressive-epochs must be >= 1, got "
                f"{list(self.progressive_size)} and {list(self.progressive_epochs)}"
            )
        if self.whiten_bias_epochs < 0:
            raise ValueError(f"--whiten-bias-epochs must be >= 0, got {self.whiten_bias_epochs}")
        if self.tta_margin is not None and not 0 < self.tta_margin <= 1:
            raise ValueError(
                f"--tta-margin is a difference of two probabilities, in (0, 1]; got {self.tta_margin}"
            )
        if not self.muon_lr > 0 or not 0 < self.muon_momentum < 1 or self.muon_ns_steps < 1:
            raise ValueError(
                f"--muon-lr must be > 0, --muon-momentum in (0, 1), --muon-ns-steps >= 1; got "
                f"{self.muon_lr}, {self.muon_momentum}, {self.muon_ns_steps}"
            )
        if not self.bias_lr_scale > 0:
            raise ValueError(f"--bias-lr-scale must be > 0, got {self.bias_lr_scale}")
        if self.bn_momentum is not None and not 0.0 < self.bn_momentum <= 1.0:
            raise ValueError(f"--bn-momentum must be in (0, 1], got {self.bn_momentum}")
        if any(not a > 0 for a in self.target_accuracy):
            raise ValueError(f"--target-accuracy values are percentages > 0, got {self.target_accuracy}")


FREEZE = ("none", "features", "all-but-head")


@dataclass(frozen=True)
class InitOptions(_Options):
    """Start from trained weights (fine-tuning; docs/use.md): the classifier is replaced when the data's
    class count differs from the weights'."""

    initial_checkpoint: str | None = option(
        None, "weights to start from: a file, URL or weight name (IMAGENET1K_V1, DEFAULT)", metavar="W"
    )
    pretrained: bool = option(False, "start from the network's DEFAULT weights")
    num_classes: int | None = option(None, "classes of the new head; must be the data's (unset: the data's)")
    freeze: str = option(
        "none", "train only the classifier layers (features) or only the head (all-but-head)", choices=FREEZE
    )

    def check(self):
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError(f"--num-classes must be 1 or more, got {self.num_classes}")


@dataclass(frozen=True)
class RunOptions(_Options):
    seed: int = option(0)
    amp: bool | None = option(
        False, "mixed precision autocast (recipes: unset, on where the device computes bf16 fast)"
    )
    amp_dtype: str = option("bfloat16", choices=AMP_DTYPES)
    channels_last: bool | None = option(
        False, "NHWC memory format (recipes: unset, on where it is faster: a GPU, a CPU with AVX2 or more)"
    )
    compile: bool = option(False, "torch.compile the model")
    device: str | None = option(None, "cpu, cuda, cuda:1 (unset: cuda when present)")
    output: str = option("runs/train", "run directory", metavar="DIR")
    resume: str | None = option(
        None,
        "continue the run in RUN where it stopped (a run directory or its last.pt; alone: --output's); "
        "auto: --output's when it holds one, else start (torchrun --max-restarts)",
        metavar="RUN",
        nargs="?",
        const="",
    )
    overwrite: bool = option(False, "start a new run in an --output that holds one, replacing its files")
    log_interval: int = option(
        0, "steps between extra log lines off a terminal (0: none; progress lines come every 15 s anyway)"
    )
    threads: int | None = option(
        None,
        "torch threads (unset: the cores free when the run starts, or $OMP_NUM_THREADS; 0: the free cores, "
        "counted again during the run and shared by torchrun's processes; N: always N, so that seeded runs "
        "repeat bit for bit)",
    )
    sync_bn: bool = option(False, "under torchrun: batch norm over the global batch, not each share")
    keep_memory: bool = option(
        True,
        "keep freed memory in the process (glibc), so that each step reuses the last one's pages instead "
        "of faulting fresh ones in (a CPU step at batch 512: up to 14%% faster; cnnarch.memory)",
    )

    def check(self):
        if self.threads is not None and self.threads < 0:
            raise ValueError(f"--threads must be >= 0 (0: one per core), got {self.threads}")


GROUPS = {
    "dataset": DatasetOptions,
    "optim": OptimOptions,
    "schedule": ScheduleOptions,
    "regularization": RegularizationOptions,
    "speedrun": SpeedrunOptions,
    "init": InitOptions,
    "run": RunOptions,
}
GROUP_OF = {f.name: g for g, cls in GROUPS.items() for f in fields(cls)}  # option name -> its group
TOP_LEVEL = ("model", "recipe", "notes")
_TUPLES = ("decay_milestones", "target_accuracy", "notes")
# one value, as earlier versions stored them, is one stage; None and 0 are none
_STAGES = ("progressive_size", "progressive_epochs", "progressive_mode")


def _as_tuple(name: str, value) -> tuple:
    if name in _STAGES and not isinstance(value, (list, tuple)):
        return () if value is None or value == 0 else (value,)
    return tuple(value)


@dataclass(frozen=True)
class TrainConfig:
    """A run's configuration: the model, the option groups, and the recipe it came from (with what the
    recipe says about its values)."""

    model: str = option("resnet18", "network of the zoo")
    dataset: DatasetOptions = field(default_factory=DatasetOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    schedule: ScheduleOptions = field(default_factory=ScheduleOptions)
    regularization: RegularizationOptions = field(default_factory=RegularizationOptions)
    speedrun: SpeedrunOptions = field(default_factory=SpeedrunOptions)
    init: InitOptions = field(default_factory=InitOptions)
    run: RunOptions = field(default_factory=RunOptions)
    recipe: str | None = option(None, "named recipe (`cnnarch recipes` lists them)")
    notes: tuple[str, ...] = field(default=(), compare=False)

    @staticmethod
    def option_names() -> tuple[str, ...]:
        """Every option's flat name (the command line's, with ``-`` as ``_``)."""
        return (*TOP_LEVEL, *GROUP_OF)

    @classmethod
    def from_options(cls, **options) -> TrainConfig:
        """A configuration from flat option names; unknown names are refused."""
        return cls().replace(**options)

    def replace(self, **changes) -> TrainConfig:
        unknown = sorted(set(changes) - set(self.option_names()))
        if unknown:
            raise ValueError(f"unknown training options {unknown} (a configuration from another version?)")
        changes = {k: _as_tuple(k, v) if k in _TUPLES + _STAGES else v for k, v in changes.items()}
        grouped: dict = {k: v for k, v in changes.items() if k in TOP_LEVEL}
        for g in GROUPS:
            mine = {k: v for k, v in changes.items() if GROUP_OF.get(k) == g}
            if mine:
                grouped[g] = dataclasses.replace(getattr(self, g), **mine)
        return dataclasses.replace(self, **grouped)

    def flat(self) -> dict:
        """Every option by its flat name (the command line's and the files' form)."""
        top = {k: getattr(self, k) for k in TOP_LEVEL}
        return top | {k: getattr(getattr(self, g), k) for k, g in GROUP_OF.items()}

    def validate(self, device: str | None = None) -> TrainConfig:
        """This configuration with every rule between options applied (the one place they live): a
        setting without effect (:data:`NO_EFFECT`) is refused, or, where the recipe set it or the run is
        resumed, put back to its default with an ``ignored:`` note; contradictions are refused. Given
        ``device``, ``amp`` unset means bf16 autocast where :func:`bf16_is_fast`, and ``channels_last``
        unset means NHWC where that is faster: a GPU, or a CPU with AVX2 or more (the cifar_fast step on
        one thread of a Zen 4: 1.2x faster in fp32, 1.3x in bf16; 1.1x in fp32 with oneDNN held to AVX2).
        Validating twice gives the same configuration."""
        values, default = self.flat(), TrainConfig().flat()
        recipe = RECIPES[self.recipe].values if self.recipe in RECIPES else {}
        notes, refused, dropped = list(self.notes), [], {}
        for name, needs, holds in NO_EFFECT:
            value = values[name]
            if value == default[name] or holds(self):
                continue
            flag = "--" + name.replace("_", "-")
            shown = " ".join(map(str, value)) if isinstance(value, tuple) else value  # as it is typed
            if recipe.get(name) == value or self.run.resume:
                notes.append(f"{IGNORED}{flag} {shown} has no effect without {needs}")
                dropped[name] = default[name]
            else:
                refused.append(f"{flag} {shown} has no effect without {needs}; drop it or add {needs}")
        s, init = self.speedrun, self.init
        sizes, lengths, modes = s.progressive_size, s.progressive_epochs, s.progressive_mode
        if len(sizes) != len(lengths):
            refused.append(
                "--progressive-size N and --progressive-epochs E go together, one E for each N (E epochs at "
                f"NxN, stage after stage); got sizes {list(sizes)} and epochs {list(lengths)}"
            )
        elif sizes and len(modes) not in (1, len(sizes)):
            refused.append(
                f"--progressive-mode takes one mode for every stage or one per stage ({len(sizes)}); got "
                f"{list(modes)}"
            )
        if sum(lengths) >= self.schedule.epochs:
            refused.append(
                f"--progressive-epochs {' '.join(map(str, lengths))} of --epochs {self.schedule.epochs} "
                "leaves no epoch at full size; the network would be tested at a size it never trained on"
            )
        if init.initial_checkpoint and init.pretrained:
            refused.append("--initial-checkpoint and --pretrained both name weights; give one")
        if self.schedule.sched == "multistep" and not self.schedule.decay_milestones:
            refused.append("--sched multistep needs --decay-milestones, e.g. --decay-milestones 30 60")
        amp, cpu = self.run.amp, device == "cpu"
        fast = device is not None and bf16_is_fast(device)
        if amp and cpu and self.run.amp_dtype == "float16":
            refused.append("--amp-dtype float16 is for GPUs; on a CPU use --amp-dtype bfloat16")
        elif amp is None and cpu and not fast:
            notes.append(
                f"{IGNORED}amp: this CPU has no AMX or AVX512-BF16 units, and bf16 autocast there is "
                "several times slower than fp32 (--amp forces it)"
            )
        elif amp and cpu and not fast and self.run.amp_dtype == "bfloat16":
            notes.append("warning: --amp on a CPU without AMX/AVX512-BF16 units runs slower than fp32")
        if amp is None and device is not None:
            amp = fast and (not cpu or self.run.amp_dtype == "bfloat16")
        last = self.run.channels_last
        if last is None and device is not None:
            last = not cpu or "avx2" in cpu_flags()
        if refused:
            raise ValueError("\n".join(refused))
        return self.replace(**dropped, amp=amp, channels_last=last, notes=tuple(dict.fromkeys(notes)))

    def to_dict(self) -> dict:
        """Nested, JSON-ready (tuples as lists)."""

        def plain(obj) -> dict:
            return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(obj).items()}

        d = {"model": self.model, **{g: plain(getattr(self, g)) for g in GROUPS}}
        return {**d, "recipe": self.recipe, "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The inverse of :meth:`to_dict`; also reads the flat layout of earlier versions (which named a
        ``trainer`` and called ``target_accuracy`` ``milestones``)."""
        flat = {k: v for k, v in d.items() if k not in GROUPS and k != "trainer"}
        flat |= {k: v for g in GROUPS for k, v in d.get(g, {}).items()}
        if "milestones" in flat:
            flat["target_accuracy"] = flat.pop("milestones")
        return cls.from_options(**flat)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def summary(self) -> list[str]:
        """Three lines for the console; the whole configuration is the run folder's ``config.json``."""
        d, o, s, sp, r = self.dataset, self.optim, self.schedule, self.speedrun, self.run
        smoothing = self.regularization.smoothing
        warmup = f", {s.warmup_epochs:g} warm-up epochs" if s.warmup_epochs else ""
        if s.sched == "onecycle" and not s.warmup_epochs:  # a cycle without its rising half
            warmup = f" without warm-up: linear from the peak to {s.min_lr:g}"
        momentum = f", momentum {o.momentum:g}{' nesterov' if o.nesterov else ''}" if o.opt == "sgd" else ""
        what = f"{f'recipe {self.recipe}, ' if self.recipe else ''}data {d.data or 'cifar10'}"
        how = (
            f"batch {s.batch_size}, {o.opt} lr {o.lr:g} ({s.sched}{warmup}){momentum}, "
            f"weight decay {o.weight_decay:g}"
        )
        tricks = [f"augment {d.augment}"]
        tricks += [f"label smoothing {smoothing:g}"] if smoothing else []
        tricks += [f"{r.amp_dtype} autocast"] if r.amp else []
        flags = ("channels_last", "whiten", "lookahead", "muon", "compile")
        tricks += [n.replace("_", "-") for n in flags if getattr(r if hasattr(r, n) else sp, n)]
        unsure = f" (shifted views below a margin of {sp.tta_margin:g})" if sp.tta_margin is not None else ""
        tricks += [f"TTA {sp.tta}{unsure}"] if sp.tta != "none" else []
        tricks += [f"seed {r.seed}"]
        return [what, how, ", ".join(tricks)]


# Hyperparameters that only change how fast or where a run goes, or how long it is, not what it computes
# per step: a resumed run may change these. Every other field must match the checkpoint's.
RESUMABLE_CHANGES = frozenset(
    {"epochs", "iterations", "output", "device", "workers", "log_interval", "compile", "limit_val", "data"}
    | {"target_accuracy", "threads", "overwrite", "skip_corrupt", "keep_memory"}
)


IGNORED = "ignored: "  # how validate()'s notes on settings without effect begin

# A setting that has no effect unless the condition holds: (option, the condition in words, the test).
NO_EFFECT: tuple[tuple[str, str, Callable[[TrainConfig], bool]], ...] = (
    ("momentum", "--opt sgd", lambda c: c.optim.opt == "sgd"),
    ("nesterov", "--opt sgd", lambda c: c.optim.opt == "sgd"),
    ("nesterov", "--momentum > 0", lambda c: c.optim.momentum > 0),
    ("muon_lr", "--muon", lambda c: c.speedrun.muon),
    ("muon_momentum", "--muon", lambda c: c.speedrun.muon),
    ("muon_ns_steps", "--muon", lambda c: c.speedrun.muon),
    ("decay_epochs", "--sched step", lambda c: c.schedule.sched == "step"),
    ("decay_milestones", "--sched multistep", lambda c: c.schedule.sched == "multistep"),
    ("decay_rate", "--sched step, multistep or plateau", lambda c: c.schedule.sched in _DECAYING),
    ("patience_epochs", "--sched plateau", lambda c: c.schedule.sched == "plateau"),
    ("min_lr", "--sched plateau, cosine or onecycle", lambda c: c.schedule.sched in _FLOORED),
    ("sched_unit", "--sched step, multistep, cosine or onecycle", lambda c: c.schedule.sched in _STEPPED),
    ("warmup_lr", "--warmup-epochs > 0", lambda c: c.schedule.warmup_epochs > 0),
    ("whiten_bias_epochs", "--whiten", lambda c: c.speedrun.whiten),
    ("tta_margin", "--tta flip-translate", lambda c: c.speedrun.tta == "flip-translate"),
    ("progressive_mode", "--progressive-size", lambda c: bool(c.speedrun.progressive_size)),
    ("crop_padding", "crop in --augment", lambda c: "crop" in c.dataset.augmentations),
    ("pad_mode", "crop in --augment", lambda c: "crop" in c.dataset.augmentations),
    ("alternate_flip", "flip in --augment", lambda c: "flip" in c.dataset.augmentations),
    ("amp_dtype", "--amp", lambda c: c.run.amp is not False),
    (
        "freeze",
        "--pretrained or --initial-checkpoint",
        lambda c: c.init.pretrained or c.init.initial_checkpoint,
    ),
)
_DECAYING = ("step", "multistep", "plateau")
_FLOORED = ("plateau", "cosine", "onecycle")
_STEPPED = ("step", "multistep", "cosine", "onecycle")


def cpu_flags() -> set[str]:
    """The instruction-set flags of this CPU (Linux's /proc/cpuinfo; elsewhere none known)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    lines = [line.split(":", 1)[1] for line in info.splitlines() if line.startswith("flags")]
    return {flag for line in lines for flag in line.split()}


def cpu_model() -> str:
    """This CPU's model name with its x86 family and model numbers, e.g. ``AMD EPYC (family 26, model 2)``
    (Linux's /proc/cpuinfo; elsewhere what :mod:`platform` knows). A virtual machine may show only the
    brand; the numbers tell its generations apart (AMD family 25: Zen 3 and 4, 26: Zen 5), whose kernels
    and clocks differ."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    fields: dict[str, str] = {}
    for line in info.splitlines():
        key, sep, value = line.partition(":")
        if sep:  # the first processor's value of each field
            fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        return f"{name} (family {fields['cpu family']}, model {fields['model']})"
    return name


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has AMX or AVX512-BF16 units (Linux; elsewhere assumed not)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def bf16_is_fast(device_type: str) -> bool:
    """Whether bfloat16 autocast runs faster than fp32 on a device of this type: a GPU, or a CPU with AMX
    or AVX512-BF16 units. Elsewhere the CPU converts every operand and bf16 is several times slower
    (ResNet-18 training 4 vs 20 images/s on one AVX2 core). Training's ``--amp`` left unset and
    inference's ``--precision auto`` both choose by this."""
    return device_type != "cpu" or cpu_has_fast_bf16()


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str
    values: dict
    notes: tuple[str, ...] = ()


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe(
            "alexnet",
            "Krizhevsky, Sutskever & Hinton, NIPS 2012, sec. 5; the lecture's AlexNet slide",
            dict(
                model="alexnet",
                epochs=90,
                batch_size=128,
                opt="sgd",
                lr=1e-2,
                momentum=0.9,
                weight_decay=5e-4,
                sched="plateau",
                decay_rate=0.1,
                drop=0.5,
                augment="crop,flip,pca",
            ),
            (
                "lr 1e-2 divided by 10 when validation accuracy stops improving (3 times in the paper)",
                "the paper ensembles 7 CNNs: train 7 seeds and run `cnnarch eval` on all 7 checkpoints",
            ),
        ),
        Recipe(
            "vgg",
            "Simonyan & Zisserman, ICLR 2015, sec. 3.1",
            dict(
                model="vgg16",
                epochs=74,
                batch_size=256,
                opt="sgd",
                lr=1e-2,
                momentum=0.9,
                weight_decay=5e-4,
                sched="plateau",
                decay_rate=0.1,
                drop=0.5,
                augment="crop,flip,pca",
            ),
            ("lr divided by 10 when validation accuracy stops improving; 3 times, 74 epochs in the paper",),
        ),
        Recipe(
            "googlenet",
            "Szegedy et al., CVPR 2015, sec. 5-6",
            dict(
                model="googlenet",
                epochs=64,
                batch_size=128,
                opt="sgd",
                lr=1e-2,
                momentum=0.9,
                weight_decay=2e-4,
                sched="step",
                decay_epochs=8,
                decay_rate=0.96,
                aux_loss_weight=0.3,
                augment="crop,flip,pca",
            ),
            (
                "auxiliary classifier losses weighted 0.3 (sec. 5); lr decreased 4% every 8 epochs (sec. 6)",
                "the paper gives neither base lr, batch size nor weight decay: lr 1e-2 and weight decay 2e-4 "
                "follow BVLC's Caffe GoogLeNet solver, batch 128 is ours",
                "dropout stays the model's own: 0.4 before the classifier, 0.7 in the aux heads",
            ),
        ),
        Recipe(
            "resnet-imagenet",
            "the lecture's ResNet slide; He et al., CVPR 2016, sec. 3.4",
            dict(
                model="resnet50",
                epochs=120,
                batch_size=256,
                opt="sgd",
                lr=0.1,
                momentum=0.9,
                weight_decay=1e-5,
                sched="plateau",
                decay_rate=0.1,
                drop=0.0,
                augment="crop,flip",
            ),
            (
                "weight decay 1e-5 as the lecture quotes it; the paper uses 1e-4 (--weight-decay 1e-4)",
                "lr 0.1 divided by 10 when the error plateaus; 60e4 iterations (~120 epochs) in the paper",
                "batch norm after every convolution, no dropout",
            ),
        ),
        Recipe(
            "resnet-cifar",
            "He et al., CVPR 2016, sec. 4.2",
            dict(
                model="resnet20",
                batch_size=128,
                iterations=64_000,
                epochs=182,
                opt="sgd",
                lr=0.1,
                momentum=0.9,
                weight_decay=1e-4,
                sched="multistep",
                sched_unit="iter",
                decay_milestones=(32_000, 48_000),
                decay_rate=0.1,
                val_split=0.1,
                augment="crop,flip",
            ),
            (
                "lr 0.1, /10 at 32k and 48k iterations, stop at 64k; 45k/5k train/val split",
                "4-pixel padding, random 32x32 crop, horizontal flip; the paper subtracts the per-pixel "
                "mean, cnnarch normalises each channel by the training set's mean and std",
                "ResNet-110 warms up at lr 0.01 until training error < 80% (~400 iterations): "
                "--warmup-epochs 1 --warmup-lr 0.01",
            ),
        ),
        Recipe(
            "cifar-fast",
            "the CIFAR-10 speedruns: Page 2018 (ResNet-9), hlb-CIFAR10, Jordan 2024 (airbench94, "
            "arXiv:2404.00498); docs/cifar_fast.md",
            dict(
                model="cifar_fast",
                val_split=0.0,
                epochs=10,
                batch_size=1024,
                opt="sgd",
                lr=1.5,
                momentum=0.85,
                nesterov=True,
                weight_decay=1.33e-3,
                bias_lr_scale=64.0,
                sched="onecycle",
                sched_unit="iter",
                warmup_epochs=2.3,
                warmup_lr=0.3,
                min_lr=0.105,
                smoothing=0.2,
                augment="crop,flip",
                crop_padding=2,
                whiten=True,
                whiten_bias_epochs=3,
                bn_momentum=0.4,
                pad_mode="reflect",
                alternate_flip=True,
                lookahead=True,
                tta="flip-translate",
                amp=None,  # bf16 autocast where the device computes it fast (validate)
                channels_last=None,  # NHWC where it is faster (validate)
                target_accuracy=(80.0, 90.0, 93.0, 94.0),
                threads=0,
            ),
            (
                "every trick is an option: --no-whiten, --bias-lr-scale 1, --bn-momentum 0.1, --tta none, "
                "--smoothing 0, --augment flip, --sched cosine, --no-nesterov, --no-amp, --no-channels-last, "
                "--no-lookahead, --no-alternate-flip, --pad-mode constant, --whiten-bias-epochs 0; "
                "--muon trains the filters with Muon (airbench94_muon)",
                "as airbench: lookahead every 5 steps, alternating flips, 2-pixel reflect-padded shifts, "
                "the whitening bias trained for 3 epochs and then frozen",
                "lr 1.5 and weight decay 1.33e-3 are per mean loss over a batch of 1024 (airbench's 11.5 and "
                "0.0153 in its decoupled units); BN shifts get 64x the lr and 1/64 the weight decay",
                "one cycle: lr 0.3 -> 1.5 over the first 23% of steps, then linearly down to 0.105",
                "trains on all 50k training images (no validation split) and reports the test set after "
                "every epoch (time to --target-accuracy) and with test-time augmentation at the end",
                "--threads 0: one thread per free core, counted again every 20 s of the run",
            ),
        ),
    ]
}
RECIPES["cifar-fast-93"] = Recipe(
    "cifar-fast-93",
    "Jordan 2024, airbench93 (package airbench 0.1.8, lib_airbench93.py); docs/cifar_fast.md",
    {
        **RECIPES["cifar-fast"].values,
        "model": "cifar_fast_93",
        "epochs": 11,
        "warmup_epochs": 2.53,
        "target_accuracy": (80.0, 90.0, 93.0),
    },
    (
        "cifar-fast's recipe on the narrower 93% network (64/128/128 channels), 11 epochs as airbench93; "
        "the lr peaks after 23% of the steps (2.53 epochs)",
        *RECIPES["cifar-fast"].notes,
    ),
)

RECIPES["cifar-fast-muon"] = Recipe(
    "cifar-fast-muon",
    "Jordan 2024, airbench94_muon.py (github.com/KellerJordan/cifar10-airbench); docs/cifar_fast.md",
    {**RECIPES["cifar-fast"].values, "muon": True, "epochs": 12, "target_accuracy": (80.0, 90.0, 91.0)},
    (
        "cifar-fast with Muon for the convolution filters (lr 0.24, Nesterov momentum 0.6, 3 Newton-Schulz "
        "steps) and 12 epochs; the lr still peaks after 2.3 epochs",
        *RECIPES["cifar-fast"].notes,
    ),
)

RECIPES["cifar-fast-93-short"] = Recipe(
    "cifar-fast-93-short",
    "Jordan 2024, airbench93 and airbench94_muon.py; progressive resizing (Howard 2018, fast.ai "
    "DAWNBench); docs/cifar_fast.md",
    {
        # no warm-up, so no warm-up rate
        **{k: v for k, v in RECIPES["cifar-fast-93"].values.items() if k != "warmup_lr"},
        "muon": True,
        "epochs": 10,
        "progressive_size": (24,),
        "progressive_epochs": (6,),
        # airbench94_muon's schedule: from the peak at the first step linearly down to 0, no lookahead
        "warmup_epochs": 0.0,
        "min_lr": 0.0,
        "lookahead": False,
        # a CPU thread steps as fast per image at 512 as at 1024, so twice the steps cost nothing;
        # every rate halves with the batch (the same step per image)
        "batch_size": 512,
        "lr": 0.75,
        "muon_lr": 0.12,
        # the four shifted views cost two thirds of the final test and change only unsure predictions
        "tta_margin": 0.3,
        "target_accuracy": (85.0, 88.0, 89.1),
    },
    (
        "cifar-fast-93 made shorter: Muon for the convolution filters, 10 epochs of which the first 6 on "
        "images downscaled to 24 pixels (a step costs about (24/32)^2 of a full one)",
        "airbench94_muon's schedule: every rate falls linearly from its peak at the first step to 0 at the "
        "last, without warm-up or lookahead; cifar-fast-93's one cycle instead: --lookahead "
        "--warmup-epochs 2.3 --warmup-lr 0.15 --min-lr 0.0525",
        "batches of 512 at half of cifar-fast's rates: lr 0.75, Muon 0.12; weight decay 1.33e-3 and the BN "
        "shifts' 64x as cifar-fast (twice the steps for the same images, each as fast per image on a CPU "
        "thread)",
        "as airbench: alternating flips, 2-pixel reflect-padded shifts, the whitening bias trained for 3 "
        "epochs and then frozen",
        "TTA: every test image and its mirror; the four shifted views only where the two highest "
        "probabilities are less than 0.3 apart (about 17 % of the images; --tta-margin unset: all)",
        *RECIPES["cifar-fast"].notes[4:],
    ),
)


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(
            f"unknown recipe {name!r}; known: {', '.join(RECIPES)} (`cnnarch recipes`)"
        ) from None


def resolve_config(recipe: str | None = None, **overrides) -> TrainConfig:
    """Defaults, then the recipe's values, then ``overrides`` (only the options actually given)."""
    values: dict = {}
    notes: tuple[str, ...] = ()
    if recipe is not None:
        r = get_recipe(recipe)
        values.update(r.values)
        notes = r.notes
    values.update(overrides)
    return TrainConfig.from_options(recipe=recipe, notes=notes, **values).validate()


def resume_conflicts(saved: TrainConfig, overrides: dict) -> list[str]:
    """Explicit command-line values that differ from a checkpoint's and would change the computation."""
    # as the run computes with it: settings without effect put back to their defaults (validate)
    old = saved.replace(resume=saved.run.resume or "checkpoint").validate().flat()
    return [
        f"{k}: checkpoint has {old[k]!r}, command line gives {v!r}"
        for k, v in sorted(overrides.items())
        if k not in RESUMABLE_CHANGES and k != "resume" and (tuple(v) if isinstance(v, list) else v) != old[k]
    ]
