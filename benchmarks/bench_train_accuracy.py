"""The accuracy a fixed time budget of the `resnet-cifar` recipe reaches on CIFAR-10 (JPEG copy, test set).

He et al. 4.2 train ResNet-20 for 64k iterations at batch 128, dividing the lr by 10 at 32k and 48k. A CPU
cannot run 64k iterations in 30 minutes, so the schedule is compressed, keeping its shape: a short timed
probe measures steps/s, the run gets as many iterations as fit in --minutes, and the milestones stay at
the same fractions (1/2 and 3/4). Everything else is the recipe's. The result is the baseline that faster
training must beat.

    OMP_NUM_THREADS=2 python benchmarks/bench_train_accuracy.py --minutes 30
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from cnnarch.train.config import RECIPES, resolve_config
from cnnarch.train.data import build_data
from cnnarch.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cifar10-jpeg"))
    p.add_argument("--model", default="resnet20")
    p.add_argument("--minutes", type=float, default=30.0, help="training time budget (evaluation excluded)")
    p.add_argument("--probe-steps", type=int, default=20)
    p.add_argument("--output", default=None)
    p.add_argument("--limit-train", type=int, help="fewer training images (a smoke test of this script)")
    p.add_argument("--limit-val", type=int)
    args = p.parse_args(argv)
    recipe = RECIPES["resnet-cifar"].values
    full, (m1, m2) = recipe["iterations"], recipe["decay_milestones"]

    out = args.output or tempfile.mkdtemp(prefix="resnet_cifar_")
    base = dict(
        recipe="resnet-cifar",
        model=args.model,
        data=args.data,
        output=out,
        log_interval=100,
        limit_train=args.limit_train,
        limit_val=args.limit_val,
    )
    probe_cfg = resolve_config(**{**base, "output": os.path.join(out, "probe")}, iterations=args.probe_steps)
    data = build_data(probe_cfg)
    t0 = time.perf_counter()
    Trainer(probe_cfg, data, log=lambda s: None).train_epoch(0)
    steps_per_s = args.probe_steps / (time.perf_counter() - t0)

    iters = max(4, int(steps_per_s * args.minutes * 60))
    milestones = (round(iters * m1 / full), round(iters * m2 / full))
    cfg = resolve_config(**base, iterations=iters, decay_milestones=milestones)
    print(
        f"probe: {steps_per_s:.2f} steps/s -> {iters} iterations in {args.minutes:g} min, "
        f"milestones {milestones} (the paper: {full}, {m1}, {m2})",
        flush=True,
    )
    t0 = time.perf_counter()
    row = Trainer(cfg, data).fit()
    minutes = (time.perf_counter() - t0) / 60

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print()
    print(
        f"command: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} python "
        f"benchmarks/bench_train_accuracy.py {' '.join(sys.argv[1:])}"
    )
    print(f"{when}; torch threads {torch.get_num_threads()}; {os.cpu_count()} cores; run directory {out}")
    print(
        f"{args.model}, resnet-cifar recipe compressed to {iters} iterations ({minutes:.1f} min incl. "
        f"validation): CIFAR-10 (JPEG copy) test top-1 {row['test_top1']:.2f}%, top-5 {row['test_top5']:.2f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
