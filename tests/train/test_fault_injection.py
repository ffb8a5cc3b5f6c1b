"""Fault injection: a training process is killed with SIGKILL at points a fixed seed picks (inside a
training step, inside validation, halfway through writing a checkpoint), again and again. After every
kill ``last.pt`` loads, and resuming carries the run to the end with the same final weights as a run that
was never interrupted."""

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import torch

from cnnarch.train.checkpoint import load_checkpoint

CHILD = Path(__file__).with_name("fault_child.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def start(out: Path, kind: str = "none", n: int = 0) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(SRC), str(CHILD.parent)])}
    cmd = [sys.executable, str(CHILD), str(out), kind, str(n)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> int:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode in (0, -signal.SIGKILL), out
    return proc.returncode


def test_killed_again_and_again_then_resumed_equals_the_uninterrupted_run(tmp_path):
    straight = start(tmp_path / "straight")  # alongside the killed runs: two cores are used
    rng = random.Random(0)
    # each kind twice, in a seeded order, each at a seeded event of its process
    kills = [(kind, rng.randint(1, 3)) for kind in rng.sample(["step", "eval", "save"] * 2, 6)]
    run = tmp_path / "run"
    killed = []

    def trained_epochs() -> int:
        return load_checkpoint(run / "last.pt")["epoch"] + 1 if (run / "last.pt").exists() else 0

    for kind, n in kills:
        if finish(start(run, kind, n)) == 0:
            break  # the run ended before this point
        killed.append(kind)
        if trained_epochs() == 3:  # loads whole, whatever the moment of the kill
            break  # killed after its last checkpoint: nothing left to resume
    if trained_epochs() < 3:
        assert finish(start(run)) == 0
    assert finish(straight) == 0
    assert {"step", "eval", "save"} <= set(killed), killed

    a, b = load_checkpoint(tmp_path / "straight/last.pt"), load_checkpoint(run / "last.pt")
    assert a["epoch"] == b["epoch"] == 2 and a["step"] == b["step"] == 12
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert not list(run.glob("*.tmp")), "orphans of the killed saves were removed by the later saves"
