"""Data path speed: cnnarch's cached uint8 tensors + batched augmentation against a torchvision-style
ImageFolder + DataLoader + per-image transforms, on the CIFAR-10 JPEG copy, in the same process.

Both produce the same thing: shuffled batches of 32x32 random crops (4-pixel zero padding), random
horizontal flips, normalised float32 NCHW tensors with labels. Measured rounds are interleaved
(reference, then candidates) and medians reported, since the machine is shared.

    OMP_NUM_THREADS=2 python benchmarks/bench_data.py --data ../shared/data/cifar10-jpeg
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import datetime, timezone

import torch
import torchvision
from torchvision import transforms as T

from cnnarch.data import (
    Normalize,
    StreamLoader,
    TensorLoader,
    TrainTransform,
    channel_stats,
    load_image_folder,
    rgb_pca,
)

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def images_per_second(batches, limit: int) -> float:
    """Images/s over the first ``limit`` images of ``batches`` (the iterator's set-up included)."""
    start, seen = time.perf_counter(), 0
    it = iter(batches)
    for x, _ in it:
        seen += len(x)
        if seen >= limit:
            break
    elapsed = time.perf_counter() - start
    if hasattr(it, "close"):  # stop a generator's DataLoader workers before the next path runs
        it.close()
    del it
    return seen / elapsed


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("CNNARCH_DATA", "../shared/data/cifar10-jpeg"))
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--images", type=int, default=10_000, help="images per timed round")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers for the reference")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    setup = (
        f"torch threads {torch.get_num_threads()}, reference workers {args.workers}, batch {args.batch_size}"
    )
    print(f"# {when}, {machine}, {setup}, {args.images} images per round, {args.rounds} rounds interleaved")

    load_image_folder(args.data, "train")  # build the cache if needed (not timed)
    loads = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        train = load_image_folder(args.data, "train", progress=False)
        loads.append(time.perf_counter() - start)
    shape = f"{len(train)} images {tuple(train.images.shape[1:])}"
    rounds = ", ".join(f"{t:.2f}" for t in loads)
    print(f"cache load ({shape}): median {statistics.median(loads):.2f} s, rounds {rounds}")

    mean, std = channel_stats(train.images)
    pca = rgb_pca(train.images)
    crop_flip = TrainTransform(crop=32, padding=4, normalize=Normalize(mean, std))
    fancy = TrainTransform(crop=32, padding=4, lighting_std=0.1, pca=pca, normalize=Normalize(mean, std))
    reference = torchvision.datasets.ImageFolder(
        os.path.join(args.data, "train"),
        T.Compose(
            [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)]
        ),
    )
    runs = {
        "reference: ImageFolder+DataLoader+per-image transforms": lambda epoch: torch.utils.data.DataLoader(
            reference,
            args.batch_size,
            shuffle=True,
            num_workers=args.workers,
            drop_last=True,
            generator=torch.Generator().manual_seed(epoch),
        ),  # fmt: skip
        "cnnarch TensorLoader, crop+flip": lambda epoch: _epoch(
            TensorLoader(train, args.batch_size, transform=crop_flip), epoch
        ),
        "cnnarch TensorLoader, crop+flip+fancy PCA": lambda epoch: _epoch(
            TensorLoader(train, args.batch_size, transform=fancy), epoch
        ),
        f"cnnarch StreamLoader ({args.workers} workers), crop+flip": lambda epoch: _epoch(
            StreamLoader(
                os.path.join(args.data, "train"),
                args.batch_size,
                load_size=32,
                transform=crop_flip,
                workers=args.workers,
            ),
            epoch,
        ),  # fmt: skip
    }
    results = {name: [] for name in runs}
    for r in range(args.rounds):
        for name, make in runs.items():
            results[name].append(images_per_second(make(r), args.images))
    ref = statistics.median(results[next(iter(runs))])
    print(f"{'path':60s} {'images/s (median)':>18s} {'vs reference':>13s}   rounds")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"{name:60s} {med:18,.0f} {med / ref:12.1f}x   {', '.join(f'{v:,.0f}' for v in values)}")


def _epoch(loader, epoch):
    loader.set_epoch(epoch)
    return loader


if __name__ == "__main__":
    main()
