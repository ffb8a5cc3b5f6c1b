"""Bad input and faults at the command line, one test per case of docs/reliability.md: nothing a user
made is replaced without --overwrite, no command writes over its own input, a run folder in use is
locked, weights are checked on load, a pass that needs more memory than the machine has is refused
before it allocates, and every refusal is a message naming the file or value, never a traceback."""

import hashlib
import http.server
import re
import socket
import threading
import urllib.error
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from cnnarch import errors
from cnnarch.cli import main
from cnnarch.data.folder import load_image_folder
from cnnarch.models import create_model
from cnnarch.train.checkpoint import LOCK_FILE, run_lock


def write_tree(root, n_train=12, n_test=3):
    """An ImageFolder tree of 8x8 PNGs, three classes told apart by their dominant colour."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for c, name in enumerate(("blue", "green", "red")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 80, (8, 8, 3), dtype=np.uint8)
                img[..., 2 - c] += 150
                Image.fromarray(img).save(root / split / name / f"{i}.png")
    return root


def train(data, out, *extra):
    args = ["train", "--data", str(data), "--model", "resnet20", "-b", "8", "--epochs", "1"]
    return main([*args, "--log-interval", "0", "--output", str(out), *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished run of resnet20 on the 8x8 tree (about a second)."""
    root = tmp_path_factory.mktemp("trained")
    mp = pytest.MonkeyPatch()
    mp.setenv("CNNARCH_CACHE", str(root / "cache"))
    assert train(write_tree(root / "data"), root / "run") == 0
    mp.undo()
    return root / "run"


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    return write_tree(tmp_path / "data")


def error_of(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) <= 2, err
    return err


# -- nothing a user made is replaced ------------------------------------------------------------------


def test_export_never_writes_over_its_own_input(trained, capsys):
    before = (trained / "last.pt").read_bytes()
    for extra in ([], ["--overwrite"]):
        args = [
            "export",
            str(trained / "last.pt"),
            "--to",
            "torchscript",
            "--out",
            str(trained / "last.pt"),
        ]
        assert main([*args, *extra]) == 2
        assert f"--out {trained / 'last.pt'} is the input" in error_of(capsys)
    assert (trained / "last.pt").read_bytes() == before


@pytest.mark.parametrize(
    "command",
    [
        ["export", "resnet20", "--to", "torchscript", "--input", "3x32x32", "--out"],
        ["report", "resnet20", "--out"],
        ["draw", "resnet20", "--out"],
        ["compare", "resnet18", "--out"],
    ],
    ids=["export", "report", "draw", "compare"],
)
def test_an_existing_out_is_replaced_only_with_overwrite(tmp_path, capsys, command):
    suffix = {"export": ".pt", "report": ".html", "draw": ".svg", "compare": ".svg"}[command[0]]
    out = tmp_path / f"mine{suffix}"
    out.write_text("the user's own file")
    assert main([*command, str(out)]) == 2
    assert f"{command[-1]} {out} exists" in error_of(capsys) and out.read_text() == "the user's own file"
    assert main([*command, str(out), "--overwrite"]) == 0
    assert out.read_bytes() != b"the user's own file"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left beside it


@pytest.mark.parametrize(
    "command",
    [
        ["export", "resnet20", "--input", "3x32x32", "--out"],
        ["report", "resnet20", "--out"],
        ["draw", "resnet20", "--out"],
        ["assignment", "init"],
    ],
    ids=["export", "report", "draw", "assignment"],
)
def test_an_out_below_a_file_is_one_message(tmp_path, capsys, command):
    (tmp_path / "file").write_text("")
    name = {"export": "m.onnx", "report": "r.html", "draw": "d.svg"}.get(command[0], "ws")
    assert main([*command, str(tmp_path / "file" / name)]) == 2
    assert f"{tmp_path / 'file'} is not a directory" in error_of(capsys)


