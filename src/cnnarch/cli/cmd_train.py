"""``cnnarch train``: train a network of the zoo with a named recipe and command-line overrides.

cnnarch train --recipe resnet-cifar --data ../shared/data/cifar10-jpeg --epochs 5
cnnarch train --model vgg11 --lr 0.01 --sched plateau -b 64 --amp --channels-last
cnnarch train --resume runs/train/last.pt --epochs 30       # continue, bit-exact on a CPU
cnnarch train --recipe cifar-fast --data ../shared/data/cifar10-jpeg   # time to 93% (docs/cifar_fast.md)
torchrun --nproc-per-node 2 -m cnnarch.cli train ...        # data parallel; -b stays the global batch
"""

from __future__ import annotations

import argparse
import sys

from cnnarch.train.config import (
    AMP_DTYPES,
    OPTIMIZERS,
    SCHED_UNITS,
    SCHEDULES,
    TTA_MODES,
    TrainConfig,
    resolve_config,
)

S = argparse.SUPPRESS  # only the options actually given override the recipe


def add_parser(sub):
    p = sub.add_parser(
        "train",
        help="train a network with a recipe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = TrainConfig()
    g = p.add_argument_group("what and on what")
    g.add_argument("--recipe", default=S, help="named recipe (`cnnarch recipes` lists them)")
    g.add_argument("--model", default=S, help=f"network of the zoo (default {d.model})")
    g.add_argument(
        "--data",
        default=S,
        help="dataset directory or name (cifar10, cifar100, mnist, fashion-mnist); "
        "else $CNNARCH_DATA, the cache, then a download",
    )
    g.add_argument(
        "--val-split", type=float, default=S, help=f"fraction of train held out (default {d.val_split})"
    )
    g.add_argument("--limit-train", type=int, default=S, metavar="N", help="use only N training images")
    g.add_argument("--limit-val", type=int, default=S, metavar="N", help="use only N validation/test images")
    g.add_argument(
        "--augment", default=S, help=f"comma list of crop, flip, pca, or none (default {d.augment})"
    )
    g = p.add_argument_group("schedule and optimizer")
    g.add_argument("--epochs", type=int, default=S, help=f"(default {d.epochs})")
    g.add_argument(
        "--iterations", type=int, default=S, help="stop after this many steps if sooner than --epochs"
    )
    g.add_argument("-b", "--batch-size", type=int, default=S, help=f"global batch (default {d.batch_size})")
    g.add_argument("--opt", choices=OPTIMIZERS, default=S, help=f"(default {d.opt})")
    g.add_argument("--lr", type=float, default=S, help=f"(default {d.lr})")
    g.add_argument("--momentum", type=float, default=S, help=f"(default {d.momentum})")
    g.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=S)
    g.add_argument("--weight-decay", type=float, default=S, help=f"(default {d.weight_decay})")
    g.add_argument("--sched", choices=SCHEDULES, default=S, help=f"(default {d.sched})")
    g.add_argument(
        "--sched-unit",
        choices=SCHED_UNITS,
        default=S,
        help="whether decay epochs/milestones count epochs or steps",
    )
    g.add_argument(
        "--decay-epochs", type=int, default=S, help=f"step schedule period (default {d.decay_epochs})"
    )
    g.add_argument("--decay-milestones", type=int, nargs="+", default=S, help="multistep milestones")
    g.add_argument(
        "--decay-rate", type=float, default=S, help=f"lr factor at each decay (default {d.decay_rate})"
    )
    g.add_argument(
        "--patience-epochs", type=int, default=S, help=f"plateau patience (default {d.patience_epochs})"
    )
    g.add_argument("--min-lr", type=float, default=S)
    g.add_argument("--warmup-epochs", type=float, default=S, help="linear warm-up length (default 0)")
    g.add_argument(
        "--warmup-lr", type=float, default=S, help=f"lr at the start of warm-up (default {d.warmup_lr})"
    )
    g = p.add_argument_group("regularisation")
    g.add_argument("--drop", type=float, default=S, help="dropout probability (default: the model's own)")
    g.add_argument("--smoothing", type=float, default=S, help="label smoothing (default 0)")
    g.add_argument(
        "--aux-loss-weight", type=float, default=S, help="weight of auxiliary losses (GoogLeNet: 0.3)"
    )
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=S, help=f"(default {d.seed})")
    g.add_argument("--output", default=S, help=f"run directory (default {d.output})")
    g.add_argument("--resume", default=S, metavar="CHECKPOINT", help="continue the run that wrote CHECKPOINT")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=S, help="mixed precision autocast")
    g.add_argument("--amp-dtype", choices=AMP_DTYPES, default=S, help=f"(default {d.amp_dtype})")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=S)
    g.add_argument(
        "--compile", action=argparse.BooleanOptionalAction, default=S, help="torch.compile the model"
    )
    g.add_argument("--device", default=S, help="cpu, cuda, cuda:1 (default: cuda when present)")
    g.add_argument("-j", "--workers", type=int, default=S, help="loader processes for large images")
    g.add_argument("--log-interval", type=int, default=S, help="steps between plain log lines (0: none)")
    g = p.add_argument_group("speedrun techniques (recipe cifar-fast; docs/cifar_fast.md), for any run")
    g.add_argument(
        "--crop-padding", type=int, default=S, help="padding before random crops (default: 1/8 of the side)"
    )
    g.add_argument(
        "--whiten", action=argparse.BooleanOptionalAction, default=S, help="patch-whitening first layer"
    )
    g.add_argument("--bias-lr-scale", type=float, default=S, help="lr factor of BN shifts (default 1)")
    g.add_argument("--bn-momentum", type=float, default=S, help="batch-norm momentum (default: torch's 0.1)")
    g.add_argument("--tta", choices=TTA_MODES, default=S, help="test-time augmentation (default none)")
    g.add_argument(
        "--target-accuracy",
        type=float,
        nargs="*",
        default=S,
        metavar="PERCENT",
        help="held-out top-1 accuracies to time, e.g. 90 93 94 (--decay-milestones are lr steps)",
    )
    g.add_argument(
        "--threads", type=int, default=S, help="torch threads (0: one per core); also sets OMP_WAIT_POLICY"
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    p.set_defaults(run=run)


def overrides_from(args) -> dict:
    names = set(TrainConfig.option_names())
    return {k: v for k, v in vars(args).items() if k in names}


def run(args) -> int:
    from cnnarch.train.trainer import NonFiniteLossError, config_for_resume

    overrides = overrides_from(args)
    if "resume" in overrides:
        cfg = config_for_resume(overrides["resume"], overrides)
    else:
        cfg = resolve_config(**overrides)
    if args.print_config:
        print(cfg.to_json(), end="")
        return 0
    if cfg.threads is not None:
        from cnnarch.train.threads import configure_threads, invoked_as_cli

        print(configure_threads(cfg.threads, restart=invoked_as_cli()), flush=True)
    from cnnarch.train.data import build_data
    from cnnarch.train.device import adapt_amp, place
    from cnnarch.train.trainer import Trainer

    placement = place(cfg.device)
    cfg, note = adapt_amp(cfg, "amp" in overrides, placement.device)
    if note and placement.dist.is_main:
        print(note, flush=True)
    try:
        Trainer(cfg, build_data(cfg, progress=sys.stderr.isatty(), placement=placement)).fit()
    except NonFiniteLossError as e:
        print(f"cnnarch train: stopped: {e}")
        return 3
    return 0
