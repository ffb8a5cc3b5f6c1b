"""``cnnarch assignment init DIR`` and ``cnnarch assignment check DIR``: CS231n assignment 2 as exercises
on the NumPy engine, graded function by function."""

import sys

from cnnarch.cli._table import add_format_argument, render

COLUMNS = ["function", "check", "error", "limit", "result", "detail"]


def add_parser(sub):
    p = sub.add_parser("assignment", help="write a student workspace of assignment 2, and grade it")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    init = actions.add_parser(
        "init", help="write DIR/cs231n (the exercises as stubs) and the notebooks importing it"
    )
    init.add_argument("dir", help="the workspace directory (created if missing)")
    init.add_argument(
        "--notebooks",
        metavar="DIR",
        help="copy the *.ipynb from DIR (default: the notebooks shipped with cnnarch)",
    )
    init.add_argument(
        "--force", action="store_true", help="overwrite an existing workspace (your code in it too)"
    )

    from cnnarch.assignment.exercises import PARTS

    check = actions.add_parser("check", help="grade the functions of a workspace; exit status 1 if any fails")
    check.add_argument("dir", help="the workspace directory written by `cnnarch assignment init`")
    check.add_argument(
        "--part", action="append", choices=list(PARTS), help="grade only this part (repeatable)"
    )
    check.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="seconds each check may run (default 30)"
    )
    check.add_argument(
        "--memory",
        type=float,
        default=4.0,
        metavar="GB",
        help="GiB the student's code may allocate (default 4)",
    )
    add_format_argument(check)
    p.set_defaults(run=run)


def _cell(column, value):
    if column in ("error", "limit"):
        return "-" if value is None else f"{value:.1e}"
    return "" if value is None else str(value)


def run(args) -> int:
    if args.action == "init":
        from cnnarch.assignment.workspace import init_workspace

        try:
            written = init_workspace(args.dir, notebooks=args.notebooks, force=args.force)
        except FileExistsError as e:
            print(f"cnnarch assignment: error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {len(written['package'])} files of the cs231n package into {args.dir}")
        if written["notebooks"]:
            names = ", ".join(p.name for p in written["notebooks"])
            print(f"copied {len(written['notebooks'])} notebooks from {written['notebooks_from']}: {names}")
        else:
            print("no notebooks copied: none found (pass --notebooks DIR)")
        print(
            f"next: write the code marked YOUR CODE in {args.dir}/cs231n, "
            f"then run `cnnarch assignment check {args.dir}`"
        )
        return 0

    from cnnarch.assignment.grader import grade

    if not args.memory > 0:
        raise ValueError(f"--memory must be a positive number of GiB, got {args.memory}")
    rows = grade(args.dir, parts=args.part, timeout=args.timeout, memory_limit=int(args.memory * 2**30))
    print(render(rows, args.format, columns=COLUMNS, text=_cell))
    passed = sum(r["result"] == "pass" for r in rows)
    functions = {}
    for r in rows:
        functions[r["function"]] = functions.get(r["function"], True) and r["result"] == "pass"
    if args.format in ("table", "markdown"):
        print(
            f"\ntotal: {passed}/{len(rows)} checks passed; {sum(functions.values())}/{len(functions)} "
            "functions pass all their checks"
        )
    return 0 if passed == len(rows) else 1
