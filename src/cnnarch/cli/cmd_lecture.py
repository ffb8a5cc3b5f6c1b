"""``cnnarch lecture``: every numeric claim of the lecture next to the value computed from the real
network, with agree / differ / cited and why."""

from cnnarch.cli import add_format_argument
from cnnarch.tables import render

TEXT_COLUMNS = ["section", "claim", "lecture", "computed", "status", "why", "source"]


def add_parser(sub):
    p = sub.add_parser("lecture", help="check every number the lecture quotes against the real networks")
    p.add_argument("--section", default=None, help="only this section (AlexNet, VGG-16, GoogLeNet, ...)")
    add_format_argument(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from cnnarch.analysis.lecture import check_lecture

    results = check_lecture(args.section)
    if args.format in ("json", "csv"):  # with the computed numbers themselves
        print(render([r.row() for r in results], args.format, [*TEXT_COLUMNS, "value", "network"]))
        return 0
    # the source of each claim is long and printed once per row: in the wide view and the markdown
    columns = TEXT_COLUMNS if args.wide or args.format == "markdown" else TEXT_COLUMNS[:-1]
    print(render([r.row() for r in results], args.format, columns))
    counts = {s: sum(r.status == s for r in results) for s in ("agree", "differ", "cited")}
    print(f"\n{len(results)} claims: {counts['agree']} agree, {counts['differ']} differ (see why), ", end="")
    print(f"{counts['cited']} cited from the papers")
    return 0
