"""``cnnarch train``: train a network of the zoo with a named recipe and command-line overrides.

cnnarch train --recipe resnet-cifar --data ../shared/data/cifar10-jpeg --epochs 5
cnnarch train --model vgg11 --lr 0.01 --sched plateau -b 64 --amp --channels-last
cnnarch train --resume runs/train/last.pt --epochs 30       # continue, bit-exact on a CPU
cnnarch train --recipe cifar-fast --data ../shared/data/cifar10-jpeg   # docs/cifar_fast.md
torchrun --nproc-per-node 2 -m cnnarch.cli train ...        # data parallel; -b stays the global batch
torchrun --max-restarts 3 ... -m cnnarch.cli train --resume auto ...  # restarts continue from last.pt
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import fields
from pathlib import Path

from cnnarch.train.config import GROUPS, TrainConfig, resolve_config

S = argparse.SUPPRESS  # only the options actually given override the recipe


def add_option(group, f, default=S, help: str | None = None) -> None:
    """One flag from a TrainConfig field: its type from the annotation, help and extras from metadata.
    Other commands pass their own ``default`` and ``help`` (``cnnarch eval``'s ``--batch-size``)."""
    cli = dict(f.metadata)
    text = cli.pop("help")
    if help is not None:
        text = help
    flags = (*cli.pop("aliases", ()), "--" + f.name.replace("_", "-"))
    kind = f.type  # a string: the annotations are postponed
    if kind == "bool":
        cli["action"] = argparse.BooleanOptionalAction
    elif "choices" not in cli:
        cli["type"] = int if kind.startswith(("int", "tuple[int")) else float if "float" in kind else str
    if kind.startswith("tuple"):
        cli.setdefault("nargs", "+")
    shown = f.default if default is S else default
    if help is None and shown is not None and shown is not False and shown != ():
        text = f"{text} (default {shown})".lstrip()
    group.add_argument(*flags, default=default, help=text, **cli)


def add_config_options(parser, **changes: dict) -> None:
    """Flags of another command that mean what ``cnnarch train``'s do, built from the same fields:
    ``name={"default": ..., "help": ...}``, each key optional."""
    known = {f.name: f for cls in (TrainConfig, *GROUPS.values()) for f in fields(cls)}
    for name, change in changes.items():
        add_option(parser, known[name], **{"default": None, **change})


def add_parser(sub):
    p = sub.add_parser(
        "train",
        help="train a network with a recipe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("what")
    for f in fields(TrainConfig):
        if "help" in f.metadata:
            add_option(g, f)
    for name, cls in GROUPS.items():
        own_doc = cls.__doc__ if not cls.__doc__.startswith(cls.__name__ + "(") else None  # not dataclass's
        g = p.add_argument_group(name, own_doc)
        for f in fields(cls):
            add_option(g, f)
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    p.set_defaults(run=run)


def overrides_from(args) -> dict:
    names = set(TrainConfig.option_names())
    return {k: v for k, v in vars(args).items() if k in names}


def absolute_data(cfg: TrainConfig) -> TrainConfig:
    """A ``--data`` directory stored absolute, so that `cnnarch eval` and --resume find it from anywhere."""
    from cnnarch.train.data import is_dataset_name

    if cfg.data is not None and not is_dataset_name(cfg.data) and Path(cfg.data).expanduser().is_dir():
        return cfg.replace(data=str(Path(cfg.data).expanduser().resolve()))
    return cfg


def run(args) -> int:
    from cnnarch.train.trainer import NonFiniteLossError, config_for_resume, prepare_output

    overrides = overrides_from(args)
    if overrides.get("resume") == "":  # --resume alone: the run in --output
        overrides["resume"] = overrides.get("output", TrainConfig().output)
    auto = overrides.get("resume") == "auto"  # decided once the processes of torchrun are joined
    if auto:
        del overrides["resume"]
    if "resume" in overrides:
        cfg = config_for_resume(overrides["resume"], overrides)
    else:
        cfg = resolve_config(**overrides)
    cfg = absolute_data(cfg)
    if args.print_config:
        print(cfg.to_json(), end="")
        return 0
    if cfg.threads is not None:
        from cnnarch.train.threads import configure_threads, invoked_as_cli

        print(configure_threads(cfg.threads, restart=invoked_as_cli()), flush=True)
    from cnnarch.train import distributed as D
    from cnnarch.train.checkpoint import run_lock
    from cnnarch.train.data import build_data
    from cnnarch.train.device import adapt_amp, place
    from cnnarch.train.trainer import Trainer

    placement = place(cfg.device)
    if auto and D.from_main((Path(cfg.output) / "last.pt").is_file(), placement.dist):
        cfg = absolute_data(config_for_resume(cfg.output, {**overrides, "resume": cfg.output}))
    if not placement.dist.enabled:  # processes of torchrun stop together in the trainer's own check
        prepare_output(cfg, keep=False)  # before loading the data
    cfg, note = adapt_amp(cfg, "amp" in overrides, placement.device)
    if note and placement.dist.is_main:
        print(note, flush=True)
    try:
        with run_lock(cfg.output) if placement.dist.is_main else contextlib.nullcontext():
            Trainer(cfg, build_data(cfg, progress=sys.stderr.isatty(), placement=placement)).fit()
    except NonFiniteLossError as e:
        print(f"cnnarch train: stopped: {e}")
        return 3
    except KeyboardInterrupt:
        last = Path(cfg.output) / "last.pt"
        kept = (
            f"continue from {last} with --resume {cfg.output}" if last.is_file() else "no checkpoint written"
        )
        print(f"cnnarch train: interrupted; {kept}", file=sys.stderr)
        return 130
    return 0
