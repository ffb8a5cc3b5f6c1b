"""``cnnarch info NAME``: parameters, input size, paper and differences of one network."""

from cnnarch.models import create_model, get_model_entry


def add_parser(sub):
    p = sub.add_parser("info", help="describe one model")
    p.add_argument("name")
    p.set_defaults(run=run)


def run(args) -> int:
    entry = get_model_entry(args.name)
    model = create_model(args.name)
    params = sum(p.numel() for p in model.parameters())
    print(f"{entry.name}")
    print(f"  paper:       {entry.paper}")
    print(f"  input:       {'x'.join(map(str, entry.input_size))} (C x H x W)")
    print(f"  parameters:  {params:,}")
    if entry.doc:
        print()
        print("  " + entry.doc.replace("\n", "\n  "))
    return 0
