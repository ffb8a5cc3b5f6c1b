"""Rows as text, one renderer for the command line and the analysis reports: aligned columns,
markdown, JSON or CSV (``--format {table,markdown,json,csv}``).

Commands build a list of dicts (one per row, values kept as numbers) and hand it to :func:`render`;
only the ``table`` and ``markdown`` forms turn numbers into text, so JSON and CSV stay machine-readable.
Imports nothing heavy: ``cnnarch --help`` loads it."""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections.abc import Callable, Sequence
from contextlib import contextmanager

FORMATS = ("table", "markdown", "json", "csv")


def plural(n: int, noun: str) -> str:
    """``n`` with ``noun`` in the right number: "1 epoch", "2 epochs", "10,000 images"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


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
        writer.writerows([_csv_cell(row.get(c)) for c in columns] for row in rows)
        return buf.getvalue().rstrip("\n")
    cell = text or (lambda _c, v: _text(v))
    cells = [[cell(c, row.get(c)) for c in columns] for row in rows]
    numeric = {
        i
        for i, c in enumerate(columns)
        if all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows)
    }
    return text_table(columns, cells, numeric, markdown=fmt == "markdown")


DEFAULT_WIDTH = 100  # columns a table fits unless --wide
WIDTH = DEFAULT_WIDTH  # the limit in force (None: none), set by table_width


@contextmanager
def table_width(width: int | None):
    """Tables rendered inside fit ``width`` columns (None: cells are never wrapped)."""
    global WIDTH
    before, WIDTH = WIDTH, width
    try:
        yield
    finally:
        WIDTH = before


def _fit(widths: list[int], header: Sequence[str], right: set[int], limit: int) -> list[int]:
    """Narrow the widest text columns (never the numeric ones, nor below their header or 12) until the
    table fits ``limit`` columns, or nothing more can give."""
    widths = list(widths)
    floor = [w if i in right else min(w, max(len(header[i]), 12)) for i, w in enumerate(widths)]
    while sum(widths) + 2 * (len(widths) - 1) > limit:
        i = max(range(len(widths)), key=lambda j: widths[j] - floor[j])
        if widths[i] <= floor[i]:
            break
        widths[i] -= 1
    return widths


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int], markdown=False) -> str:
    """Cells already written as text, in aligned columns (``right``: the numeric ones, right-aligned)
    or as a markdown table. Text cells wider than their share of :data:`WIDTH` wrap onto more lines."""
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(out + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    if WIDTH is not None:
        widths = _fit(widths, header, right, WIDTH)

    def lines(cells):
        parts = [
            textwrap.wrap(c, w, break_on_hyphens=False) or [""] if len(c) > w else [c]
            for c, w in zip(cells, widths, strict=True)
        ]
        for k in range(max(map(len, parts))):
            text = [p[k] if k < len(p) else "" for p in parts]
            yield "  ".join(
                t.rjust(w) if i in right else t.ljust(w)
                for i, (t, w) in enumerate(zip(text, widths, strict=True))
            ).rstrip()

    out = [*lines(header), "  ".join("-" * w for w in widths)]
    return "\n".join(out + [line for row in rows for line in lines(row)])
