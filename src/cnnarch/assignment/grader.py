"""Grade a workspace: every check of :mod:`cnnarch.assignment.checks` on the student's functions.

The student's code runs in a worker process (forked from a clean server process, with the workspace
first on ``sys.path``). The parent waits for each check at most ``timeout`` seconds: a check that runs longer
(an infinite loop) is failed as "timed out", the worker is killed, and a new one carries on with the
checks after it; a worker that dies (a crash, ``os._exit``) fails the check it was running the same
way. An exception fails its check with its type, message and the line of the workspace it came from.
The worker may allocate at most ``memory_limit`` bytes (4 GiB by default, on Linux): code that allocates
without end fails its check with a MemoryError instead of taking the machine's memory.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import sys
import traceback
from pathlib import Path

from cnnarch.assignment.exercises import PACKAGE, PARTS

STARTUP_TIMEOUT = 120.0  # the first worker waits for the server to import numpy and torch
MEMORY_LIMIT = 4 * 2**30  # the assignment's checks need a few MB; an endless allocation stops here


def _where(exc: BaseException, workspace: Path) -> str:
    """`` (layers.py line 52)`` for the innermost frame inside the workspace, else ''."""
    frames = [
        fr for fr in traceback.extract_tb(exc.__traceback__) if Path(fr.filename).is_relative_to(workspace)
    ]
    if not frames:
        return ""
    fr = frames[-1]
    return f" ({Path(fr.filename).relative_to(workspace)} line {fr.lineno})"


def _getter(workspace: Path):
    def get(module, name):
        mod = importlib.import_module(f"{PACKAGE}.{module}")
        origin = Path(mod.__file__).resolve()
        if not origin.is_relative_to(workspace):
            raise ImportError(
                f"{PACKAGE}.{module} was imported from {origin}, not from the workspace {workspace}"
            )
        obj = mod
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj

    return get


def run_check(c, get, workspace: Path) -> dict:
    """One check in this process: ``{"error", "passed", "detail"}``."""
    import numpy as np

    from cnnarch.assignment.checks import Mismatch, seed_of

    try:
        target = get(c.module, c.function)
        with contextlib.redirect_stdout(sys.stderr):  # a student's prints must not garble the table
            error = float(c.run(target, get, np.random.RandomState(seed_of(c) % 2**32)))
    except NotImplementedError as e:
        return {
            "error": None,
            "passed": False,
            "detail": f"not implemented ({e})" if str(e) else "not implemented",
        }
    except Mismatch as e:
        return {"error": None, "passed": False, "detail": str(e)}
    except BaseException as e:  # noqa: BLE001 (SystemExit and the like from student code fail the check too)
        if isinstance(e, KeyboardInterrupt):
            raise
        message = str(e).splitlines()[0] if str(e) else ""
        return {
            "error": None,
            "passed": False,
            "detail": f"raised {type(e).__name__}: {message}{_where(e, workspace)}",
        }
    passed = error <= c.limit  # False for NaN
    return {"error": error, "passed": passed, "detail": "" if passed else f"error above {c.limit:.0e}"}


def _cap_memory(limit: int) -> None:
    """Let this process allocate at most ``limit`` more bytes of data (Linux counts every private
    mapping, NumPy's arrays included): student code that allocates without end gets a MemoryError and
    fails its check, instead of taking the machine's memory."""
    import resource

    with open("/proc/self/status") as f:
        used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmData:"))
    resource.setrlimit(resource.RLIMIT_DATA, (used + limit, resource.getrlimit(resource.RLIMIT_DATA)[1]))


def _worker(conn, workspace: str, indices: list[int], memory_limit: int | None) -> None:
    if memory_limit is not None and Path("/proc/self/status").is_file():
        _cap_memory(memory_limit)
    workspace = Path(workspace).resolve()
    sys.path.insert(0, str(workspace))
    from cnnarch.assignment.checks import CHECKS

    get = _getter(workspace)
    conn.send(("ready",))
    for i in indices:
        conn.send(("result", i, run_check(CHECKS[i], get, workspace)))
    conn.close()


def _selected(parts) -> list[int]:
    from cnnarch.assignment.checks import CHECKS

    unknown = sorted(set(parts or ()) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown part {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    return [i for i, c in enumerate(CHECKS) if not parts or c.part in parts]


def check_workspace(workspace) -> Path:
    workspace = Path(workspace).resolve()
    if not (workspace / PACKAGE / "__init__.py").is_file():
        raise FileNotFoundError(
            f"{workspace} holds no {PACKAGE}/ package; write a workspace first with "
            f"`cnnarch assignment init {workspace}`"
        )
    return workspace


def grade(
    workspace, parts=None, timeout: float = 30.0, memory_limit: int | None = MEMORY_LIMIT
) -> list[dict]:
    """Rows ``{"part", "function", "check", "error", "limit", "result", "detail"}``, one per check of
    ``parts`` (default: all), in the assignment's order. ``memory_limit``: the bytes the student's code
    may allocate (on Linux; None for no cap)."""
    from cnnarch.assignment.checks import CHECKS

    if not timeout > 0:
        raise ValueError(f"--timeout must be a positive number of seconds, got {timeout}")
    workspace = check_workspace(workspace)
    pending = _selected(parts)
    results: dict[int, dict] = {}
    # Workers fork from a server process that has imported the checks (and with them numpy and torch)
    # once: a fresh, clean worker after a timeout or a crash then costs milliseconds, not an import.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["cnnarch.assignment.checks"])
    while pending:
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(sender, str(workspace), pending, memory_limit), daemon=True)
        proc.start()
        sender.close()
        try:
            try:
                started = receiver.poll(STARTUP_TIMEOUT) and receiver.recv() == ("ready",)
            except EOFError:
                started = False
            if not started:
                raise RuntimeError(
                    f"the grading process did not start within {STARTUP_TIMEOUT:.0f} s (exit code "
                    f"{proc.exitcode}); run `python -c 'import cnnarch.assignment.checks'` to see why"
                )
            for n, i in enumerate(pending):
                message, died = None, False
                try:
                    if receiver.poll(timeout):
                        message = receiver.recv()
                except EOFError:  # the worker's end of the pipe closed: it exited
                    died = True
                if message is not None:
                    results[i] = message[2]
                    continue
                if died:
                    proc.join(STARTUP_TIMEOUT)
                    detail = f"the grading process died (exit code {proc.exitcode}) while running it"
                else:
                    detail = f"timed out after {timeout:g} s (an endless loop?)"
                results[i] = {"error": None, "passed": False, "detail": detail}
                pending = pending[n + 1 :]
                break
            else:
                pending = []
        finally:
            if proc.is_alive():
                proc.kill()
            proc.join()
            receiver.close()
    rows = []
    for i in sorted(results):
        c, r = CHECKS[i], results[i]
        rows.append(
            {
                "part": c.part,
                "function": c.function,
                "check": c.name,
                "error": r["error"],
                "limit": c.limit,
                "result": "pass" if r["passed"] else "FAIL",
                "detail": r["detail"],
            }
        )
    return rows
