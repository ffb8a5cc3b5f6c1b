"""The scripts in benchmarks/ read against the current package and CLI.

The suite never runs them (they take minutes, some need a GPU), so a renamed module, function or flag
would break them silently. These tests compile every Python script, resolve each of its `cnnarch`
imports, and check every option that a shell script passes to `cnnarch SUB` (or to a benchmark script)
against that parser.
"""

import argparse
import ast
import importlib
import py_compile
import re
import shlex
from pathlib import Path

import pytest

from cnnarch.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
PY_SCRIPTS = sorted(BENCH.glob("*.py"))
SH_SCRIPTS = sorted(BENCH.glob("*.sh"))
FLAG = re.compile(r"^--?[A-Za-z][\w-]*$")
ARRAY = re.compile(r"^\s*(\w+)=\(", re.M)
SEPARATORS = {"|", "||", "&&", ";", "&"}


def missing_cnnarch_names(source: str) -> list[str]:
    """``module.name`` for each `cnnarch` import in ``source`` that does not resolve."""
    missing = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [(alias.name, None) for alias in node.names if alias.name.startswith("cnnarch")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cnnarch"):
            targets = [(node.module, alias.name) for alias in node.names]
        else:
            continue
        for module, name in targets:
            try:
                mod = importlib.import_module(module)
            except ImportError:
                missing.append(module)
                continue
            if name is not None and not hasattr(mod, name):
                try:  # `from package import submodule`
                    importlib.import_module(f"{module}.{name}")
                except ImportError:
                    missing.append(f"{module}.{name}")
    return missing


def script_options(source: str) -> set[str]:
    """The option strings a benchmark script's ``add_argument`` calls define (plus -h/--help)."""
    options = {"-h", "--help"}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            options |= {a.value for a in node.args if isinstance(a, ast.Constant) and a.value[:1] == "-"}
    return options


def subcommand_options() -> dict[str, set[str]]:
    """``{subcommand: its option strings}`` from the real `cnnarch` parser."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name: set(p._option_string_actions) for name, p in sub.choices.items()}


def _unquoted(text: str):
    """``(index, char)`` for each character of ``text`` outside single and double quotes."""
    quote = None
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        else:
            yield i, char


def _words(line: str) -> list[str]:
    """The shell words of ``line`` without its comment (a ``#`` that starts a word, outside quotes)."""
    comment = next((i for i, c in _unquoted(line) if c == "#" and (i == 0 or line[i - 1].isspace())), None)
    line = line[:comment]
    try:
        return shlex.split(line)
    except ValueError:  # an unclosed quote: a multi-line string (python -c "...") starts here
        return line.split()


def _array_words(rest: str) -> list[str]:
    """The words of a bash array whose body starts ``rest``: up to the first ``)`` outside quotes."""
    end = next((i for i, c in _unquoted(rest) if c == ")"), None)
    if end is None:
        raise ValueError(f"unclosed array: {rest[:60]!r}")
    return [word for line in rest[:end].splitlines() for word in _words(line)]


def _flags(words: list[str], arrays: dict[str, list[str]]) -> list[str]:
    """The options among ``words`` (up to the end of the command), with ``${name[@]}`` expanded."""
    flags = []
    for word in words:
        if word in SEPARATORS or word.startswith((">", "2>", "<")):
            break
        if m := re.fullmatch(r"\$\{(\w+)\[@\]\}", word):
            flags += _flags(arrays.get(m[1], []), {})
        elif FLAG.match(word.split("=", 1)[0]):
            flags.append(word.split("=", 1)[0])
    return flags


def shell_calls(text: str) -> list[tuple[str, str, list[str]]]:
    """``(program, subcommand, options)`` for each `cnnarch SUB` and `benchmarks/NAME.py` command in a
    shell script. Options come from the command line itself, from the arrays it expands, and from
    ``"label|options"`` entries of arrays (a table of variants looped over): those go to the script's
    `cnnarch` subcommands together, as ``"SUB1/SUB2"``. Program is ``"cnnarch"`` or the benchmark's file
    name."""
    text = text.replace("\\\n", " ")
    arrays = {m[1]: _array_words(text[m.end() :]) for m in ARRAY.finditer(text)}
    calls = []
    for line in text.splitlines():
        words = _words(line)
        for i, word in enumerate(words):
            if word in ("cnnarch", "cnnarch.cli") and i + 1 < len(words):
                calls.append(("cnnarch", words[i + 1], _flags(words[i + 2 :], arrays)))
            elif re.fullmatch(r"(\S*/)?benchmarks/\w+\.py", word):
                calls.append((Path(word).name, "", _flags(words[i + 1 :], arrays)))
    variants = [
        _flags(e.split("|", 1)[1].split(), {}) for items in arrays.values() for e in items if "|" in e
    ]
    subs = {sub for program, sub, _ in calls if program == "cnnarch"}
    calls += [("cnnarch", "/".join(sorted(subs)), opts) for opts in variants if opts and subs]
    return calls


def unknown_options(text: str) -> list[str]:
    """``"cnnarch SUB --flag"`` (or ``"NAME.py --flag"``) for each option a shell script passes that
    the parser it reaches does not define, and each unknown subcommand."""
    parsers = subcommand_options()
    problems = []
    for program, sub, flags in shell_calls(text):
        if program == "cnnarch":
            if "/" in sub:  # variants: an option of any of the subcommands
                known = set().union(*(parsers.get(s, set()) for s in sub.split("/")))
            elif sub in parsers:
                known = parsers[sub]
            else:
                problems.append(f"cnnarch {sub}: no such subcommand")
                continue
        else:
            path = BENCH / program
            if not path.is_file():
                problems.append(f"{program}: no such script in benchmarks/")
                continue
            known = script_options(path.read_text())
        problems += [f"{program} {sub} {flag}".replace("  ", " ") for flag in flags if flag not in known]
    return problems


@pytest.mark.parametrize("path", PY_SCRIPTS, ids=lambda p: p.name)
def test_python_script_compiles_and_its_cnnarch_imports_resolve(path, tmp_path):
    py_compile.compile(str(path), cfile=str(tmp_path / "x.pyc"), doraise=True)
    assert missing_cnnarch_names(path.read_text()) == []


@pytest.mark.parametrize("path", SH_SCRIPTS, ids=lambda p: p.name)
def test_shell_script_options_exist(path):
    text = path.read_text()
    assert shell_calls(text), f"{path.name} runs no cnnarch command or benchmark script"
    assert unknown_options(text) == []


def test_the_checks_catch_a_stale_script():
    assert missing_cnnarch_names(
        "from cnnarch.train.trainer import FastTrainer\nimport cnnarch.nothing\n"
    ) == [
        "cnnarch.train.trainer.FastTrainer",
        "cnnarch.nothing",
    ]
    script = """
common=(--data "$DATA" --limit-test 5)
variants=("full|" "old milestones|--milestones 90 93")
for v in "${variants[@]}"; do
  $py -m cnnarch.cli train --recipe cifar-fast "${common[@]}" \\
    ${v#*|} --trainer fast 2>&1 | grep -v x  # --comment
done
cnnarch compare resnet18 vgg16 --markdown > out.md
cnnarch nosuchcommand --data x
$py benchmarks/bench_train.py --images 64 --epochs 1
"""
    assert sorted(unknown_options(script)) == sorted(
        [
            "cnnarch train --limit-test",
            "cnnarch train --trainer",
            "cnnarch compare/nosuchcommand/train --milestones",
            "cnnarch compare --markdown",
            "cnnarch nosuchcommand: no such subcommand",
            "bench_train.py --epochs",
        ]
    )
