"""Thread count and OpenMP wait policy for a training run (imports no torch: see below).

On a shared CPU, OpenMP threads that spin while waiting for work (the GNU runtime's default ACTIVE
policy) steal cycles from other processes and from each other; a two-thread run can then be several
times slower than one thread. ``OMP_WAIT_POLICY=PASSIVE`` makes them sleep instead. The OpenMP runtime
reads the variable once, when it starts, which is when torch is imported: setting it later in the same
process does nothing. So :func:`ensure_passive_wait` sets it when torch is not loaded yet, and otherwise
(the ``cnnarch`` command has loaded torch by the time it reads its arguments) restarts the command in a
fresh process with the variable set, or says plainly that it could not.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_RESTARTED = "CNNARCH_RESTARTED_FOR_OMP"


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def resolve_threads(threads: int | None) -> int | None:
    """``--threads``: None leaves torch's default, 0 means one per available core; the processes that
    ``torchrun`` starts on one machine (``LOCAL_WORLD_SIZE``) share the cores instead of each taking all."""
    if threads is None:
        return None
    if threads < 0:
        raise ValueError(f"--threads must be >= 0 (0: one per core), got {threads}")
    return threads or max(1, available_cores() // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def invoked_as_cli() -> bool:
    """Whether this process is the ``cnnarch`` command itself (and may therefore restart itself)."""
    script = sys.argv[0] if sys.argv else ""
    return Path(script).name == "cnnarch" or script.endswith(os.path.join("cnnarch", "cli", "__main__.py"))


def ensure_passive_wait(restart: bool = False) -> str:
    """Make OpenMP threads sleep when idle; returns a sentence saying what was done.

    A value already in the environment is respected. With ``restart=True`` and torch already loaded,
    the process re-executes itself (same interpreter and arguments) with the variable set; this call
    then does not return.
    """
    policy = os.environ.get("OMP_WAIT_POLICY")
    if policy:
        if os.environ.get(_RESTARTED):
            return f"OMP_WAIT_POLICY={policy} (this process was restarted so that OpenMP reads it)"
        return f"OMP_WAIT_POLICY={policy} (from the environment)"
    if "torch" not in sys.modules:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return "OMP_WAIT_POLICY=PASSIVE (set before torch and its OpenMP runtime started)"
    if restart:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.environ[_RESTARTED] = "1"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    return (
        "OMP_WAIT_POLICY not set: torch was loaded before this run started, so setting it now would have "
        "no effect; export OMP_WAIT_POLICY=PASSIVE before starting Python"
    )


def configure_threads(threads: int | None, restart: bool = False) -> str:
    """Apply ``--threads`` and the wait policy; returns the line a run prints about them."""
    wait = ensure_passive_wait(restart)
    import torch

    n = resolve_threads(threads)
    if n is not None:
        torch.set_num_threads(n)
    return f"threads: {torch.get_num_threads()} ({available_cores()} cores available); {wait}"
