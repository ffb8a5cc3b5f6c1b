"""``cnnarch report NAME [--out FILE.html]``: one self-contained HTML page of a network: diagram,
sortable per-layer table, totals, per-stage bars and the lecture's claims."""

from pathlib import Path

from cnnarch.cli._names import HELP, check_network


def add_parser(sub):
    p = sub.add_parser("report", help="a self-contained HTML page: diagram, table, stages, lecture's claims")
    p.add_argument("name", help=HELP)
    p.add_argument("--out", default=None, metavar="FILE", help="FILE.html (default: NAME.html)")
    p.add_argument("--depth", type=int, default=None, help="draw modules nested at depth N as one box (xN)")
    p.add_argument("--input", metavar="CxHxW", help="e.g. 3x224x224 (default: the model's own)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument(
        "--no-measure",
        dest="measure",
        action="store_false",
        help="leave out the measured memory (a real forward and training step on the CPU or CUDA)",
    )
    p.set_defaults(run=run)


def run(args) -> int:
    check_network(args.name)  # a mistyped name is answered before torch is imported
    out = Path(args.out or f"{Path(args.name.replace(':', '_')).stem}.html")
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"--out {out}: the file must end in .html")
    from cnnarch.analysis.html_report import report_html
    from cnnarch.cli._output import output_file, written_whole

    out = output_file(out, overwrite=args.overwrite)
    page = report_html(args.name, args.input, args.depth, measure=args.measure)
    with written_whole(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    print(f"report on {args.name} written to {out}")
    return 0
