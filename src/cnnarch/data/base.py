"""The in-memory dataset every small-image loader returns, and the helpers they share.

An :class:`ImageTensors` holds a whole dataset as one ``uint8`` tensor of shape ``(N, C, H, W)``
(PyTorch's NCHW order; call ``.contiguous(memory_format=torch.channels_last)`` on a batch for NHWC
kernels) with ``int64`` labels and the class names. CIFAR-10's training set is 150 MiB this way.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnarch.errors import InputError, ResourceError


class WriteError(ResourceError, OSError):
    """A file that could not be written (a full disk, a folder that cannot be written); the earlier file
    at its path is untouched. An OSError for callers that fall back (the decoded-image cache)."""


class CorruptImageError(ValueError):
    """An image file that Pillow cannot decode. ``path`` names the first such file."""

    def __init__(self, message: str, path: str | Path):
        super().__init__(message)
        self.path = str(path)


@dataclass(frozen=True, eq=False)
class ImageTensors:
    """A dataset held in memory.

    Attributes:
        images: ``uint8`` tensor ``(N, C, H, W)``, values 0..255.
        labels: ``int64`` tensor ``(N,)`` of class indices into ``classes``.
        classes: class names; ``classes[i]`` is the name of label ``i``.
        paths: source file of each image (relative to ``source``), empty for array formats.
        skipped: files left out because they were corrupt (only with ``skip_corrupt=True``).
        source: where the data came from (a directory or file), for messages.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    paths: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be a uint8 (N, C, H, W) tensor, got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != (len(self.images),):
            raise ValueError(
                f"labels must be int64 of shape ({len(self.images)},), got {self.labels.dtype} "
                f"{tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        extra = f", skipped={len(self.skipped)}" if self.skipped else ""
        shape = f"{n} images {c}x{h}x{w}, {len(self.classes)} classes"
        return f"ImageTensors({shape}, source={self.source!r}{extra})"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.images.shape[1:])

    def subset(self, index: torch.Tensor | slice) -> ImageTensors:
        """The images at ``index`` (a slice, or a tensor of indices), keeping classes and source."""
        if isinstance(index, slice):
            images, labels, paths = self.images[index], self.labels[index], self.paths[index]
        else:
            index = torch.as_tensor(index, dtype=torch.int64, device=self.images.device)
            images, labels = self.images.index_select(0, index), self.labels.index_select(0, index)
            paths = [self.paths[i] for i in index.tolist()] if self.paths else []
        return ImageTensors(images, labels, list(self.classes), paths, list(self.skipped), self.source)

    def numpy(self, layout: str = "NHWC") -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` as NumPy arrays: ``X`` uint8 in ``layout`` ("NHWC", CS231n's order, or "NCHW"),
        ``y`` int64. Shares memory with the tensors when the layout allows."""
        if layout not in ("NHWC", "NCHW"):
            raise ValueError(f"layout must be 'NHWC' or 'NCHW', got {layout!r}")
        x = self.images.permute(0, 2, 3, 1) if layout == "NHWC" else self.images
        return np.ascontiguousarray(x.numpy()), self.labels.numpy()

    def class_counts(self) -> torch.Tensor:
        """Number of images of each class, ``(len(classes),)``."""
        return torch.bincount(self.labels, minlength=len(self.classes))


def default_cache_dir() -> Path:
    """``$CNNARCH_CACHE``, else ``$XDG_CACHE_HOME/cnnarch``, else ``~/.cache/cnnarch``."""
    if os.environ.get("CNNARCH_CACHE"):
        return Path(os.environ["CNNARCH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "cnnarch"


@contextmanager
def atomic_file(path: str | os.PathLike):
    """A binary file to write that appears at ``path`` only once complete: written to a temporary file
    beside it, flushed to disk, then renamed over it. Readers see the old file or the whole new one,
    never a half-written one (also when two processes build the same cache)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; caches and weights are shared like any file
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, (OSError, RuntimeError)):
            # torch.save reports a full disk only as "unexpected pos N vs M"
            free = shutil.disk_usage(path.parent).free / 2**20
            raise WriteError(
                f"could not write {path} ({free:.0f} MiB free on its disk; any earlier file there is "
                f"untouched). Free some space or write elsewhere. ({e})"
            ) from e
        raise


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`atomic_file`."""
    with atomic_file(path) as f:
        torch.save(obj, f)


def safe_torch_load(path: Path, what: str = "checkpoint"):
    """``torch.load(weights_only=True)``: tensors and plain containers only, so a file crafted to run code
    on load is refused (an InputError naming it), never executed; a truncated, empty or text file is an
    InputError too (torch.load reports a text file as ``KeyError: 101``)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise InputError(
            f"{path} was refused by the weights-only loader: it holds objects other than tensors and "
            f"plain containers (possibly code). Load only files you trust. ({str(e).splitlines()[0]})"
        ) from None
    except (OSError, MemoryError):
        raise
    except Exception as e:  # a file that torch.save did not write fails in many ways
        size = path.stat().st_size if path.is_file() else 0
        kind = "an empty file" if size == 0 else f"{size} bytes that torch.load cannot read"
        raise InputError(
            f"{path} is not a readable {what}: {kind} (truncated, corrupt, or not written by torch.save; "
            f"{type(e).__name__}: {e})",
            hint="point to the .pt file itself, or write it again",
        ) from None


def first_per_class(labels: torch.Tensor, limit: int) -> torch.Tensor:
    """Indices of the first ``limit`` images taken round-robin over classes, in dataset order
    (the same rule as ``scan_image_folder``)."""
    rank = torch.zeros_like(labels)
    for c in labels.unique():
        where = labels == c
        rank[where] = torch.arange(int(where.sum()))
    order = torch.argsort(rank * (int(labels.max()) + 1) + labels, stable=True)[:limit]
    return order.sort().values
