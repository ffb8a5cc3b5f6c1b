"""`cnnarch --help` answers at once: building the parser imports no torch and no model."""

import os
import subprocess
import sys
import time
from pathlib import Path

import tomllib

from cnnarch.cli import COMMANDS, build_parser, main

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def fresh_python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120, check=True
    )
    return out.stdout.strip()


def test_building_the_parser_imports_no_torch():
    # Each subcommand module in turn, in one fresh interpreter: the first that pulls torch in is named.
    first_heavy = fresh_python(
        "import importlib, sys\n"
        "from cnnarch.cli import COMMANDS, build_parser\n"
        "for name in COMMANDS:\n"
        "    importlib.import_module(f'cnnarch.cli.cmd_{name}')\n"
        "    if 'torch' in sys.modules:\n"
        "        print(name)\n"
        "        break\n"
        "build_parser()\n"
        "print('torch' if 'torch' in sys.modules else '')\n"
    )
    assert first_heavy == "", f"building the parser imported torch, first in cnnarch.cli.cmd_{first_heavy}"


def test_import_cnnarch_is_light_and_still_gives_the_zoo():
    assert fresh_python("import sys, cnnarch; print('torch' in sys.modules)") == "False"
    assert fresh_python("import cnnarch; print(cnnarch.create_model('resnet18').fc.out_features)") == "1000"


def test_help_answers_in_under_one_and_a_half_seconds():
    # The best of three, so that one slow moment of a busy machine does not decide.
    times = []
    for _ in range(3):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "cnnarch.cli", "--help"],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=120,
        )
        times.append(time.perf_counter() - start)
        assert out.returncode == 0 and "summary" in out.stdout
    assert min(times) < 1.5, f"cnnarch --help took {min(times):.2f} s at best"


def test_version_is_the_package_version(capsys):
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert capsys.readouterr().out.strip() == f"cnnarch {pyproject['project']['version']}"


def test_every_subcommand_has_help():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert list(sub.choices) == COMMANDS
    for name, parser in sub.choices.items():
        assert parser.format_help().startswith(f"usage: cnnarch {name}")


def test_summary_names_the_lecture_modules_it_can_build():
    from cnnarch.analysis import LECTURE_MODULES
    from cnnarch.cli.cmd_summary import LECTURE_MODULES as NAMED

    assert set(NAMED) == set(LECTURE_MODULES)
