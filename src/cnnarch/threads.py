"""How many CPU threads a command computes with: the cores actually free, decided before torch loads.

On a machine shared with other work, more threads than free cores is the worst choice there is. Each of
torch's parallel regions ends at a barrier, so a thread that shares its core with another process holds
up all the others at every layer: two threads beside a busy core ran up to 30x slower than one. The
default is therefore the number of cores that are free when the command starts, and a training run with
``--threads 0`` (the speedrun recipes) counts again every :data:`RECHECK_SECONDS` and follows the load.

Free cores are measured from ``/proc/stat`` over a short window (:data:`WINDOW_SECONDS`), on the cores
this process may run on (its affinity mask): the idle time, the time of niced processes when this one is
not niced (the scheduler gives a nice-0 thread about ten times the share of a nice-10 one, so a niced
background job leaves its core to us), and this process's own time (when it re-checks during a run). A
core counts when it is at least :data:`FREE_SHARE` free: a thread that gets half a core waits at every
barrier for the rest. ``os.getloadavg()`` would not do: it is an average over a minute (a busy loop
started seconds ago barely shows), and it counts niced jobs and processes waiting on the disk as busy.

OpenMP reads its settings once, when torch loads it, so :func:`apply_before_torch` sets
``OMP_NUM_THREADS`` (the count) and ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep instead of spinning
on a shared CPU) in the environment first; values already there are the user's and are kept. This module
imports no torch.

A count that follows the load may differ between two runs, and with it the order of floating-point sums:
runs that must repeat bit for bit give ``--threads N``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

WINDOW_SECONDS = 0.25
FREE_SHARE = 0.7
RECHECK_SECONDS = 20.0


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask, not the machine's total)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class Snapshot:
    """Cumulative CPU time (ticks) of the allowed cores: all of it, the part free to this process, and
    this process's own."""

    total: int
    free: int
    own: int


def snapshot(cpus: list[int] | None = None, stat: str | None = None) -> Snapshot | None:
    """The counters now, or None where ``/proc/stat`` cannot be read (not Linux)."""
    try:
        stat = stat if stat is not None else Path("/proc/stat").read_text()
        own_fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    wanted = {f"cpu{c}" for c in (cpus if cpus is not None else allowed_cpus())}
    niced_is_free = os.getpriority(os.PRIO_PROCESS, 0) <= 0 if hasattr(os, "getpriority") else True
    total = free = 0
    for line in stat.splitlines():
        name, *values = line.split()
        if name not in wanted:
            continue
        user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in values[:8])
        total += user + nice + system + idle + iowait + irq + softirq + steal
        free += idle + iowait + (nice if niced_is_free else 0)
    own = int(own_fields[11]) + int(own_fields[12])  # utime, stime of all its threads
    return Snapshot(total, free, own)


def free_between(before: Snapshot, after: Snapshot, cores: int) -> float:
    """Cores free to this process between two snapshots, its own busy time counted as free."""
    total = after.total - before.total
    if total <= 0:
        return float(cores)
    free = (after.free - before.free) + (after.own - before.own)
    return max(0.0, min(float(cores), cores * free / total))


def free_cores(window: float = WINDOW_SECONDS) -> float | None:
    """Cores free to this process, measured over ``window`` seconds; None where it cannot be measured."""
    cpus = allowed_cpus()
    before = snapshot(cpus)
    if before is None:
        return None
    time.sleep(window)
    after = snapshot(cpus)
    return None if after is None else free_between(before, after, len(cpus))


