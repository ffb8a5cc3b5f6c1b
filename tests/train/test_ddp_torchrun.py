"""``cnnarch train`` under the real ``torchrun`` (``python -m torch.distributed.run``, c10d rendezvous
on 127.0.0.1, gloo on the CPU): ResNet-20 (batch norm) on a fake CIFAR-10 archive served by a local HTTP
server into an empty cache.

One 2-process run on one machine (the module's fixture) is the reference: it must download and extract
the archive once, end within float rounding of one process with the same global batch, and be repeated
bit for bit by two one-process "machines" (``--nnodes 2``) and by a run that torchrun restarts after its
process 0 died (``--max-restarts 1 --resume auto``). Each launch costs torchrun's agent and two fresh
Python processes importing torch (~10-30 s on 2 busy cores).
"""

import functools
import http.server
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from cnnarch.train.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

ENTRY = Path(__file__).with_name("ddp_entry.py")
FAMILIES_ENTRY = Path(__file__).with_name("ddp_families_entry.py")
SRC = Path(__file__).parents[2] / "src"
# 80 training images, -b 32: 2 steps per epoch, 4 steps in all; 16 test images
TRAIN = [
    "--model", "resnet20", "--data", "cifar10", "--val-split", "0", "-b", "32", "--epochs", "2",
    "--lr", "0.002", "--sched", "step", "--decay-epochs", "1", "--augment", "crop,flip",
    "--threads", "1", "--log-interval", "0", "--sync-bn",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cifar10_tarball(path: Path) -> str:
    """The official archive's layout with 16 random images per batch file (tests/data's maker)."""
    spec = importlib.util.spec_from_file_location(
        "cnnarch_test_datasets", Path(__file__).parents[1] / "data" / "test_datasets.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_cifar10_tarball(path, per_batch=16)[1]


class Server:
    """A static HTTP server on 127.0.0.1 that counts the requests for each path."""

    def __init__(self, root: Path):
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/cifar-10-python.tar.gz"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    www = tmp_path_factory.mktemp("www")
    md5 = _cifar10_tarball(www / "cifar-10-python.tar.gz")
    s = Server(www)
    s.md5 = md5
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def torchrun(server, work: Path, cache: Path, train_args, launcher=(), env=None, wait=True):
    """Start ``torchrun [launcher] ddp_entry.py [train_args]``; returns the finished process (or the
    running one with ``wait=False``)."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "CNNARCH_DATA"},
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "CNNARCH_CACHE": str(cache),
        "DDP_TEST_CIFAR10_URL": server.url,
        "DDP_TEST_CIFAR10_MD5": server.md5,
        "DDP_TEST_EVENTS": str(work / "events.txt"),
        **(env or {}),
    }
    proc = start([*launcher, str(ENTRY), *train_args], work, env)
    return finish(proc) if wait else proc


def start(args, cwd: Path, env: dict) -> subprocess.Popen:
    """``torchrun ARGS`` in a session of its own (so that a timeout can end its workers too)."""
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(proc, timeout: float = 240):
    """Wait for a torchrun launch; on a timeout its whole process group goes, workers included."""
    try:
        proc.output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.output, _ = proc.communicate()
        raise AssertionError(f"torchrun did not finish in {timeout} s:\n{proc.output[-4000:]}") from None
    assert proc.returncode == 0, proc.output[-6000:]
    return proc


def assert_same_run(got: dict, ref: dict) -> None:
    """Weights, buffers and SGD momentum equal bit for bit, after as many steps."""
    assert (got["step"], got["epoch"]) == (ref["step"], ref["epoch"])
    for k, v in ref["model"].items():
        assert torch.equal(got["model"][k], v), k
    momentum = [s["momentum_buffer"] for s in ref["optimizer"]["state"].values()]
    assert len(momentum) == len(ref["model"]) - 3 * 19  # every parameter (19 BN layers: 3 buffers each)
    for i, s in ref["optimizer"]["state"].items():
        assert torch.equal(got["optimizer"]["state"][i]["momentum_buffer"], s["momentum_buffer"]), i


def one_node(port: int, nproc: int = 2) -> list[str]:
    return ["--nproc-per-node", str(nproc), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}"]


@pytest.fixture(scope="module")
def two_ranks(server, tmp_path_factory):
    """The reference: 2 processes on one machine, --sync-bn, from an empty cache."""
    work = tmp_path_factory.mktemp("two")
    before = len(server.hits)
    proc = torchrun(server, work, work / "cache", [*TRAIN, "--output", "run"], one_node(_free_port()))
    return {
        "work": work,
        "ckpt": load_checkpoint(work / "run" / "last.pt"),
        "downloads": len(server.hits) - before,
        "events": (work / "events.txt").read_text().splitlines(),
        "output": proc.output,
    }


def test_cold_cache_is_downloaded_and_extracted_once_while_the_other_process_waits(two_ranks):
    # without the barrier process 1 finds an empty cache too and downloads and extracts it again
    assert two_ranks["downloads"] == 1
    assert two_ranks["events"] == ["download rank 0 local 0", "extract rank 0 local 0"]
    assert two_ranks["ckpt"]["world_size"] == 2 and two_ranks["ckpt"]["step"] == 4
    assert "device cpu x2 process(es)" in two_ranks["output"]


def test_two_processes_with_sync_bn_end_where_one_process_does(two_ranks, tmp_path, monkeypatch):
    """The same global batch of 32 in one process (in this one, from the cache the torchrun run filled).

    With --sync-bn every batch norm normalises with the statistics of all 32 images, as one process
    does, and DDP averages the two halves' gradients into the whole batch's: the runs differ only in the
    order of float32 sums (the halves, the all-reduce). ResNet-20 with batch norm and momentum amplifies
    such rounding quickly: one step differs by ~1e-6 of the update, four by ~3e-3 (measured), as much
    as one process computing with 2 threads instead of 1 differs from itself. So each tensor must be
    within 2 % of its own change from the initial weights; without --sync-bn (each half normalised by
    its own statistics) the difference is of the order of the change itself (measured: 60-100 %)."""
    from cnnarch.cli import main
    from cnnarch.models import create_model

    monkeypatch.setenv("CNNARCH_CACHE", str(two_ranks["work"] / "cache"))
    monkeypatch.delenv("CNNARCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    try:
        train = [a for a in TRAIN if a != "--sync-bn"]
        assert main(["train", *train, "--output", str(tmp_path / "one")]) == 0
    finally:
        torch.set_num_threads(threads)
    one = load_checkpoint(tmp_path / "one" / "last.pt")
    two = two_ranks["ckpt"]
    assert (one["world_size"], one["step"]) == (1, 4)
    torch.manual_seed(0)  # the trainer seeds with --seed 0 before building the network
    start = create_model("resnet20", num_classes=10).state_dict()
    for k, v in one["model"].items():
        if not v.is_floating_point():
            assert torch.equal(two["model"][k], v), k  # num_batches_tracked
            continue
        change = (v - start[k]).norm()
        assert change > 0, k
        assert (two["model"][k] - v).norm() <= 0.02 * change, k


def test_two_machines_of_one_process_each_repeat_the_run_bit_for_bit(server, two_ranks, tmp_path):
    """--nnodes 2: two torchrun agents meet at the c10d rendezvous (the first hosts its store). Each
    "machine" has its own cold cache here, so each downloads once (its local rank 0)."""
    port = _free_port()
    launch = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d"]
    launch += ["--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "two-machines"]
    procs = []
    for node in (0, 1):
        work = tmp_path / f"node{node}"
        work.mkdir()
        args = [*TRAIN, "--output", str(tmp_path / "run")]  # the shared folder of both machines
        procs.append(
            torchrun(server, work, work / "cache", args, [*launch, "--node-rank", str(node)], wait=False)
        )
    for proc in procs:
        finish(proc)
    for node in (0, 1):
        lines = (tmp_path / f"node{node}" / "events.txt").read_text().splitlines()
        assert [(line.split()[0], line.split()[-1]) for line in lines] == [
            ("download", "0"),
            ("extract", "0"),
        ]
    got = load_checkpoint(tmp_path / "run" / "last.pt")
    assert got["world_size"] == 2
    assert_same_run(got, two_ranks["ckpt"])


def test_torchrun_restarts_after_a_crash_and_resume_auto_continues_bit_for_bit(server, two_ranks, tmp_path):
    """Process 0 exits (code 17) as epoch 2 begins in torchrun's first attempt, after epoch 1's checkpoint;
    --max-restarts 1 starts both processes again with the same command, --resume auto continues from
    last.pt, and the run ends with the uninterrupted run's weights and optimizer state, bit for bit."""
    launch = [*one_node(_free_port()), "--max-restarts", "1"]
    cache = two_ranks["work"] / "cache"  # warm
    args = [*TRAIN, "--output", "run", "--resume", "auto"]
    proc = torchrun(server, tmp_path, cache, args, launch, env={"DDP_TEST_CRASH_AFTER_EPOCH": "1"})
    assert "training resnet20" in proc.output  # the first attempt started afresh (no last.pt)
    assert "resuming resnet20" in proc.output  # the second continued
    assert "(exitcode: 17)" in proc.output  # torchrun's report of the failed attempt
    got = load_checkpoint(tmp_path / "run" / "last.pt")
    assert_same_run(got, two_ranks["ckpt"])
    assert len((tmp_path / "run" / "metrics.csv").read_text().splitlines()) == 1 + 2  # header, 2 epochs


def test_every_family_takes_ddp_steps_under_torchrun(tmp_path):
    """Two DDP steps of every family's forward path (GoogLeNet's aux heads, FractalNet's drop-path,
    ResNeXt's groups, WRN's dropout, ...) in 2 processes torchrun starts. Without
    find_unused_parameters, FractalNet's drop-path fails the second step; the entry checks that DDP is
    asked to search only for FractalNet, and that both processes end with the same weights."""
    spec = importlib.util.spec_from_file_location("ddp_families_entry", FAMILIES_ENTRY)
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    finish(start([*one_node(_free_port()), str(FAMILIES_ENTRY), str(tmp_path)], tmp_path, env), timeout=500)
    for rank in range(2):
        assert (tmp_path / f"done{rank}.txt").read_text().split() == list(entry.FAMILIES)
