import os
import pickle
from pathlib import Path

import pytest
import torch

from cnnarch.train import checkpoint as C


def test_crash_mid_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    C.atomic_torch_save({"format": C.FORMAT, "epoch": 1, "w": torch.ones(3)}, path)
    real_save = torch.save

    def crashing_save(obj, f):
        real_save(obj, f)  # bytes reach the temporary file ...
        f.truncate(10)  # ... half of them, and then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        C.atomic_torch_save({"format": C.FORMAT, "epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    ckpt = C.load_checkpoint(path)
    assert ckpt["epoch"] == 1 and torch.equal(ckpt["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary file left behind


def test_a_failed_write_names_the_file_and_the_free_space(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    C.atomic_torch_save({"format": C.FORMAT, "epoch": 1}, path)

    def disk_full(obj, f):  # what torch.save raises when the disk fills mid-write
        f.write(b"PK\x03\x04")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 6434880 vs 6434776")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match=r"could not write .*last\.pt \(\d+ MiB free.*unexpected pos"):
        C.atomic_torch_save({"format": C.FORMAT, "epoch": 2}, path)
    monkeypatch.undo()
    assert C.load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]


def test_plain_torch_save_would_have_destroyed_it(tmp_path):
    """The oracle for the test above: writing in place and crashing does lose the old checkpoint."""
    path = tmp_path / "last.pt"
    torch.save({"epoch": 1}, path)
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04 half")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        C.load_checkpoint(path)


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling would call Path.touch(marker)
        return (Path.touch, (Path(self.marker),))


def test_weights_only_load_refuses_a_malicious_pickle(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": C.FORMAT, "model": Evil(str(marker))}, path)
    pickle.loads(pickle.dumps(Evil(str(marker))))  # the payload works when unpickled unsafely ...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ValueError, match="refused by the weights-only loader"):
        C.load_checkpoint(path)
    assert not marker.exists()  # ... and did not run here


def test_not_a_checkpoint_and_missing_file(tmp_path):
    torch.save({"state": torch.ones(1)}, tmp_path / "w.pt")
    with pytest.raises(ValueError, match="not a cnnarch training checkpoint"):
        C.load_checkpoint(tmp_path / "w.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        C.load_checkpoint(tmp_path / "nope.pt")


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    import random

    import numpy as np

    state = C.get_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    C.atomic_torch_save({"format": C.FORMAT, "rng": state}, tmp_path / "r.pt")
    C.set_rng_state(C.load_checkpoint(tmp_path / "r.pt")["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and (expected[1] == again[1]).all() and expected[2] == again[2]
