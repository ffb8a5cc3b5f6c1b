"""``cnnarch info NAME [NAME ...]``: paper, input sizes, parameters and description of networks.

The default ``text`` form prints each network's card: the numbers, the builder's docstring and its
family's module docstring (the paper's layout and every deliberate difference). ``--format table``,
``markdown``, ``json`` or ``csv`` print one row per network; JSON carries the docstrings too.
"""

import inspect
import sys
import textwrap

from cnnarch.cli import add_format_argument
from cnnarch.tables import DEFAULT_WIDTH, render

COLUMNS = ["name", "parameters", "input", "accepts", "paper"]


def add_parser(sub):
    p = sub.add_parser(
        "info", help="describe models: paper, input sizes, parameters, differences", description=__doc__
    )
    p.add_argument("names", nargs="+", metavar="NAME")
    add_format_argument(p, extra=("text",), default="text")
    p.set_defaults(run=run)


def describe(name: str) -> dict:
    """One network's facts, numbers kept as numbers."""
    import torch

    from cnnarch.models import create_model, get_model_entry, input_size_range

    entry = get_model_entry(name)
    with torch.device("meta"):  # nothing allocated: counting and the size arithmetic need no values
        model = create_model(name)
    c = entry.input_size[0]
    in_eval, in_training = (input_size_range(model, c, training=mode) for mode in (False, True))
    accepts = f"{in_eval.describe()} pixels"
    if in_training != in_eval:
        accepts += f" (in training mode: {in_training.describe()})"
    return {
        "name": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "input": list(entry.input_size),
        "accepts": accepts,
        "paper": entry.paper,
        "min_size": in_eval.smallest,
        "max_size": in_eval.largest,
        "min_size_training": in_training.smallest,
        "max_size_training": in_training.largest,
        "builder": inspect.cleandoc(entry.builder.__doc__ or ""),
        "family": entry.builder.__module__,
        "family_doc": inspect.cleandoc(sys.modules[entry.builder.__module__].__doc__ or ""),
    }


def _card(info: dict) -> str:
    lines = [
        info["name"],
        f"  paper:       {info['paper']}",
        f"  input:       {'x'.join(map(str, info['input']))} (C x H x W, as the paper trains it)",
        f"  accepts:     {info['accepts']}",
        f"  parameters:  {info['parameters']:,}",
    ]
    for title, text in ((None, info["builder"]), (f"{info['family']}:", info["family_doc"])):
        if text:
            lines += [
                "",
                *([f"  {title}"] if title else []),
                *(f"  {line}".rstrip() for line in text.splitlines()),
            ]
    # docstrings are written 110 wide: rewrap what the indent pushes past the table width
    wrapped = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip(" *")))
        wrapped += textwrap.wrap(line, DEFAULT_WIDTH, subsequent_indent=indent) or [line]
    return "\n".join(wrapped)


def run(args) -> int:
    infos = [describe(name) for name in args.names]
    if args.format == "text":
        print("\n\n".join(_card(info) for info in infos))
    else:
        print(render(infos, args.format, columns=None if args.format == "json" else COLUMNS))
    return 0
