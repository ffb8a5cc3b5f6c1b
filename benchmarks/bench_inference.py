"""Inference precision: the shipped CIFAR-10 weights on the whole test set in fp32 and at bf16 autocast
with channels-last, the two paths of ``cnnarch eval --precision``, timed in the same process.

Each network runs the same preprocessed batches (the JPEG test set, decoded once, off the clock) through
the code ``cnnarch eval`` runs; rounds alternate fp32 and bf16, since the machine is shared, and the
median images/s is reported with the top-1 of each path and the number of images whose top-1 class
differs between them. bf16 on a CPU without AMX or AVX512-BF16 units runs, but slower than fp32.

    OMP_NUM_THREADS=1 python benchmarks/bench_inference.py --data ../shared/data/cifar10-jpeg
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from cnnarch.data import TensorLoader
from cnnarch.experiments.runner import machine_record
from cnnarch.inference import weights_transform
from cnnarch.models import create_model
from cnnarch.models.weights import SHIPPED_DIR
from cnnarch.train.data import load_split, locate
from cnnarch.train.device import Precision
from cnnarch.train.evaluate import predict_probs

PATHS = {"fp32": Precision(False, "fp32"), "bf16": Precision(True, "bf16")}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("CNNARCH_DATA", "../shared/data/cifar10-jpeg"))
    p.add_argument("--batch-size", type=int, default=250, help="cnnarch eval's default")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--limit", type=int, help="only the first N test images")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    record = machine_record(0, args.threads)
    print(f"{record['started']}  {record['cpu']} ({record['cpu_flags']}), {args.threads} thread(s)")
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    data = load_split(*locate(args.data), "test", args.limit)
    names = sorted(
        f.name.removesuffix("-cifar10.safetensors") for f in SHIPPED_DIR.glob("*-cifar10.safetensors")
    )
    for name in names:
        net = create_model(name, weights="cifar10").eval()
        batches = [
            (weights_transform(net.weights_meta)(x), y)
            for x, y in TensorLoader(data, args.batch_size, shuffle=False)
        ]
        probs, speed = {}, {k: [] for k in PATHS}
        for _ in range(args.rounds):
            for kind, precision in PATHS.items():
                start = time.perf_counter()
                probs[kind], labels = predict_probs(net, batches, None, "cpu", desc=None, precision=precision)
                speed[kind].append(len(labels) / (time.perf_counter() - start))
                net.to(memory_format=torch.contiguous_format)  # each path starts from the same layout
        top1 = {k: 100 * (v.argmax(1) == labels).float().mean().item() for k, v in probs.items()}
        flipped = (probs["fp32"].argmax(1) != probs["bf16"].argmax(1)).sum().item()
        for kind in PATHS:
            print(
                f"{name:<11} {kind}: top-1 {top1[kind]:.2f}% on {len(labels):,} images, "
                f"{statistics.median(speed[kind]):,.0f} images/s (median of {args.rounds})"
            )
        print(f"{name:<11} top-1 class differs on {flipped} of {len(labels):,} images")
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
