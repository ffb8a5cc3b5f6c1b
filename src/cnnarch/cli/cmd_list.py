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
    entries = [get_model_entry(name) for name in names]
    sizes = ["x".join(map(str, e.input_size)) for e in entries]
    name_width, size_width = max(map(len, names)), max(map(len, sizes))
    for entry, size in zip(entries, sizes, strict=True):
        print(f"{entry.name:<{name_width}}  {size:<{size_width}}  {entry.paper}")
    return 0
