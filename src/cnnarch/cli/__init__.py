"""The ``cnnarch`` command line. Each subcommand lives in its own module with
``add_parser(subparsers)`` and ``run(args) -> int``; add a new one to ``COMMANDS``.

Building the parser imports no torch: subcommand modules import what they need inside ``run``, so
``cnnarch --help`` answers at once (tests/cli/test_help.py)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from cnnarch import __version__
from cnnarch.errors import CnnarchError

# in the order `cnnarch --help` lists them: the zoo and its numbers, pictures, training, trained
# networks in use, the assignment
COMMANDS = ["list", "info", "summary", "lecture", "compare"]
COMMANDS += ["draw", "report"]
COMMANDS += ["train", "eval", "recipes", "experiment"]
COMMANDS += ["predict", "export"]
COMMANDS += ["assignment"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnarch",
        description="The CNN architectures lecture made real: models, analysis, training, experiments.",
    )
    parser.add_argument("--version", action="version", version=f"cnnarch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"cnnarch.cli.cmd_{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except CnnarchError as e:
        print(f"cnnarch {args.command}: error: {e}", file=sys.stderr)
        if e.hint:
            print(e.hint, file=sys.stderr)
        return e.exit_code
    except (ValueError, FileNotFoundError) as e:
        print(f"cnnarch {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `cnnarch list | head` closed the pipe: stop quietly, and keep Python's exit-time flush from
        # raising again on the dead stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
