"""Ablation of airbench's pieces in the cifar-fast recipes: each switched off alone, all four off, and
Muon for the filters, on N seeds; test top-1 without and with TTA per run, and per variant the mean
and its difference from the recipe's.

The pieces: lookahead (``--no-lookahead``), alternating flips (``--no-alternate-flip``), reflect
padding (``--pad-mode constant``), the whitening bias frozen after its epochs (``--whiten-bias-epochs
0``: trained throughout); ``--muon`` adds Muon. A shorter ``--epochs`` keeps the recipe's shape: the
learning rate still peaks after the same fraction of the steps, and the whitening bias trains for the
same fraction of the epochs (at least one).

Every finished run is appended to ``--out`` (JSON lines) and skipped when the script is run again with
the same file, so a long ablation can be run in pieces (``--only``) and tabulated at the end (Markdown).

    python benchmarks/ablate_cifar_fast.py --recipe cifar-fast-93 --epochs 2 --limit-train 10000 \\
        --limit-val 2000 --threads 1 --seeds 0 1 --out /tmp/ablate.jsonl
    python benchmarks/ablate_cifar_fast.py --seeds 0 1 2 --device cuda       # full recipe on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PIECES_OFF = dict(lookahead=False, alternate_flip=False, pad_mode="constant", whiten_bias_epochs=0)
VARIANTS = {
    "recipe": {},
    "no lookahead": dict(lookahead=False),
    "random flips": dict(alternate_flip=False),
    "zero padding": dict(pad_mode="constant"),
    "bias trained throughout": dict(whiten_bias_epochs=0),
    "none of the four": PIECES_OFF,
    "recipe + Muon": dict(muon=True),
}


def short_schedule(recipe: str, epochs: int | None) -> dict:
    """The recipe's warm-up and whitening-bias epochs scaled to ``epochs``."""
    from cnnarch.train.config import resolve_config

    if epochs is None:
        return {}
    cfg = resolve_config(recipe)
    return dict(
        epochs=epochs,
        warmup_epochs=round(cfg.schedule.warmup_epochs * epochs / cfg.schedule.epochs, 3),
        whiten_bias_epochs=max(1, round(cfg.speedrun.whiten_bias_epochs * epochs / cfg.schedule.epochs)),
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="cifar-fast", choices=("cifar-fast", "cifar-fast-93"))
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cifar10-jpeg"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, help="a shorter schedule of the same shape")
    p.add_argument("--limit-train", type=int, help="use only N training images", metavar="N")
    p.add_argument("--limit-val", type=int, help="use only N test images", metavar="N")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument("--only", nargs="+", choices=list(VARIANTS), metavar="VARIANT", help="run these only")
    p.add_argument("--out", default=None, help="JSON lines of finished runs (read back, appended to)")
    args = p.parse_args(argv)

    from cnnarch.tables import render

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when torch loads OpenMP
    from cnnarch.train.config import resolve_config
    from cnnarch.train.data import build_data
    from cnnarch.train.device import pick_device
    from cnnarch.train.trainer import Trainer

    out = Path(args.out or Path(tempfile.mkdtemp(prefix="ablate_")) / "runs.jsonl")
    done = [json.loads(line) for line in out.read_text().splitlines()] if out.is_file() else []
    short = short_schedule(args.recipe, args.epochs)
    common = dict(
        data=args.data,
        limit_train=args.limit_train,
        limit_val=args.limit_val,
        target_accuracy=(),  # no per-epoch test: the final one (and its TTA) only
        log_interval=0,
        overwrite=True,  # a run missing from --out is redone, whatever its folder holds
        **short,
        **({"device": args.device} if args.device else {}),
    )
    print(f"{args.recipe} with {short or 'its own schedule'}; runs in {out}", flush=True)
    for name in args.only or VARIANTS:
        for seed in args.seeds:
            if any(r["variant"] == name and r["seed"] == seed and r["recipe"] == args.recipe for r in done):
                continue
            run_dir = out.parent / f"{name.replace(' ', '_')}-{seed}"
            cfg = resolve_config(args.recipe, seed=seed, output=str(run_dir), **{**common, **VARIANTS[name]})
            cfg = cfg.validate(pick_device(cfg.run.device).type)
            t0 = time.perf_counter()
            res = Trainer(cfg, build_data(cfg, progress=False), log=lambda s: None).fit()
            row = dict(
                recipe=args.recipe,
                variant=name,
                seed=seed,
                test_top1=res["test_top1"],
                tta_top1=res.get("tta_top1"),
                train_seconds=res["train_seconds"],
                wall_seconds=time.perf_counter() - t0,
            )
            print(json.dumps(row), flush=True)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            done.append(row)
    print(render(summarize(done, args.recipe, args.seeds), "markdown"))
    return 0


def summarize(runs: list[dict], recipe: str, seeds: list[int]) -> list[dict]:
    """One row per variant: each seed's TTA accuracy, the means, and the change from the recipe's."""
    rows = []
    base = None
    for name in VARIANTS:
        mine = {r["seed"]: r for r in runs if r["variant"] == name and r["recipe"] == recipe}
        if not all(s in mine for s in seeds):
            continue
        plain = statistics.fmean(mine[s]["test_top1"] for s in seeds)
        tta = statistics.fmean(mine[s]["tta_top1"] for s in seeds)
        base = base if base is not None or name != "recipe" else (plain, tta)
        row = {"variant": name}
        row |= {f"TTA seed {s}": mine[s]["tta_top1"] for s in seeds}
        row |= {"mean top-1": plain, "mean TTA": tta}
        row["TTA vs recipe"] = None if base is None else tta - base[1]
        row["train s (mean)"] = statistics.fmean(mine[s]["train_seconds"] for s in seeds)
        rows.append(row)
    return rows


if __name__ == "__main__":
    sys.exit(main())
