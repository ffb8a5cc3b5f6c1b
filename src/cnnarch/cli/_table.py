"""One output grammar for every command that prints rows: ``--format {table,markdown,json,csv}``.

Commands build a list of dicts (one per row, values kept as numbers) and hand it to :func:`render`;
only the ``table`` and ``markdown`` forms turn numbers into text, so JSON and CSV stay machine-readable.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence

FORMATS = ("table", "markdown", "json", "csv")


def add_format_argument(parser, extra: Sequence[str] = (), default: str = "table") -> None:
    """``--format``: the four tabular forms, plus ``extra`` ones a command adds (``summary``'s
    ``lecture``)."""
    choices = (*FORMATS, *extra)
    parser.add_argument(
        "--format",
        choices=choices,
        default=default,
        help=f"output form: {', '.join(choices)} (default {default})",
    )


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value))
    return str(value)


def _csv_cell(value):
    if value is None:
        return ""
    # a shape stays one cell, written as the table writes it (3x224x224)
    return "x".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def render(
    rows: Sequence[dict],
    fmt: str,
    columns: Sequence[str] | None = None,
    text: Callable[[str, object], str] | None = None,
) -> str:
    """``rows`` as ``fmt``. ``columns`` picks and orders the keys (default: the first row's);
    ``text(column, value)`` overrides how a cell is written in ``table`` and ``markdown``."""
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    columns = list(columns if columns is not None else (rows[0] if rows else []))
    if fmt == "json":
        return json.dumps([{c: row.get(c) for c in columns} for row in rows], indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_cell(row.get(c)) for c in columns])
        return buf.getvalue().rstrip("\n")
    cell = text or (lambda _c, v: _text(v))
    cells = [[cell(c, row.get(c)) for c in columns] for row in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join(lines)
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows) for c in columns
    ]

    def line(values):
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])
