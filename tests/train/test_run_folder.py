"""A run folder under faults: a live run locks it (a second run is refused at once, the lock of a killed
run is taken over), a best.pt lost to a kill while it was written is restored by --resume, and a run
resumed into another folder takes its best.pt along."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from cnnarch.errors import UsageError
from cnnarch.train import trainer as trainer_module
from cnnarch.train.checkpoint import LOCK_FILE, load_checkpoint, run_lock
from cnnarch.train.config import resolve_config
from cnnarch.train.trainer import Trainer, config_for_resume, prepare_output


class Killed(BaseException):
    """Stands for kill -9: nothing after it in the process runs (no except clause catches it)."""


def make_cfg(tmp_path, out="run", **kw):
    base = dict(model="tiny", epochs=3, batch_size=32, lr=0.05, output=str(tmp_path / out), log_interval=0)
    return resolve_config(**{**base, **kw})


def fit(cfg, syn):
    x, y = syn.blob_images(128)
    return Trainer(cfg, syn.bundle(x, y, 32, 4), model=syn.tiny_cnn, log=lambda _: None).fit()


def kill_at_save(monkeypatch, name: str, nth: int):
    """Die at the ``nth`` save of ``name`` (best.pt or last.pt) with its temporary file half written."""
    save, seen = trainer_module.atomic_torch_save, {"n": 0}

    def dying(obj, path):
        if os.path.basename(path) == name:
            seen["n"] += 1
            if seen["n"] == nth:
                (path.parent / f"{name}.123.tmp").write_bytes(b"half a checkpoint")
                raise Killed
        save(obj, path)

    monkeypatch.setattr(trainer_module, "atomic_torch_save", dying)


@pytest.mark.parametrize("nth", [1, 2])
def test_best_pt_lost_to_a_kill_while_it_was_written_is_restored_by_resume(tmp_path, syn, monkeypatch, nth):
    cfg = make_cfg(tmp_path)
    kill_at_save(monkeypatch, "best.pt", nth)
    with pytest.raises(Killed):
        fit(cfg, syn)
    monkeypatch.undo()
    run = tmp_path / "run"
    last = load_checkpoint(run / "last.pt")  # written just before the kill: the best so far
    assert last["best_epoch"] == last["epoch"] + 1 == nth
    assert not (run / "best.pt").exists() or load_checkpoint(run / "best.pt")["epoch"] < last["epoch"]
    x, y = syn.blob_images(128)
    Trainer(config_for_resume(str(run), {}), syn.bundle(x, y, 32, 4), model=syn.tiny_cnn, log=lambda _: None)
    best = load_checkpoint(run / "best.pt")  # restored before any training
    assert best["epoch"] == last["epoch"] and all(
        torch.equal(best["model"][k], v) for k, v in last["model"].items()
    )
    fit(config_for_resume(str(run), {}), syn)
    last, best = load_checkpoint(run / "last.pt"), load_checkpoint(run / "best.pt")
    assert best["epoch"] + 1 == last["best_epoch"] and last["epoch"] == 2


def test_a_run_resumed_into_another_folder_gets_its_best_pt(tmp_path, syn):
    fit(make_cfg(tmp_path, epochs=2), syn)
    cfg = config_for_resume(str(tmp_path / "run"), {"epochs": 3, "output": str(tmp_path / "moved")})
    fit(cfg, syn)
    moved = tmp_path / "moved"
    assert (moved / "best.pt").is_file()
    best = load_checkpoint(moved / "best.pt")
    assert best["epoch"] + 1 == load_checkpoint(moved / "last.pt")["best_epoch"]


def test_an_empty_output_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="--output is empty"):
        prepare_output(make_cfg(tmp_path).replace(output=""))
    assert list(tmp_path.iterdir()) == []


def test_a_second_holder_is_refused_at_once_naming_the_lock_and_the_process(tmp_path):
    with run_lock(tmp_path / "run") as lock:
        with pytest.raises(UsageError) as e, run_lock(tmp_path / "run"):
            pass
        assert f"process {os.getpid()}, lock {lock}" in str(e.value)
    with run_lock(tmp_path / "run"):  # released at the end of the first
        pass


# another run holding the folder, as run_lock does (an flock, and its PID in the file), without the
# seconds that importing torch takes
HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, str(os.getpid()).encode())
    print("locked", flush=True)
    time.sleep(60)
    """
)


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    (tmp_path / "run").mkdir()
    lock = tmp_path / "run" / LOCK_FILE
    child = subprocess.Popen(
        [sys.executable, "-S", "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        with (
            pytest.raises(UsageError, match=f"live run \\(process {child.pid}, "),
            run_lock(tmp_path / "run"),
        ):
            pass
    finally:
        child.kill()  # SIGKILL: no clean-up in the child
        child.wait()
    assert lock.read_text().strip() == str(child.pid)  # stale, left behind
    with run_lock(tmp_path / "run"):
        assert lock.read_text().strip() == str(os.getpid())


def test_weights_with_nan_from_a_checkpoint_are_refused_by_eval(tmp_path, syn, capsys):
    from cnnarch.cli import main

    fit(make_cfg(tmp_path, epochs=1), syn)
    ckpt = torch.load(tmp_path / "run/last.pt", weights_only=True)
    next(v for v in ckpt["model"].values() if v.is_floating_point()).fill_(float("nan"))
    torch.save(ckpt, tmp_path / "nan.pt")
    assert main(["eval", str(tmp_path / "nan.pt")]) == 2
    assert f"{tmp_path / 'nan.pt'}: 1 of" in capsys.readouterr().err
