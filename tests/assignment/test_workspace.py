"""The student workspace: stubs derived from the reference, imports pointed at it, notebooks copied."""

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnarch.assignment.exercises import COPIED, EXERCISES, STANDALONE
from cnnarch.assignment.workspace import (
    END,
    REGION_BEGIN,
    REGION_TODO,
    START,
    default_notebooks_dir,
    init_workspace,
    stub_source,
)
from cnnarch.cli import main

REPO = Path(__file__).resolve().parents[2]


def defs(tree):
    """{qualified name: def node} of the top-level functions and the methods."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = node
        elif isinstance(node, ast.ClassDef):
            out.update({f"{node.name}.{m.name}": m for m in node.body if isinstance(m, ast.FunctionDef)})
    return out


def test_stub_source_keeps_signature_and_docstring_and_drops_helpers_only_the_bodies_used():
    source = '''"""Module."""


def _helper(x):
    return x


def _kept(x):
    return x


def f(x, y=2):
    """Doc of f.

    Shapes: x (N, D).
    """
    return _helper(x) + y


def g(x):
    return _kept(x)


class Net:
    def loss(self, X):
        # a comment in the body
        return X
'''
    expected = '''"""Module."""


def _kept(x):
    return x


def f(x, y=2):
    """Doc of f.

    Shapes: x (N, D).
    """
    # *** START OF YOUR CODE ***
    raise NotImplementedError("implement f")
    # *** END OF YOUR CODE ***


def g(x):
    return _kept(x)


class Net:
    def loss(self, X):
        # *** START OF YOUR CODE ***
        raise NotImplementedError("implement Net.loss")
        # *** END OF YOUR CODE ***
'''
    assert stub_source(source, {"f", "Net.loss"}) == expected
    with pytest.raises(ValueError, match="no h to turn into a stub"):
        stub_source(source, {"f", "h"})


def test_workspace_stubs_every_exercise_and_keeps_the_rest_of_the_reference(workspace):
    exercises = {(m, n) for m, n in EXERCISES}
    for module in COPIED:
        ref_source = inspect.getsource(importlib.import_module(f"cnnarch.scratch.{module}"))
        ref = defs(ast.parse(ref_source))
        ws_source = (workspace / "cs231n" / f"{module.replace('.', '/')}.py").read_text()
        ws = defs(ast.parse(ws_source))
        assert "cnnarch.scratch.layers" not in ws_source.split('"""', 2)[2]  # imports point at cs231n
        for name, node in ref.items():
            if (module, name) in exercises:
                stub = ws[name]
                assert ast.dump(stub.args) == ast.dump(node.args)
                assert ast.get_docstring(stub) == ast.get_docstring(node)
                lines = [line.strip() for line in ws_source.splitlines()]
                if name.endswith("__init__"):  # only the marked region is the exercise
                    assert REGION_BEGIN in ref_source
                    body = lines[stub.lineno - 1 : stub.end_lineno + 3]
                    k = body.index(START)
                    numpy_net = module.startswith("classifiers")
                    todo = REGION_TODO["params" if numpy_net else "layers"]
                    assert body[k : k + 3] == [START, f"# {todo}", END]
                    assert ("self.params = {}" if numpy_net else "super().__init__()") in body[:k]
                    continue
                body = lines[stub.end_lineno - 2 : stub.end_lineno + 1]
                assert body == [START, f'raise NotImplementedError("implement {name}")', END]
            elif name.startswith("_") and module == "layers":
                assert name not in ws  # _check_tiles, _normalize_backward: only the solutions used them
            else:
                assert ast.dump(ws[name]) == ast.dump(node), name


