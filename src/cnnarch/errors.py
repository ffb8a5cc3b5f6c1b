"""Errors a user can cause and fix. Library code raises them with a message that names the file or value
and the way out; the command line (``cnnarch.cli.main``) prints that message and exits with
``exit_code``, without a traceback.

``UsageError`` and ``InputError`` are also ``ValueError`` so that callers written against the library's
older ``ValueError`` contract keep working. This module imports nothing heavy: the CLI loads it while
``cnnarch --help`` must stay fast.

:func:`check_memory` runs before a command allocates: a pass that would need more memory than is
available is refused with the estimate and the memory available, instead of growing until the kernel
kills the process."""

from __future__ import annotations

import os


class CnnarchError(Exception):
    """Base class. ``hint`` (optional) is the way out, printed on a second line by the CLI."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class UsageError(CnnarchError, ValueError):
    """A flag, option or combination of them that cannot work (e.g. an output that exists without
    ``--overwrite``, a run folder locked by another live run)."""

    exit_code = 2


class InputError(CnnarchError, ValueError):
    """A file or value given to cnnarch is not what it must be (a corrupt or wrong checkpoint, weights
    with NaN or the wrong shapes, a malformed ``CxHxW``)."""

    exit_code = 2


class ResourceError(CnnarchError):
    """The machine lacks what the command needs (memory, disk space); the message says how much."""

    exit_code = 1


def available_memory(device: str = "cpu") -> int | None:
    """Bytes that can be allocated on ``device`` without swapping: ``MemAvailable`` of /proc/meminfo
    (Linux; the free pages elsewhere), the free memory of a CUDA device; None where unknown."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.mem_get_info(torch.device(device))[0]
    if device != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needed: int, what: str, *, device: str = "cpu", hint: str | None = None) -> None:
    """Raise :class:`~cnnarch.errors.ResourceError` when ``what`` needs more than ``device`` has free."""
    free = available_memory(device)
    if free is not None and needed > free:
        raise ResourceError(
            f"{what} needs {needed / 2**30:.1f} GiB of memory or more; {device} has {free / 2**30:.1f} GiB "
            "available",
            hint=hint,
        )
