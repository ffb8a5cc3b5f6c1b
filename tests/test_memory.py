"""Kept memory, counted by the kernel: a freed block's pages are reused, not faulted in again.

Each case runs in a child process: the allocator's settings hold for the rest of a process's life, and
the test must see a fresh allocator in both arms.
"""

import platform
import subprocess
import sys

import pytest

from cnnarch.memory import keep_freed_memory

glibc_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the allocator kept is glibc's (Linux)",
)

PAGES = 16384  # 64 MiB in 4 KiB pages

CHILD = f"""
import resource, sys
import torch
from cnnarch.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
counts = []
for _ in range(40):  # a training step's activation: allocated, written, freed, allocated again
    before = faults()
    x = torch.empty({PAGES} * 4096, dtype=torch.uint8)
    x.fill_(1)
    del x
    counts.append(faults() - before)
print(kept, *counts[-3:])
"""


def last_allocations_faults(arm: str) -> tuple[bool, list[int]]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, arm], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    return out[0] == "True", [int(n) for n in out[1:]]


@glibc_linux
def test_a_repeated_step_reuses_the_pages_of_the_one_before():
    default_kept, default_faults = last_allocations_faults("default")
    kept, kept_faults = last_allocations_faults("keep")
    assert not default_kept and kept
    if min(default_faults) < PAGES // 2:
        pytest.skip(f"this kernel maps the block with few faults even by default ({default_faults})")
    # glibc's default: a fresh mapping for the 64 MiB block every time, every page faulted in again
    assert min(default_faults) >= PAGES * 0.9
    # kept: after the first few (the heap grows by a few blocks until freed ones coalesce: 5-8 here on a
    # quiet machine, 11 under load), the same pages serve every allocation
    assert max(kept_faults) < PAGES * 0.05, kept_faults


def test_elsewhere_nothing_changes(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False
