"""A cnnarch recipe against the public reference, side by side: airbench93 (pip package ``airbench``,
Jordan 2024, arXiv:2404.00498) run by ``../shared/peers/airbench_cpu.py`` and ``cnnarch train`` started
together, one thread each, for each seed in turn; then the time each took to reach each test accuracy.

    pip install 'cnnarch[reference]'                    # airbench 0.1.8, the reference's own code
    python benchmarks/race_reference.py --ours "--recipe cifar-fast-93-short" --output runs/race-short
    python benchmarks/race_reference.py --output runs/race-93       # cifar-fast-93, its widths and epochs
    python benchmarks/race_reference.py --subset 3000 500 --epochs 1 --seeds 0 --output /tmp/race
    python benchmarks/race_reference.py --summarize runs/race-short   # the table again from the logs

Like with like: both runs get ``OMP_NUM_THREADS=1`` and the same niceness (``--nice``), start within
milliseconds of each other on a machine with a core for each, and use the same precision (``--bf16``,
the default: the reference's ``--bf16`` and cnnarch's ``--amp``, both with channels-last; ``--fp32``:
neither). Both clocks count the same things: the whitening initialisation, the training epochs and the
final test-time-augmented evaluation, not the test after each epoch (airbench's ``total_time_seconds``,
cnnarch's training clock, which also counts building the model). Decoding
the JPEG copy into each side's cache happens once before the first pair and is on neither clock.
airbench leaves torch's generator unseeded; here the reference is started with
``torch.manual_seed(seed)`` first, so that its runs repeat too.

The time to a level is the clock at the end of the first epoch whose test accuracy (without TTA)
reached it, or the whole clock for a level only the final TTA evaluation reached. The output folder
holds each run's log (and cnnarch's run directories), ``race.json`` and ``race.md``: per seed and
median, the time to each ``--levels`` accuracy and the final accuracy with TTA for both, and the
ratio ours / reference; with the CPU (model and the flags that choose its kernels), torch, the load
average during each pair, the date and the command.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cifar_fast import reference_summary, run_summary  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
LEVELS = (85.0, 88.0, 89.1)
# the instruction-set flags of /proc/cpuinfo that decide which kernels oneDNN runs
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")
# airbench leaves torch's generator unseeded: seed it, then run the script as `python SCRIPT ARGS`
SEEDED = (
    "import runpy, sys, torch; torch.manual_seed(int(sys.argv[1])); sys.argv = sys.argv[2:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def cpu_info() -> dict:
    """The CPU's model name, its kernel-choosing flags (:data:`CPU_FLAGS`) and the cores."""
    from cnnarch.train.config import cpu_flags, cpu_model

    have = cpu_flags()
    return {"model": cpu_model(), "flags": [f for f in CPU_FLAGS if f in have], "cores": os.cpu_count()}


def make_subset(data: Path, out: Path, train: int, test: int) -> Path:
    """An ImageFolder tree under ``out`` of links to the first ``train // classes`` training and
    ``test // classes`` test images of each class of ``data`` (sorted names): both sides read it like
    the whole copy, for a smoke test in seconds."""
    classes = sorted(d.name for d in (data / "train").iterdir() if d.is_dir())
    if not classes:
        raise ValueError(f"{data}/train has no class folders; --data takes an ImageFolder copy of CIFAR-10")
    for split, n in (("train", train), ("test", test)):
        per_class = n // len(classes)
        if per_class < 1:
            raise ValueError(f"--subset asks for {n} {split} images, fewer than the {len(classes)} classes")
        for c in classes:
            (out / split / c).mkdir(parents=True, exist_ok=True)
            for f in sorted((data / split / c).iterdir())[:per_class]:
                link = out / split / c / f.name
                if not link.exists():
                    link.symlink_to(f.resolve())
    return out


def reference_cache(data: Path, out: Path, subset: bool) -> Path:
    """Where airbench_cpu.py keeps its decoded copy of ``data``: one folder per data path (the script
    makes a ``cifar10`` folder beside its cache, so each cache has a parent of its own)."""
    if subset:
        return out / "reference-cache" / "cache"
    digest = hashlib.sha1(str(data.resolve()).encode()).hexdigest()[:10]
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"race-airbench-{digest}" / "cache"


