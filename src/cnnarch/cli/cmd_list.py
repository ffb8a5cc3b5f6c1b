"""``cnnarch list [PATTERN]``: the registered networks."""

from cnnarch.cli import add_format_argument
from cnnarch.tables import render


def add_parser(sub):
    p = sub.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*'")
    add_format_argument(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from cnnarch.models import get_model_entry, list_models

    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}")
        return 1
    entries = [get_model_entry(name) for name in names]
    rows = [{"name": e.name, "input": list(e.input_size), "paper": e.paper} for e in entries]
    print(render(rows, args.format))
    return 0
