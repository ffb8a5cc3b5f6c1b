"""``--format``, the one output option of every command that prints rows (rendered by
:mod:`cnnarch.tables`)."""

from __future__ import annotations

from collections.abc import Sequence

from cnnarch.tables import DEFAULT_WIDTH, FORMATS, render

__all__ = ["add_format_argument", "render"]


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
    parser.add_argument(
        "--wide",
        action="store_true",
        help=f"table cells on one line each (default: wrapped to {DEFAULT_WIDTH} columns)",
    )
