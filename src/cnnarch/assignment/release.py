"""A course's release of the assignment: what the students get, and what grades their work.

As nbgrader separates an assignment's source from its release, cnnarch is the source: it holds the
answer key (the reference engine ``cnnarch.scratch``, the executed notebooks with the answers to the
inline questions) and the grader, which needs the key for the networks' checks. A student who installs
cnnarch can read the key, so a course hands out a release that needs no cnnarch, and grades where
cnnarch is installed: the teacher's machine, or the course platform's autograder.

:func:`release_assignment` writes

- ``student/`` and ``student.zip``: the workspace of ``cnnarch assignment init`` (the ``cs231n``
  package with every exercise a stub, the given code, its own CIFAR-10 loader; the notebooks without
  outputs, solution code and answers), minus the notebook cells that use cnnarch's own library
  (tagged ``cnnarch``: the zoo and the trainer), with a ``requirements.txt`` that does not name
  cnnarch. Nothing in it imports cnnarch.
- ``autograder/`` and ``autograder.zip``: Gradescope's autograder (``setup.sh`` installs cnnarch on
  the platform's server, ``run_autograder`` grades ``/autograder/submission`` into
  ``/autograder/results/results.json``). The teacher keeps it; students never see it.

Before anything is written the release is checked: a file that imports cnnarch, or that holds three
consecutive lines of a reference solution (a body of ``cnnarch.scratch``'s exercises, the code between
the notebooks' YOUR CODE markers, an answer to an inline question), stops it with ValueError.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import shutil
import zipfile
from pathlib import Path

import cnnarch
from cnnarch.assignment.exercises import COPIED, EXERCISES, PACKAGE
from cnnarch.assignment.workspace import (
    ANSWER_TAG,
    END,
    REGION_BEGIN,
    REGION_END,
    START,
    default_notebooks_dir,
    init_workspace,
    workspace_readme,
)

LIBRARY_TAG = "cnnarch"  # notebook cells that use cnnarch's library (models, trainer): not released
WINDOW = 3  # this many consecutive lines of a solution in a released file count as a leak
REQUIREMENTS = ["numpy", "matplotlib", "pillow", "torch", "jupyterlab"]
_IMPORT = re.compile(r"^\s*(from|import)\s+cnnarch\b", re.MULTILINE)
_CHECK_COMMAND = re.compile(r"`cnnarch assignment check[^`]*`")


def _code_lines(text: str) -> list[str]:
    """The lines of ``text`` that say something: stripped, without blanks and comments."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _windows(lines: list[str]) -> set[tuple[str, ...]]:
    """Every run of ``WINDOW`` consecutive lines (the whole of fewer)."""
    n = min(WINDOW, len(lines))
    return {tuple(lines[i : i + n]) for i in range(len(lines) - n + 1)} if lines else set()


def _runs(lines: list[str]) -> set[tuple[str, ...]]:
    """Every run of 1 to ``WINDOW`` consecutive lines."""
    return {tuple(lines[i : i + n]) for n in range(1, WINDOW + 1) for i in range(len(lines) - n + 1)}


def _exercise_lines(module: str) -> tuple[list[str], dict[str, range]]:
    """The reference source of ``cnnarch.scratch.<module>`` as lines, and the 0-based line range of
    each of its exercises' solutions: the body after the docstring, or the marked region."""
    lines = inspect.getsource(importlib.import_module(f"cnnarch.scratch.{module}")).splitlines()
    tree = ast.parse("\n".join(lines))
    spans = {}
    for m, name in EXERCISES:
        if m != module:
            continue
        node = _find_def(tree, name)
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        span = range(body[0].lineno - 1, node.end_lineno)
        begin = next((i for i in span if lines[i].strip() == REGION_BEGIN), None)
        if begin is None:
            spans[name] = span
        else:  # the closing marker may follow the function's last statement
            spans[name] = range(
                begin + 1, next(i for i in range(begin, len(lines)) if lines[i].strip() == REGION_END)
            )
    return lines, spans


def reference_solutions(notebooks: Path | None) -> dict[str, list[str]]:
    """What a release must not contain, by where it comes from: the solution of every exercise of
    ``cnnarch.scratch``, the code between the YOUR CODE markers of the teacher's notebooks, and the
    sentences of the answers to their inline questions (keys ending in "answer")."""
    out: dict[str, list[str]] = {}
    for module in COPIED:
        lines, spans = _exercise_lines(module)
        for name, span in spans.items():
            out[f"cnnarch.scratch.{module}.{name}"] = _code_lines("\n".join(lines[i] for i in span))
    for path in sorted(notebooks.glob("[0-9]*.ipynb")) if notebooks else []:
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            text = "".join(cell["source"])
            if cell["cell_type"] == "code":
                blocks = re.findall(rf"{re.escape(START)}\n(.*?){re.escape(END)}", text, re.S)
                for k, block in enumerate(blocks):
                    out[f"{path.name} cell {i} solution {k + 1}"] = _code_lines(block)
            elif ANSWER_TAG in cell.get("metadata", {}).get("tags", []):
                answer = text.split("**Your answer:**", 1)[-1]
                sentences = [s.strip() for s in re.split(r"(?<=[.;:])\s", answer) if len(s.strip()) > 30]
                out[f"{path.name} cell {i} answer"] = sentences
    return {where: lines for where, lines in out.items() if lines}


def given_runs() -> set[tuple[str, ...]]:
    """Runs of lines of the code a workspace hands out on purpose: the reference modules without
    their solutions (the fast layers unpack shapes as the naive ones do; that is no leak)."""
    runs = set()
    for module in COPIED:
        lines, spans = _exercise_lines(module)
        cut = {i for span in spans.values() for i in span}
        runs |= _runs(_code_lines("\n".join(line for i, line in enumerate(lines) if i not in cut)))
    return runs


