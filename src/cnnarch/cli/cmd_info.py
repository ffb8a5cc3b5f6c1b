"""``cnnarch info NAME``: paper, input sizes, parameters and differences of one network."""

import inspect

import torch

from cnnarch.models import create_model, get_model_entry, input_size_range


def add_parser(sub):
    p = sub.add_parser("info", help="describe one model: paper, input sizes, parameters, differences")
    p.add_argument("name")
    p.set_defaults(run=run)


def run(args) -> int:
    entry = get_model_entry(args.name)
    # Built without initialization and with untouched memory: counting and shape passes need no values.
    with torch.device("meta"):
        model = create_model(args.name)
    model.to_empty(device="cpu")
    params = sum(p.numel() for p in model.parameters())
    c = entry.input_size[0]
    in_eval, in_training = (
        input_size_range(model, c, training=False),
        input_size_range(model, c, training=True),
    )
    accepts = f"{in_eval.describe()} pixels"
    if in_training != in_eval:
        accepts += f" (in training mode: {in_training.describe()})"
    print(entry.name)
    print(f"  paper:       {entry.paper}")
    print(f"  input:       {'x'.join(map(str, entry.input_size))} (C x H x W, as the paper trains it)")
    print(f"  accepts:     {accepts}")
    print(f"  parameters:  {params:,}")
    if entry.doc:
        print()
        for line in inspect.cleandoc(entry.doc).splitlines():
            print(f"  {line}".rstrip())
    return 0
