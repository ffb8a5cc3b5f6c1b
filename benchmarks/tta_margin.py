"""Test-time augmentation of trained runs, view by view: what each choice buys and what it costs.

For each run directory (its ``config.json`` and ``last.pt``) it evaluates the test set as the run's final
test does (its autocast and memory format, its batch, kept memory, one thread) with ``--tta none``, ``flip``,
``flip-translate`` and ``flip-translate`` with each ``--tta-margin`` (the four shifted views only for
the images whose mirrored prediction has its two highest probabilities closer than the margin), and
prints the top-1, the seconds and the share of images that got the shifted views.

    python benchmarks/tta_margin.py runs/race/ours-s0 runs/race/ours-s1 runs/race/ours-s2 \
        --data ../shared/data/cifar10-jpeg
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from cnnarch.memory import keep_freed_memory  # noqa: E402
from cnnarch.train.checkpoint import load_checkpoint  # noqa: E402
from cnnarch.train.config import TrainConfig, cpu_model  # noqa: E402
from cnnarch.train.data import build_data  # noqa: E402
from cnnarch.train.device import autocast  # noqa: E402
from cnnarch.train.evaluate import evaluate, model_from_checkpoint, prepare  # noqa: E402
from cnnarch.train.speedrun import logits_for, tta_logits  # noqa: E402

CPU = torch.device("cpu")


def mirrored_gaps(model, data, cfg) -> torch.Tensor:
    """Each test image's gap between the two highest probabilities of its mirrored prediction."""
    gaps = []
    for x, y in data.test:
        x, _ = prepare(x, y, data.eval_transform, CPU, cfg)
        with torch.no_grad(), autocast(cfg, CPU):
            top2 = tta_logits(model, x, "flip").float().softmax(1).topk(2, dim=1).values
        gaps.append(top2[:, 0] - top2[:, 1])
    return torch.cat(gaps)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--data", help="the runs' data, where it is now (default: as in config.json)")
    p.add_argument("--margins", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5])
    a = p.parse_args(argv)
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    keep_freed_memory()  # as the trainer's final test
    print(f"CPU: {cpu_model()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    modes = [("none", None), ("flip", None), ("flip-translate", None)]
    modes += [("flip-translate", m) for m in a.margins]
    rows: dict[tuple, list] = {m: [] for m in modes}
    for run in a.runs:
        cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
        cfg = cfg.replace(data=a.data) if a.data else cfg
        data = build_data(cfg, progress=False)
        model = model_from_checkpoint(load_checkpoint(run / "last.pt"))
        if cfg.run.channels_last:
            model = model.to(memory_format=torch.channels_last)
        gaps = mirrored_gaps(model, data, cfg)
        for mode, margin in modes:
            t = time.perf_counter()
            res = evaluate(model, data.test, data.eval_transform, CPU, cfg, logits=logits_for(mode, margin))
            seconds = time.perf_counter() - t
            share = (gaps < margin).float().mean().item() if margin is not None else None
            rows[(mode, margin)].append((res.top1, seconds, share))
            name = mode + (f", margin {margin:g}" if margin is not None else "")
            shifted = f", shifted views for {100 * share:.1f} % of the images" if share is not None else ""
            print(f"{run}: {name}: top-1 {res.top1:.2f} % in {seconds:.1f} s{shifted}", flush=True)
    print("\n| TTA | " + " | ".join(str(r) for r in a.runs) + " | median time | images shifted |")
    print("|---|" + "---:|" * (len(a.runs) + 2))
    for (mode, margin), r in rows.items():
        name = f"`--tta {mode}`" + (f" `--tta-margin {margin:g}`" if margin is not None else "")
        shares = [s for _, _, s in r if s is not None]
        share = (
            f"{100 * statistics.median(shares):.1f} %" if shares else ("all" if "translate" in mode else "")
        )
        accs = " | ".join(f"{acc:.2f} %" for acc, _, _ in r)
        print(f"| {name} | {accs} | {statistics.median(s for _, s, _ in r):.1f} s | {share} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