def test_assignment_init_keeps_an_existing_notebook_without_force(tmp_path, capsys):
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs" / "03_ConvNet.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4}')
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "03_ConvNet.ipynb").write_text("my answers")
    assert main(["assignment", "init", str(tmp_path / "ws"), "--notebooks", str(tmp_path / "nbs")]) == 2
    assert "03_ConvNet.ipynb exists" in capsys.readouterr().err
    assert (tmp_path / "ws" / "03_ConvNet.ipynb").read_text() == "my answers"
    assert not (tmp_path / "ws" / "cs231n").exists()


def test_export_check_with_torchscript_is_refused_before_writing(tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["export", "resnet20", "--to", "torchscript", "--check", "--out", str(out)]) == 2
    assert "--check runs ONNX Runtime" in error_of(capsys) and not out.exists()


def test_an_empty_output_is_refused_and_nothing_is_written(tree, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert train(tree, "") == 2
    assert "--output is empty" in error_of(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "size, message",
    [
        ("3x32", "input size '3x32' is not C x H x W"),
        ("0x0x0", "input size '0x0x0' is not C x H x W"),
        ("1x32x32", "resnet20 expects 3 input channels, got 1"),
    ],
)
def test_a_wrong_export_input_is_one_line_and_writes_nothing(tmp_path, capsys, size, message):
    assert main(["export", "resnet20", "--input", size, "--out", str(tmp_path / "m.onnx")]) == 2
    assert message in error_of(capsys) and list(tmp_path.iterdir()) == []


def test_export_of_alexnet_at_32_pixels_says_what_it_accepts(tmp_path, capsys):
    assert main(["export", "alexnet", "--input", "3x32x32", "--out", str(tmp_path / "a.onnx")]) == 2
    assert "alexnet accepts inputs of 227x227" in error_of(capsys) and list(tmp_path.iterdir()) == []


def test_an_empty_experiment_output_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "inception-cost", "--output", ""]) == 2
    assert "--output is empty" in error_of(capsys) and list(tmp_path.iterdir()) == []


def test_a_second_run_into_a_live_runs_folder_is_refused_at_once(tree, tmp_path, capsys):
    with run_lock(tmp_path / "run") as lock:  # the first run, alive
        assert train(tree, tmp_path / "run", "--overwrite") == 2
        err = error_of(capsys)
        assert str(lock) in err and "is in use by a live run" in err and "process " in err
    assert not (tmp_path / "run" / "last.pt").exists()
    assert train(tree, tmp_path / "run") == 0  # the lock ended with its run
    assert (tmp_path / "run" / "last.pt").is_file() and (tmp_path / "run" / LOCK_FILE).is_file()


# -- weights are checked on load ----------------------------------------------------------------------


def resnet20_state(seed=0):
    torch.manual_seed(seed)
    return create_model("resnet20").state_dict()


