"""The default thread count: the cores actually free, chosen before torch loads (cnnarch.threads)."""

import os
import re
import subprocess
import sys
import time

import pytest
import torch

from cnnarch import threads
from cnnarch.threads import Snapshot, free_between, snapshot, threads_for

REPO_SRC = os.path.join(os.path.dirname(__file__), "..", "src")

# /proc/stat's layout: cpuN user nice system idle iowait irq softirq steal guest guest_nice (ticks)
STAT = """cpu  {a} 0 0 0 0 0 0 0 0 0
cpu0 {u0} {n0} {s0} {i0} {w0} 0 0 {st0} 0 0
cpu1 {u1} {n1} {s1} {i1} {w1} 0 0 {st1} 0 0
intr 1 2 3
"""


def stat(**counts) -> str:
    values = {f"{k}{c}": 0 for k in ("u", "n", "s", "i", "w", "st") for c in (0, 1)}
    return STAT.format(a=0, **{**values, **counts})


def test_free_time_is_idle_waiting_and_niced_work():
    """One core idle (100 ticks), the other split between a busy process (60) and a niced job (40)."""
    before = snapshot([0, 1], stat())
    after = snapshot([0, 1], stat(i0=100, u1=60, n1=40))
    own = after.own - before.own  # this test process's own ticks: counted as free as well
    assert after.total - before.total == 200
    assert after.free - before.free == 100 + 40
    assert free_between(before, after, 2) == pytest.approx(2 * (140 + own) / 200)
    # only the cores this process may run on count
    assert snapshot([1], stat(i0=100, u1=60, n1=40)).total == 100
    # a niced process sees niced jobs as its equals: their time is not free
    if os.getpriority(os.PRIO_PROCESS, 0) <= 0:
        code = f"from cnnarch.threads import snapshot; print(snapshot([1], {stat(n1=40)!r}).free)"
        niced = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONPATH": REPO_SRC},
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.nice(5),
            check=True,
        )
        assert niced.stdout.strip() == "0"


def test_steal_and_system_time_are_busy():
    after = snapshot([0], stat(s0=30, st0=20, i0=50))
    assert free_between(Snapshot(0, 0, after.own), after, 1) == pytest.approx(50 / 100)


def test_a_core_counts_when_it_is_mostly_free():
    assert threads_for(2.0, 2) == 2
    assert threads_for(1.7, 2) == 2
    assert threads_for(1.69, 2) == 1  # the second core is a third busy: one thread is faster
    assert threads_for(1.0, 2) == 1  # another process keeps a core busy
    assert threads_for(0.1, 2) == 1  # never none
    assert threads_for(None, 8) == 8  # not measurable: every core
    assert threads_for(8.0, 8, processes=3) == 2  # torchrun's processes share them


@pytest.mark.slow
def test_a_busy_core_leaves_one_thread():
    """A real busy loop on one of two cores: what is measured leaves room for one thread (other work
    on the machine can only make it fewer)."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores")
    cpus = sorted(os.sched_getaffinity(0))[:2]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(busy.pid, {cpus[0]})
        time.sleep(0.3)
        before = snapshot(cpus)
        time.sleep(0.5)
        free = free_between(before, snapshot(cpus), 2)
    finally:
        busy.kill()
        busy.wait()
    assert free <= 1.1
    assert threads_for(free, 2) == 1


def run_fresh(code: str, **env) -> str:
    """``code`` in a new Python (torch not loaded yet), with ``env`` changed (None: removed)."""
    full = {k: v for k, v in os.environ.items() if k not in env}
    full.update({k: v for k, v in env.items() if v is not None})
    full["PYTHONPATH"] = REPO_SRC
    return subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, check=True
    ).stdout.strip()


CHOOSE_THEN_IMPORT = """
import os
import re
from cnnarch.threads import apply_before_torch
c = apply_before_torch()
import torch
print(c.threads, c.source, torch.get_num_threads(), os.environ["OMP_WAIT_POLICY"])
"""


@pytest.mark.slow
def test_the_choice_is_in_the_environment_before_torch_loads():
    threads_, source, torch_threads, wait = run_fresh(
        CHOOSE_THEN_IMPORT, OMP_NUM_THREADS=None, OMP_WAIT_POLICY=None
    ).split()
    assert source == "measured" and torch_threads == threads_ and wait == "PASSIVE"
    assert 1 <= int(threads_) <= len(os.sched_getaffinity(0))
    # the user's settings are kept
    assert run_fresh(CHOOSE_THEN_IMPORT, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="ACTIVE").split() == [
        "1",
        "OMP_NUM_THREADS",
        "1",
        "ACTIVE",
    ]
    # once torch is loaded nothing is changed: the session keeps its own settings
    late = "import torch, os\nfrom cnnarch.threads import apply_before_torch\n"
    late += "print(apply_before_torch(), os.environ.get('OMP_NUM_THREADS'))"
    assert run_fresh(late, OMP_NUM_THREADS=None) == "None None"


def test_the_run_follows_the_load(monkeypatch):
    """--threads 0 counts again: a second core that became busy drops a thread, and is taken back
    once it is free."""
    snaps = iter(
        [
            Snapshot(0, 0, 0),
            Snapshot(200, 100, 20),  # one core's worth free of two (this process's 20 ticks included)
            Snapshot(400, 290, 40),  # both free again
            Snapshot(400, 290, 40),  # the start of a run that checks once an hour
        ]
    )
    monkeypatch.setattr(threads, "allowed_cpus", lambda: [0, 1])
    monkeypatch.setattr(threads, "snapshot", lambda cpus=None: next(snaps))
    kept = torch.get_num_threads()
    try:
        recheck = threads.Recheck(2, every=0.0)
        note = recheck()
        assert note.startswith("threads: 2 -> 1 (1.2 of 2 cores free") and torch.get_num_threads() == 1
        assert recheck().startswith("threads: 1 -> 2 (2.0 of 2 cores free") and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(kept)
    assert threads.Recheck(1, every=3600.0)() is None  # between checks: nothing read, nothing changed


def test_the_choice_in_one_line(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    line = threads.ThreadChoice(1, 2, free=1.04).describe(recheck=True)
    assert line.startswith("threads: 1 (1.0 of 2 cores free, counted again every 20 s")
    assert line.endswith("OMP_WAIT_POLICY=PASSIVE") and "\n" not in line
    assert threads.ThreadChoice(4, 2, source="--threads").describe().startswith("threads: 4 (--threads, 2")


@pytest.mark.slow
def test_eval_says_its_choice_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    out = subprocess.run(
        [sys.executable, "-m", "cnnarch.cli", "eval", str(tmp_path / "none.pt")],
        env={**env, "PYTHONPATH": REPO_SRC},
        capture_output=True,
        text=True,
    )
    first = out.stderr.splitlines()[0]
    assert re.fullmatch(
        r"threads: \d \(\d\.\d of \d+ cores free; OMP_NUM_THREADS=N to fix it\); OMP_WAIT_POLICY=PASSIVE",
        first,
    )
    assert out.returncode == 2  # then the missing file, as ever
