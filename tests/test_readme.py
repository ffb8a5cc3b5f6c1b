"""The README's quick commands work as written: every `cnnarch ...` line of its bash blocks runs through
the command's entry point in a fresh directory and exits 0, except those named in SKIP (with the reason)."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cnnarch.cli import main

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```bash\n(.*?)^```", re.M | re.S)
# Not run here, and why: each needs a trained run, the data, a network download, or minutes of CPU.
SKIP = {
    "train": "trains for minutes on CIFAR-10",
    "eval": "needs a finished training run (runs/demo/best.pt)",
    "experiment": "trains for an hour",
    "predict": "needs images and trained weights",
    "export": "needs a trained run",
    "--measure": "runs a training step of ResNet-50 (tens of seconds on 2 cores)",
    "...": "a placeholder, not a command",
}


def readme_commands() -> list[str]:
    """The `cnnarch` lines of the README's bash blocks, comments cut."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = [line.split(" #")[0].strip() for block in FENCE.findall(text) for line in block.splitlines()]
    return [line for line in lines if line.startswith("cnnarch ")]


def skip_reason(command: str) -> str | None:
    words = shlex.split(command)
    return next((why for word, why in SKIP.items() if word == words[1] or word in words), None)


def test_the_readme_shows_cnnarch_after_activating_the_venv():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    first = FENCE.search(text).group(1).splitlines()
    assert first[0].startswith("make demo") and first[1].startswith("source .venv/bin/activate")
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    assert "source $(BIN)/activate" in (REPO / "Makefile").read_text()


def test_the_installed_command_runs(tmp_path):
    exe = Path(sys.executable).with_name("cnnarch")
    if not exe.exists():
        pytest.skip(f"no cnnarch script beside {sys.executable} (not installed in this environment)")
    proc = subprocess.run([str(exe), "list"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "resnet20" in proc.stdout, proc.stderr


@pytest.mark.slow
def test_readme_quick_commands_run(tmp_path, monkeypatch, capsys):
    """In one process (the command's main, as the script calls it): a process per command would spend
    most of its time importing torch."""
    commands = readme_commands()
    run = [c for c in commands if skip_reason(c) is None]
    assert len(run) >= 8, commands  # the test would pass vacuously if the extraction broke
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    failures = []
    for command in run:
        try:
            code = main(shlex.split(command)[1:])
        except SystemExit as e:  # argparse's exit on a usage error
            code = e.code
        if code != 0:
            failures.append(f"{command}: exit {code}\n{capsys.readouterr().err[-600:]}")
    assert not failures, "\n".join(failures)
