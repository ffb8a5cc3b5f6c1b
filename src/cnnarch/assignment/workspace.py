"""A student workspace: the ``cs231n`` package with the exercises as stubs, and the notebooks.

The stubs are derived from the reference sources in ``cnnarch.scratch`` with :mod:`ast` each time a
workspace is written, so they never drift from the code the grader compares against: every exercise
keeps its signature and docstring, and its body becomes::

    # *** START OF YOUR CODE ***
    raise NotImplementedError("implement affine_forward")
    # *** END OF YOUR CODE ***

Private helpers that only the removed bodies used are dropped with them. Imports of modules the
workspace has its own copy of (``layers``, ``optim``, ``layer_utils``, ``solver``, ``classifiers``)
point at the workspace, in the sources and in the notebooks' code cells; everything else (fast layers,
gradient checks, data, image grids) stays ``cnnarch.scratch``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import re
import textwrap
from pathlib import Path

import cnnarch
from cnnarch.assignment.exercises import COPIED, EXERCISES, PACKAGE, STANDALONE

START = "# *** START OF YOUR CODE ***"
END = "# *** END OF YOUR CODE ***"

_OWN = "|".join(sorted({m.split(".")[0] for m in COPIED}))
_DOTTED = re.compile(rf"\bcnnarch\.scratch\.({_OWN})\b")
_DATA = re.compile(r"\bcnnarch\.scratch\.data\b")
_FROM = re.compile(r"^(\s*)from cnnarch\.scratch import ([\w ,]+?)\s*$", re.MULTILINE)


def _split_from(match: re.Match) -> str:
    """``from cnnarch.scratch import layers, data`` -> one import from the workspace, one from cnnarch."""
    indent, names = match.group(1), [n.strip() for n in match.group(2).split(",")]
    own = [n for n in names if re.fullmatch(rf"({_OWN})( as \w+)?", n)]
    rest = [n for n in names if n not in own]
    lines = [f"{indent}from {PACKAGE} import {', '.join(own)}"] if own else []
    lines += [f"{indent}from cnnarch.scratch import {', '.join(rest)}"] if rest else []
    return "\n".join(lines)


def rewrite_imports(code: str) -> str:
    """``cnnarch.scratch.<module>`` -> ``cs231n.<module>`` for the modules the workspace has, and
    the data loader ``cnnarch.scratch.data`` -> ``cs231n.data_utils``."""
    code = _DATA.sub(f"{PACKAGE}.data_utils", code)
    return _FROM.sub(_split_from, _DOTTED.sub(rf"{PACKAGE}.\1", code))


def _stub_lines(name: str, indent: str) -> list[str]:
    return [f"{indent}{START}", f'{indent}raise NotImplementedError("implement {name}")', f"{indent}{END}"]


def _targets(tree: ast.Module, names: set[str]):
    """(qualified name, def node) of the functions and methods in ``names``."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and f"{node.name}.{item.name}" in names:
                    yield f"{node.name}.{item.name}", item


def _has_docstring(node) -> bool:
    first = node.body[0]
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )


REGION_BEGIN, REGION_END = "# >>> exercise", "# <<< exercise"
REGION_TODO = {
    "params": "fill self.params: the weights and biases named in the class docstring",
    "layers": "make the layers named in the class docstring and assign them to self",
}


def _region(lines: list[str], node) -> tuple[int, int, str] | None:
    """(first line, last line, indent) of the ``# >>> exercise`` region inside ``node``, 0-based."""
    begin = [i for i in range(node.lineno - 1, node.end_lineno) if lines[i].strip() == REGION_BEGIN]
    if not begin:
        return None
    # the closing marker may follow the function's last statement
    end = next((i for i in range(begin[0], len(lines)) if lines[i].strip() == REGION_END), None)
    if len(begin) != 1 or end is None:
        raise ValueError(f"line {node.lineno}: expected one '{REGION_BEGIN}' ... '{REGION_END}' region")
    return begin[0], end, lines[begin[0]][: len(lines[begin[0]]) - len(lines[begin[0]].lstrip())]


def stub_source(source: str, names: set[str]) -> str:
    """``source`` with the bodies of the functions/methods in ``names`` replaced by marked stubs, and
    then the private top-level functions nothing uses any more removed."""
    tree = ast.parse(source)
    found = dict(_targets(tree, names))
    missing = names - set(found)
    if missing:
        raise ValueError(f"the reference source has no {', '.join(sorted(missing))} to turn into a stub")
    lines = source.splitlines()
    # Replace from the bottom up so that earlier line numbers stay valid.
    for name, node in sorted(found.items(), key=lambda kv: -kv[1].lineno):
        region = _region(lines, node)
        if region is not None:
            begin, end, indent = region
            region_text = "\n".join(lines[begin:end])
            lines[begin : end + 1] = [
                f"{indent}{START}",
                f"{indent}# {REGION_TODO['params' if 'self.params' in region_text else 'layers']}",
                f"{indent}{END}",
            ]
            continue
        first = node.body[0]
        if _has_docstring(node):
            start = first.end_lineno
        else:  # the body begins after the header, with any comments above its first statement
            start = first.lineno - 1
            while lines[start - 1].strip().startswith("#") or not lines[start - 1].strip():
                start -= 1
        indent = " " * first.col_offset
        lines[start : node.end_lineno] = _stub_lines(name, indent)
    return _drop_unused_private("\n".join(lines) + "\n")


