"""The error boundary of `cnnarch` (docs/cli.md): each class of error a user can cause ends in one or two
lines naming the file or value and the way out, with a documented exit status, never a traceback."""

import errno
import os
import pickle
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

from cnnarch import errors
from cnnarch.cli import cmd_list, main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))  # crash files go there


def raise_in_list(monkeypatch, exc):
    def run(args):
        raise exc

    monkeypatch.setattr(cmd_list, "run", run)


def fails(capsys, argv) -> tuple[int, list[str]]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.splitlines()


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.UsageError("out.pt exists", hint="pass --overwrite to replace it"), 2),
        (errors.InputError("w.pt holds NaN weights", hint="train again or pick another file"), 2),
        (errors.ResourceError("needs 7.6 GB, 2.0 GB free", hint="use a smaller --input"), 1),
    ],
)
def test_cnnarch_errors_print_message_and_hint(monkeypatch, capsys, exc, code):
    raise_in_list(monkeypatch, exc)
    assert fails(capsys, ["list"]) == (code, [f"cnnarch list: error: {exc}", exc.hint])


def test_usage_and_input_errors_stay_value_errors():
    # library callers written against `except ValueError` keep working
    assert issubclass(errors.UsageError, ValueError) and issubclass(errors.InputError, ValueError)


def download_error():
    from cnnarch.data.download import DownloadError

    return DownloadError("could not fetch https://www.cs.toronto.edu/cifar-10.tar.gz: timed out")


def safetensor_error():
    from safetensors import SafetensorError

    return SafetensorError("Error while deserializing header: HeaderTooLarge")


def onnx_error():
    from torch.onnx import OnnxExporterError

    return OnnxExporterError("Failed to export the model with torch.export")


def torch_oom():
    import torch

    return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def bomb():
    from PIL import Image

    return Image.DecompressionBombError("Image size (400000000 pixels) exceeds limit of 178956970 pixels")


# (what is raised, exit status, words the message must hold: the file or value, and the way out)
CASES = {
    "not found": (FileNotFoundError(errno.ENOENT, "No such file", "runs/a/best.pt"), 2, ["runs/a/best.pt"]),
    "permission": (
        PermissionError(errno.EACCES, "Permission denied", "/etc/x.svg"),
        2,
        ["/etc/x.svg", "path"],
    ),
    "is a directory": (IsADirectoryError(errno.EISDIR, "Is a directory", "runs"), 2, ["runs", "file"]),
    "not a directory": (NotADirectoryError(errno.ENOTDIR, "Not a directory", "a.txt/b"), 2, ["a.txt/b"]),
    "exists": (FileExistsError(errno.EEXIST, "File exists", "ws"), 2, ["ws", "another path"]),
    "read-only": (OSError(errno.EROFS, "Read-only file system", "/ro/x"), 2, ["/ro/x", "elsewhere"]),
    "link loop": (OSError(errno.ELOOP, "Too many levels of symbolic links", "d/loop"), 2, ["d/loop", "link"]),
    "disk full": (
        OSError(errno.ENOSPC, "No space left on device", "runs/a/last.pt"),
        1,
        ["runs/a/last.pt", "space"],
    ),
    "offline": (
        urllib.error.URLError("[Errno -3] Temporary failure in name resolution"),
        1,
        ["name resolution", "network"],
    ),
    "http": (
        urllib.error.HTTPError("https://x.org/w.pt", 404, "Not Found", {}, None),
        1,
        ["https://x.org/w.pt", "404"],
    ),
    "timeout": (TimeoutError("timed out"), 1, ["timed out", "network"]),
    "download": (download_error, 1, ["https://www.cs.toronto.edu/cifar-10.tar.gz", "--data DIR"]),
    "unpickling": (pickle.UnpicklingError("invalid load key, 'h'."), 2, ["invalid load key", "you trust"]),
    "weights only": (
        RuntimeError("Weights only load failed. Unsupported global: os.system"),
        2,
        ["os.system"],
    ),
    "safetensors": (safetensor_error, 2, ["HeaderTooLarge", "again"]),
    "export": (onnx_error, 1, ["export", "--to"]),
    "memory": (MemoryError(), 1, ["out of memory", "--batch-size"]),
    "gpu memory": (torch_oom, 1, ["out of memory", "20.00 GiB"]),
    "image bomb": (bomb, 2, ["400000000 pixels", "smaller image"]),
    "bad value": (ValueError("--topk must be 1 or more, got 0"), 2, ["--topk", "got 0"]),
}


