"""Keep freed memory in the process, so that a step reuses the pages of the step before it.

glibc's ``malloc`` serves every block above its mmap threshold (32 MiB at most) with a fresh ``mmap`` and
unmaps it again at ``free``. A training step on a CPU allocates the same large activations every step, so
with the default every step faults all their pages in anew and the kernel zeroes each page first. For
``cifar_fast_93`` at a batch of 512 (the first stage's maps are 63 MB in bfloat16) that was about 80,000
page faults and 14 % of a one-thread step (1.03 s against 0.89 s; AMD EPYC Zen 4, bf16, channels-last),
and a fifth of the final test-time augmentation. Allocators made for this (jemalloc, tcmalloc) would need
``LD_PRELOAD`` before the process starts; glibc's own ``mallopt`` can be told from inside it:
``M_MMAP_MAX = 0`` (every block from the heap, never from its own mapping) and a large
``M_TRIM_THRESHOLD`` (freed memory at the heap's top stays). The process then keeps its peak memory until
it exits, which a training or evaluation run does anyway, and its heap may hold a few of its largest
blocks more than it uses: glibc's aligned allocations ask for a little more than a freed block of the
same size holds, so a block allocated and freed again and again grows the heap (by six blocks of 64 MiB
in ``tests/test_memory.py``) until freed neighbours coalesce and serve it.

Only glibc on Linux: elsewhere (macOS, Windows, musl) :func:`keep_freed_memory` changes nothing and says so.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["keep_freed_memory"]

# glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # an int: the largest it takes (2 GiB of free memory at the heap's top)


def keep_freed_memory() -> bool:
    """Tell glibc's allocator to serve every block from its heap and not return freed memory to the
    system; True where it took effect (glibc on Linux), False elsewhere. Affects the whole process, for
    the rest of its life."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
        libc.gnu_get_libc_version  # noqa: B018 (present in glibc only; musl has a mallopt that ignores these)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
