"""``cnnarch experiment NAME``: run one of the lecture's experiments and write its report."""

from __future__ import annotations

import argparse
from pathlib import Path

from cnnarch.cli.cmd_train import add_config_options
from cnnarch.errors import UsageError
from cnnarch.experiments import EXPERIMENTS

EPILOG = (
    "experiments:\n"
    + "\n".join(f"  {k:<15} {v}" for k, v in EXPERIMENTS.items())
    + """

examples:
  cnnarch experiment degradation --data ../shared/data/cifar10-jpeg           # about an hour, 2 CPU cores
  cnnarch experiment degradation --data D --resume runs/deg                 # continue where it stopped
  cnnarch experiment degradation --data D --budget 100                      # the paper's 64k iterations (GPU)
  cnnarch experiment degradation --data D --budget cosine15 --output runs/d15   # Fig. 6, Table 6: 8 h
  cnnarch experiment degradation --budget cosine15 --output runs/d15 --report-only   # report what is there
  cnnarch experiment degradation --budget cosine15 --output runs/d15 --report-only \
      --export-weights src/cnnarch/models/weights_data     # ship the finished runs as weights="cifar10"
  cnnarch experiment inception-cost --output docs/experiments/inception-cost
"""
)


def budget(text: str) -> float | str:
    """A number (a scale) or a name (the experiment checks it has that schedule)."""
    try:
        return float(text)
    except ValueError:
        if not text.replace("-", "").replace("_", "").isalnum():
            raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor a schedule name") from None
        return text


def add_parser(sub) -> None:
    p = sub.add_parser(
        "experiment",
        help="run one of the lecture's experiments and write its report",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help=", ".join(EXPERIMENTS))
    p.add_argument(
        "--budget",
        type=budget,
        default=1.0,
        help="scale of the training schedule: 1 fits about an hour on 2 CPU cores (default 1); or a named "
        "schedule: degradation's cosine15 (15 cosine epochs, ~8 core-hours) and paper (He et al.'s, a GPU)",
    )
    p.add_argument("--output", metavar="DIR", help="report folder (default runs/experiments/NAME)")
    p.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="RUN",
        help="continue the runs in RUN where they stopped (a report folder; alone: --output's)",
    )
    p.add_argument("--report-only", action="store_true", help="write the report from what --output holds")
    p.add_argument(
        "--export-weights",
        metavar="DIR",
        help="then write each network's finished run as DIR/NAME-cifar10.safetensors with its accuracy, "
        "command, CPU and date (degradation with a named budget; a file with higher accuracy is kept)",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="stop training after this many seconds (between epochs) and report what was reached",
    )
    # the flags train has for the same things, from the same configuration fields
    add_config_options(
        p,
        data={"help": "CIFAR-10: an ImageFolder tree with train/ and test/, or a dataset name"},
        device={},
        limit_train={"help": "at most N training images (quick looks, tests)"},
        limit_val={"help": "at most N test images (the held-out set of every curve)"},
    )
    p.set_defaults(run=run)  # fmt: skip


def run(args) -> int:
    from cnnarch.experiments import get_experiment, run_experiment
    from cnnarch.experiments.runner import Context

    if args.output is not None and not args.output.strip():
        raise UsageError(
            "--output is empty",
            hint=f"name the report folder, or leave out --output for runs/experiments/{args.name}",
        )
    output = args.output or args.resume or f"runs/experiments/{args.name}"
    if args.resume and args.output and Path(args.resume) != Path(args.output):
        raise UsageError(
            f"--resume {args.resume} with --output {args.output}: an experiment continues in its own folder",
            hint="give one of the two",
        )
    if args.export_weights is not None:
        if not hasattr(get_experiment(args.name), "export_weights") or isinstance(args.budget, float):
            raise UsageError(
                f"--export-weights: {args.name} --budget {args.budget} trains no networks to ship",
                hint="use it with degradation and a named budget (--budget cosine15)",
            )
    ctx = Context(
        name=args.name,
        output=output,
        budget=args.budget,
        data=args.data,
        resume=args.resume is not None,
        device=args.device,
        time_limit=args.time_limit,
        limit_train=args.limit_train,
        limit_val=args.limit_val,
    )
    path = run_experiment(ctx, report_only=args.report_only)
    print(f"report: {path}")
    if args.export_weights is not None:
        for line in get_experiment(args.name).export_weights(ctx, args.export_weights):
            print(line)
    return 0
