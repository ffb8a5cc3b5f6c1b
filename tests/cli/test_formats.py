"""`--format` of `cnnarch list`, `summary` and `compare`: table, markdown, JSON, CSV; numbers stay numbers."""

import csv
import io
import json

import pytest

from cnnarch.cli import main


def out_of(capsys, *argv) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_list_in_every_format(capsys):
    data = json.loads(out_of(capsys, "list", "alexnet", "--format", "json"))
    assert data[0]["name"] == "alexnet" and data[0]["input"] == [3, 227, 227]  # Krizhevsky et al. 2012
    assert "Krizhevsky" in data[0]["paper"]
    rows = list(csv.DictReader(io.StringIO(out_of(capsys, "list", "vgg1?", "--format", "csv"))))
    assert [r["name"] for r in rows] == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert {r["input"] for r in rows} == {"3x224x224"}
    md = out_of(capsys, "list", "resnet18", "--format", "markdown").splitlines()
    assert md[0] == "| name | input | paper |" and md[2].startswith("| resnet18 | 3x224x224 | He et al.")
    table = out_of(capsys, "list", "resnet18").splitlines()
    assert table[0].split() == ["name", "input", "paper"] and table[2].startswith("resnet18  3x224x224")


def test_summary_json_receptive_field_and_jump_are_numbers(capsys):
    data = json.loads(out_of(capsys, "summary", "resnet18", "--input", "3x64x64", "--format", "json"))
    layers = {r["name"]: r for r in data["layers"]}
    # conv1 7x7 stride 2, then a 3x3 stride-2 max pool: rf 7 then 7 + (3 - 1) * 2 = 11; jump 2 then 4.
    assert layers["conv1"]["rf"] == [7, 7] and layers["conv1"]["jump"] == [2, 2]
    assert layers["maxpool"]["rf"] == [11, 11] and layers["maxpool"]["jump"] == [4, 4]
    assert all(type(v) is int for v in layers["maxpool"]["rf"] + layers["maxpool"]["jump"])
    assert layers["fc"]["rf"] is None and layers["fc"]["jump"] is None  # global: the whole image
    assert layers["conv1"]["output_shape"] == [1, 64, 32, 32]
    assert data["totals"]["input_shape"] == [1, 3, 64, 64]


def test_summary_fractional_jump_is_a_float(capsys):
    # At 256x256 AlexNet's last pool gives 7x7 cells 32 pixels apart; the adaptive pool to 6x6 then steps
    # 7/6 of a cell: 32 * 7 / 6 pixels, not a whole number.
    data = json.loads(out_of(capsys, "summary", "alexnet_tv", "--input", "3x256x256", "--format", "json"))
    layers = {r["name"]: r for r in data["layers"]}
    assert layers["features.12"]["output_shape"] == [1, 256, 7, 7] and layers["features.12"]["jump"] == [
        32,
        32,
    ]
    assert layers["avgpool"]["jump"] == [pytest.approx(32 * 7 / 6)] * 2


def test_summary_lecture_format_is_kept(capsys):
    assert out_of(capsys, "summary", "vgg16", "--format", "lecture").startswith("INPUT: memory: 224*224*3")


def test_compare_json_and_csv(capsys):
    data = json.loads(out_of(capsys, "compare", "resnet18", "alexnet", "--format", "json"))
    resnet18, alexnet = data
    assert resnet18["name"] == "resnet18" and resnet18["input"] == [3, 224, 224]
    assert resnet18["params"] == 11_689_512  # torchvision's resnet18 parameter count
    assert resnet18["top1_err"] == pytest.approx(100 - 69.758)  # torchvision: acc@1 69.758
    assert resnet18["depth"] == 18 and isinstance(resnet18["gmacs"], float)
    assert alexnet["input"] == [3, 227, 227] and alexnet["top5_err"] == pytest.approx(18.2)  # paper, Table 2
    rows = list(csv.DictReader(io.StringIO(out_of(capsys, "compare", "resnet18", "--format", "csv"))))
    assert (
        rows[0]["name"] == "resnet18" and rows[0]["input"] == "3x224x224" and rows[0]["params"] == "11689512"
    )
    md = out_of(capsys, "compare", "resnet18", "--format", "markdown")
    assert md.startswith("| model | input |") and "| resnet18 | 3x224x224 | 11.7M |" in md


def test_compare_has_no_markdown_flag_left(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "resnet18", "--markdown"])
    assert "--markdown" in capsys.readouterr().err
