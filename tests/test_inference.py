"""`cnnarch predict` and `cnnarch export`, checked against torchvision's transforms and ONNX Runtime."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from cnnarch.cli import main
from cnnarch.inference import export, load_model
from cnnarch.models import create_model, list_models, min_input_size
from cnnarch.models.weights import WeightsMeta, save_weights


@pytest.fixture
def weights_file(tmp_path):
    torch.manual_seed(0)
    net = create_model("resnet20", num_classes=4)
    meta = WeightsMeta(
        num_classes=4,
        classes=("ant", "bee", "cat", "dog"),
        resize=40,
        crop=32,
        mean=(0.5, 0.4, 0.3),
        std=(0.2, 0.25, 0.3),
    )
    save_weights(net, meta, tmp_path / "r20.safetensors")
    return tmp_path / "r20.safetensors"


def test_predict_preprocesses_as_the_weights_say(tmp_path, weights_file, capsys):
    rng = np.random.default_rng(0)
    images = {
        "rgb.jpg": Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)),
        "gray.png": Image.fromarray(rng.integers(0, 255, (33, 90), dtype=np.uint8), "L"),
        "rgba.png": Image.fromarray(rng.integers(0, 255, (64, 48, 4), dtype=np.uint8), "RGBA"),
    }
    for name, im in images.items():
        im.save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    rc = main(
        [
            "predict",
            "resnet20",
            str(tmp_path),
            str(tmp_path / "notes.txt"),
            "--weights",
            str(weights_file),
            "--topk",
            "2",
            "--format",
            "json",
            "--precision",
            "fp32",  # the oracle's precision: preprocessing is compared to 1e-4
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 1 and "notes.txt: not an image" in err
    rows = json.loads(out)
    net = create_model("resnet20", weights=weights_file).eval()
    oracle = T.Compose(
        [T.Resize(40), T.CenterCrop(32), T.ToTensor(), T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))]
    )
    for name in images:
        with Image.open(tmp_path / name) as im:
            probs = net(oracle(im.convert("RGB"))[None]).softmax(1)[0]
        mine = [r for r in rows if r["image"].endswith(name)]
        assert [r["rank"] for r in mine] == [1, 2]
        top = probs.topk(2)
        assert [r["class"] for r in mine] == [("ant", "bee", "cat", "dog")[i] for i in top.indices.tolist()]
        assert [r["probability"] for r in mine] == pytest.approx(top.values.tolist(), abs=1e-4)


def test_predict_needs_a_source_and_names_missing_files(tmp_path, weights_file, capsys):
    assert main(["predict", "resnet20", str(tmp_path / "none.jpg"), "--weights", str(weights_file)]) == 2
    assert "none.jpg: no such file" in capsys.readouterr().err
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    assert main(["predict", "resnet20", str(tmp_path / "a.png")]) == 2
    assert "add --weights" in capsys.readouterr().err


def test_checkpoint_and_model_with_weights_agree(tmp_path):
    net = create_model("resnet20", num_classes=3)
    ckpt = {
        "format": "cnnarch-checkpoint/1",
        "model_name": "resnet20",
        "num_classes": 3,
        "classes": ["a", "b", "c"],
        "data_info": {"mean": [0.5] * 3, "std": [0.25] * 3, "image_shape": [3, 32, 32], "crop": 32},
        "model": net.state_dict(),
    }
    torch.save(ckpt, tmp_path / "best.pt")
    a, b = (
        load_model(checkpoint=tmp_path / "best.pt"),
        load_model(model="resnet20", weights=tmp_path / "best.pt"),
    )
    assert a.weights_meta == b.weights_meta and a.weights_meta.classes == ("a", "b", "c")


def test_a_checkpoint_of_large_images_is_preprocessed_as_its_run_loaded_them(tmp_path, capsys):
    """A run on large images loaded each at 256 pixels (shorter side, centre square) and tested the
    centre 224x224 of it: torchvision's Resize(256) and CenterCrop(224)."""
    torch.manual_seed(0)
    net = create_model("resnet18", num_classes=3).eval()
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    info = {"mean": list(mean), "std": list(std), "image_shape": [3, 256, 256], "crop": 224, "stream": True}
    ckpt = {
        "format": "cnnarch-checkpoint/1",
        "model_name": "resnet18",
        "num_classes": 3,
        "classes": ["a", "b", "c"],
        "data_info": info,
        "model": net.state_dict(),
    }
    torch.save(ckpt, tmp_path / "best.pt")
    meta = load_model(checkpoint=tmp_path / "best.pt").weights_meta
    assert (meta.resize, meta.crop) == (256, 224)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (300, 410, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    args = ["predict", str(tmp_path / "best.pt"), str(tmp_path / "big.png"), "--precision", "fp32"]
    assert main([*args, "--topk", "3", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    oracle = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(mean, std)])
    with Image.open(tmp_path / "big.png") as im, torch.no_grad():
        probs = net(oracle(im.convert("RGB"))[None]).softmax(1)[0]
    assert [r["probability"] for r in rows] == pytest.approx(sorted(probs.tolist(), reverse=True), abs=1e-4)


def _ort_logits(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


# resnet1202 runs the code of resnet20 ... resnet110 (swept here) 1202 layers deep; exporting it alone
# takes minutes on 2 cores
ZOO = [n for n in list_models() if n != "resnet1202"]
OPTIMIZED = ("resnet20", "googlenet", "fractalnet20")  # the default path, with the graph optimizer


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO)
def test_every_zoo_network_exports_to_onnx_with_the_same_logits(name, tmp_path):
    pytest.importorskip("onnxruntime")
    net = create_model(name, num_classes=10).eval()
    size = min_input_size(net)
    # the graph optimizer only folds and fuses what the export wrote; it doubles the sweep's time
    export(net, "onnx", tmp_path / "m.onnx", (3, size, size), optimize=name in OPTIMIZED)
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))  # the batch axis is dynamic
    with torch.no_grad():
        want = net(x)
    got = _ort_logits(tmp_path / "m.onnx", x)
    assert (got - want).abs().max().item() < 1e-4 * max(1.0, want.abs().max().item())


