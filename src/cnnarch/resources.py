"""What the machine has, checked before a command allocates: a pass that would need more memory than is
available is refused with the estimate and the memory available, instead of growing until the kernel
kills the process."""

from __future__ import annotations

import os

from cnnarch.errors import ResourceError


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