def _find_def(tree: ast.Module, name: str):
    head, _, method = name.partition(".")
    for node in tree.body:
        if method and isinstance(node, ast.ClassDef) and node.name == head:
            return next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == method)
        if not method and isinstance(node, ast.FunctionDef) and node.name == head:
            return node
    raise ValueError(f"the reference has no {name}")


def _released_text(path: Path) -> str:
    """A released file as the student reads it: a notebook's cells one after another."""
    if path.suffix == ".ipynb":
        return "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
    return path.read_text(errors="replace")


def leaks(folder, notebooks: Path | None = None) -> list[str]:
    """What in ``folder`` gives the key away: one line per file that imports cnnarch or holds
    ``WINDOW`` consecutive lines of a reference solution (or the whole of a shorter one)."""
    folder = Path(folder)
    given = given_runs()
    solutions = {
        where: {(line,) for line in lines} if where.endswith("answer") else _windows(lines) - given
        for where, lines in reference_solutions(notebooks).items()
    }
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".py", ".ipynb", ".md", ".txt", ".sh")):
        text = _released_text(path)
        rel = path.relative_to(folder)
        if path.suffix in (".py", ".ipynb") and _IMPORT.search(text):
            found.append(f"{rel} imports cnnarch")
        released = _runs(_code_lines(text))
        for where, windows in solutions.items():
            prose = where.endswith("answer")
            if any(sentence in text for (sentence,) in windows) if prose else windows & released:
                found.append(f"{rel} holds the solution of {where}")
    return found


def _release_notebook(path: Path) -> None:
    """Drop the cells tagged ``cnnarch`` and name the course's grader instead of cnnarch's."""
    nb = json.loads(path.read_text())
    cells = []
    for cell in nb["cells"]:
        if LIBRARY_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        if cell["cell_type"] == "markdown":
            text = _CHECK_COMMAND.sub("the course's grader", "".join(cell["source"]))
            cell["source"] = text.splitlines(keepends=True)
        cells.append(cell)
    nb["cells"] = cells
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image: the grader and its answer key
# are installed on the course's server, never on a student's machine. A cnnarch wheel placed beside
# this script is installed instead of the release from PyPI.
set -euo pipefail
cd "$(dirname "$0")"
wheel=$(ls cnnarch-*.whl 2>/dev/null | head -n 1 || true)
python3 -m pip install --upgrade pip
python3 -m pip install "${{wheel:-cnnarch=={version}}}"
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission. It grades the cs231n package of the submission (at its
# top or one folder down, as a zip of the workspace folder unpacks) and writes Gradescope's results.
set -uo pipefail
root=${{AUTOGRADER_ROOT:-/autograder}}
init=$(find "$root/submission" -maxdepth 3 -path '*/{package}/__init__.py' | sort | head -n 1)
mkdir -p "$root/results"
if [ -z "$init" ]; then
    echo '{{"score": 0, "output": "no {package}/ package in the submission: hand in the workspace"}}' \\
        > "$root/results/results.json"
    exit 0
fi
cnnarch assignment check "$(dirname "$(dirname "$init")")" --format json > "$root/results/results.json"
exit 0
"""

AUTOGRADER_README = """\
# The assignment's autograder (teacher only)

Upload `autograder.zip` as a Gradescope programming assignment's autograder. `setup.sh` installs
cnnarch {version} (or a `cnnarch-*.whl` placed beside it) on Gradescope's server; `run_autograder`
grades each submission with `cnnarch assignment check --format json`: one test per check, one point
each. Without Gradescope, collect the submissions in one folder (one subfolder per student) and run
`cnnarch assignment summary FOLDER` on a machine with cnnarch installed.
"""


def _zip(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder.parent))


def release_assignment(out, notebooks=None, force=False) -> dict:
    """Write the student release and the autograder into ``out`` (see the module's docstring);
    returns ``{"student": Path, "student_zip": Path, "autograder": Path, "autograder_zip": Path,
    "notebooks": [names]}``. ValueError, and nothing left in ``out``, if the release leaks the key."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty; pick another directory, or pass --overwrite")
    notebooks = Path(notebooks) if notebooks is not None else default_notebooks_dir()
    student = out / "student"
    if student.exists():
        shutil.rmtree(student)
    written = init_workspace(student, notebooks=notebooks, force=True)
    for path in written["notebooks"]:
        _release_notebook(path)
    (student / "README.md").write_text(workspace_readme(course=True))
    (student / "requirements.txt").write_text("\n".join(REQUIREMENTS) + "\n")
    problems = leaks(student, notebooks)
    if problems:
        shutil.rmtree(student)
        raise ValueError("the release would give the answer key away:\n" + "\n".join(problems))
    autograder = out / "autograder"
    autograder.mkdir(parents=True, exist_ok=True)
    version = cnnarch.__version__
    for name, text in (
        ("setup.sh", SETUP_SH.format(version=version)),
        ("run_autograder", RUN_AUTOGRADER.format(package=PACKAGE)),
        ("README.md", AUTOGRADER_README.format(version=version)),
    ):
        (autograder / name).write_text(text)
        if name != "README.md":
            (autograder / name).chmod(0o755)
    result = {
        "student": student,
        "autograder": autograder,
        "notebooks": [p.name for p in written["notebooks"]],
    }
    for key, folder in (("student_zip", student), ("autograder_zip", autograder)):
        result[key] = out / f"{folder.name}.zip"
        _zip(folder, result[key])
    return result
