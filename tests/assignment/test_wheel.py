"""The assignment installed from a built wheel, not from this checkout: `cnnarch assignment init` in a
fresh virtual environment writes the workspace with its notebooks, and their first cells run there.

The wheel is built from a copy of the sources (pip wheel, no build isolation: no network). The fresh
environment gets the wheel alone; its heavy dependencies (torch, NumPy, matplotlib, ipykernel) come
from this interpreter's site-packages through a plain path in a ``.pth`` file, which adds that
directory but none of its own ``.pth`` files, so this checkout's editable install stays invisible.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run(args, **kwargs):
    out = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, f"{args}\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", symlinks=True, ignore=shutil.ignore_patterns("*.egg-info"))
    shutil.copytree(REPO / "notebooks", source / "notebooks", ignore=shutil.ignore_patterns("runs", ".*"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp, source])
    (wheel,) = tmp.glob("cnnarch-*.whl")
    env = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", env])
    run(
        [sys.executable, "-m", "pip", "--python", env / "bin" / "python", "install", "--no-deps", "-q", wheel]
    )
    (site,) = env.glob("lib/python*/site-packages")
    (site / "dependencies.pth").write_text(str(Path(np.__file__).resolve().parents[1]) + "\n")
    return env


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", **extra}


def test_cnnarch_comes_from_the_wheel(venv):
    where = run([venv / "bin" / "python", "-c", "import cnnarch; print(cnnarch.__file__)"], env=clean_env())
    assert Path(where.strip()).is_relative_to(venv)


def test_init_from_the_wheel_writes_the_notebooks_and_their_first_cells_run(venv, tmp_path):
    ws = tmp_path / "ws"
    run([venv / "bin" / "cnnarch", "assignment", "init", ws], env=clean_env(), cwd=tmp_path)
    notebooks = sorted(p.name for p in ws.glob("*.ipynb"))
    assert notebooks == [
        "01_fully_connected.ipynb",
        "02_batch_normalization.ipynb",
        "03_dropout.ipynb",
        "04_convolutional_networks.ipynb",
        "05_pytorch.ipynb",
    ]
    assert "cnnarch assignment check . --part fc" in (ws / "README.md").read_text()
    scripts = {}
    for name in notebooks:
        cells = [
            "".join(c["source"])
            for c in json.loads((ws / name).read_text())["cells"]
            if c["cell_type"] == "code"
        ]
        # the setup cell, the next one (the data helper, or the imports), and the imports that open the
        # third (parts 1 to 4: the student's package), without the data they then load
        code = "\n".join(
            [*cells[:2], cells[2].split("\n\n")[0] if cells[2].startswith("from cs231n") else ""]
        )
        scripts[name] = "\n".join(line for line in code.splitlines() if not line.startswith("%"))
    # one interpreter for the five (its imports are shared), each notebook in a namespace of its own
    runner = f"for name, code in {scripts!r}.items():\n    exec(code, {{}})\n    print(name)\n"
    env = clean_env(CNNARCH_QUICK="1", CNNARCH_CACHE=str(tmp_path / "cache"))
    out = run([venv / "bin" / "python", "-c", runner], env=env, cwd=ws)
    assert out.split() == notebooks
