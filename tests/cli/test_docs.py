"""Every command the README and docs/ show exists: each `cnnarch SUBCOMMAND ... --flag` is an option of
that subcommand's --help, each `python benchmarks/SCRIPT.py ... --flag` one of that script's, each bare
`--flag` in inline code one of some subcommand or script; each value shown for an option with fixed
choices is one of them, and each `--recipe NAME` and experiment is real."""

import re
from pathlib import Path

import pytest

from cnnarch.cli import COMMANDS, build_parser
from cnnarch.experiments import EXPERIMENTS
from cnnarch.train.config import RECIPES

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
SPAN = re.compile(r"`([^`]+)`")
# `cnnarch train ...`, `python -m cnnarch.cli train ...`, `torchrun ... -m cnnarch.cli train ...`
COMMAND = re.compile(r"(?:^|\s)(?:cnnarch|-m cnnarch\.cli)\s+(.*)")
SCRIPT = re.compile(r"benchmarks/(\w+\.py)(.*)")
FLAG = re.compile(r"^--?[A-Za-z][\w-]*$")
WORD = re.compile(r"^[a-z0-9][\w.-]*$")  # a literal value; NAME, N, DIR, X... are placeholders


def code_pieces(text: str) -> list[str]:
    """The lines of fenced blocks (a line ending in a backslash, or one that starts with an option,
    continues the one before) and the inline code spans of the prose."""
    pieces = []
    for block in FENCE.findall(text):
        for line in block.splitlines():
            continues = pieces and (pieces[-1].endswith("\\") or line.strip().startswith(("-", "[-")))
            if continues:
                pieces[-1] = pieces[-1].rstrip("\\") + " " + line.strip()
            else:
                pieces.append(line)
    pieces += [" ".join(span.split()) for span in SPAN.findall(FENCE.sub("", text))]
    return pieces


def tokens(command: str) -> list[str]:
    """Words of one command: cut at a comment, a pipe into another program or a second command;
    `-b/--batch-size` is two flags, brackets of a usage line go."""
    command = re.split(r"\s#|\s\|\s|;|&&", command)[0]
    out = []
    for word in command.split():
        out += [w.strip("[](),.:") for w in word.split("/")] if word.startswith("-") else [word.strip("[]")]
    return [w for w in out if w]


def values(word: str) -> list[str] | None:
    """`json`, `json|csv` and `{table,json}` as their literal values; None for a placeholder."""
    parts = re.split(r"[|,]", word.strip("{}"))
    return parts if all(WORD.match(p) for p in parts) else None


def options(parser) -> dict:
    """A parser's options, with those of its own subcommands (`cnnarch assignment check --part`)."""
    found = {s: a for a in parser._actions for s in a.option_strings}
    for action in parser._actions:
        if action.nargs == "A...":  # argparse.PARSER: a subcommand's own subcommands
            for sub in action.choices.values():
                found.update(options(sub))
    return found


def script_options(name: str) -> set[str]:
    """The options a benchmark script declares (its parser is built inside main, so read its source)."""
    calls = re.findall(r"add_argument\(([^)]*)", (REPO / "benchmarks" / name).read_text())
    return {flag for call in calls for flag in re.findall(r"[\"'](--?[A-Za-z][\w-]*)[\"']", call)}


def collect():
    """(file, subcommand or None, flag, next word) for every option shown; (file, kind, name) for every
    recipe and experiment named."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    flags, names = [], []
    for path in DOCS:
        where = str(path.relative_to(REPO))
        for piece in code_pieces(path.read_text()):
            match, script = COMMAND.search(piece), SCRIPT.search(piece)
            if script:
                sub, rest = f"benchmarks/{script.group(1)}", tokens(script.group(2))
            elif match:
                words = tokens(match.group(1))
                sub = words[0] if words and not words[0].startswith("-") else None
                if sub is not None and not sub.isupper():
                    flags.append((where, sub, None, None))  # the subcommand itself must exist
                    if sub == "experiment" and len(words) > 1 and values(words[1]):
                        names += [(where, "experiment", n) for n in values(words[1])]
                rest = words[1:] if sub else words
            elif piece.lstrip().startswith("-"):
                sub, rest = "", tokens(piece)  # prose: an option of some subcommand
            else:
                continue
            for i, word in enumerate(rest):
                if FLAG.match(word):
                    following = rest[i + 1] if i + 1 < len(rest) else None
                    flags.append((where, sub, word, following))
                    if word == "--recipe" and following and values(following):
                        names += [(where, "recipe", n) for n in values(following)]
    return parser, subparsers, flags, names


PARSER, SUBPARSERS, FLAGS, NAMES = collect()


def test_the_docs_show_commands_at_all():
    # The extraction itself works: the README's own examples are found.
    assert ("README.md", "summary", "--format", "lecture") in FLAGS
    assert ("README.md", "recipe", "resnet-cifar") in NAMES


def test_every_flag_in_the_docs_exists():
    scripts = {p.name: script_options(p.name) for p in (REPO / "benchmarks").glob("*.py")}
    wrong = []
    for where, sub, flag, following in FLAGS:
        if sub and sub.startswith("benchmarks/"):
            name = sub.removeprefix("benchmarks/")
            if name not in scripts:
                wrong.append(f"{where}: {sub}: no such script")
            elif flag and flag not in scripts[name]:
                wrong.append(f"{where}: python {sub} {flag}: the script has no such option")
            continue
        if sub and sub.isupper():
            sub = ""  # `cnnarch COMMAND --help`: any subcommand
        if sub and sub not in SUBPARSERS:
            wrong.append(f"{where}: cnnarch {sub}: no such command (cnnarch --help: {', '.join(COMMANDS)})")
            continue
        if flag is None:
            continue
        if sub is None:
            known = [options(PARSER)]
        elif sub:
            known = [options(SUBPARSERS[sub])]
        else:
            known = [options(p) for p in SUBPARSERS.values()]
        actions = [o[flag] for o in known if flag in o]
        if not actions:
            if sub == "" and any(flag in s for s in scripts.values()):
                continue  # a benchmark script's option, named in prose
            wrong.append(f"{where}: {'cnnarch ' + sub + ' ' if sub else ''}{flag} is not in --help")
            continue
        shown = values(following) if following else None
        choices = {c for a in actions if a.choices for c in a.choices}
        if shown and choices and not set(shown) <= choices:
            wrong.append(f"{where}: {flag} {following}: --help offers {', '.join(sorted(choices))}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("kind", ["recipe", "experiment"])
def test_every_recipe_and_experiment_in_the_docs_exists(kind):
    known = RECIPES if kind == "recipe" else EXPERIMENTS
    wrong = [
        f"{where}: {kind} {name!r} does not exist"
        for where, k, name in NAMES
        if k == kind and name not in known
    ]
    assert not wrong, "\n".join(wrong) + f"\nknown: {', '.join(known)}"
