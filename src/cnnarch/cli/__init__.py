"""The ``cnnarch`` command line. Each subcommand lives in its own module with
``add_parser(subparsers)`` and ``run(args) -> int``; add a new one to ``COMMANDS``.

Building the parser imports no torch: subcommand modules import what they need inside ``run``, so
``cnnarch --help`` answers at once (tests/cli/test_help.py).

:func:`main` is the one error boundary: every error a user can cause ends in one or two lines naming
the file or value and the way out (exit 2 for usage and input errors, 130 for Ctrl-C); anything else
prints one line and the file where its full traceback was written (exit 1)."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import pickle
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from cnnarch import __version__
from cnnarch.errors import CnnarchError
from cnnarch.tables import DEFAULT_WIDTH, FORMATS, table_width

# in the order `cnnarch --help` lists them: the zoo and its numbers, pictures, training, trained
# networks in use, the assignment
COMMANDS = ["list", "info", "summary", "lecture", "compare"]
COMMANDS += ["draw", "report"]
COMMANDS += ["train", "eval", "recipes", "experiment"]
COMMANDS += ["predict", "export"]
COMMANDS += ["assignment"]
# the commands that compute with torch choose their thread count before it loads (cnnarch.threads);
# `train` chooses its own, from --threads, its recipe or the run it resumes
THREADED = {"eval": True, "experiment": False, "predict": False, "export": False}  # True: say it


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """``{"list": parser, ..., "assignment init": parser, ...}``: every (sub)command's own parser."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found |= {f"{name} {k}": v for k, v in subparsers(sub).items()}
    return found


def add_format_argument(parser, extra: Sequence[str] = (), default: str = "table") -> None:
    """``--format``, the one output option of every command that prints rows (:func:`cnnarch.tables.render`):
    the four tabular forms, plus ``extra`` ones a command adds (``summary``'s ``lecture``); and ``--wide``."""
    choices = (*FORMATS, *extra)
    parser.add_argument(
        "--format",
        choices=choices,
        default=default,
        help=f"output form: {', '.join(choices)} (default {default})",
    )
    parser.add_argument(
        "--wide",
        action="store_true",
        help=f"table cells on one line each (default: wrapped to {DEFAULT_WIDTH} columns)",
    )


