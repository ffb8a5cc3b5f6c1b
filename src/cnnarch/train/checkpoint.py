"""Checkpoints that survive crashes and load safely.

Writing (:func:`cnnarch.data.base.atomic_torch_save`, shared with the data cache) goes to a temporary
file in the same directory, is flushed to disk, and then replaces the target with ``os.replace`` (atomic
on POSIX and Windows): a crash mid-write leaves the previous checkpoint whole.
Loading uses ``torch.load(weights_only=True)``, which unpickles tensors and plain containers only, so a
file crafted to run code on load is refused instead of executed. Everything stored is therefore plain:
the config as a dict, RNG states as tensors and lists (NumPy's state is converted).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from cnnarch.data.base import atomic_torch_save, safe_torch_load

__all__ = ["FORMAT", "atomic_torch_save", "get_rng_state", "load_checkpoint", "set_rng_state"]

FORMAT = "cnnarch-checkpoint/1"


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
