"""Rows as text, one renderer for the command line and the analysis reports: aligned columns,
markdown, JSON or CSV (``--format {table,markdown,json,csv}``).

Commands build a list of dicts (one per row, values kept as numbers) and hand it to :func:`render`;
only the ``table`` and ``markdown`` forms turn numbers into text, so JSON and CSV stay machine-readable.
Imports nothing heavy: ``cnnarch --help`` loads it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence

FORMATS = ("table", "markdown", "json", "csv")


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
    numeric = {
        i
        for i, c in enumerate(columns)
        if all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows)
    }
    return text_table(columns, cells, numeric, markdown=fmt == "markdown")


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int], markdown=False) -> str:
    """Cells already written as text, in aligned columns (``right``: the numeric ones, right-aligned)
    or as a markdown table."""
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(out + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells):
        cols = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in cols).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(row) for row in rows])