@pytest.mark.parametrize("case", CASES)
def test_each_known_error_class_ends_in_one_or_two_lines(monkeypatch, capsys, case):
    exc, code, words = CASES[case]
    raise_in_list(monkeypatch, exc if isinstance(exc, BaseException) else exc())
    got, lines = fails(capsys, ["list"])
    assert got == code and 1 <= len(lines) <= 2, lines
    assert lines[0].startswith("cnnarch list: error: ")
    assert all(w in "\n".join(lines) for w in words), lines


def test_ctrl_c_is_one_line_and_130(monkeypatch, capsys):
    import cnnarch.models

    def interrupted(pattern):
        raise KeyboardInterrupt

    monkeypatch.setattr(cnnarch.models, "list_models", interrupted)  # inside the real `list`
    assert fails(capsys, ["list"]) == (130, ["cnnarch list: interrupted"])


def test_an_unexpected_error_is_one_line_and_the_traceback_in_a_file(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    raise_in_list(monkeypatch, TypeError("unsupported operand"))
    code, lines = fails(capsys, ["list"])
    assert code == 1 and lines[0] == "cnnarch list: unexpected error: TypeError: unsupported operand"
    path = Path(lines[1].removeprefix("the full traceback is in "))
    assert path.parent == tmp_path / "cache" and path.name.startswith("crash-")
    text = path.read_text()
    assert "Traceback" in text and "TypeError: unsupported operand" in text and "raise exc" in text
    # a cache that cannot be written (a file in its place): the temporary directory instead
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "file"))
    code, lines = fails(capsys, ["list"])
    assert code == 1 and "unsupported operand" in Path(lines[1].split(" is in ")[1]).read_text()


def test_cnnarch_traceback_shows_it(monkeypatch):
    monkeypatch.setenv("CNNARCH_TRACEBACK", "1")
    raise_in_list(monkeypatch, TypeError("unsupported operand"))
    with pytest.raises(TypeError):
        main(["list"])


# real cases, through the real commands


@pytest.mark.parametrize("text", ["3x32", "0x0x0", "3xax2", "3x32x32x3"])
def test_a_malformed_input_is_one_line_naming_it(capsys, tmp_path, text):
    code, lines = fails(capsys, ["summary", "resnet20", "--input", text])
    assert code == 2 and len(lines) == 1 and repr(text) in lines[0] and "3x224x224" in lines[0]
    code, lines = fails(capsys, ["export", "resnet20", "--input", text, "--out", str(tmp_path / "r.onnx")])
    assert code == 2 and repr(text) in lines[0] and not (tmp_path / "r.onnx").exists()


def test_export_of_a_size_the_network_does_not_take_is_one_line(capsys, tmp_path):
    out = tmp_path / "a.onnx"
    code, lines = fails(capsys, ["export", "alexnet", "--input", "3x32x32", "--out", str(out)])
    assert code == 2 and len(lines) == 1 and "227x227" in lines[0] and "32x32" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("content", [b"hello, not a checkpoint\n", b""])
def test_a_text_file_as_a_checkpoint_is_named(capsys, tmp_path, content):
    fake = tmp_path / "notes.pt"
    fake.write_bytes(content)
    (tmp_path / "a.png").write_bytes(b"")
    for argv in (["eval", str(fake)], ["predict", str(fake), str(tmp_path / "a.png")]):
        code, lines = fails(capsys, argv)
        assert code == 2 and 1 <= len(lines) <= 2 and str(fake) in lines[0], lines


def test_a_network_named_two_ways_at_once_is_refused(capsys, tmp_path):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"")
    code, lines = fails(capsys, ["eval", str(ckpt), "--weights", "cifar10"])
    assert code == 2 and "--weights" in lines[0]
    code, lines = fails(capsys, ["predict", "resnet20", str(ckpt)])
    assert code == 2 and lines[1].startswith("add --weights W")


def test_a_missing_checkpoint_is_named(capsys, tmp_path):
    code, lines = fails(capsys, ["export", str(tmp_path / "runs/none/best.pt"), "--out", str(tmp_path / "x")])
    assert code == 2 and str(tmp_path / "runs/none/best.pt") in lines[0]


def test_an_out_below_a_file_is_named(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "r.html"
    code, lines = fails(capsys, ["report", "resnet20", "--out", str(out)])
    assert code == 2 and 1 <= len(lines) <= 2 and str(tmp_path / "file") in lines[0]


def test_the_installed_command_exits_2_without_a_traceback():
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(
        [sys.executable, "-m", "cnnarch.cli", "summary", "resnet20", "--input", "3x32"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr and "'3x32'" in out.stderr
