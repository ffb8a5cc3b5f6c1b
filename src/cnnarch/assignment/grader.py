"""Grade a workspace: every check of :mod:`cnnarch.assignment.checks` on the student's functions.

The student's code never runs in the grader's process. It runs in a child process
(:mod:`cnnarch.assignment.harness`) whose ``sys.path`` holds the workspace, NumPy (torch too for the
PyTorch part) and the standard library only, under an audit hook that refuses any use of cnnarch's files
and any new process, with its address space capped. The grader computes the expected values here
(numerical gradients, torch, the reference engine), sends the child only the inputs, and compares what
comes back; so the student's files can neither reach the grader's code nor see its expected values.

- An import of a workspace module that raises, hangs or kills the process is reported once, as its
  own row, and the checks that need that module are marked "not graded" at once.
- A check that runs longer than ``timeout`` seconds (an endless loop) fails as timed out; a check that
  kills the process fails as such; in both cases a fresh child carries on with the next check.
- The student's process may allocate at most ``memory_limit`` bytes (4 GiB by default, on Linux):
  code that allocates without end fails its check with a MemoryError, not the machine.
- Every failure names the function, the output that is wrong, its worst element (index, expected,
  got), the relative error against the tolerance, and a hint written for that check.
"""

from __future__ import annotations

import importlib.util
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import cnnarch
from cnnarch.assignment import harness
from cnnarch.assignment.exercises import PACKAGE, PARTS

IMPORT_TIMEOUT = 30.0
MEMORY_LIMIT = 4 * 2**30  # the assignment's checks need a few MB; an endless allocation stops here
# The workspace modules the checks need, in the order the child imports them.
MODULES = ["layers", "fast_layers", "layer_utils", "optim"]
MODULES += ["classifiers.fc_net", "classifiers.cnn", "pytorch_nets"]
# What the PyTorch part's process may import besides NumPy: torch and the packages its import needs.
TORCH_PACKAGES = ["torch", "torchgen", "functorch", "typing_extensions", "sympy", "mpmath", "filelock"]
TORCH_PACKAGES += ["networkx", "jinja2", "markupsafe", "fsspec"]


def _link_packages(libs: Path, names) -> None:
    """Links in ``libs`` to the installed packages (or single-file modules) ``names``, those found."""
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin).resolve()
        path = origin.parent if origin.name == "__init__.py" else origin
        if not (libs / path.name).exists():
            (libs / path.name).symlink_to(path)