def test_weights_with_nan_are_refused_naming_the_file(tmp_path, capsys):
    state = resnet20_state()
    state["fc.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    assert main(["predict", "resnet20", str(img), "--weights", str(tmp_path / "nan.pt")]) == 2
    err = error_of(capsys)
    assert str(tmp_path / "nan.pt") in err and "NaN or infinite" in err and "fc.weight" in err


def test_weights_whose_classes_do_not_match_their_head_are_refused(tmp_path):
    from cnnarch.models.weights import WeightsMeta, save_weights

    model = create_model("resnet20")  # 10 outputs
    save_weights(model, WeightsMeta(num_classes=10, classes=("cat", "dog")), tmp_path / "names.safetensors")
    with pytest.raises(ValueError, match="names 2 classes for 10 outputs"):
        create_model("resnet20", weights=tmp_path / "names.safetensors")
    save_weights(model, WeightsMeta(num_classes=5), tmp_path / "five.safetensors")
    with pytest.raises(ValueError, match=r"five\.safetensors do not fit resnet20: .*fc\.weight"):
        create_model("resnet20", weights=tmp_path / "five.safetensors")


@pytest.mark.parametrize(
    "name, content",
    [("text.pt", b"hello, this is not a checkpoint\n"), ("empty.pt", b""), ("cut.safetensors", None)],
)
def test_a_file_that_is_no_weights_is_one_message_naming_it(tmp_path, capsys, name, content):
    path = tmp_path / name
    if content is None:  # a .safetensors file cut in the middle, as an interrupted download leaves it
        save_file(resnet20_state(), tmp_path / "whole.safetensors")
        data = (tmp_path / "whole.safetensors").read_bytes()
        content = data[: len(data) // 2]
    path.write_bytes(content)
    assert main(["predict", "resnet20", str(tmp_path), "--weights", str(path)]) == 2
    assert str(path) in error_of(capsys)
    assert main(["export", str(path), "--to", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    assert str(path) in error_of(capsys) and not (tmp_path / "m.onnx").exists()


def test_an_empty_safetensors_file_is_one_message(tmp_path, capsys):
    (tmp_path / "z.safetensors").write_bytes(b"")
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    assert main(["predict", "resnet20", str(img), "--weights", str(tmp_path / "z.safetensors")]) == 2
    assert f"{tmp_path / 'z.safetensors'} is not a readable .safetensors file (0 bytes" in error_of(capsys)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local HTTP server on 127.0.0.1 serving tmp_path/served; torch.hub's cache in tmp_path/hub."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    (tmp_path / "served").mkdir()
    handler = partial(QuietHandler, directory=str(tmp_path / "served"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield tmp_path / "served", f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_two_urls_ending_in_the_same_name_load_their_own_weights(server):
    served, url = server
    for seed, folder in ((0, "a"), (1, "b")):
        (served / folder).mkdir()
        torch.save(resnet20_state(seed), served / folder / "weights.pt")
    a = create_model("resnet20", weights=f"{url}/a/weights.pt")
    b = create_model("resnet20", weights=f"{url}/b/weights.pt")
    assert torch.equal(a.fc.weight, resnet20_state(0)["fc.weight"])
    assert torch.equal(b.fc.weight, resnet20_state(1)["fc.weight"])
    assert f"{url}/b/weights.pt" in b.weights_meta.source


def test_a_sha256_prefix_in_the_file_name_is_checked(server):
    served, url = server
    torch.save(resnet20_state(), served / "good.pt")
    digest = hashlib.sha256((served / "good.pt").read_bytes()).hexdigest()
    (served / "good.pt").rename(served / f"r20-{digest[:10]}.pt")
    torch.save(resnet20_state(1), served / "r20-0123456789.pt")  # another file under a wrong prefix
    model = create_model("resnet20", weights=f"{url}/r20-{digest[:10]}.pt")
    assert torch.equal(model.fc.weight, resnet20_state()["fc.weight"])
    with pytest.raises(ValueError, match="invalid hash value"):
        create_model("resnet20", weights=f"{url}/r20-0123456789.pt")
    assert not list((served.parent / "hub").rglob("*r20-0123456789.pt"))  # nothing cached


def test_a_missing_or_unreachable_url_is_one_message(server, capsys):
    served, url = server
    img = served / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    with socket.socket() as s:  # a port nothing listens on once closed: the machine is "offline"
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/w.pt"
    for weights, why in ((f"{url}/missing.pt", "HTTP Error 404"), (closed, "Connection refused")):
        assert main(["predict", "resnet20", str(img), "--weights", weights]) == 2
        err = error_of(capsys)
        assert f"could not fetch the weights {weights}" in err and why in err


def test_a_torchvision_weight_name_while_offline_is_one_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "urlopen", offline)
    (tmp_path / "a.png").write_bytes(b"")
    assert main(["predict", "resnet18", str(tmp_path / "a.png"), "--weights", "IMAGENET1K_V1"]) == 2
    err = error_of(capsys)
    assert "torchvision's resnet18 weights IMAGENET1K_V1 could not be fetched" in err
    assert str(tmp_path / "hub") in err


# -- ordinary mistakes: one message, or the work done anyway --------------------------------------------


def test_a_symlink_loop_in_a_dataset_is_named(tree, tmp_path, capsys):
    (tree / "train" / "red" / "loop.png").symlink_to("loop.png")
    assert train(tree, tmp_path / "run") == 2
    assert f"{tree / 'train/red/loop.png'} is a symbolic link loop" in error_of(capsys)


def test_an_unwritable_cache_decodes_in_memory_with_one_note(tmp_path, monkeypatch, capsys):
    write_tree(tmp_path / "data")
    (tmp_path / "cache").write_text("a file where the cache directory should be")
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    data = load_image_folder(tmp_path / "data", "train", progress=False, workers=1)
    assert len(data) == 36
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "cannot be written" in err[0] and "decoded in memory" in err[0]


def test_a_decompression_bomb_is_reported_and_the_other_images_classified(tmp_path, monkeypatch, capsys):
    torch.save(resnet20_state(), tmp_path / "w.pt")
    (tmp_path / "images").mkdir()
    for name, side in (("a.png", 32), ("bomb.png", 64), ("c.png", 32)):
        Image.fromarray(np.zeros((side, side, 3), np.uint8)).save(tmp_path / "images" / name)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1100)  # 64x64 = 4096 pixels: over twice the limit
    argv = ["predict", "resnet20", str(tmp_path / "images"), "--weights", str(tmp_path / "w.pt")]
    assert main([*argv, "--topk", "1", "--format", "csv"]) == 1
    out, err = capsys.readouterr()
    assert "bomb.png" in err and "decompression bomb" in err
    assert "a.png" in out and "c.png" in out and "bomb.png" not in out


def test_a_corrupt_results_json_is_named(trained, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes((trained / "last.pt").read_bytes())
    (run / "results.json").write_text('{"test_top1": 50.0,')  # cut off mid-write
    args = [
        "export",
        str(run / "last.pt"),
        "--to",
        "safetensors",
        "--out",
        str(tmp_path / "w.safetensors"),
    ]
    assert main(args) == 2
    assert f"{run / 'results.json'} (the test results beside last.pt) is not readable JSON" in error_of(
        capsys
    )
    assert not (tmp_path / "w.safetensors").exists()


def test_skip_corrupt_says_how_many_images_it_left_out(tree, tmp_path, capsys):
    (tree / "train/red/5.png").write_bytes(b"not a png")
    (tree / "train/blue/2.png").write_bytes(b"")
    assert train(tree, tmp_path / "run", "--skip-corrupt") == 0
    err = capsys.readouterr().err
    assert f"--skip-corrupt: left out 2 of 36 images of {tree / 'train'}" in err
    assert "blue/2.png" in err and "red/5.png" in err


def test_a_full_disk_while_a_checkpoint_is_written_is_one_message(tree, tmp_path, monkeypatch, capsys):
    def disk_full(obj, f):  # what torch.save raises when the disk fills mid-write
        f.write(b"PK\x03\x04")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 6434880 vs 6434776")

    monkeypatch.setattr(torch, "save", disk_full)
    assert train(tree, tmp_path / "run") == 1
    lines = capsys.readouterr().err.splitlines()
    # the full disk also stops the decoded-image cache: the images are decoded in memory instead
    assert all(line.startswith("note: the cache") for line in lines[:-1]) and "Traceback" not in lines
    err = lines[-1]
    assert re.search(r"could not write .*last\.pt \(\d+ MiB free on its disk", err)
    assert not list((tmp_path / "run").glob("*.pt*"))


# -- memory -------------------------------------------------------------------------------------------


def test_a_pass_needing_more_memory_than_available_is_refused_before_allocating(monkeypatch, capsys):
    monkeypatch.setattr(errors, "available_memory", lambda device="cpu": 8 * 2**30)
    assert main(["summary", "resnet20", "--input", "3x20000x20000", "--device", "cpu"]) == 1
    err = error_of(capsys)
    need = float(re.search(r"needs ([\d.]+) GiB of memory or more; cpu has 8.0 GiB available", err)[1])
    # at least the input and the first convolution's 16 channels, in float32, at once
    assert need * 2**30 >= (3 + 16) * 20000 * 20000 * 4 * 0.99
    assert "--device meta" in err


def test_a_pass_that_fits_runs(monkeypatch, capsys):
    monkeypatch.setattr(errors, "available_memory", lambda device="cpu": 8 * 2**30)
    assert main(["summary", "resnet20", "--device", "cpu", "--format", "csv"]) == 0
