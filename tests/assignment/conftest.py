import importlib
import inspect

import pytest

from cnnarch.assignment.exercises import COPIED
from cnnarch.assignment.workspace import init_workspace, rewrite_imports


def solve(workspace, edits=None):
    """Fill a workspace with the reference solution, then apply ``edits``: {module: [(old, new), ...]}
    (planted bugs), each ``old`` required to occur exactly once in the reference source."""
    for module in COPIED:
        source = inspect.getsource(importlib.import_module(f"cnnarch.scratch.{module}"))
        for old, new in (edits or {}).get(module, []):
            assert source.count(old) == 1, old
            source = source.replace(old, new)
        (workspace / "cs231n" / f"{module.replace('.', '/')}.py").write_text(rewrite_imports(source))


@pytest.fixture
def workspace(tmp_path):
    """A fresh workspace without notebooks."""
    empty = tmp_path / "no-notebooks"
    empty.mkdir()
    init_workspace(tmp_path / "ws", notebooks=empty)
    return tmp_path / "ws"