def _drop_unused_private(source: str) -> str:
    while True:
        tree = ast.parse(source)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        unused = [
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("_") and node.name not in used
        ]
        if not unused:
            return source
        lines = source.splitlines()
        for node in sorted(unused, key=lambda n: -n.lineno):
            end = node.end_lineno
            while end < len(lines) and not lines[end].strip():  # the blank lines after it
                end += 1
            lines[node.lineno - 1 - len(node.decorator_list) : end] = []
        source = "\n".join(lines) + "\n"


def _module_header(tree: ast.Module, module: str, stubs: list[str]) -> str:
    original = ast.get_docstring(tree) or ""
    text = "Given code: nothing to write here."
    if stubs:
        text = (
            f"Write the code between the START and END OF YOUR CODE markers of {', '.join(stubs)}; "
            "the notebooks check it as you go, and the grader function by function."
        )
    paragraphs = [original.split("\n\n")[0], textwrap.fill(text, width=104)]
    return '"""' + "\n\n".join(paragraphs) + '\n"""'


def workspace_module(module: str) -> str:
    """The source of workspace module ``cs231n.<module>``."""
    stubs = [name for mod, name in EXERCISES if mod == module]
    source = inspect.getsource(importlib.import_module(f"cnnarch.scratch.{module}"))
    source = rewrite_imports(stub_source(source, set(stubs)))
    tree = ast.parse(source)
    lines = source.splitlines()
    doc = tree.body[0]
    lines[doc.lineno - 1 : doc.end_lineno] = _module_header(tree, module, stubs).splitlines()
    return "\n".join(lines) + "\n"


def standalone_module(module: str) -> str:
    """The source of ``cnnarch.assignment.<module>``, which imports nothing of cnnarch."""
    return inspect.getsource(importlib.import_module(f"cnnarch.assignment.{module}"))


def default_notebooks_dir() -> Path | None:
    """The assignment's notebooks: ``notebooks/`` of a source checkout (an editable install), else
    ``cnnarch/assignment/notebooks`` inside the installed package; None when neither exists."""
    package = Path(cnnarch.__file__).resolve().parent
    for candidate in (package.parents[1] / "notebooks", package / "assignment" / "notebooks"):
        if candidate.is_dir():
            return candidate
    return None


ANSWER_TAG = "answer"
ANSWER_PROMPT = "**Your answer:** *write it here*\n"
_SOLUTION = re.compile(rf"^([ \t]*){re.escape(START)}\n.*?^[ \t]*{re.escape(END)}$", re.MULTILINE | re.DOTALL)


def strip_solutions(code: str) -> str:
    """A code cell with the code between each START/END OF YOUR CODE pair replaced by a stub."""
    stub = 'raise NotImplementedError("write this cell\'s code")'
    return _SOLUTION.sub(lambda m: f"{m[1]}{START}\n{m[1]}{stub}\n{m[1]}{END}", code)


