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

Runs made with ``cnnarch train`` (for instance seeds side by side, one thread each) are summarised from
their directories, with a plot of test accuracy against training minutes:

    python benchmarks/bench_cifar_fast.py --from-runs runs/cifar-fast-s0 runs/cifar-fast-s1 runs/r20 \
        --plot docs/figures/cifar10-accuracy-vs-time.png

Both forms print, per run, the test accuracy, images/s and GFLOP/s of training (analyzer FLOPs over the
epochs' seconds) and the time-to-accuracy table: the training clock at the end of the first epoch whose
test accuracy reached each level, or, for a level only the final test-time-augmented evaluation
reached, the whole training clock including that evaluation.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def training_flops(model, image_shape, images_per_epoch: int, epochs: float) -> float:
    """Training FLOPs of a schedule from the analyzer: 3x the forward FLOPs (forward, and backward to
    activations and weights) per image seen; evaluation not included."""
    from cnnarch.analysis.profiler import profile

    return 3.0 * profile(model, tuple(image_shape)).flops * images_per_epoch * epochs


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
    p.add_argument("--levels", type=float, nargs="+", default=[80.0, 85.0, 89.1, 90.0, 91.0])
    p.add_argument("--from-runs", nargs="+", metavar="DIR", help="summarise finished runs instead")
    p.add_argument("--plot", metavar="PNG", help="with --from-runs: test accuracy against minutes")
    p.add_argument("--reference-log", metavar="FILE", help="with --from-runs: airbench_cpu.py's output")
    args = p.parse_args(argv)
    if args.from_runs:
        runs = [Path(d) for d in args.from_runs] + ([Path(args.reference_log)] if args.reference_log else [])
        summaries = [run_summary(r, args.levels) for r in runs]
        print("\n".join(report_runs(summaries)))
        if args.plot:
            plot_runs(summaries, Path(args.plot))
            print(f"plot: {args.plot}")
        return 0

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when torch loads OpenMP
    import torch

    from cnnarch.models import create_model
    from cnnarch.train.config import RECIPES, cpu_model, resolve_config
    from cnnarch.train.data import build_data, load_splits
    from cnnarch.train.device import pick_device
    from cnnarch.train.trainer import Trainer

    out = Path(args.output or tempfile.mkdtemp(prefix="cifar_fast_"))
    common = dict(data=args.data, limit_train=args.limit_train, limit_val=args.limit_val)
    if args.device:
        common["device"] = args.device
    fast_over = dict(common, threads=args.threads)
    if args.epochs:
        fast_over["epochs"] = args.epochs

    t = time.perf_counter()
    load_splits(resolve_config("cifar-fast", **fast_over), progress=False)
    load_splits(resolve_config("resnet-cifar", **common), progress=False)
    print(f"uint8 cache ready ({time.perf_counter() - t:.1f} s, not counted in any run below)", flush=True)

    accs, plain, walls, trains = [], [], [], []
    cfg = None
    for seed in args.seeds:
        cfg = resolve_config("cifar-fast", seed=seed, output=str(out / f"fast{seed}"), **fast_over)
        cfg = cfg.validate(pick_device(cfg.run.device).type)
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

    images = len(data.train) * cfg.schedule.batch_size
    flops = training_flops(create_model(cfg.model), (3, 32, 32), images, cfg.schedule.epochs)

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
    name = torch.cuda.get_device_name() if str(dev).startswith("cuda") else cpu_model()
    print()
    print(
        "command: python benchmarks/bench_cifar_fast.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
    )
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; device {dev} ({name}); torch {torch.__version__}"
    )
    print(f"threads: {torch.get_num_threads()}; OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")
    print(
        f"amp {cfg.run.amp}, channels_last {cfg.run.channels_last}, epochs {cfg.schedule.epochs}, "
        f"batch {cfg.schedule.batch_size}, "
        f"{images} training images/epoch; run directories under {out}"
    )
    print(
        f"cifar-fast, seeds {args.seeds}: test top-1 (TTA) {fmt_stats(accs, '%')}; "
        f"without TTA {fmt_stats(plain, '%')}"
    )
    print(f"cifar-fast time end to end: {fmt_stats(walls, ' s')}; training clock {fmt_stats(trains, ' s')}")
    print(f"training FLOPs (analyzer, 3x forward): {flops / 1e15:.3f} PFLOP per run")
    print(base_line)
    print()
    print("\n".join(report_runs([run_summary(out / f"fast{seed}", args.levels) for seed in args.seeds])))
    return 0


