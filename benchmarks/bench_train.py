"""Training throughput: `cnnarch train`'s loop against a plain torchvision-style loop.

Reference: torchvision ``ImageFolder`` + ``DataLoader`` (worker processes) + per-image transforms
(RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize), fp32, NCHW, SGD with momentum.
Candidate: the trainer's own epoch (``Trainer.train_epoch``) over cnnarch.data's uint8 tensor cache with
batched augmentation, channels-last and bf16 autocast (the CPU's AMX units).
Same model (freshly built from the same seed), same images (the first --images of the training set),
same batch size, same process; the two run interleaved, round after round, and the medians are compared.
Both times are end to end: reading/decoding/augmenting the batch, forward, backward, optimizer step.

    OMP_NUM_THREADS=2 python benchmarks/bench_train.py --data ../shared/data/cifar10-jpeg
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torchvision
from torchvision import transforms as T

from cnnarch.models import create_model
from cnnarch.train.config import cpu_has_fast_bf16, resolve_config
from cnnarch.train.data import build_data
from cnnarch.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def reference_round(model, opt, loader, device) -> float:
    """Images/s of one pass of a plain loop over ``loader``."""
    model.train()
    n = 0
    sync(device)
    t0 = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(y)
    sync(device)
    return n / (time.perf_counter() - t0)


def data_only(iterable, device) -> float:
    sync(device)
    n, t0 = 0, time.perf_counter()
    for _, y in iterable:
        n += len(y)
    sync(device)
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "cifar10-jpeg"))
    p.add_argument("--model", default="resnet18")
    p.add_argument("--images", type=int, default=1024, help="images per round (each side)")
    p.add_argument("-b", "--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--ref-workers", type=int, default=2, help="DataLoader workers of the reference")
    p.add_argument(
        "--amp",
        choices=("auto", "on", "off"),
        default="auto",
        help="candidate's bf16 autocast; auto: on for CUDA and for CPUs with AMX/AVX512-BF16",
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    threads = torch.get_num_threads()
    device = torch.device(args.device)
    amp = args.amp == "on" or (args.amp == "auto" and (device.type == "cuda" or cpu_has_fast_bf16()))

    out = tempfile.mkdtemp(prefix="bench_train_")
    cfg = resolve_config(
        model=args.model,
        data=args.data,
        limit_train=args.images,
        val_split=0.0,
        batch_size=args.batch_size,
        lr=0.01,
        sched="none",
        amp=amp,
        channels_last=True,
        device=args.device,
        epochs=10**6,
        output=out,
        log_interval=0,
        augment="crop,flip",
    )
    t0 = time.perf_counter()
    data = build_data(cfg, progress=False)
    data.test = None
    cache_s = time.perf_counter() - t0
    trainer = Trainer(cfg, data, log=lambda s: None)
    # the same images for the reference: ImageFolder over the same files
    folder = torchvision.datasets.ImageFolder(
        str(Path(args.data) / "train"),
        transform=T.Compose(
            [
                T.RandomCrop(32, padding=4),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                T.Normalize(data.info["mean"], data.info["std"]),
            ]
        ),
    )
    keep = torch.randperm(len(folder), generator=torch.Generator().manual_seed(0))[: args.images].tolist()
    ref_loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(folder, keep),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=args.ref_workers,
        pin_memory=device.type == "cuda",
    )
    torch.manual_seed(0)
    ref_model = create_model(args.model, num_classes=10).to(device)
    ref_opt = torch.optim.SGD(
        ref_model.parameters(), lr=0.01, momentum=0.9, weight_decay=cfg.optim.weight_decay
    )

    ref, cand, ref_data, cand_data = [], [], [], []
    for r in range(args.rounds):
        ref.append(reference_round(ref_model, ref_opt, ref_loader, device))
        cand.append(trainer.train_epoch(r)["images_per_s"])
        ref_data.append(data_only(ref_loader, device))
        data.train.set_epoch(r)
        cand_data.append(data_only(data.train, device))
        print(
            f"round {r + 1}: reference {ref[-1]:.1f} img/s, cnnarch {cand[-1]:.1f} img/s | data only: "
            f"reference {ref_data[-1]:.0f}, cnnarch {cand_data[-1]:.0f} img/s",
            flush=True,
        )

    med = {
        k: statistics.median(v)
        for k, v in dict(ref=ref, cand=cand, ref_data=ref_data, cand_data=cand_data).items()
    }
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print()
    print(
        f"command: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} python benchmarks/bench_train.py "
        + " ".join(sys.argv[1:])
    )
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.machine(),
    )
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    units = "AMX/AVX512-BF16" if cpu_has_fast_bf16() else "no bf16 units"
    print(
        f"machine: {cpu} ({os.cpu_count()} cores, {units}){gpu}; device {device}, "
        f"torch threads {threads}, torch {torch.__version__}; {when}"
    )
    print(
        f"model {args.model}, batch {args.batch_size}, {args.images} images/round, {args.rounds} rounds, "
        f"reference DataLoader workers {args.ref_workers}; cache load {cache_s:.1f} s (once)"
    )
    print("| loop | train img/s (median) | data path img/s (median) |")
    print("| --- | ---: | ---: |")
    print(f"| torchvision ImageFolder + DataLoader, fp32 NCHW | {med['ref']:.1f} | {med['ref_data']:.0f} |")
    amp = "bf16 autocast" if amp else "fp32"
    print(
        f"| cnnarch train: uint8 cache, batched aug, channels-last, {amp} | {med['cand']:.1f} | "
        f"{med['cand_data']:.0f} |"
    )
    print(
        f"| ratio of the medians | {med['cand'] / med['ref']:.2f}x "
        f"| {med['cand_data'] / med['ref_data']:.1f}x |"
    )
    paired = [c / r for c, r in zip(cand, ref, strict=True)]
    print(
        f"per-round training ratios: {', '.join(f'{x:.2f}' for x in paired)}; "
        f"median {statistics.median(paired):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