def reference_command(args, data: Path, cache: Path, seed: int, cache_only: bool = False) -> list[str]:
    cmd = [sys.executable, "-c", SEEDED, str(seed), str(args.reference), str(data), args.variant]
    cmd += ["--cache", str(cache)]
    if cache_only:
        return cmd + ["--cache-only"]
    if args.bf16:
        cmd.append("--bf16")
    if args.epochs is not None:
        cmd += ["--epochs", str(args.epochs)]
    return cmd


def ours_command(args, data: Path, seed: int, run_dir: Path) -> list[str]:
    cmd = [sys.executable, "-m", "cnnarch.cli", "train", *shlex.split(args.ours), "--data", str(data)]
    cmd += ["--seed", str(seed), "--threads", "1", "--output", str(run_dir)]
    cmd += ["--amp", "--channels-last"] if args.bf16 else ["--no-amp"]
    cmd += ["--target-accuracy", *(f"{level:g}" for level in args.levels)]  # and a test after each epoch
    if args.epochs is not None:
        cmd += ["--epochs", str(args.epochs)]
    return cmd


def child_env() -> dict:
    """One thread for each side, and this checkout's cnnarch for ours."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return env


def run_pair(commands: dict[str, list[str]], logs: dict[str, Path], nice: int) -> dict:
    """Start every command at once (stdout and stderr to its log) and wait for all; their wall times
    (to 0.1 s), exit codes, and the load average sampled every 5 s meanwhile. A run that fails ends the
    others (``failed``: its name), as does an interruption."""
    env = child_env()
    started = datetime.now(timezone.utc)
    t0, procs, handles = time.perf_counter(), {}, []
    for side, cmd in commands.items():
        log = open(logs[side], "w")  # closed below, once the process has ended
        handles.append(log)
        procs[side] = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=lambda: os.nice(nice)
        )
    wall, loads, next_load, failed = {}, [], 0.0, None
    try:
        while len(wall) < len(procs) and failed is None:
            now = time.perf_counter() - t0
            if now >= next_load:
                loads.append(os.getloadavg()[0])
                next_load = now + 5
            for side, proc in procs.items():
                if side not in wall and proc.poll() is not None:
                    wall[side] = round(now, 1)
                    failed = side if proc.returncode != 0 else failed
            time.sleep(0.1)
    finally:  # failed or interrupted: no run is left behind
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
        for log in handles:
            log.close()
    return {
        "started": f"{started:%H:%M:%S UTC}",
        "wall_seconds": wall,
        "returncode": {side: proc.returncode for side, proc in procs.items()},
        "failed": failed,
        "load": {"min": min(loads), "max": max(loads), "mean": statistics.fmean(loads)},
    }


def median_or_none(values):
    """The median of the seeds' times, a seed that never reached the level counting as infinitely
    slow; None where that median is such a seed."""
    m = statistics.median(float("inf") if v is None else v for v in values)
    return None if m == float("inf") else m


def ratio(ours, reference):
    return None if ours is None or reference is None else ours / reference


def summarize(pairs: list[dict], levels) -> dict:
    """Per seed and median over seeds: for each side the time to each level, the final accuracy (with
    TTA where the run had it) and the training clock; the ratio ours / reference of every time."""
    sides = ("reference", "ours")
    rows = []
    for pair in pairs:
        row = {"seed": pair["seed"]}
        for side in sides:
            s = pair[side]
            row[side] = {
                "reached": {f"{lv:g}": s["reached"].get(lv) for lv in levels},
                "final": s["tta"] if s["tta"] is not None else s["test"],
                "train_seconds": s["train_seconds"],
                "model": s["model"],
                "epochs": s["epochs"],
            }
        row["ratio"] = {
            key: ratio(row["ours"]["reached"][key], row["reference"]["reached"][key])
            for key in row["ours"]["reached"]
        }
        row["ratio"]["clock"] = ratio(row["ours"]["train_seconds"], row["reference"]["train_seconds"])
        rows.append(row)
    median = {}
    for side in sides:
        median[side] = {
            "reached": {
                f"{lv:g}": median_or_none([r[side]["reached"][f"{lv:g}"] for r in rows]) for lv in levels
            },
            "final": statistics.median(r[side]["final"] for r in rows),
            "final_min": min(r[side]["final"] for r in rows),
            "final_max": max(r[side]["final"] for r in rows),
            "train_seconds": statistics.median(r[side]["train_seconds"] for r in rows),
        }
    median["ratio"] = {
        key: ratio(median["ours"]["reached"][key], median["reference"]["reached"][key])
        for key in median["ours"]["reached"]
    }
    median["ratio"]["clock"] = ratio(median["ours"]["train_seconds"], median["reference"]["train_seconds"])
    return {"levels": [f"{lv:g}" for lv in levels], "seeds": rows, "median": median}


def _seconds(t) -> str:
    return "not reached" if t is None else f"{t:,.0f} s"


def _ratio(r) -> str:
    return "" if r is None else f"{r:.2f}x"


def table(summary: dict) -> list[str]:
    """The markdown table of :func:`summarize`: a row per seed and side, then the medians, each
    ``ours`` row followed by the ratios ours / reference."""
    levels = summary["levels"]
    head = ["seed", "run", *(f"to {lv} %" for lv in levels), "final (TTA)", "training clock"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def rows(seed, rec, name):
        for side in ("reference", "ours"):
            s = rec[side]
            cells = [seed, name(side, s), *(_seconds(s["reached"][lv]) for lv in levels)]
            final = f"{s['final']:.2f} %"
            if "final_min" in s:
                final += f" ({s['final_min']:.2f}-{s['final_max']:.2f})"
            cells += [final, _seconds(s["train_seconds"])]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        ratios = [_ratio(rec["ratio"][lv]) for lv in levels]
        cells = [seed, "ours / reference", *ratios, "", _ratio(rec["ratio"]["clock"])]
        lines.append("| " + " | ".join(cells) + " |")

    for rec in summary["seeds"]:
        rows(str(rec["seed"]), rec, lambda side, s: f"{side} ({s['model']}, {s['epochs']} epoch(s))")
    rows("median", summary["median"], lambda side, s: side)
    return lines


def report(summary: dict, meta: dict) -> str:
    cpu = meta["cpu"]
    flags = " ".join(cpu["flags"]) or "none of " + ", ".join(CPU_FLAGS)
    lines = [
        f"# {meta['ours_label']} against the reference, side by side",
        "",
        f"- date: {meta['date']}",
        f"- CPU: {cpu['model']}, {cpu['cores']} cores; flags: {flags}",
        f"- torch {meta['torch']}; one thread each (OMP_NUM_THREADS=1), niceness {meta['nice']}",
        f"- command: `{meta['command']}`",
    ]
    first = meta["pairs"][0]
    for side in ("reference", "ours"):
        lines.append(f"- {side}, seed {first['seed']}: `{shlex.join(first['commands'][side])}`")
    lines.append("")
    for pair in meta["pairs"]:
        load = pair["load"]
        wall = ", ".join(f"{side} {t:,.0f} s" for side, t in pair["wall_seconds"].items())
        lines.append(
            f"- seed {pair['seed']}, started {pair['started']}: wall {wall}; load average "
            f"{load['min']:.2f}-{load['max']:.2f} (mean {load['mean']:.2f})"
        )
    lines += ["", *table(summary), ""]
    lines.append(
        "Times: the training clock at the end of the first epoch whose test accuracy reached the level, "
        "or the whole clock (final TTA included) for a level only the TTA evaluation reached; the "
        "test after each epoch is off both clocks. Final: test top-1 with TTA; the median row gives "
        "the seeds' range."
    )
    return "\n".join(lines) + "\n"


def warm_caches(args, data: Path, cache: Path) -> None:
    """Decode the JPEG copy into both sides' caches before the clocks start."""
    t = time.perf_counter()
    subprocess.run(reference_command(args, data, cache, 0, cache_only=True), check=True, env=child_env())
    probe = "from cnnarch.train.config import resolve_config; from cnnarch.train.data import load_splits; "
    probe += f"load_splits(resolve_config(data={str(data)!r}), progress=False)"
    subprocess.run([sys.executable, "-c", probe], check=True, env=child_env())
    print(f"caches ready ({time.perf_counter() - t:.1f} s, on neither clock)", flush=True)


