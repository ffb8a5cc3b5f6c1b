"""Kept memory (:mod:`cnnarch.memory`) on and off: the `cifar-fast-93-short` step and its final TTA.

The allocator's settings hold for a whole process, so the two arms cannot interleave in one process:
two child processes start together, one thread each, identical but for the lever (``keep``: what
`cnnarch train` does by default; ``default``: glibc as it comes, what ``--no-keep-memory`` leaves). Each
times training steps of ``cifar_fast_93`` as the recipe runs them (bf16 autocast where the CPU has fast
bf16, channels-last, the whitening layer frozen, Muon for the filters and SGD for the rest) at each size
of the recipe (24 and 32 pixels), and the final test-time augmentation (flip-translate: six views) at the
same batch; minor page faults per step and the peak memory come from the kernel (``getrusage``).
Medians over the steps after two warm-up steps; the ratio is default / keep (above 1: the kept arm is
faster, or holds less memory).

    python benchmarks/bench_memory.py                       # batch 512, 8 steps per size, 2048 TTA images
    python benchmarks/bench_memory.py --batch 64 --steps 3 --tta-images 128   # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

ARMS = ("keep", "default")


def child(arm: str, batch: int, steps: int, sizes: list[int], tta_images: int) -> dict:
    import resource

    import torch

    from cnnarch.memory import keep_freed_memory
    from cnnarch.models import create_model
    from cnnarch.train.config import bf16_is_fast
    from cnnarch.train.speedrun import Muon, filter_params, tta_logits

    kept = keep_freed_memory() if arm == "keep" else False
    torch.set_num_threads(1)
    torch.manual_seed(0)
    bf16 = bf16_is_fast("cpu")
    model = create_model("cifar_fast_93").to(memory_format=torch.channels_last)
    model.whiten.requires_grad_(False)
    filters, others = filter_params(model)
    muon = Muon(filters, lr=0.12, momentum=0.6, nesterov=True)
    sgd = torch.optim.SGD(others, lr=0.1, momentum=0.85, nesterov=True, weight_decay=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.2)

    def faults() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def step(x, y) -> tuple[float, int]:
        f0, t0 = faults(), time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(x), y)
        loss.backward()
        muon.step()
        sgd.step()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - t0, faults() - f0

    out = {"arm": arm, "kept": kept, "bf16": bf16}
    for size in sizes:
        x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (batch,))
        runs = [step(x, y) for _ in range(steps + 2)][2:]
        out[f"step{size}"] = statistics.median(t for t, _ in runs)
        out[f"faults{size}"] = statistics.median(f for _, f in runs)
    model.eval()
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    batches = max(1, tta_images // batch)
    t0 = time.perf_counter()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(batches):
            tta_logits(model, x, "flip-translate")
    out["tta_per_10k"] = (time.perf_counter() - t0) * 10_000 / (batches * batch)
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--steps", type=int, default=8, help="timed steps per size (after 2 warm-up steps)")
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 24])
    p.add_argument("--tta-images", type=int, default=2048)
    p.add_argument("--child", choices=ARMS, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.batch, a.steps, a.sizes, a.tta_images)))
        return 0

    from cnnarch.train.config import cpu_model

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    args = [sys.executable, __file__, "--batch", str(a.batch), "--steps", str(a.steps), "--sizes"]
    args += [str(s) for s in a.sizes] + ["--tta-images", str(a.tta_images), "--child"]
    now = datetime.now(timezone.utc)
    print(f"{now:%Y-%m-%d %H:%M} UTC, CPU: {cpu_model()}, one thread per arm, both started together")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    procs = {arm: subprocess.Popen([*args, arm], env=env, stdout=subprocess.PIPE, text=True) for arm in ARMS}
    res = {}
    for arm, proc in procs.items():
        stdout, _ = proc.communicate()
        if proc.returncode:
            print(f"the {arm} arm failed (exit {proc.returncode})", file=sys.stderr)
            return 1
        res[arm] = json.loads(stdout.strip().splitlines()[-1])
    keep, default = res["keep"], res["default"]
    if not keep["kept"]:
        print("this C library is not glibc: keeping memory changes nothing here")
    print(f"batch {a.batch}, bf16 autocast: {keep['bf16']}, channels-last, medians of {a.steps} steps")
    print(f"{'':22}{'kept (ours)':>16}{'default (glibc)':>18}{'default / kept':>16}")
    for size in a.sizes:
        s, d = keep[f"step{size}"], default[f"step{size}"]
        print(f"{f'step at {size} px':22}{s:>14.3f} s{d:>16.3f} s{d / s:>15.2f}x")
        fk, fd = keep[f"faults{size}"], default[f"faults{size}"]
        print(f"{'  page faults / step':22}{fk:>16,.0f}{fd:>18,.0f}")
    s, d = keep["tta_per_10k"], default["tta_per_10k"]
    print(f"{'TTA, s per 10k images':22}{s:>14.1f} s{d:>16.1f} s{d / s:>15.2f}x")
    s, d = keep["peak_mb"], default["peak_mb"]
    print(f"{'peak memory (RSS)':22}{s:>13,.0f} MB{d:>15,.0f} MB{d / s:>15.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