def student_notebook(text: str) -> str:
    """A notebook's JSON for the student: code cells' imports pointed at the workspace, the code between
    YOUR CODE markers removed, every output cleared (the reference's outputs would give the answers
    away), and the teacher's answers to the inline questions (cells tagged ``answer``) replaced by a
    prompt."""
    nb = json.loads(text)
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else source
        if cell.get("cell_type") == "markdown" and ANSWER_TAG in cell.get("metadata", {}).get("tags", []):
            cell["source"] = [ANSWER_PROMPT]
        elif cell.get("cell_type") == "markdown":  # the student's engine is the workspace's package
            cell["source"] = rewrite_imports(text).replace("`cnnarch.scratch`", f"`{PACKAGE}`")
            cell["source"] = cell["source"].splitlines(keepends=True)
        if cell.get("cell_type") != "code":
            continue
        cell["source"] = strip_solutions(rewrite_imports(text)).splitlines(keepends=True)
        cell["outputs"] = []
        cell["execution_count"] = None
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def workspace_readme(course: bool = False) -> str:
    """The workspace's README: the parts in order, the functions of each, how to check, the data.

    ``course``: the README of a course's release, whose students have no cnnarch (see
    :mod:`cnnarch.assignment.release`): how to install what the notebooks need and hand the work in,
    instead of how to run the grader."""
    from cnnarch.assignment.exercises import PARTS

    titles = {
        "fc": ("01_fully_connected.ipynb", "Fully connected networks"),
        "batchnorm": ("02_batch_normalization.ipynb", "Batch normalization"),
        "dropout": ("03_dropout.ipynb", "Dropout"),
        "conv": ("04_convolutional_networks.ipynb", "Convolutional networks"),
        "pytorch": ("05_pytorch.ipynb", "PyTorch"),
    }
    lines = ["# CS231n assignment 2, as exercises", ""]
    if course:
        lines += [
            "Install what the notebooks need (Python 3.10 or newer), then open them in order:",
            "",
            "    pip install -r requirements.txt",
            "    jupyter lab",
            "",
        ]
    lines += [
        "Five parts, in this order. Each notebook says which functions its cells call; write them in",
        f"`{PACKAGE}/` between the `START OF YOUR CODE` and `END OF YOUR CODE` markers, run the notebook's",
        "cells (they print relative errors against numerical gradients), and answer its inline questions",
        "in the answer cells. Each notebook states its targets (50% validation accuracy for a fully",
        "connected network, a convolutional network and a PyTorch network trained to a stated CIFAR-10",
        "accuracy) and checks them in a cell that prints PASS or FAIL.",
        "",
    ]
    for n, (part, exercises) in enumerate(PARTS.items(), 1):
        notebook, title = titles[part]
        lines += [f"## {n}. {title}: `{notebook}`", ""]
        if not course:
            lines += [f"`cnnarch assignment check . --part {part}`", ""]
        lines += [f"- `{PACKAGE}/{m.replace('.', '/')}.py`: `{f}`" for m, f in exercises]
        lines.append("")
    if course:
        lines += [
            "## Handing it in",
            "",
            f"Hand in this folder with your `{PACKAGE}/` and the notebooks, as your course says. It is",
            "graded function by function on inputs chosen to catch the usual bugs; each failure names the",
            "output that is wrong, its worst element, and a hint. Your functions must not change their",
            "inputs.",
            "",
        ]
    else:
        lines += [
            "## Checking your work",
            "",
            "`cnnarch assignment check .` grades every function (`--part fc`, `--function affine_forward`",
            "for fewer). Each failure names the output that is wrong, its worst element (expected against",
            "got), the relative error and the tolerance, and a hint. Your code runs in a separate process",
            "with NumPy (and torch for the PyTorch part) only: it cannot import cnnarch, and it must not",
            "change its inputs.",
            "",
        ]
    lines += [
        "## Data",
        "",
        f"The notebooks read CIFAR-10 with `{PACKAGE}/data_utils.py`, wherever you start them:",
        "`$CNNARCH_DATA` if set (the official `cifar-10-batches-py` folder, a folder holding it, or an",
        "ImageFolder copy with `train/<class>/*.jpg` and `test/<class>/*.jpg`), else",
        f"`{PACKAGE}/datasets/`, else a `shared/data` folder in the current directory or one above it",
        "(such as `../shared/data/cifar10-jpeg`), else the copy in cnnarch's cache",
        "(`~/.cache/cnnarch/datasets`, `$CNNARCH_CACHE`), else a download of the official archive",
        f"(170 MB) into `{PACKAGE}/datasets/`.",
        "",
    ]
    return "\n".join(lines)


def init_workspace(directory, notebooks=None, force=False) -> dict:
    """Write a workspace into ``directory``; returns what was written: ``{"package": [paths],
    "notebooks": [paths], "notebooks_from": Path | None}``.

    ``notebooks`` is the folder to copy ``*.ipynb`` from (default :func:`default_notebooks_dir`).
    An existing workspace is only overwritten with ``force``, since it holds the student's code.
    """
    directory = Path(directory)
    package = directory / PACKAGE
    if package.exists() and not force:
        raise FileExistsError(
            f"{package} exists: it may hold your solutions; pick another directory, or pass --overwrite to "
            "overwrite it (the notebooks too)"
        )
    if notebooks is not None and not Path(notebooks).is_dir():
        raise FileNotFoundError(f"--notebooks {notebooks} is not a directory of .ipynb files")
    notebooks = Path(notebooks) if notebooks is not None else default_notebooks_dir()
    sources = sorted(notebooks.glob("[0-9]*.ipynb")) if notebooks else []  # the parts, not the tour
    taken = [directory / nb.name for nb in sources if (directory / nb.name).exists()]
    if taken and not force:
        raise FileExistsError(
            f"{taken[0]} exists: it may hold your work; pick another directory, or pass --overwrite to "
            "overwrite it"
        )
    existing = next(p for p in (directory.absolute(), *directory.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        what = "is not a directory" if not existing.is_dir() else "cannot be written"
        raise ValueError(f"cannot write the workspace {directory}: {existing} {what}; choose another DIR")
    written = []
    files = {f"{m.replace('.', '/')}.py": workspace_module(m) for m in COPIED}
    files.update({f"{m}.py": standalone_module(m) for m in STANDALONE})
    files["__init__.py"] = (
        '"""The assignment\'s package: your code, checked by the notebooks and by the grader."""\n'
    )
    files["classifiers/__init__.py"] = (
        '"""Classifiers: fc_net (TwoLayerNet, FullyConnectedNet), cnn (ThreeLayerConvNet)."""\n'
    )
    for rel, text in files.items():
        path = package / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    readme = directory / "README.md"
    if force or not readme.exists():
        readme.write_text(workspace_readme())
        written.append(readme)
    copied = []
    for nb in sources:
        target = directory / nb.name
        target.write_text(student_notebook(nb.read_text()))
        copied.append(target)
    return {"package": written, "notebooks": copied, "notebooks_from": notebooks}
