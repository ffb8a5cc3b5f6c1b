"""Checkpoints that survive crashes and load safely.

Writing (:func:`cnnarch.data.base.atomic_torch_save`, shared with the data cache) goes to a temporary
file in the same directory, is flushed to disk, and then replaces the target with ``os.replace`` (atomic
on POSIX and Windows): a crash mid-write leaves the previous checkpoint whole.
Loading uses ``torch.load(weights_only=True)``, which unpickles tensors and plain containers only, so a
file crafted to run code on load is refused instead of executed. Everything stored is therefore plain:
the config as a dict, RNG states as tensors and lists (NumPy's state is converted).

A run folder in use is locked (:func:`run_lock`): a second run started into it is refused at once,
naming the process that holds it. The lock is an advisory ``flock`` the kernel releases when its
process ends, however it ends, so the lock of a killed run is taken over without a word.
"""

from __future__ import annotations

import fcntl
import os
import random
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from cnnarch.data.base import atomic_torch_save, safe_torch_load
from cnnarch.errors import UsageError

__all__ = ["FORMAT", "atomic_torch_save", "get_rng_state", "load_checkpoint", "run_lock", "set_rng_state"]

FORMAT = "cnnarch-checkpoint/1"
LOCK_FILE = ".cnnarch.lock"


@contextmanager
def run_lock(directory: str | os.PathLike):
    """Hold ``directory`` (created if missing) for one run; a second holder is refused with a
    :class:`~cnnarch.errors.UsageError` naming the lock file and the process that holds it."""
    directory = Path(directory)
    created = [d for d in (directory, *directory.parents) if not d.exists()]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UsageError(
                f"--output {directory} is in use by a live run (process {holder}, lock {path})",
                hint="wait for that run to end or stop it, or choose another --output",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock; the file stays, so that no second inode can be locked
        if created and [p.name for p in directory.iterdir()] == [LOCK_FILE]:
            path.unlink()  # a run refused before writing anything leaves no folder behind
            for d in created:
                d.rmdir()


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a cnnarch checkpoint with ``weights_only=True``; clear errors for wrong or unsafe files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    ckpt = safe_torch_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a cnnarch training checkpoint (no {FORMAT!r} marker)")
    return ckpt


def get_rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": list(_to_lists(random.getstate())),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, tuple) else x