def reference_summary(log: Path, levels) -> dict:
    """The same summary from the printed table of airbench (``|  run  |  epoch  |  train_loss  |
    train_acc  |  val_acc  |  tta_val_acc  |  total_time_seconds  |``, accuracies as fractions), each
    line perhaps led by the wall clock ``[wall   12.3 s]`` that ``airbench_cpu.py`` adds; its first line
    (``threads 1 variant 93 {} bf16``) gives the threads and the precision."""
    curve, tta, seconds, threads, variant, precision = [], None, 0.0, None, "93", "fp32"
    for line in log.read_text().splitlines():
        if line.startswith("threads "):
            words = line.split()
            threads, variant = int(words[1]), words[3]
            precision = words[-1] if words[-1] in ("bf16", "fp32") else "fp32"  # older logs: fp32
        if line.startswith("[wall"):
            line = line.split("]", 1)[1]
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not (cells[1].isdigit() or cells[1] == "eval"):
            continue  # the header, rules, and the warm-up row (no epoch)
        seconds = float(cells[6])
        if cells[1] == "eval":  # the final row: TTA accuracy, its time included
            tta = 100 * float(cells[5])
        else:
            curve.append((seconds, 100 * float(cells[4])))
    reached = {}
    for level in levels:
        at = next((t for t, acc in curve if acc >= level), None)
        reached[level] = seconds if at is None and tta is not None and tta >= level else at
    return dict(
        run=log.stem,
        model=f"airbench{variant}'s own network, {precision}",
        threads=threads,
        epochs=len(curve),
        test=curve[-1][1] if curve else None,
        tta=tta,
        train_seconds=seconds,
        images_per_s=None,
        gflops=None,
        reached=reached,
        curve=curve,
    )


def run_summary(run: Path, levels) -> dict:
    """Accuracy, speed and time-to-accuracy of one finished ``cnnarch train`` run directory (or, for a
    file, of a reference run's log)."""
    if run.is_file():
        return reference_summary(run, levels)
    from cnnarch.models import create_model
    from cnnarch.train.config import TrainConfig
    from cnnarch.train.speedrun import progressive_stage

    cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    results = json.loads((run / "results.json").read_text())
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    model = create_model(cfg.model, num_classes=10)
    per_image: dict[int, float] = {}  # training FLOPs of one image at each size the run trained at
    # the clock starts with the model's building and whitening, as airbench's with its whitening
    epoch_seconds = sum(float(row["seconds"]) for row in rows)
    setup = max(0.0, results["train_seconds"] - epoch_seconds - results.get("tta_seconds", 0.0))
    clock, curve, images, flops = setup, [], 0.0, 0.0
    for epoch, row in enumerate(rows):
        clock += float(row["seconds"])
        seen = float(row["images_per_s"]) * float(row["seconds"])
        images += seen
        stage = progressive_stage(cfg.speedrun, epoch)  # downscaled or cropped: the same FLOPs
        size = stage[0] if stage else cfg.dataset.image_size or 32
        if size not in per_image:
            per_image[size] = training_flops(model, (3, size, size), 1, 1)
        flops += per_image[size] * seen
        curve.append((clock, float(row["val_top1"]) if row.get("val_top1") else None))
    final = results.get("tta_top1", results.get("test_top1"))
    reached = {}
    for level in levels:
        at = next((t for t, acc in curve if acc is not None and acc >= level), None)
        if at is None and final is not None and final >= level:
            at = results["train_seconds"]
        reached[level] = at
    return dict(
        run=run.name,
        model=cfg.model,
        threads=cfg.run.threads,
        epochs=len(rows),
        test=results.get("test_top1"),
        tta=results.get("tta_top1"),
        train_seconds=results["train_seconds"],
        images_per_s=images / epoch_seconds,
        gflops=flops / epoch_seconds / 1e9,
        reached=reached,
        curve=curve,
    )


def report_runs(summaries) -> list[str]:
    """A markdown table of :func:`run_summary` results (their levels as the last columns)."""
    levels = list(summaries[0]["reached"])
    head = ["run", "model", "threads", "epochs", "test top-1", "TTA", "training clock", "images/s", "GFLOP/s"]
    head += [f"to {level:g}%" for level in levels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        cells = [
            s["run"],
            s["model"],
            s["threads"] or "all cores",
            s["epochs"],
            f"{s['test']:.2f}%" if s["test"] is not None else "",
            f"{s['tta']:.2f}%" if s["tta"] is not None else "",
            f"{s['train_seconds'] / 60:.1f} min",
            f"{s['images_per_s']:.0f}" if s["images_per_s"] else "",
            f"{s['gflops']:.0f}" if s["gflops"] else "",
        ]
        cells += [f"{t / 60:.1f} min" if t is not None else "not reached" for t in s["reached"].values()]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    finals = [s["tta"] if s["tta"] is not None else s["test"] for s in summaries]
    if len(finals) > 1 and None not in finals and len({s["model"] for s in summaries}) == 1:
        lines.append("")
        lines.append(f"final accuracy over these runs: {fmt_stats(finals, '%')}")
    return lines


def plot_runs(summaries, out: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    for s in summaries:
        pts = [(t / 60, a) for t, a in s["curve"] if a is not None]
        threads = f"{s['threads']} thread(s)" if s["threads"] else "all cores"
        label = f"{s['run']} ({s['model']}, {threads})"
        ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=label)
        if s["tta"] is not None:
            ax.plot(s["train_seconds"] / 60, s["tta"], marker="*", ms=10, color=ax.lines[-1].get_color())
    ax.set_xlabel("training clock (minutes)")
    ax.set_ylabel("CIFAR-10 test top-1 (%)")
    ax.set_ylim(40, 95)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Test accuracy after each epoch (star: final, with TTA)", fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    sys.exit(main())