class ChildDied(Exception):
    """The child exited or stopped answering; ``reason`` says which."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class Child:
    """One student process: start it, import the workspace, run requests with a time limit."""

    def __init__(self, workspace: Path, modules: list[str], memory_limit: int | None, rpc):
        self.workspace, self.modules, self.rpc = workspace, modules, rpc
        self.tmp = Path(tempfile.mkdtemp(prefix="cnnarch-grader-"))
        libs = self.tmp / "libs"
        libs.mkdir()
        numpy_dir = Path(np.__file__).resolve().parent
        for name in ("numpy", "numpy.libs"):  # numpy.libs: the BLAS a NumPy wheel carries
            if (numpy_dir.parent / name).exists():
                (libs / name).symlink_to(numpy_dir.parent / name)
        if "pytorch_nets" in modules:
            _link_packages(libs, TORCH_PACKAGES)
        script = self.tmp / "harness.py"
        shutil.copyfile(harness.__file__, script)
        forbidden = [str(Path(cnnarch.__file__).resolve().parent)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        env.update({k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
        self.stderr = open(self.tmp / "stderr.txt", "wb")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(script), str(workspace), str(libs), str(memory_limit or 0)]
            + forbidden,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            bufsize=0,  # unbuffered: select() must see every byte that has not been read yet
            cwd=workspace,
            env=env,
        )
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)

    def _receive(self, deadline: float):
        """The next message, or ChildDied when the deadline passes or the child exits."""
        if not self.selector.select(max(0.0, deadline - time.monotonic())):
            raise ChildDied("timeout")
        try:
            return harness.receive(self.proc.stdout)
        except EOFError:
            self.proc.wait()
            raise ChildDied(f"exit code {self.proc.returncode}") from None
        except (ValueError, KeyError, TypeError, OSError) as e:  # a garbled answer: not trusted further
            self.proc.kill()
            raise ChildDied(f"it sent an answer the grader cannot read: {e}") from None

    def start(self, timeout: float) -> tuple[dict, str | None]:
        """Import the workspace: ``({module: None or exception}, module that hung or crashed)``."""
        harness.send(self.proc.stdin, {"modules": self.modules})
        deadline = time.monotonic() + timeout
        current = None
        while True:
            try:
                message = self._receive(deadline)
            except ChildDied as e:
                return {}, f"{current}: {e.reason}"
            if "importing" in message:
                current = message["importing"]
            else:
                return message["imports"], None

    def request(self, steps: list[dict], timeout: float) -> list[dict]:
        try:
            harness.send(self.proc.stdin, {"steps": steps})
        except (BrokenPipeError, OSError):
            self.proc.wait()
            raise ChildDied(f"exit code {self.proc.returncode}") from None
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline)
            if "rpc" not in message:
                return message["answers"]
            harness.send(self.proc.stdin, self.rpc(message))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.selector.close()
        self.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _importers(workspace: Path, module: str) -> set[str]:
    """The workspace modules whose source imports ``module`` (so an import that hangs in it hangs
    theirs too)."""
    leaf = module.split(".")[-1]
    pattern = re.compile(rf"\b{PACKAGE}\.{re.escape(module)}\b|from \.+{leaf}\b|import .*\b{leaf}\b")
    out = set()
    for name in MODULES:
        path = workspace / PACKAGE / f"{name.replace('.', '/')}.py"
        if name != module and path.is_file() and pattern.search(path.read_text(errors="replace")):
            out.add(name)
    return out


def _import_problem(exc: dict) -> str:
    if exc.get("violation"):
        return f"{exc['violation']}: graded code must not use it"
    message = f": {exc['message']}" if exc["message"] else ""
    return f"raised {exc['type']}{message}{exc['where']}"


def check_workspace(workspace) -> Path:
    workspace = Path(workspace).resolve()
    if not (workspace / PACKAGE / "__init__.py").is_file():
        raise FileNotFoundError(
            f"{workspace} holds no {PACKAGE}/ package; write a workspace first with "
            f"`cnnarch assignment init {workspace}`"
        )
    return workspace


def selected(parts=None, functions=None) -> list:
    from cnnarch.assignment.checks import CHECKS

    unknown = sorted(set(parts or ()) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown part {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    known = {c.function for c in CHECKS}
    unknown = sorted(set(functions or ()) - known)
    if unknown:
        raise ValueError(f"unknown function {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    return [
        c for c in CHECKS if (not parts or c.part in parts) and (not functions or c.function in functions)
    ]


def _row(c, error, passed, detail) -> dict:
    return {
        "part": c.part,
        "function": c.function,
        "check": c.name,
        "error": error,
        "limit": c.limit,
        "result": "pass" if passed else "FAIL",
        "detail": detail,
    }


def grade(
    workspace,
    parts=None,
    timeout: float = 30.0,
    memory_limit: int | None = MEMORY_LIMIT,
    *,
    functions=None,
    import_timeout: float = IMPORT_TIMEOUT,
) -> list[dict]:
    """Rows ``{"part", "function", "check", "error", "limit", "result", "detail"}``, one per check of
    ``parts`` and ``functions`` (default: all) in the assignment's order, preceded by one row per
    workspace module whose import failed (check "import"). ``memory_limit``: the bytes the student's
    code may allocate (on Linux; None for no cap)."""
    from cnnarch.assignment.checks import Session, run_check

    if not timeout > 0:
        raise ValueError(f"--timeout must be a positive number of seconds, got {timeout}")
    workspace = check_workspace(workspace)
    checks = selected(parts, functions)
    needed = [m for m in MODULES if any(c.needs(m) for c in checks)]
    session = Session()
    problems: dict[str, str] = {}  # module -> why it is not importable
    rows: dict[int, dict] = {}
    pending = list(range(len(checks)))
    while pending:
        modules = [m for m in needed if m not in problems]
        child = Child(workspace, modules, memory_limit, session.serve)
        try:
            imports, hung = child.start(import_timeout)
            if hung is not None:
                module, reason = hung.split(": ", 1)
                if module == "None":  # the child died before importing anything: not the student's doing
                    raise RuntimeError(f"the grading process did not start ({reason})")
                why = (
                    f"did not finish within {import_timeout:g} s (an endless loop or a long computation "
                    "at import time?)"
                    if reason == "timeout"
                    else f"killed the grading process ({reason})"
                )
                problems[module] = f"importing {PACKAGE}.{module} {why}"
                for other in _importers(workspace, module):
                    problems.setdefault(
                        other, f"imports {PACKAGE}.{module}, whose import {why.split(' (')[0]}"
                    )
                continue
            for module, exc in imports.items():
                if exc is not None:
                    problems[module] = _import_problem(exc)
            while pending:
                i = pending[0]
                c = checks[i]
                blocked = [m for m in c.modules if m in problems]
                if blocked:
                    detail = f"not graded: {PACKAGE}.{blocked[0]} could not be imported (see its import row)"
                    rows[i] = _row(c, None, False, detail)
                    pending.pop(0)
                    continue
                try:
                    error, passed, detail = run_check(c, session, child, timeout, memory_limit)
                except ChildDied as e:
                    if e.reason == "timeout":
                        detail = f"timed out after {timeout:g} s (an endless loop?)"
                    else:
                        detail = f"the grading process died ({e.reason}) while running it"
                    rows[i] = _row(c, None, False, detail)
                    pending.pop(0)
                    break
                rows[i] = _row(c, error, passed, detail)
                pending.pop(0)
        finally:
            child.close()
    import_rows = [
        {
            "part": "",
            "function": f"{PACKAGE}/{module.replace('.', '/')}.py",
            "check": "import",
            "error": None,
            "limit": None,
            "result": "FAIL",
            "detail": problem,
        }
        for module, problem in problems.items()
    ]
    return import_rows + [rows[i] for i in sorted(rows)]


def gradescope(rows: list[dict]) -> dict:
    """Gradescope's autograder results (``results.json``): one test per check, one point each."""
    tests = []
    for r in rows:
        passed = r["result"] == "pass"
        tests.append(
            {
                "name": f"{r['function']}: {r['check']}",
                "score": 1.0 if passed else 0.0,
                "max_score": 0.0 if r["check"] == "import" else 1.0,
                "output": r["detail"] or "passed",
                "status": "passed" if passed else "failed",
            }
        )
    return {"score": sum(t["score"] for t in tests), "tests": tests}


def summarize(rows: list[dict]) -> dict:
    """Checks and functions passed, and the functions that fail, of one graded workspace."""
    graded = [r for r in rows if r["check"] != "import"]
    functions: dict[str, bool] = {}
    for r in graded:
        functions[r["function"]] = functions.get(r["function"], True) and r["result"] == "pass"
    return {
        "checks_passed": sum(r["result"] == "pass" for r in graded),
        "checks": len(graded),
        "functions_passed": sum(functions.values()),
        "functions": len(functions),
        "failing": [f for f, ok in functions.items() if not ok],
        "import_problems": [r["function"] for r in rows if r["check"] == "import"],
    }


def submissions(folder) -> list[Path]:
    """The workspaces in ``folder``: its subfolders holding a ``cs231n`` package, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of submissions")
    found = sorted(p for p in folder.iterdir() if (p / PACKAGE / "__init__.py").is_file())
    if not found:
        raise FileNotFoundError(
            f"{folder} holds no submissions: each student's folder needs a {PACKAGE}/ package inside"
        )
    return found
