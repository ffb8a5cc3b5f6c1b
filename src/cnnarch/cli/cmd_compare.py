"""``cnnarch compare [NAMES...]``: parameters, GMACs, memory, depth and published ImageNet error of
several networks side by side; ``--out FILE`` draws accuracy against operations."""

from pathlib import Path

from cnnarch.cli import add_format_argument
from cnnarch.tables import render


def add_parser(sub):
    p = sub.add_parser("compare", help="networks side by side; --out draws accuracy vs operations")
    p.add_argument(
        "names",
        nargs="*",
        help="models (default: the lecture's AlexNet, VGG-16/19, GoogLeNet, ResNet-18/34/50/152)",
    )
    p.add_argument(
        "--out", metavar="FILE", help="write the chart of accuracy vs operations to FILE.png or .svg"
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    add_format_argument(p)
    p.set_defaults(run=run)


def run(args) -> int:
    if args.out and Path(args.out).suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"--out {args.out}: the file must end in .png or .svg")
    from cnnarch.analysis.compare import DEFAULT_MODELS, compare, format_compare, plot, records
    from cnnarch.cli._output import output_file, written_whole

    out = output_file(args.out, overwrite=args.overwrite) if args.out else None
    rows = compare(args.names or DEFAULT_MODELS)
    if args.format in ("json", "csv"):
        print(render(records(rows), args.format))
    else:
        print(format_compare(rows, markdown=args.format == "markdown"))
    if args.out:
        if all(r.top1_err is None and r.top5_err is None for r in rows):
            names = ", ".join(r.name for r in rows)
            raise ValueError(
                f"--out: nothing to plot, no published ImageNet result for {names}; compare networks "
                "with one (the default list: alexnet, vgg16, googlenet, resnet50, ...), or leave out --out"
            )
        with written_whole(out) as tmp:
            left_out = plot(rows, str(tmp))
        print(f"\nplot written to {args.out}")
        if left_out:
            print(f"not on the plot (no published ImageNet result): {', '.join(left_out)}")
    return 0
