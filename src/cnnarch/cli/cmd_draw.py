"""``cnnarch draw NAME [NAME ...] --out FILE.svg|FILE.png``: the networks as the lecture draws them, side
by side on one sheet, aligned stage by stage."""

from pathlib import Path

from cnnarch.cli._names import HELP, check_network


def add_parser(sub):
    p = sub.add_parser("draw", help="diagrams in the lecture's style (SVG or PNG), several side by side")
    p.add_argument("names", nargs="+", metavar="NAME", help=HELP)
    p.add_argument("--out", required=True, metavar="FILE", help="FILE.svg or FILE.png")
    p.add_argument("--depth", type=int, default=None, help="draw modules nested at depth N as one box (xN)")
    p.add_argument("--input", metavar="CxHxW", help="e.g. 3x224x224 (default: each model's own)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=run)


def run(args) -> int:
    if Path(args.out).suffix.lower() not in (".svg", ".png"):
        raise ValueError(f"--out {args.out}: the file must end in .svg or .png")
    for name in args.names:  # a mistyped name is answered before torch is imported
        check_network(name)
    from cnnarch.analysis.diagram import draw, sheet
    from cnnarch.cli._output import output_file, written_whole

    out = output_file(args.out, overwrite=args.overwrite)
    diagrams = [draw(name, args.input, depth=args.depth) for name in args.names]
    with written_whole(out) as tmp:
        (diagrams[0] if len(diagrams) == 1 else sheet(diagrams)).save(tmp)
    print(f"diagram of {', '.join(args.names)} written to {args.out}")
    return 0
