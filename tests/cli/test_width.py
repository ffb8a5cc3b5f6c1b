"""Tables fit 100 columns by default: long text cells wrap (every word kept, in order); --wide keeps each
row on one line."""

import pytest

from cnnarch.cli import main
from cnnarch.tables import DEFAULT_WIDTH, table_width, text_table

COMMANDS = [
    ["list"],
    ["info", "alexnet", "googlenet"],
    ["info", "resnet50", "--format", "table"],
    ["summary", "resnet50"],
    ["summary", "vgg16", "--format", "lecture"],
    ["lecture"],
    ["compare"],
    ["recipes"],
    ["recipes", "--full"],
]


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_default_output_fits_100_columns(argv, capsys):
    assert main(argv) == 0
    assert widest(capsys.readouterr().out) <= 100


def test_wide_keeps_rows_on_one_line(capsys):
    assert main(["recipes", "--wide"]) == 0
    wide = capsys.readouterr().out
    assert main(["recipes"]) == 0
    narrow = capsys.readouterr().out
    assert widest(wide) > 100 and len(wide.splitlines()) < len(narrow.splitlines())


def test_wrapped_cells_keep_every_word_in_order():
    long = " ".join(f"word{i}" for i in range(60))
    rows = [["a", long, "12"], ["b", "short", "3"]]
    table = text_table(["key", "text", "n"], rows, right={2})
    lines = table.splitlines()
    assert widest(table) <= DEFAULT_WIDTH and len(lines) > 4
    body = lines[2:-1]  # the first row, over several lines
    words = [line[5:].rsplit(None, 1)[0] if i == 0 else line.strip() for i, line in enumerate(body)]
    assert " ".join(words) == long
    assert lines[2].endswith("12") and lines[-1].split() == ["b", "short", "3"]
    with table_width(None):
        assert len(text_table(["key", "text", "n"], rows, right={2}).splitlines()) == 4
