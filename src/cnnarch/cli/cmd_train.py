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
import json
import sys
from dataclasses import fields
from pathlib import Path

from cnnarch.train.config import GROUPS, TrainConfig, get_recipe, resolve_config

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
    if kind.startswith("bool"):
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

    data = cfg.dataset.data
    if data is not None and not is_dataset_name(data) and Path(data).expanduser().is_dir():
        return cfg.replace(data=str(Path(data).expanduser().resolve()))
    return cfg


def data_used(cfg: TrainConfig) -> TrainConfig:
    """No ``--data``, or a dataset name: an ImageFolder tree the rule found (the CIFAR-10 JPEG copy) as
    its directory, so that ``config.json`` and the checkpoints record the images the run read; other
    copies as the dataset's name (their files alone may not tell MNIST from Fashion-MNIST), with the
    directory in the checkpoints' ``data_info``."""
    from cnnarch.train.data import is_dataset_name, locate

    if cfg.dataset.data is None or is_dataset_name(cfg.dataset.data):
        name, root = locate(cfg.dataset.data)
        if root is not None and (Path(root) / "train").is_dir():
            return absolute_data(cfg.replace(data=root))
        return cfg.replace(data=name)
    return absolute_data(cfg)


def threads_first(overrides: dict) -> None:
    """OpenMP reads its settings once, when torch loads it: the thread count of the run (``--threads``,
    its recipe's, or for ``--resume`` its ``config.json``'s; else the free cores) and
    ``OMP_WAIT_POLICY=PASSIVE`` go to the environment before torch is imported (:mod:`cnnarch.threads`)."""
    from cnnarch.threads import apply_before_torch, local_processes

    threads = overrides.get("threads")
    if "threads" not in overrides and "resume" in overrides:
        where = Path(overrides["resume"] if overrides["resume"] != "auto" else overrides.get("output", "."))
        saved = (where if where.is_dir() else where.parent) / "config.json"
        if saved.is_file():
            threads = TrainConfig.from_dict(json.loads(saved.read_text())).run.threads
    if "threads" not in overrides and "recipe" in overrides and threads is None:
        threads = get_recipe(overrides["recipe"]).values.get("threads")
    apply_before_torch(threads, local_processes())


def run(args) -> int:
    overrides = overrides_from(args)
    if overrides.get("resume") == "":  # --resume alone: the run in --output
        overrides["resume"] = overrides.get("output", TrainConfig().run.output)
    threads_first(overrides)  # nothing above this line imports torch
    from cnnarch.train import distributed as D
    from cnnarch.train.checkpoint import run_lock
    from cnnarch.train.data import build_data
    from cnnarch.train.device import place
    from cnnarch.train.trainer import NonFiniteLossError, Trainer, config_for_resume, prepare_output

    auto = overrides.get("resume") == "auto"  # decided once the processes of torchrun are joined
    if auto:
        del overrides["resume"]
    if "resume" in overrides:  # the data as the run recorded it (earlier versions: maybe a name, or none)
        cfg = absolute_data(config_for_resume(overrides["resume"], overrides))
    else:
        cfg = data_used(resolve_config(**overrides))
    placement = place(cfg.run.device)
    output = cfg.run.output
    if auto and D.from_main((Path(output) / "last.pt").is_file(), placement.dist):
        cfg = absolute_data(config_for_resume(output, {**overrides, "resume": output}))
    cfg = cfg.validate(placement.device.type)  # as the Trainer does: the same run from Python
    if args.print_config:
        print(cfg.to_json(), end="")
        return 0
    if not placement.dist.enabled:  # processes of torchrun stop together in the trainer's own check
        prepare_output(cfg, keep=False)  # before loading the data
    try:
        with run_lock(output) if placement.dist.is_main else contextlib.nullcontext():
            Trainer(cfg, build_data(cfg, placement=placement)).fit()
        D.shutdown(placement.dist)
    except NonFiniteLossError as e:
        print(f"cnnarch train: stopped: {e}")
        return 3
    except KeyboardInterrupt:
        last = Path(output) / "last.pt"
        kept = f"continue from {last} with --resume {output}" if last.is_file() else "no checkpoint written"
        print(f"cnnarch train: interrupted; {kept}", file=sys.stderr)
        return 130
    return 0