def threads_for(free: float | None, cores: int, processes: int = 1) -> int:
    """Threads per process: the cores at least :data:`FREE_SHARE` free, shared among ``processes``."""
    usable = cores if free is None else math.floor(free + 1 - FREE_SHARE)
    return max(1, min(cores, usable) // max(1, processes))


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count chosen for this process and why (:meth:`describe`, one line)."""

    threads: int
    cores: int
    free: float | None = None  # measured free cores; None: not measured
    source: str = "measured"  # or "OMP_NUM_THREADS", "--threads"

    def describe(self, now: int | None = None, recheck: bool = False, fix: str = "--threads N") -> str:
        n = self.threads if now is None else now
        if self.source == "measured" and self.free is not None:
            why = f"{self.free:.1f} of {self.cores} cores free"
        elif self.source == "measured":
            why = f"{self.cores} cores; the load cannot be measured here"
        else:
            why = f"{self.source}, {self.cores} cores"
        again = f", counted again every {RECHECK_SECONDS:g} s" if recheck else ""
        wait = os.environ.get("OMP_WAIT_POLICY", "unset")
        return f"threads: {n} ({why}{again}; {fix} to fix it); OMP_WAIT_POLICY={wait}"


def local_processes() -> int:
    """Processes ``torchrun`` started on this machine (1 without ``torchrun``)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


CHOICE: ThreadChoice | None = None  # what apply_before_torch chose for this process


def choose(requested: int | None = None, processes: int = 1) -> ThreadChoice:
    """``requested`` > 0: that many; else ``OMP_NUM_THREADS`` from the environment when ``requested`` is
    None; else the free cores measured now, shared among ``processes`` (torchrun's on this machine)."""
    cores = len(allowed_cpus())
    if requested:
        return ThreadChoice(requested, cores, source="--threads")
    env = os.environ.get("OMP_NUM_THREADS", "")
    if requested is None and env.isdigit() and int(env) > 0:
        return ThreadChoice(int(env), cores, source="OMP_NUM_THREADS")
    free = free_cores()
    return ThreadChoice(threads_for(free, cores, processes), cores, free)


def apply_before_torch(requested: int | None = None, processes: int = 1) -> ThreadChoice | None:
    """Choose the thread count and put it, with ``OMP_WAIT_POLICY=PASSIVE``, in the environment that
    torch's OpenMP reads when it loads (values set there already are kept). Does nothing once torch is
    loaded (a Python session that calls the command line keeps its own settings)."""
    global CHOICE
    if "torch" in sys.modules:
        return None
    CHOICE = choose(requested, processes)
    os.environ.setdefault("OMP_NUM_THREADS", str(CHOICE.threads))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return CHOICE


def threads_per_process(requested: int, processes: int = 1) -> ThreadChoice:
    """``--threads N``: N; ``--threads 0``: the free cores shared among ``processes`` (the choice made
    before torch loaded when there was one, measured now otherwise)."""
    if not requested and CHOICE is not None and CHOICE.source == "measured":
        return CHOICE
    return choose(requested or 0, processes)


def for_run(requested: int | None, processes: int = 1) -> ThreadChoice:
    """The choice a training run applies to torch: ``--threads N`` or ``0`` as :func:`threads_per_process`;
    None keeps torch's setting (the command line's choice made before torch loaded, or the caller's)."""
    import torch

    if requested is not None:
        choice = threads_per_process(requested, processes)
        torch.set_num_threads(choice.threads)
        return choice
    n = torch.get_num_threads()
    if CHOICE is not None and CHOICE.threads == n:
        return CHOICE
    return ThreadChoice(n, len(allowed_cpus()), source="torch's setting")


class Recheck:
    """Counts the free cores again every ``every`` seconds of a run (one process) and sets torch's thread
    count to match; returns a line saying so when it changed, else None. Call it often (every step):
    between checks it only reads the clock."""

    def __init__(self, threads: int, every: float = RECHECK_SECONDS):
        self.threads, self.every = threads, every
        self.cpus = allowed_cpus()
        self._since, self._start = snapshot(self.cpus), time.monotonic()

    def __call__(self) -> str | None:
        if self._since is None or time.monotonic() - self._start < self.every:
            return None
        now = snapshot(self.cpus)
        if now is None:
            return None
        free = free_between(self._since, now, len(self.cpus))
        seconds = time.monotonic() - self._start
        self._since, self._start = now, time.monotonic()
        n = threads_for(free, len(self.cpus))
        if n == self.threads:
            return None
        import torch

        torch.set_num_threads(n)
        was, self.threads = self.threads, n
        free_now = f"{free:.1f} of {len(self.cpus)} cores free in the last {seconds:.0f} s"
        return f"threads: {was} -> {n} ({free_now})"
