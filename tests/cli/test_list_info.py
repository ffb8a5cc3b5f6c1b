import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnarch.cli import main


def test_list_shows_every_model_with_input_size_and_paper(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()[2:]  # below the header and its rule
    names = [line.split()[0] for line in lines]
    issue_2 = ["alexnet", "alexnet_tv", "googlenet", "googlenet_tv"]
    issue_2 += [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
    issue_2 += [f"resnet{d}" for d in (18, 34, 50, 101, 152)]
    assert len(issue_2) == 17 and set(issue_2) <= set(names)
    assert names.index("resnet18") < names.index("resnet101")  # natural order
    alexnet = lines[names.index("alexnet")]
    assert "3x227x227" in alexnet and "Krizhevsky" in alexnet


def test_list_filters_by_pattern(capsys):
    assert main(["list", "vgg1?_bn"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert sorted(names) == sorted(f"vgg{d}_bn" for d in (11, 13, 16, 19))
    assert main(["list", "nothing*"]) == 1


def test_info_shows_parameters_input_paper_and_differences(capsys):
    assert main(["info", "alexnet"]) == 0
    out = capsys.readouterr().out
    assert "60,965,224" in out  # the paper's count, written out in tests/models/test_alexnet.py
    assert "3x227x227" in out and "Krizhevsky" in out
    assert "227x227 to 258x258 pixels" in out  # what the input-size guard accepts
    assert "Differences from torchvision" in out


def test_info_shows_the_training_mode_size_where_it_differs(capsys):
    assert main(["info", "googlenet"]) == 0
    out = capsys.readouterr().out
    assert "at least 31x31 pixels (in training mode: at least 79x79)" in out


@pytest.mark.parametrize("name", ["googlenet_tv", "resnet50", "vgg11", "alexnet_tv"])
def test_info_of_torchvision_forms_states_their_differences(name, capsys):
    assert main(["info", name]) == 0
    assert "Differences from torchvision" in " ".join(capsys.readouterr().out.split())  # across line breaks


def test_info_of_unknown_model_suggests_close_names(capsys):
    assert main(["info", "vgg61"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'vgg61'" in err and "vgg16" in err


def test_closed_pipe_ends_quietly():
    # `cnnarch list | head`: the reader goes away before the listing is written (closed here at once,
    # while the child is still importing torch); no traceback may follow.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnarch.cli", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