def load_pairs(out: Path, levels) -> list[dict]:
    meta = json.loads((out / "race.json").read_text())["meta"]
    return [
        {
            "seed": p["seed"],
            "reference": reference_summary(out / f"reference-s{p['seed']}.log", levels),
            "ours": run_summary(out / f"ours-s{p['seed']}", levels),
        }
        for p in meta["pairs"]
    ], meta


def write(out: Path, summary: dict, meta: dict) -> str:
    text = report(summary, meta)
    (out / "race.json").write_text(json.dumps({"meta": meta, "summary": summary}, indent=1))
    (out / "race.md").write_text(text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=SHARED / "data" / "cifar10-jpeg")
    p.add_argument("--reference", type=Path, default=SHARED / "peers" / "airbench_cpu.py")
    p.add_argument("--variant", default="93", choices=["93", "94"], help="airbench's recipe")
    p.add_argument("--ours", default="--recipe cifar-fast-93", help="the arguments of `cnnarch train`")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--bf16", dest="bf16", action="store_true", default=True, help="both in bf16 (default)")
    prec.add_argument("--fp32", dest="bf16", action="store_false", help="both in fp32")
    p.add_argument("--levels", type=float, nargs="+", default=list(LEVELS))
    p.add_argument("--epochs", type=float, help="both sides' epochs (smoke tests; default: each its own)")
    p.add_argument("--subset", type=int, nargs=2, metavar=("TRAIN", "TEST"), help="smoke test: fewer images")
    p.add_argument("--nice", type=int, default=0, help="niceness of both runs")
    p.add_argument("--output", type=Path, default=Path("runs/race"))
    p.add_argument("--summarize", type=Path, metavar="DIR", help="the table again from a race's folder")
    args = p.parse_args(argv)

    if args.summarize:
        pairs, meta = load_pairs(args.summarize, args.levels)
        print(write(args.summarize, summarize(pairs, args.levels), meta))
        return 0
    if not args.reference.is_file():
        p.error(f"no reference script at {args.reference}; give its path with --reference")
    if importlib.util.find_spec("airbench") is None:
        p.error("the reference needs the package airbench: pip install 'cnnarch[reference]'")
    if args.epochs is not None and args.epochs != int(args.epochs):
        p.error(f"--epochs {args.epochs}: cnnarch trains whole epochs; give an integer")
    if args.epochs is not None:
        args.epochs = int(args.epochs)
    args.reference, out = args.reference.absolute(), args.output.absolute()
    out.mkdir(parents=True, exist_ok=True)
    data = make_subset(args.data, out / "subset", *args.subset) if args.subset else args.data.absolute()
    cache = reference_cache(data, out, bool(args.subset))
    warm_caches(args, data, cache)

    import torch

    meta = {
        "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}",
        "cpu": cpu_info(),
        "torch": torch.__version__,
        "nice": args.nice,
        "command": shlex.join(["python", "benchmarks/race_reference.py", *(argv or sys.argv[1:])]),
        "ours_label": f"cnnarch train {args.ours}",
        "pairs": [],
    }
    pairs = []
    for seed in args.seeds:
        run_dir = out / f"ours-s{seed}"
        commands = {
            "reference": reference_command(args, data, cache, seed),
            "ours": ours_command(args, data, seed, run_dir),
        }
        logs = {side: out / f"{side}-s{seed}.log" for side in commands}
        print(f"seed {seed}: both starting {datetime.now(timezone.utc):%H:%M:%S UTC}", flush=True)
        result = run_pair(commands, logs, args.nice)
        if result["failed"]:
            side = result["failed"]
            raise SystemExit(
                f"seed {seed}: {side} exited with code {result['returncode'][side]}, and the other run was "
                f"stopped; see {logs[side]}"
            )
        meta["pairs"].append({"seed": seed, "commands": commands, **result})
        pairs.append(
            {
                "seed": seed,
                "reference": reference_summary(logs["reference"], args.levels),
                "ours": run_summary(run_dir, args.levels),
            }
        )
        print(f"seed {seed}: wall {result['wall_seconds']}, load {result['load']}", flush=True)
        write(out, summarize(pairs, args.levels), meta)  # a table after every pair
    print(write(out, summarize(pairs, args.levels), meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
