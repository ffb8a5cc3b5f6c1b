"""The `cifar-fast` recipe end to end on CIFAR-10 (JPEG copy, test split of 10,000 images) for N seeds,
and side by side the classic `resnet-cifar` recipe (ResNet-20) given the same wall-clock budget.

Each cifar-fast run is timed end to end from loading the uint8 cache to the final test-time-augmented
accuracy (the JPEG -> uint8 cache is built once before the first run and not counted; the script says
so). The baseline gets the mean cifar-fast wall time: a short probe measures its steps/s, then the
recipe is compressed to the iterations that fit, its /10 milestones kept at 1/2 and 3/4 of the run, as
benchmarks/bench_train_accuracy.py does. Training FLOPs come from the analyzer (3x forward FLOPs per
training image seen).

    python benchmarks/bench_cifar_fast.py                               # 3 seeds, CPU, all cores
    python benchmarks/bench_cifar_fast.py --device cuda                 # a GPU
    python benchmarks/bench_cifar_fast.py --limit-train 2048 --limit-val 1000 --epochs 2 --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fmt_stats(xs, unit="") -> str:
    return f"mean {statistics.fmean(xs):.2f}{unit}, min {min(xs):.2f}{unit}, max {max(xs):.2f}{unit}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cifar10-jpeg"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs (smoke tests)")
    p.add_argument("--limit-train", type=int, help="fewer training images (smoke tests)")
    p.add_argument("--limit-val", type=int, help="fewer test images (smoke tests)")
    p.add_argument("--no-baseline", action="store_true", help="skip the resnet-cifar comparison")
    p.add_argument("--probe-steps", type=int, default=20)
    p.add_argument("--output", default=None)
    args = p.parse_args(argv)

    from cnnarch.train.threads import configure_threads

    threads_line = configure_threads(args.threads, restart=True)  # restarts if torch is loaded
    import torch

    from cnnarch.models import create_model
    from cnnarch.train.config import RECIPES, resolve_config
    from cnnarch.train.data import build_data, load_splits
    from cnnarch.train.device import adapt_amp, pick_device
    from cnnarch.train.fast import training_flops
    from cnnarch.train.trainer import Trainer

    out = Path(args.output or tempfile.mkdtemp(prefix="cifar_fast_"))
    common = dict(data=args.data, limit_train=args.limit_train, limit_val=args.limit_val)
    if args.device:
        common["device"] = args.device
    fast_over = dict(common, threads=args.threads)
    if args.epochs:
        fast_over["epochs"] = args.epochs
    print(threads_line, flush=True)

    t = time.perf_counter()
    load_splits(resolve_config("cifar-fast", **fast_over), progress=False)
    load_splits(resolve_config("resnet-cifar", **common), progress=False)
    print(f"uint8 cache ready ({time.perf_counter() - t:.1f} s, not counted in any run below)", flush=True)

    accs, plain, walls, trains = [], [], [], []
    cfg = None
    for seed in args.seeds:
        cfg = resolve_config("cifar-fast", seed=seed, output=str(out / f"fast{seed}"), **fast_over)
        cfg, note = adapt_amp(cfg, False, pick_device(cfg.device))
        if note:
            print(note)
        t0 = time.perf_counter()
        data = build_data(cfg, progress=False)
        row = Trainer(
            cfg, data, log=lambda s: print("  " + s, flush=True) if not s.startswith("training") else None
        ).fit()
        wall = time.perf_counter() - t0
        acc = row.get("tta_top1", row.get("test_top1"))
        accs.append(acc)
        plain.append(row.get("test_top1"))
        walls.append(wall)
        trains.append(row["train_seconds"])
        print(
            f"seed {seed}: test top-1 {acc:.2f}% (without TTA {row.get('test_top1'):.2f}%), "
            f"{wall:.1f} s end to end",
            flush=True,
        )

    images = len(data.train) * cfg.batch_size
    flops = training_flops(create_model(cfg.model), (3, 32, 32), images, cfg.epochs)

    base_line = "baseline skipped (--no-baseline)"
    if not args.no_baseline:
        budget = statistics.fmean(walls)
        recipe = RECIPES["resnet-cifar"].values
        full, (m1, m2) = recipe["iterations"], recipe["decay_milestones"]
        probe = resolve_config(
            "resnet-cifar", output=str(out / "probe"), iterations=args.probe_steps, **common
        )
        t0 = time.perf_counter()
        data = build_data(probe, progress=False)
        tr = Trainer(probe, data, log=lambda s: None)
        tp = time.perf_counter()
        tr.train_epoch(0)
        steps_per_s = args.probe_steps / (time.perf_counter() - tp)
        iters = max(4, int(steps_per_s * budget * 0.9))  # 10% for loading, validation, checkpoints
        ms = (round(iters * m1 / full), round(iters * m2 / full))
        base = resolve_config(
            "resnet-cifar",
            output=str(out / "resnet20"),
            iterations=iters,
            decay_milestones=ms,
            log_interval=0,
            **common,
        )
        t0 = time.perf_counter()
        row = Trainer(base, build_data(base, progress=False), log=lambda s: None).fit()
        bwall = time.perf_counter() - t0
        base_line = (
            f"resnet-cifar (resnet20) with the same budget ({budget:.1f} s): {iters} of the paper's {full} "
            f"iterations ({steps_per_s:.2f} steps/s), milestones {ms}: test top-1 {row['test_top1']:.2f}% "
            f"in {bwall:.1f} s end to end"
        )

    dev = data.train.device if hasattr(data.train, "device") else "?"
    name = torch.cuda.get_device_name() if str(dev).startswith("cuda") else _cpu_name()
    print()
    print(
        "command: python benchmarks/bench_cifar_fast.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
    )
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; device {dev} ({name}); torch {torch.__version__}"
    )
    print(threads_line)
    print(
        f"amp {cfg.amp}, channels_last {cfg.channels_last}, epochs {cfg.epochs}, batch {cfg.batch_size}, "
        f"{images} training images/epoch; run directories under {out}"
    )
    print(
        f"cifar-fast, seeds {args.seeds}: test top-1 (TTA) {fmt_stats(accs, '%')}; "
        f"without TTA {fmt_stats(plain, '%')}"
    )
    print(f"cifar-fast time end to end: {fmt_stats(walls, ' s')}; training clock {fmt_stats(trains, ' s')}")
    print(f"training FLOPs (analyzer, 3x forward): {flops / 1e15:.3f} PFLOP per run")
    print(base_line)
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


if __name__ == "__main__":
    sys.exit(main())
