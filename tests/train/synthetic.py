"""Tiny synthetic data and networks for the trainer's tests."""

from __future__ import annotations

import os
import socket

import torch
from torch import nn

from cnnarch.train.config import resolve_config
from cnnarch.train.trainer import DataBundle, Trainer


class TensorBatches:
    """Batches of in-memory tensors; the order of each epoch is a function of (seed, epoch) only, and under
    ``world_size`` processes each takes its contiguous share of every global batch."""

    def __init__(self, x, y, batch_size, shuffle=True, seed=0, rank=0, world_size=1, drop_last=True):
        assert batch_size % world_size == 0
        self.x, self.y, self.b = x, y, batch_size
        self.shuffle, self.seed, self.rank, self.world = shuffle, seed, rank, world_size
        self.drop_last, self.epoch = drop_last, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        n = len(self.x)
        return n // self.b if self.drop_last else -(-n // self.b)

    def __iter__(self):
        n = len(self.x)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 7919 + self.epoch))
        else:
            order = torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.b : (i + 1) * self.b].tensor_split(self.world)[self.rank]
            yield self.x[idx], self.y[idx]


def random_flip(x, generator):
    """A batched augmentation that draws from the trainer's generator."""
    flip = torch.rand(len(x), generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def blob_images(n=256, classes=4, size=8, seed=0):
    """Class = (top or bottom half, red or green): easy to learn, and a horizontal flip keeps the class."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randint(0, 60, (n, 3, size, size), generator=g, dtype=torch.uint8)
    half = size // 2
    for c in range(classes):
        r, channel = divmod(c, 2)
        x[y == c, channel, r * half : (r + 1) * half, :] += 150
    return x, y


def to_float(x):
    return x.float() / 255 - 0.5


def bundle(x, y, batch_size, classes, rank=0, world_size=1, augment=True, val=True, test=False, seed=0):
    n_val = len(x) // 4 if val else 0
    xv, yv, xt, yt = x[:n_val], y[:n_val], x[n_val:], y[n_val:]

    def src(a, b, **kw):
        return TensorBatches(a, b, batch_size, seed=seed, rank=rank, world_size=world_size, **kw)

    return DataBundle(
        train=src(xt, yt),
        val=src(xv, yv, shuffle=False, drop_last=False) if val else None,
        test=src(xv, yv, shuffle=False, drop_last=False) if test else None,
        num_classes=classes,
        train_transform=(lambda b, g: random_flip(to_float(b), g)) if augment else (lambda b, g: to_float(b)),
        eval_transform=to_float,
        classes=[f"c{i}" for i in range(classes)],
    )


def tiny_cnn(classes=4, dropout=0.2):
    """Conv, batch norm, dropout: everything whose state a resume must restore."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(32, classes),
    )


def tiny_mlp_net(classes=4):
    """No batch norm, no dropout: per-process state that would make N processes differ from one."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, classes))


def ddp_main(out_dir: str, world_size: int, rank: int) -> None:
    torch.manual_seed(0)
    x, y = blob_images(128)
    data = bundle(x, y, 32, 4, rank=rank, world_size=world_size, augment=False)
    cfg = resolve_config(
        model="tiny",
        epochs=2,
        batch_size=32,
        lr=0.05,
        sched="step",
        decay_epochs=1,
        output=out_dir,
        log_interval=0,
    )
    Trainer(cfg, data, model=tiny_mlp_net(), log=lambda s: None).fit()


def run_forked_processes(out_dir: str, world_size: int) -> list[int]:
    """``ddp_main`` in ``world_size`` forked processes joined by gloo, as torchrun would start them
    (torchrun itself costs a launcher and a fresh torch import per process: ~30 s on this machine).
    Returns the exit codes."""
    import multiprocessing

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_worker, args=(out_dir, world_size, rank, port)) for rank in range(world_size)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    for p in procs:
        if p.is_alive():
            p.kill()
    return [p.exitcode for p in procs]


def _worker(out_dir, world_size, rank, port):
    import torch.distributed as dist

    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    ddp_main(out_dir, world_size, rank)
    dist.destroy_process_group()
