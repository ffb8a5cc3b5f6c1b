"""Data parallel pieces in forked CPU processes joined by gloo, as torchrun would start them (torchrun
itself is in test_ddp_torchrun.py): a tiny MLP trains to the weights of one process, the all-reduced
batch norm equals one batch norm over the whole batch, and an output folder that the machines do not
share is refused. Every family of the zoo takes DDP steps under torchrun (test_ddp_torchrun.py)."""

import multiprocessing
import os
import socket
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnarch.train import distributed as D
from cnnarch.train.checkpoint import load_checkpoint


def test_two_processes_equal_one(tmp_path, syn):
    syn.ddp_main(str(tmp_path / "one"), world_size=1, rank=0)  # first: the forks inherit its imports

    assert syn.run_forked_processes(str(tmp_path / "two"), world_size=2) == [0, 0]

    two = load_checkpoint(tmp_path / "two/last.pt")
    one = load_checkpoint(tmp_path / "one/last.pt")
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert len(two["rng"]) == 2  # every process's RNG state, for an exact resume
    assert two["step"] == one["step"] == 2 * 3
    start = syn.tiny_mlp_net()
    for k, v in one["model"].items():
        torch.testing.assert_close(two["model"][k], v, rtol=0, atol=2e-6)
        assert not torch.allclose(v, start.state_dict()[k])  # trained, not merely equal at init
    # validation counts were summed over both processes' shards: the same top-1 as one process
    assert two["best_top1"] == one["best_top1"]


def run_forked(target, tmp_path, world_size=2, local=True, timeout=300) -> None:
    """``target(rank, tmp_path)`` in ``world_size`` forked processes joined by gloo; ``local=False``
    puts every process on a machine of its own (local rank 0 each). A failure is raised here with the
    process's traceback."""
    port = _free_port()
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_worker, args=(target, tmp_path, rank, world_size, local, port))
        for rank in range(world_size)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    for p in procs:
        if p.is_alive():
            p.kill()
    errors = [(tmp_path / f"error{r}.txt") for r in range(world_size)]
    messages = [e.read_text() for e in errors if e.exists()]
    assert not messages, "\n".join(messages)
    assert [p.exitcode for p in procs] == [0] * world_size


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun_env(rank, world_size, local, port) -> dict[str, str]:
    """What torchrun tells each process it starts."""
    return dict(
        RANK=str(rank),
        LOCAL_RANK=str(rank if local else 0),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size if local else 1),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )


def _worker(target, tmp_path, rank, world_size, local, port):
    import torch.distributed as dist

    os.environ.update(_torchrun_env(rank, world_size, local, port))
    torch.set_num_threads(1)
    try:
        info = D.init_distributed("cpu")
        target(info, tmp_path)
    except BaseException:
        (tmp_path / f"error{rank}.txt").write_text(f"process {rank}:\n{traceback.format_exc()}")
        os._exit(1)
    dist.destroy_process_group()
    os._exit(0)  # no pytest teardown in a fork


# ------------------------------------------------------------------------------------ --sync-bn

BATCH, CHANNELS = 6, 5


def _batch():
    g = torch.Generator().manual_seed(3)
    return torch.randn(2 * BATCH, CHANNELS, 4, 4, generator=g) * 3 + 1, torch.randn(
        2 * BATCH, CHANNELS, 4, 4, generator=g
    )


def _global_bn_half(info, tmp_path):
    """This process's half of the batch through a converted batch norm, twice (running statistics)."""
    x, w = _batch()
    mine = slice(info.rank * BATCH, (info.rank + 1) * BATCH)
    model = D.convert_sync_batchnorm(
        nn.Sequential(nn.BatchNorm2d(CHANNELS, momentum=0.3)), torch.device("cpu")
    )
    assert isinstance(model[0], D.GlobalBatchNorm)
    nn.init.uniform_(model[0].weight, 0.5, 1.5)
    nn.init.uniform_(model[0].bias, -0.5, 0.5)
    x = x[mine].clone().requires_grad_()
    for _ in range(2):
        y = model(x)
        ((y * w[mine]).sum() / (2 * BATCH)).backward()  # this process's part of the whole batch's loss
    torch.save(
        {"y": y.detach(), "dx": x.grad, "state": model.state_dict(), "dw": model[0].weight.grad},
        tmp_path / f"bn{info.rank}.pt",
    )


def test_sync_bn_on_cpu_equals_one_batch_norm_over_the_whole_batch(tmp_path):
    """Oracle: torch's nn.BatchNorm2d on the concatenated batch in one process. Each process holds half;
    outputs, input gradients, running statistics must match it (float32 rounding: the sums are taken in
    another order). Parameter gradients are summed over the processes here, as DDP all-reduces them."""
    run_forked(_global_bn_half, tmp_path)

    x, w = _batch()
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(CHANNELS, momentum=0.3)
    halves = [torch.load(tmp_path / f"bn{r}.pt", weights_only=True) for r in range(2)]
    with torch.no_grad():
        bn.weight.copy_(halves[0]["state"]["0.weight"])  # the uniform init drawn in the processes
        bn.bias.copy_(halves[0]["state"]["0.bias"])
    x = x.clone().requires_grad_()
    for _ in range(2):
        y = bn(x)
        ((y * w).sum() / (2 * BATCH)).backward()
    tol = dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([h["y"] for h in halves]), y.detach(), **tol)
    torch.testing.assert_close(torch.cat([h["dx"] for h in halves]), x.grad, **tol)
    torch.testing.assert_close(halves[0]["dw"] + halves[1]["dw"], bn.weight.grad, **tol)
    for k, v in bn.state_dict().items():
        if k not in ("weight", "bias"):
            torch.testing.assert_close(halves[0]["state"]["0." + k], v, **tol)
            torch.testing.assert_close(halves[1]["state"]["0." + k], v, **tol)
    # per-process statistics would differ: the halves have other means
    assert not torch.allclose(x[:BATCH].mean((0, 2, 3)), x[BATCH:].mean((0, 2, 3)), atol=0.1)


