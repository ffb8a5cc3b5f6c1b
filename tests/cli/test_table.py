import csv
import io
import json

import pytest

from cnnarch.tables import render

ROWS = [{"name": "vgg16", "params": 138357544, "top1": 71.59}, {"name": "x", "params": 12, "top1": None}]


def test_json_keeps_numbers_as_numbers():
    data = json.loads(render(ROWS, "json"))
    assert data[0]["params"] == 138357544 and data[0]["top1"] == 71.59 and data[1]["top1"] is None


def test_csv_round_trips():
    rows = list(csv.DictReader(io.StringIO(render(ROWS, "csv"))))
    assert rows[0] == {"name": "vgg16", "params": "138357544", "top1": "71.59"}
    assert rows[1]["top1"] == ""


def test_table_and_markdown_columns():
    table = render(ROWS, "table").splitlines()
    assert table[0].split() == ["name", "params", "top1"] and "138,357,544" in table[2]
    md = render(ROWS, "markdown", columns=["top1", "name"]).splitlines()
    assert md[0] == "| top1 | name |" and md[2] == "| 71.59 | vgg16 |" and len(md) == 4


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="--format must be one of"):
        render(ROWS, "yaml")