def test_export_cli_from_checkpoint_and_torchscript(tmp_path, weights_file, capsys):
    source = ["export", "resnet20", "--weights", str(weights_file)]
    assert main([*source, "--to", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    x = torch.randn(2, 3, 32, 32)
    net = create_model("resnet20", weights=weights_file).eval()
    assert torch.allclose(scripted(x), net(x), atol=1e-5)
    assert main([*source, "--out", str(tmp_path / "m.onnx"), "--check"]) == 0
    assert "max |logit difference|" in capsys.readouterr().out


def test_eval_takes_any_weight_source(tmp_path, cifar_jpeg_root, capsys):
    from cnnarch.data import load_dataset

    classes = sorted(p.name for p in (cifar_jpeg_root / "test").iterdir())
    torch.manual_seed(0)
    net = create_model("resnet20", num_classes=10).eval()
    torch.save(net.state_dict(), tmp_path / "plain.pth")  # no metadata: the model's size, ImageNet statistics
    meta = WeightsMeta(num_classes=10, classes=tuple(classes), crop=32, mean=(0.5,) * 3, std=(0.25,) * 3)
    save_weights(net, meta, tmp_path / "named.safetensors")
    test = load_dataset("folder", "test", cifar_jpeg_root, limit=40)
    x = test.images.float() / 255
    imagenet = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    for weights, (mean, std) in (
        (tmp_path / "named.safetensors", ((0.5,) * 3, (0.25,) * 3)),
        (tmp_path / "plain.pth", imagenet),
    ):
        args = ["eval", "resnet20", "--weights", str(weights), "--data", str(cifar_jpeg_root)]
        assert main([*args, "--limit-val", "40", "--precision", "fp32", "--format", "json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)
        m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
        with torch.no_grad():
            want = (net((x - m) / s).argmax(1) == test.labels).float().mean()
        assert row["images"] == 40 and row["top1"] == pytest.approx(100 * want.item())
    wrong = WeightsMeta(num_classes=10, classes=tuple(reversed(classes)))
    save_weights(net, wrong, tmp_path / "wrong.safetensors")
    assert (
        main(
            [
                "eval",
                "resnet20",
                "--weights",
                str(tmp_path / "wrong.safetensors"),
                "--data",
                str(cifar_jpeg_root),
                "--limit-val",
                "10",
            ]
        )
        == 2
    )
    assert "differ from the test set's" in capsys.readouterr().err


def test_a_run_ships_as_safetensors_and_evaluates_to_its_recorded_accuracy(tmp_path, cifar_jpeg_root, capsys):
    run = tmp_path / "run"
    args = ["--model", "resnet20", "--limit-train", "200", "--limit-val", "50", "--epochs", "1", "-b", "50"]
    assert (
        main(["train", "--data", str(cifar_jpeg_root), "--val-split", "0", "--output", str(run), *args]) == 0
    )
    recorded = json.loads((run / "results.json").read_text())
    machine = {"cpu": "AMD EPYC", "cores": 2, "cpu_flags": "avx512_bf16", "threads": 1, "from_epoch": 0}
    (run / "machines.jsonl").write_text(json.dumps(machine) + "\n")
    out = tmp_path / "resnet20-cifar10.safetensors"
    assert main(["export", str(run / "last.pt"), "--to", "safetensors", "--out", str(out)]) == 0
    net = create_model("resnet20", weights=out)
    meta = net.weights_meta
    assert meta.classes == tuple(sorted(p.name for p in (cifar_jpeg_root / "train").iterdir()))
    assert meta.extra["test_top1"] == recorded["test_top1"] and meta.extra["config"]["model"] == "resnet20"
    assert meta.extra["machines"] == [machine]
    capsys.readouterr()
    evaluated = ["eval", "resnet20", "--weights", str(out), "--data", str(cifar_jpeg_root)]
    # in fp32, as the run evaluated it
    assert main([*evaluated, "--limit-val", "50", "--precision", "fp32", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["images"] == recorded["test_images"] == 50
    assert row["top1"] == pytest.approx(recorded["test_top1"])