def test_skips_parameters_is_read_from_the_model():
    from cnnarch.models import create_model

    assert D.skips_parameters(create_model("fractalnet20"))
    assert not D.skips_parameters(create_model("fractalnet20", column=3))  # one path: nothing is skipped
    assert not D.skips_parameters(create_model("fractalnet20", drop_path_local=0, drop_path_global=0))
    assert not D.skips_parameters(create_model("googlenet"))  # the aux heads are in every training loss
    assert D.skips_parameters(nn.Sequential(nn.Linear(2, 2), create_model("fractalnet20")))


# ------------------------------------------------------------------------------------ shutdown

# One process of two in a fresh interpreter (a fork would inherit modules imported before any group).
_SHUTDOWN_PROCESS = """
import weakref
import torch
import torch.distributed as dist
from torch import nn
from cnnarch.train import distributed as D

info = D.init_distributed("cpu")
group = weakref.ref(dist.group.WORLD)
net = D.wrap(nn.Linear(3, 2), torch.device("cpu"), info)
net(torch.randn(4, 3)).sum().backward()
del net
assert group() is not None
D.shutdown(info)
assert group() is None, "the process group outlived the shutdown: gloo's threads run on into exit"
"""


def test_shutdown_frees_the_process_group_after_ddp():
    """A group still held after the shutdown keeps gloo's worker threads running into interpreter exit,
    where freeing the last collective's work from one of them aborts the process (exit -6, "terminate
    called without an active exception"). torch.distributed.nn.functional, which DDP imports, holds the
    world group in its default arguments when it is first imported after the group was joined."""
    port = _free_port()
    src = str(Path(__file__).parents[2] / "src")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SHUTDOWN_PROCESS],
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
                "OMP_NUM_THREADS": "1",
                **_torchrun_env(r, 2, True, port),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(outputs)


# ------------------------------------------------------------------------------------ output folder


def _check_output(info, tmp_path):
    D.check_shared_output(tmp_path / "shared", info, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"not shared by every machine.*file system all machines mount"):
        D.check_shared_output(tmp_path / f"machine{info.rank}", info, torch.device("cpu"))


def test_output_folder_not_shared_by_the_machines_is_refused(tmp_path):
    """Two 'machines' (local rank 0 each): one shared folder passes; each its own folder (what a run
    directory on a local disk looks like) is refused on both."""
    for d in ("shared", "machine0", "machine1"):
        (tmp_path / d).mkdir()
    run_forked(_check_output, tmp_path, local=False)
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == []  # the token is removed


def test_threads_zero_shares_the_free_cores_among_local_processes(monkeypatch):
    from cnnarch import threads

    free = {"cores": 4.0}
    monkeypatch.setattr(threads, "allowed_cpus", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(threads, "free_cores", lambda window=0: free["cores"])
    monkeypatch.setattr(threads, "CHOICE", None)

    def resolve_threads(n):  # as the trainer's: among the processes torchrun started on this machine
        return threads.threads_per_process(n, threads.local_processes()).threads

    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert resolve_threads(0) == 2
    assert resolve_threads(3) == 3  # an explicit count is kept
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert resolve_threads(0) == 1
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert resolve_threads(0) == 4
    free["cores"] = 1.2  # three of the four cores busy with other work
    assert resolve_threads(0) == 1


@pytest.mark.slow
def test_resume_auto_starts_a_run_then_continues_it(tmp_path, monkeypatch, capsys):
    """One process, the same command twice (as torchrun --max-restarts repeats it): the first starts the
    run, the second continues from --output's last.pt; the result is the uninterrupted run's."""
    import numpy as np
    from PIL import Image

    from cnnarch.cli import main

    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for name in ("blue", "green", "red"):
        d = tmp_path / "data" / "train" / name
        d.mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(d / f"{i}.png")
    args = ["train", "--data", str(tmp_path / "data"), "--model", "resnet20", "-b", "8", "--val-split", "0"]
    args += ["--sched", "none", "--log-interval", "0"]
    assert main([*args, "--epochs", "1", "--resume", "auto", "--output", str(tmp_path / "a")]) == 0
    assert "training resnet20" in capsys.readouterr().out
    assert main([*args, "--epochs", "2", "--resume", "auto", "--output", str(tmp_path / "a")]) == 0
    assert "resuming resnet20" in capsys.readouterr().out
    assert main([*args, "--epochs", "2", "--output", str(tmp_path / "b")]) == 0
    a, b = (load_checkpoint(tmp_path / d / "last.pt") for d in "ab")
    assert a["step"] == b["step"] == 2 * 3
    for k, v in b["model"].items():
        assert torch.equal(a["model"][k], v), k
