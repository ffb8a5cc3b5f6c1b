"""``cnnarch compare [NAMES...]``: parameters, GMACs, memory, depth and published ImageNet error of
several networks side by side; ``--plot FILE`` draws accuracy against operations."""

from pathlib import Path

from cnnarch.cli._table import add_format_argument, render


def add_parser(sub):
    p = sub.add_parser("compare", help="networks side by side; --plot draws accuracy vs operations")
    p.add_argument(
        "names",
        nargs="*",
        help="models (default: the lecture's AlexNet, VGG-16/19, GoogLeNet, ResNet-18/34/50/152)",
    )
    p.add_argument("--plot", metavar="FILE", help="write the chart to FILE.png or FILE.svg")
    p.add_argument("--overwrite", action="store_true", help="replace --plot if it exists")
    add_format_argument(p)
    p.set_defaults(run=run)


def run(args) -> int:
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"--plot {args.plot}: the file must end in .png or .svg")
    from cnnarch.analysis.compare import DEFAULT_MODELS, compare, format_compare, plot, records
    from cnnarch.cli._output import output_file, written_whole

    out = args.plot and output_file(args.plot, overwrite=args.overwrite, flag="--plot")

    rows = compare(args.names or DEFAULT_MODELS)
    if args.format in ("json", "csv"):
        print(render(records(rows), args.format))
    else:
        print(format_compare(rows, markdown=args.format == "markdown"))
    if args.plot:
        if all(r.top1_err is None and r.top5_err is None for r in rows):
            names = ", ".join(r.name for r in rows)
            raise ValueError(
                f"--plot: nothing to plot, no published ImageNet result for {names}; compare networks "
                "with one (the default list: alexnet, vgg16, googlenet, resnet50, ...), or leave out --plot"
            )
        with written_whole(out) as tmp:
            left_out = plot(rows, tmp)
        print(f"\nplot written to {args.plot}")
        if left_out:
            print(f"not on the plot (no published ImageNet result): {', '.join(left_out)}")
    return 0
