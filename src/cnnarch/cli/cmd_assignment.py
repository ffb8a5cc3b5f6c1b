"""``cnnarch assignment init DIR``, ``check DIR``, ``summary DIR`` and ``release OUT``: CS231n
assignment 2 as exercises, graded function by function, and released to a course without its key."""

import json

from cnnarch.cli import add_format_argument
from cnnarch.tables import plural, render

COLUMNS = ["function", "check", "error", "limit", "result", "detail"]
SUMMARY_COLUMNS = ["student", "checks", "functions", "score", "failing"]


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
        "--overwrite",
        "--force",
        action="store_true",
        help="overwrite an existing workspace (your code in it too)",
    )

    release = actions.add_parser(
        "release",
        help="write a course's release into OUT: student/ (no answer key, no cnnarch) and autograder/",
    )
    release.add_argument("out", help="the release directory (created if missing)")
    release.add_argument(
        "--notebooks", metavar="DIR", help="the teacher's notebooks (default: those shipped with cnnarch)"
    )
    release.add_argument("--overwrite", action="store_true", help="write into a non-empty OUT")

    from cnnarch.assignment.exercises import PARTS

    check = actions.add_parser("check", help="grade the functions of a workspace; exit status 1 if any fails")
    check.add_argument("dir", help="the workspace directory written by `cnnarch assignment init`")
    check.add_argument(
        "--part", action="append", choices=list(PARTS), help="grade only this part (repeatable)"
    )
    check.add_argument(
        "--function", action="append", metavar="NAME", help="grade only this function (repeatable)"
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

    summary = actions.add_parser(
        "summary", help="grade every submission in DIR (one subfolder per student): one row each"
    )
    summary.add_argument("dir", help="a folder of workspaces, each holding a cs231n/ package")
    summary.add_argument("--part", action="append", choices=list(PARTS), help="grade only this part")
    summary.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds per check")
    summary.add_argument("--memory", type=float, default=4.0, metavar="GB", help="GiB per student process")
    add_format_argument(summary)
    p.set_defaults(run=run)


def _cell(column, value):
    if column in ("error", "limit"):
        return "-" if value is None else f"{value:.1e}"
    return "" if value is None else str(value)


def run(args) -> int:
    if args.action == "init":
        from cnnarch.assignment.workspace import init_workspace

        written = init_workspace(args.dir, notebooks=args.notebooks, force=args.overwrite)
        print(f"wrote {plural(len(written['package']), 'file')} of the cs231n package into {args.dir}")
        if written["notebooks"]:
            names = ", ".join(p.name for p in written["notebooks"])
            copied = plural(len(written["notebooks"]), "notebook")
            print(f"copied {copied} from {written['notebooks_from']}: {names}")
        else:
            print("no notebooks copied: none found (pass --notebooks DIR)")
        print(
            f"next: write the code marked YOUR CODE in {args.dir}/cs231n, "
            f"then run `cnnarch assignment check {args.dir}`"
        )
        return 0

    if args.action == "release":
        return _release(args)

    from cnnarch.assignment import grader

    if not args.memory > 0:
        raise ValueError(f"--memory must be a positive number of GiB, got {args.memory}")
    options = {"timeout": args.timeout, "memory_limit": int(args.memory * 2**30)}
    if args.action == "summary":
        return _summary(args, options)
    rows = grader.grade(args.dir, parts=args.part, functions=args.function, **options)
    summary = grader.summarize(rows)
    if args.format == "json":  # Gradescope's results.json
        print(json.dumps(grader.gradescope(rows), indent=2))
    elif args.format == "csv":
        print(render(rows, "csv", columns=COLUMNS))
    else:
        print(render(rows, args.format, columns=COLUMNS[:-1], text=_cell))
        failed = [r for r in rows if r["result"] != "pass"]
        if failed:
            print("\nwhy:")
            for r in failed:
                print(f"- {r['function']} ({r['check']}): {r['detail']}")
        print(
            f"\ntotal: {summary['checks_passed']}/{summary['checks']} checks passed; "
            f"{summary['functions_passed']}/{summary['functions']} functions pass all their checks"
        )
    return 0 if all(r["result"] == "pass" for r in rows) else 1


def _release(args) -> int:
    from cnnarch.assignment.release import release_assignment

    r = release_assignment(args.out, notebooks=args.notebooks, force=args.overwrite)
    print(
        f"student release: {r['student']} and {r['student_zip']} ({plural(len(r['notebooks']), 'notebook')}; "
        "no answer key, nothing of cnnarch): hand these out"
    )
    print(
        f"autograder: {r['autograder']} and {r['autograder_zip']}: keep them; upload the zip to "
        "Gradescope, or grade collected submissions with `cnnarch assignment summary DIR`"
    )
    return 0


def _summary(args, options) -> int:
    """One row per student: checks and functions passed, what fails."""
    from cnnarch.assignment import grader

    rows = []
    for folder in grader.submissions(args.dir):
        s = grader.summarize(grader.grade(folder, parts=args.part, **options))
        rows.append(
            {
                "student": folder.name,
                "checks": f"{s['checks_passed']}/{s['checks']}",
                "functions": f"{s['functions_passed']}/{s['functions']}",
                "score": round(100 * s["checks_passed"] / max(1, s["checks"]), 1),
                "failing": ", ".join(s["import_problems"] + s["failing"]),
            }
        )
    print(render(rows, args.format, columns=SUMMARY_COLUMNS))
    return 0
