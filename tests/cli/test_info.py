"""``cnnarch info``: several networks at once, the family's docstring, the four tabular forms."""

import csv
import io
import json

from cnnarch.cli import main


def test_json_keeps_numbers_and_the_sizes_of_both_modes(capsys):
    assert main(["info", "googlenet", "alexnet", "--format", "json"]) == 0
    googlenet, alexnet = json.loads(capsys.readouterr().out)
    assert googlenet["name"] == "googlenet" and googlenet["parameters"] == 13_378_280  # 6,998,552 + aux
    assert (googlenet["min_size"], googlenet["max_size"], googlenet["min_size_training"]) == (31, None, 79)
    assert (alexnet["min_size"], alexnet["max_size"]) == (227, 258)
    assert (
        alexnet["parameters"] == 60_965_224
    )  # the paper's count, written out in tests/models/test_alexnet.py
    assert "Deliberate differences" in alexnet["family_doc"] and alexnet["family"] == "cnnarch.models.alexnet"


def test_table_markdown_and_csv_have_one_row_per_network(capsys):
    assert main(["info", "vgg11", "resnet20", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["name"], r["parameters"], r["input"]) for r in rows] == [
        ("vgg11", "132863336", "3x224x224"),
        ("resnet20", "269722", "3x32x32"),
    ]
    assert main(["info", "vgg11", "--format", "markdown"]) == 0
    assert "| vgg11 | 132,863,336 | 3x224x224 | at least 32x32 pixels |" in capsys.readouterr().out
    assert main(["info", "vgg11", "--format", "table"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == [
        "name",
        "parameters",
        "input",
        "accepts",
        "paper",
    ]


def test_text_card_shows_the_builder_and_its_family(capsys):
    assert main(["info", "vgg16"]) == 0
    out = capsys.readouterr().out
    assert "configuration D" in out  # the builder's docstring
    assert "cnnarch.models.vgg:" in out and "He (Kaiming) normal" in out  # the family's differences
