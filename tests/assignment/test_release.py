"""A course's release: the student folder holds nothing of the answer key and needs no cnnarch; the
teacher's autograder grades what the students hand in."""

import ast
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cnnarch.assignment.checks import CHECKS
from cnnarch.assignment.exercises import COPIED, EXERCISES
from cnnarch.assignment.release import release_assignment
from cnnarch.assignment.workspace import ANSWER_PROMPT, START, default_notebooks_dir, rewrite_imports
from cnnarch.cli import main

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _statements(tree) -> list[ast.stmt]:
    """Every statement in ``tree`` but docstrings (a stub keeps its function's docstring)."""
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.stmt) and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
    ]


def _solution_statements() -> dict[str, set[str]]:
    """exercise -> ast.dump of the statements of its reference body that no other function of
    cnnarch.scratch has (``N, C, H, W = x.shape`` is everyone's; ``dx = dout @ w.T`` is a solution)."""
    exercises = {}
    everyone_else = set()
    for module in COPIED:
        tree = ast.parse(inspect.getsource(importlib.import_module(f"cnnarch.scratch.{module}")))
        functions = {}
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                functions |= {f"{node.name}.{n.name}": n for n in node.body if isinstance(n, ast.FunctionDef)}
        lines = inspect.getsource(importlib.import_module(f"cnnarch.scratch.{module}")).splitlines()
        for name, node in functions.items():
            statements = [s for s in _statements(node) if s is not node]
            marked = [i + 1 for i in range(node.lineno, len(lines)) if lines[i].strip().startswith("# >>> ")]
            if (module, name) in EXERCISES and marked and marked[0] < node.end_lineno:
                # a networks' __init__: the solution is the marked region, the rest is given
                end = next(
                    i + 1 for i in range(marked[0], len(lines)) if lines[i].strip() == "# <<< exercise"
                )
                statements = [s for s in statements if marked[0] < s.lineno < end]
            dumps = {ast.dump(s) for s in statements}
            if (module, name) in EXERCISES:
                exercises[f"{module}.{name}"] = dumps
            else:
                everyone_else |= dumps
    solution_block = re.compile(r"# \*\*\* START OF YOUR CODE.*?# \*\*\* END OF YOUR CODE \*\*\*", re.S)
    for path in default_notebooks_dir().glob("0*.ipynb"):  # and the notebooks' given code
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                everyone_else |= _code_statements(solution_block.sub("", "".join(cell["source"])))
    return {name: dumps - everyone_else for name, dumps in exercises.items()}


def _code_statements(code: str) -> set[str]:
    """The statements of a notebook cell (IPython's magics are not Python)."""
    code = "\n".join(line for line in code.splitlines() if not line.startswith("%"))
    return {ast.dump(s) for s in _statements(ast.parse(code))}


def _released_statements(folder: Path) -> set[str]:
    dumps = set()
    for path in folder.rglob("*.py"):
        dumps |= {ast.dump(s) for s in _statements(ast.parse(path.read_text()))}
    for path in folder.glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                dumps |= _code_statements("".join(cell["source"]))
    return dumps


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    if default_notebooks_dir() is None:
        pytest.skip("no notebooks/ in this checkout")
    return release_assignment(tmp_path_factory.mktemp("course") / "out")


def test_the_student_release_holds_no_solution_no_answer_and_no_cnnarch(release):
    student = release["student"]
    solutions = _solution_statements()
    assert all(solutions.values()), [name for name, dumps in solutions.items() if not dumps]
    released = _released_statements(student)
    leaked = {name: len(dumps & released) for name, dumps in solutions.items() if dumps & released}
    assert not leaked, leaked
    for path in (p for p in student.rglob("*") if p.is_file()):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+cnnarch\b", text, re.MULTILINE), path
        assert "cnnarch assignment check" not in text, path  # the students have no grader
    teacher = {p.name: json.loads(p.read_text()) for p in default_notebooks_dir().glob("0*.ipynb")}
    for path in student.glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        assert all(c.get("outputs", []) == [] for c in cells)
        assert not [c for c in cells if "cnnarch" in c["metadata"].get("tags", [])]
        answers = [c for c in cells if "answer" in c["metadata"].get("tags", [])]
        assert answers and all("".join(c["source"]) == ANSWER_PROMPT for c in answers)
        given = [c for c in teacher[path.name]["cells"] if "answer" in c["metadata"].get("tags", [])]
        for answer in given:  # the teacher's answers appear nowhere
            assert "".join(answer["source"]) not in path.read_text()
    requirements = (student / "requirements.txt").read_text().split()
    assert "torch" in requirements and not [r for r in requirements if "cnnarch" in r]
    with zipfile.ZipFile(release["student_zip"]) as z:
        names = {n for n in z.namelist() if not n.endswith("/")}
    assert names == {str(p.relative_to(student.parent)) for p in student.rglob("*") if p.is_file()}