def test_workspace_imports_from_itself_and_needs_no_cnnarch(workspace):
    code = (
        "import cs231n.layers, cs231n.layer_utils, cs231n.optim, cs231n.solver\n"
        "from cs231n.classifiers.fc_net import FullyConnectedNet\n"
        "from cs231n.classifiers import cnn\n"
        "from cs231n.fast_layers import conv_forward_fast, conv_forward_im2col, max_pool_forward_reshape\n"
        "from cs231n.gradient_check import eval_numerical_gradient_array\n"
        "from cs231n.vis_utils import visualize_grid\n"
        "from cs231n.data_utils import get_CIFAR10_data, load_CIFAR10, load_cifar10\n"
        "import cs231n.pytorch_nets\n"
        "import sys\n"
        "assert not [m for m in sys.modules if m.startswith('cnnarch')], 'the workspace imported cnnarch'\n"
        "assert cs231n.layer_utils.affine_forward is cs231n.layers.affine_forward\n"
        "assert cs231n.solver.optim is cs231n.optim\n"
        "assert cnn.affine_forward is cs231n.layers.affine_forward\n"
        "assert conv_forward_im2col is conv_forward_fast\n"
        "try:\n"
        "    cs231n.layers.affine_forward(0, 0, 0)\n"
        "except NotImplementedError as e:\n"
        "    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}  # this checkout's cnnarch, as pytest uses
    out = subprocess.run([sys.executable, "-c", code], cwd=workspace, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "implement affine_forward\n"
    assert sorted(p.stem for p in (workspace / "cs231n").glob("*.py")) == sorted(
        ["__init__", *STANDALONE, *(m for m in COPIED if "." not in m)]
    )


def test_init_copies_notebooks_with_imports_pointed_at_the_workspace_and_outputs_cleared(tmp_path, capsys):
    nbformat = pytest.importorskip("nbformat")  # the notebooks extra
    nb = nbformat.v4.new_notebook()
    code = (
        "from cnnarch.scratch.layers import affine_forward\n"
        "from cnnarch.scratch.classifiers.fc_net import FullyConnectedNet\n"
        "from cnnarch.scratch import optim\n"
        "from cnnarch.scratch import data, layers as L, modules\n"
        "import cnnarch.scratch.layer_utils as lu\n"
        "from cnnarch.scratch.gradient_check import rel_error\n"
        "from cnnarch.scratch.data import get_CIFAR10_data\n"
        "from cnnarch.scratch.fast_layers import conv_forward_fast"
    )
    cell = nbformat.v4.new_code_cell(code, execution_count=3)
    cell.outputs = [nbformat.v4.new_output("stream", text="the reference's answer\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("Uses `cnnarch.scratch.layers`."), cell]
    source = tmp_path / "nbs"
    source.mkdir()
    nbformat.write(nb, source / "01_fully_connected.ipynb")
    (source / "notes.txt").write_text("not a notebook")

    assert main(["assignment", "init", str(tmp_path / "ws"), "--notebooks", str(source)]) == 0
    assert "copied 1 notebook from" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == [
        "01_fully_connected.ipynb",
        "README.md",
        "cs231n",
    ]
    copy = nbformat.read(tmp_path / "ws" / "01_fully_connected.ipynb", as_version=4)
    nbformat.validate(copy)
    assert copy.cells[0].source == "Uses `cs231n.layers`."  # markdown names the workspace too
    assert copy.cells[1].source.splitlines() == [
        "from cs231n.layers import affine_forward",
        "from cs231n.classifiers.fc_net import FullyConnectedNet",
        "from cs231n import optim",
        "from cs231n import layers as L",
        "from cnnarch.scratch import data, modules",
        "import cs231n.layer_utils as lu",
        "from cs231n.gradient_check import rel_error",
        "from cs231n.data_utils import get_CIFAR10_data",
        "from cs231n.fast_layers import conv_forward_fast",
    ]
    assert copy.cells[1].outputs == [] and copy.cells[1].execution_count is None


def test_init_refuses_to_overwrite_a_workspace_without_force(workspace, capsys):
    layers = workspace / "cs231n" / "layers.py"
    layers.write_text("# my solutions\n")
    assert main(["assignment", "init", str(workspace)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert layers.read_text() == "# my solutions\n"
    assert main(["assignment", "init", str(workspace), "--overwrite", "--notebooks", str(workspace)]) == 0
    assert "implement affine_forward" in layers.read_text()


def test_default_notebooks_are_the_repository_notebooks_in_a_source_checkout():
    repo_notebooks = REPO / "notebooks"
    assert default_notebooks_dir() == (repo_notebooks if repo_notebooks.is_dir() else None)


def test_repository_notebooks_import_exercises_only_from_the_workspace(tmp_path):
    if default_notebooks_dir() is None:
        pytest.skip("no notebooks/ in this checkout")
    written = init_workspace(tmp_path / "ws")
    assert written["notebooks"]
    for path in written["notebooks"]:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                code = "".join(cell["source"])
                for module in ("layers", "optim", "layer_utils", "solver", "classifiers"):
                    assert f"cnnarch.scratch.{module}" not in code, path.name
                assert cell["outputs"] == []


def test_student_notebooks_lose_the_teachers_answers_and_solution_code(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    answer = nbformat.v4.new_markdown_cell("**Your answer:** the teacher's answer")
    answer.metadata["tags"] = ["answer"]
    code = f"model = None\n{START}\nmodel = build()  # the solution\n{END}\nprint(model)"
    nb.cells = [
        nbformat.v4.new_markdown_cell("**Inline question 1.** Why?"),
        answer,
        nbformat.v4.new_code_cell(code),
    ]
    source = tmp_path / "nbs"
    source.mkdir()
    nbformat.write(nb, source / "01_part.ipynb")
    nbformat.write(nb, source / "lecture_tour.ipynb")  # not a part of the assignment: not copied
    written = init_workspace(tmp_path / "ws", notebooks=source)
    assert [p.name for p in written["notebooks"]] == ["01_part.ipynb"]
    copy = nbformat.read(tmp_path / "ws" / "01_part.ipynb", as_version=4)
    assert copy.cells[0].source == "**Inline question 1.** Why?"
    assert "teacher" not in copy.cells[1].source and copy.cells[1].source.startswith("**Your answer:**")
    assert copy.cells[2].source.splitlines() == [
        "model = None",
        START,
        'raise NotImplementedError("write this cell\'s code")',
        END,
        "print(model)",
    ]


def test_workspace_readme_lists_every_exercise_by_part():
    from cnnarch.assignment.exercises import PARTS
    from cnnarch.assignment.workspace import workspace_readme

    text = workspace_readme()
    for part, exercises in PARTS.items():
        assert f"cnnarch assignment check . --part {part}" in text
        for module, name in exercises:
            assert f"`cs231n/{module.replace('.', '/')}.py`: `{name}`" in text
    assert "$CNNARCH_DATA" in text and "download" in text
