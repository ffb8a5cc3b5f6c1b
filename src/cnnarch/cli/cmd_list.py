"""``cnnarch list [PATTERN]``: the registered networks."""

from cnnarch.models import get_model_entry, list_models


def add_parser(sub):
    p = sub.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*'")
    p.set_defaults(run=run)


def run(args) -> int:
    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}")
        return 1
    width = max(map(len, names))
    for name in names:
        entry = get_model_entry(name)
        print(f"{name:<{width}}  {'x'.join(map(str, entry.input_size))}  {entry.paper}")
    return 0