def test_the_student_package_imports_with_cnnarch_unavailable(release):
    code = (
        "import sys\n"
        "sys.modules['cnnarch'] = None  # any import of cnnarch raises\n"
        "import cs231n.layers, cs231n.layer_utils, cs231n.optim, cs231n.solver, cs231n.fast_layers\n"
        "import cs231n.gradient_check, cs231n.vis_utils, cs231n.data_utils, cs231n.pytorch_nets\n"
        "import cs231n.classifiers.fc_net, cs231n.classifiers.cnn\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=release["student"], env=env, capture_output=True, text=True
    )
    assert out.stdout == "ok\n", out.stderr


def test_a_release_that_would_leak_is_refused_and_not_written(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    source = inspect.getsource(importlib.import_module("cnnarch.scratch.layers"))
    body = source.split("def affine_backward", 1)[1].split('"""', 2)[2].split("\n\n\n", 1)[0]
    cases = {
        "from cnnarch.models import create_model": "01_part.ipynb imports cnnarch",
        f"def my_backward(dout, cache):{body}": "the solution of cnnarch.scratch.layers.affine_backward",
    }
    for i, (code, why) in enumerate(cases.items()):
        notebooks = tmp_path / f"nbs{i}"
        notebooks.mkdir()
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(code)]
        nbformat.write(nb, notebooks / "01_part.ipynb")
        with pytest.raises(ValueError, match=re.escape(why)):
            release_assignment(tmp_path / f"out{i}", notebooks=notebooks)
        assert not (tmp_path / f"out{i}" / "student").exists()


def test_the_autograder_grades_a_submission_into_gradescopes_results(release, tmp_path):
    cnnarch = Path(sys.executable).parent / "cnnarch"
    if not cnnarch.is_file():
        pytest.skip("no cnnarch command beside this interpreter")
    root = tmp_path / "autograder"
    submission = root / "submission" / "hw2"  # a zip of the workspace folder unpacks one level down
    submission.parent.mkdir(parents=True)
    subprocess.run(["cp", "-r", str(release["student"]), str(submission)], check=True)
    optim = inspect.getsource(importlib.import_module("cnnarch.scratch.optim"))  # one module solved
    (submission / "cs231n" / "optim.py").write_text(rewrite_imports(optim))
    env = {
        **os.environ,
        "AUTOGRADER_ROOT": str(root),
        "PATH": f"{cnnarch.parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO / "src"),
    }
    run = subprocess.run(
        ["bash", str(release["autograder"] / "run_autograder")], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    optim_checks = [c for c in CHECKS if c.module == "optim"]
    assert len(results["tests"]) == len(CHECKS)
    assert results["score"] == len(optim_checks) > 0
    passed = {t["name"].split(":")[0] for t in results["tests"] if t["status"] == "passed"}
    assert passed == {c.function for c in optim_checks}


def test_release_command_says_what_to_hand_out_and_what_to_keep(tmp_path, capsys):
    if default_notebooks_dir() is None:
        pytest.skip("no notebooks/ in this checkout")
    assert main(["assignment", "release", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "hand these out" in out and "autograder" in out and "keep them" in out
    assert main(["assignment", "release", str(tmp_path / "out")]) == 2  # not empty: refused
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["01_fully_connected.ipynb", "05_pytorch.ipynb"])
def test_a_solved_release_runs_its_notebooks_with_cnnarch_unavailable(
    release, tmp_path, name, cifar_jpeg_root
):
    """The student's notebook, in quick mode, once the package holds the reference (and a cell's YOUR
    CODE block the teacher's code): every cell runs, with any import of cnnarch failing."""
    from .conftest import solve

    ws = tmp_path / "student"
    subprocess.run(["cp", "-r", str(release["student"]), str(ws)], check=True)
    solve(ws)
    teacher = {
        "".join(c["source"]).split(START)[0]: "".join(c["source"])
        for c in json.loads((default_notebooks_dir() / name).read_text())["cells"]
        if c["cell_type"] == "code"
    }
    code = ["import sys\nsys.modules['cnnarch'] = None  # any import of cnnarch raises"]
    for cell in json.loads((ws / name).read_text())["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            if "write this cell's code" in source:  # the student's part: the teacher's, same opening
                source = rewrite_imports(teacher[source.split(START)[0]])
            code.append("\n".join(line for line in source.splitlines() if not line.startswith("%")))
    (ws / "notebook_as_script.py").write_text("\n\n".join(code) + "\nprint('ran to the end')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"CNNARCH_QUICK": "1", "CNNARCH_DATA": str(cifar_jpeg_root), "CNNARCH_CACHE": str(tmp_path / "c")}
    env |= {"MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "notebook_as_script.py"], cwd=ws, env=env, capture_output=True, text=True
    )
    assert out.stdout.rstrip().endswith("ran to the end"), out.stderr[-2000:]