def _plain(text: str | None) -> str | None:
    """Help text without reST markup: the module docstrings serve as descriptions, and ``x`` reads
    as `x` in a terminal."""
    return text if text is None else text.replace("``", "`")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of command ``only`` alone (what a run of it needs to import)."""
    parser = argparse.ArgumentParser(
        prog="cnnarch",
        description="The CNN architectures lecture made real: models, analysis, training, experiments.",
    )
    parser.add_argument("--version", action="version", version=f"cnnarch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in [only] if only in COMMANDS else COMMANDS:
        importlib.import_module(f"cnnarch.cli.cmd_{name}").add_parser(sub)
    for p in subparsers(parser).values():
        p.description, p.epilog = _plain(p.description), _plain(p.epilog)
        for action in p._actions:
            action.help = _plain(action.help)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    if args.command in THREADED:
        from cnnarch.threads import apply_before_torch

        choice = apply_before_torch()
        if choice is not None and THREADED[args.command]:
            print(choice.describe(fix="OMP_NUM_THREADS=N"), file=sys.stderr)
    try:
        with table_width(None if getattr(args, "wide", False) else DEFAULT_WIDTH):
            return args.run(args) or 0
    except BrokenPipeError:
        # `cnnarch list | head` closed the pipe: stop quietly, and keep Python's exit-time flush from
        # raising again on the dead stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"cnnarch {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("CNNARCH_TRACEBACK"):
            raise
        known = explain(e)
        if known is None:
            print(f"cnnarch {args.command}: unexpected error: {_first_line(e)}", file=sys.stderr)
            print(f"the full traceback is in {write_traceback(e)}", file=sys.stderr)
            return 1
        message, hint, code = known
        print(f"cnnarch {args.command}: error: {message}", file=sys.stderr)
        if hint:
            print(hint, file=sys.stderr)
        return code


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _kind(e: BaseException, module: str, name: str) -> bool:
    """``e`` is an instance of ``module.name``, decided without importing ``module`` (an error of a
    library that was never loaded cannot have been raised)."""
    return any(c.__name__ == name and c.__module__.startswith(module) for c in type(e).__mro__)


# errno values of a full disk and of a quota reached
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_EXPORTERS = ("torch.onnx", "onnx", "onnxruntime", "torch.jit", "torch.export", "torch._dynamo")


# the optional dependencies (pyproject's extras) a command may need, by top-level module
_EXTRAS = dict.fromkeys(("onnx", "onnxscript", "onnxruntime"), "export")
_EXTRAS |= dict.fromkeys(("nbclient", "nbformat", "nbconvert", "ipykernel"), "notebooks")


def explain(e: Exception) -> tuple[str, str | None, int] | None:
    """``(message, way out, exit status)`` for an error a user can cause, ``None`` for any other."""
    if isinstance(e, CnnarchError):
        return str(e), e.hint, e.exit_code
    missing = (getattr(e, "name", None) or "").split(".")[0]
    if isinstance(e, ImportError) and missing in _EXTRAS:
        extra = _EXTRAS[missing]
        return f"{missing} is not installed: pip install 'cnnarch[{extra}]' (the {extra} extra)", None, 2
    if isinstance(e, MemoryError) or _kind(e, "torch", "OutOfMemoryError"):
        return (
            f"out of memory ({_first_line(e)})",
            "use a smaller --batch-size or --input, or another --device",
            1,
        )
    if _kind(e, "urllib", "URLError") or isinstance(e, (TimeoutError, ConnectionError)):
        where = getattr(e, "url", None) or getattr(e, "filename", None)
        reason = getattr(e, "reason", None) or e
        if getattr(e, "code", None):  # an HTTP error
            reason = f"HTTP {e.code} {reason}"
        return (
            f"could not download{f' {where}' if where else ''}: {reason}",
            "check the network connection, or give a local file (weights) or --data DIR",
            1,
        )
    if _kind(e, "cnnarch.data.download", "DownloadError"):  # its message names the address
        return str(e), "check the network connection, or give --data DIR", 1
    if isinstance(e, OSError):
        return _explain_os_error(e)
    if _kind(e, "safetensors", "SafetensorError"):
        return (
            f"not a readable safetensors file: {_first_line(e)}",
            "the file is truncated or not safetensors: download or export it again",
            2,
        )
    if isinstance(e, pickle.UnpicklingError) or (
        isinstance(e, RuntimeError) and "weights only load failed" in str(e).lower()
    ):
        return (
            f"not a checkpoint or weights file cnnarch can read: {_first_line(e)}",
            "give a checkpoint written by `cnnarch train` or a weights file (.pt, .safetensors) you trust",
            2,
        )
    if _kind(e, "PIL", "DecompressionBombError"):
        return str(e).splitlines()[0], "give a smaller image, or one you trust", 2
    if any(c.__module__.startswith(_EXPORTERS) for c in type(e).__mro__[:-2]):
        return (
            f"the export failed: {_first_line(e)}",
            "try another --to or --input, or export the network in Python to see the whole error",
            1,
        )
    if isinstance(e, ValueError):  # the library's contract for a bad value: its message names it
        return str(e), None, 2
    return None


def _explain_os_error(e: OSError) -> tuple[str, str | None, int]:
    name = e.filename if e.filename is not None else None
    if name is not None and e.filename2 is not None:
        name = f"{name} -> {e.filename2}"
    if e.errno in _NO_SPACE:
        return f"no space left on the device writing {name or 'a file'}", "free space, or write elsewhere", 1
    if name is None:  # a message written by cnnarch (or a library) that names what is wrong itself
        return str(e), None, 2 if isinstance(e, (FileNotFoundError, FileExistsError)) else 1
    text = e.strerror or str(e)
    if isinstance(e, FileNotFoundError):
        return f"{name}: no such file or directory", "check the path", 2
    if isinstance(e, PermissionError):
        return f"{name}: permission denied", "choose a path you may read or write", 2
    if isinstance(e, IsADirectoryError):
        return f"{name} is a directory, not a file", "name a file", 2
    if isinstance(e, NotADirectoryError):
        return f"{name}: a part of this path is a file, not a directory", "name a directory", 2
    if isinstance(e, FileExistsError):
        return f"{name} exists already", "choose another path, or remove it first", 2
    if e.errno == errno.EROFS:
        return f"{name}: read-only file system", "write elsewhere", 2
    if e.errno == errno.ELOOP:
        return f"{name}: too many levels of symbolic links (a link loop?)", "fix or remove the link", 2
    return f"{name}: {text}", None, 1


def write_traceback(e: BaseException) -> str:
    """Write the full traceback to ``$CNNARCH_CACHE/crash-*.txt`` (default ``~/.cache/cnnarch``), or
    to the temporary directory when the cache cannot be written; returns the file's path."""
    text = f"cnnarch {__version__}, {' '.join(sys.argv)}\n\n" + "".join(traceback.format_exception(e))
    prefix = time.strftime("crash-%Y%m%d-%H%M%S-")
    for folder in (Path(os.environ.get("CNNARCH_CACHE", "~/.cache/cnnarch")).expanduser(), None):
        try:
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix=prefix, suffix=".txt", dir=folder)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return path
        except OSError:
            continue
    return "(nowhere: neither the cache nor the temporary directory can be written)"
