"""The notebooks in notebooks/ run top to bottom in a real Jupyter kernel, in quick mode.

``CNNARCH_QUICK=1`` makes them use small subsets of CIFAR-10 and a few epochs; the kernel is a
``python3`` kernel of this interpreter (a kernelspec written for the test, found first through
$JUPYTER_PATH, so that no other ``python3`` spec on the machine is used), with this checkout's ``src``
first on its path. A failing cell fails the test with the cell's source and traceback.
"""

import json
import os
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip(
    "nbformat", reason="the notebooks extra is not installed (pip install -e '.[notebooks]')"
)
nbclient = pytest.importorskip(
    "nbclient", reason="the notebooks extra is not installed (pip install -e '.[notebooks]')"
)
pytest.importorskip(
    "ipykernel", reason="the notebooks extra is not installed (pip install -e '.[notebooks]')"
)

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
CELL_TIMEOUT_S = 300  # quick mode's slowest cell takes seconds; this only stops a hung kernel
# notebook -> whether it reads CIFAR-10
CASES = {
    "lecture_tour.ipynb": False,
    "01_fully_connected.ipynb": True,
    "02_batch_normalization.ipynb": True,
    "03_dropout.ipynb": True,
    "04_convolutional_networks.ipynb": True,
    "05_pytorch.ipynb": True,
}


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_notebook_is_committed_executed(name):
    """The committed file holds a full run: every code cell executed once, in order, without errors."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors[0].get("ename")
    assert any(o.get("data", {}).get("image/png") for c in code for o in c.outputs), (
        "no figure in the outputs"
    )


@pytest.fixture(scope="session")
def jupyter_path(tmp_path_factory) -> Path:
    """A Jupyter data folder whose only kernelspec, ``python3``, runs ipykernel in this interpreter."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
    )
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_notebook_runs_in_quick_mode(name, request, monkeypatch, tmp_path_factory, jupyter_path):
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    if CASES[name]:
        monkeypatch.setenv("CNNARCH_DATA", str(request.getfixturevalue("cifar_jpeg_root")))
    monkeypatch.setenv("CNNARCH_QUICK", "1")
    # decoded-image caches and training runs go to temporary folders, not into the checkout or ~/.cache
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path_factory.getbasetemp() / "notebook-cache"))
    monkeypatch.setenv("CNNARCH_RUNS", str(tmp_path_factory.mktemp("runs")))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()


PARTS_NOTEBOOKS = sorted(name for name in CASES if name[0].isdigit())


@pytest.mark.parametrize("name", PARTS_NOTEBOOKS)
def test_part_notebook_says_what_to_write_where_and_asks_questions_with_answer_cells(name):
    """Every function named in a 'Your code' cell is an exercise of that module; every inline question
    is followed by its answer cell (tagged, so that the student's copy replaces the teacher's answer);
    every exercise of the grader is asked for by some notebook."""
    from cnnarch.assignment.exercises import EXERCISES

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    exercises = {(m.replace(".", "/"), f) for m, f in EXERCISES}
    asked = set(re.findall(r"`cs231n/([\w/]+)\.py`: `([\w.]+)`", "".join(c.source for c in nb.cells)))
    assert asked <= exercises, asked - exercises
    questions = [i for i, c in enumerate(nb.cells) if "question" in c.metadata.get("tags", [])]
    assert len(questions) >= 2
    for i in questions:
        answer = nb.cells[i + 1]
        assert "answer" in answer.metadata.get("tags", []) and answer.source.startswith("**Your answer:**")


def test_part_notebooks_together_ask_for_every_exercise():
    from cnnarch.assignment.exercises import EXERCISES

    text = "".join(
        c.source for n in PARTS_NOTEBOOKS for c in nbformat.read(NOTEBOOKS / n, as_version=4).cells
    )
    asked = set(re.findall(r"`cs231n/([\w/]+)\.py`: `([\w.]+)`", text))
    assert {(m.replace(".", "/"), f) for m, f in EXERCISES} == asked
