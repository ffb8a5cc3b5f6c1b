"""Weights that travel carry no directory of the machine that trained them: save_weights cuts absolute
paths, and the shipped files' headers hold none."""

import json
import struct

import pytest
from torch import nn

from cnnarch.models.weights import SHIPPED_DIR, WeightsMeta, save_weights


def header_strings(path) -> list[str]:
    """Every string in a safetensors file's header, the cnnarch metadata's JSON opened too."""
    raw = path.read_bytes()
    header = json.loads(raw[8 : 8 + struct.unpack("<Q", raw[:8])[0]])
    found = []

    def walk(v):
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            found.append(v)
            if v.startswith("{"):
                walk(json.loads(v))

    walk(header)
    return found


def absolute(strings) -> list[str]:
    return [s for s in strings if s.startswith(("/", "~")) or "/root/" in s or "/work/" in s or "/home/" in s]


@pytest.mark.parametrize("path", sorted(SHIPPED_DIR.glob("*.safetensors")), ids=lambda p: p.name)
def test_shipped_weights_name_no_machine_path(path):
    strings = header_strings(path)
    assert len(strings) > 10 and not absolute(strings)


def test_save_weights_cuts_absolute_paths(tmp_path):
    meta = WeightsMeta(
        num_classes=2,
        classes=("cat", "dog"),
        source="/root/cnnarch-runs/r20/last.pt",
        extra={
            "config": {"dataset": {"data": "/work/shared/data/cifar10-jpeg"}, "run": {"output": "~/runs/a"}}
        },
    )
    save_weights(nn.Linear(3, 2), meta, tmp_path / "w.safetensors")
    strings = header_strings(tmp_path / "w.safetensors")
    assert not absolute(strings)
    assert {"r20/last.pt", "data/cifar10-jpeg", "runs/a", "cat", "dog"} <= set(strings)
