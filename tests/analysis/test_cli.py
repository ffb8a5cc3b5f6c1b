"""`cnnarch summary`, `lecture` and `compare` as a user runs them."""

import csv
import io
import json

import torch

from cnnarch.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_lecture_format_vgg16(capsys):
    code, out, _ = run(capsys, "summary", "vgg16", "--format", "lecture")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "INPUT: memory: 224*224*3=150K params: 0"
    assert lines[1] == "CONV3-64: memory: 224*224*64=3.2M params: (3*3*3)*64 = 1,728 (+64 biases)"
    assert lines[19] == "FC: memory: 4096 params: 7*7*512*4096 = 102,760,448 (+4,096 biases)"
    assert lines[-1].startswith("TOTAL params: 138M")


def test_summary_table_json_csv_markdown(capsys):
    code, out, _ = run(capsys, "summary", "resnet18", "--depth", "1")
    assert code == 0
    assert "layer1" in out and "layer1.0" not in out
    assert "depth: 18 weighted layers" in out

    code, out, _ = run(capsys, "summary", "resnet18", "--format", "json")
    data = json.loads(out)
    from cnnarch.models import create_model

    params = sum(p.numel() for p in create_model("resnet18").parameters())
    assert data["totals"]["params"] == params == sum(r["params"] for r in data["layers"])
    assert data["totals"]["macs"] == sum(r["macs"] for r in data["layers"])
    assert {"weights", "biases", "activation_bytes", "flops", "rf", "jump"} <= set(data["layers"][0])

    code, out, _ = run(capsys, "summary", "resnet18", "--format", "csv", "--input", "3x64x64")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["name"] == "conv1" and rows[0]["output_shape"] == "1x64x32x32"
    assert rows[-1]["rf"] == "global"

    code, out, _ = run(capsys, "summary", "resnet18", "--format", "markdown", "--depth", "2")
    assert out.startswith("| layer | type |") and "| layer1.0 | BasicBlock |" in out


def test_summary_lecture_modules(capsys):
    code, out, _ = run(capsys, "summary", "inception_naive")
    assert code == 0 and "672x28x28" in out and "854,196,224" in out
    code, out, _ = run(capsys, "summary", "inception_reduced", "--format", "json")
    assert json.loads(out)["totals"]["macs"] == 271_351_808


def test_summary_errors(capsys):
    code, _, err = run(capsys, "summary", "resnet19")
    assert code == 2 and "resnet18" in err  # close matches
    code, _, err = run(capsys, "summary", "resnet18", "--input", "224x224x")
    assert code == 2 and "3x224x224" in err
    code, _, err = run(capsys, "summary", "alexnet", "--input", "3x32x32")
    assert code == 2 and "32" in err
    code, _, err = run(capsys, "summary", "resnet18", "--depth", "0")
    assert code == 2 and "--depth" in err


def test_lecture_command(capsys):
    code, out, _ = run(capsys, "lecture", "--section", "Inception")
    assert code == 0
    assert "854,196,224 MACs" in out and "271,351,808 MACs" in out and " differ " in out
    code, out, _ = run(capsys, "lecture", "--format", "markdown", "--section", "resnet")
    assert out.startswith("| section | claim |") and "| ResNet | ResNet-152 layers | 152 |" in out
    assert "| ResNet | ILSVRC 2015 top-5 error | 3.57% |  | cited |" in out
    code, out, _ = run(capsys, "lecture", "--format", "json", "--section", "inception")
    naive = next(r for r in json.loads(out) if r["claim"] == "naive module: operations")
    assert naive["value"] == 28 * 28 * 256 * (128 + 192 * 9 + 96 * 25) and naive["status"] == "agree"
    code, out, _ = run(capsys, "lecture", "--format", "csv", "--section", "ResNet")
    assert out.splitlines()[0] == "section,claim,lecture,computed,status,why,source,value,network"
    code, _, err = run(capsys, "lecture", "--section", "LeNet")
    assert code == 2 and "AlexNet" in err


def test_compare_table_and_plots(capsys, tmp_path):
    png, svg = tmp_path / "chart.png", tmp_path / "chart.svg"
    code, out, _ = run(capsys, "compare", "resnet18", "alexnet", "--out", str(png))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["model", "input", "params"]
    resnet18 = next(line for line in lines if line.startswith("resnet18"))
    assert "1.814" in resnet18 and "30.24%" in resnet18 and "torchvision" in resnet18
    alexnet = next(line for line in lines if line.startswith("alexnet"))
    assert "3x227x227" in alexnet and "40.70%" in alexnet and "Krizhevsky" in alexnet
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, _ = run(capsys, "compare", "resnet18", "--out", str(svg))
    assert code == 0 and "<svg" in svg.read_text()
    code, _, err = run(capsys, "compare", "resnet18", "--out", str(tmp_path / "chart.pdf"))
    assert code == 2 and ".png or .svg" in err
    # CIFAR networks have no published ImageNet result: no empty chart, a refusal that says why
    empty = tmp_path / "empty.png"
    code, _, err = run(capsys, "compare", "resnet20", "wrn16_4", "--out", str(empty))
    assert code == 2 and "nothing to plot" in err and "resnet20, wrn16_4" in err and not empty.exists()


def test_no_real_weights_are_allocated_for_the_cli(capsys, monkeypatch):
    """The CLI builds models on meta: a VGG-19 summary never creates a real tensor of its size."""
    big = []
    real_empty = torch.empty

    def watch(*args, **kwargs):
        t = real_empty(*args, **kwargs)
        if t.device.type != "meta" and t.numel() > 1_000_000:
            big.append(tuple(t.shape))
        return t

    monkeypatch.setattr(torch, "empty", watch)
    code, _, _ = run(capsys, "summary", "vgg19")
    assert code == 0 and not big
