"""The arithmetic of the CPU speedrun benchmarks: the run summary of `bench_cifar_fast.py` (images/s,
GFLOP/s, time to accuracy) on a run directory written here, and the layer-by-layer profile of
`profile_cifar_fast.py` on a tiny batch."""

import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest

from cnnarch.analysis import profile
from cnnarch.models import create_model
from cnnarch.train.config import resolve_config

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(path: Path, accs, seconds, rate, tta, model="cifar_fast", **options):
    path.mkdir()
    (path / "config.json").write_text(resolve_config("cifar-fast", model=model, **options).to_json())
    with open(path / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "val_top1", "images_per_s", "seconds"])
        for i, (a, s) in enumerate(zip(accs, seconds, strict=True)):
            w.writerow([i + 1, a, rate, s])
    total = sum(seconds) + 5.0  # the final TTA pass
    (path / "results.json").write_text(
        json.dumps({"test_top1": accs[-1], "tta_top1": tta, "train_seconds": total})
    )
    return total


def test_run_summary_reads_speed_and_time_to_accuracy(tmp_path):
    bench = load("bench_cifar_fast")
    total = write_run(tmp_path / "a", [70.0, 85.5, 89.0], [100.0, 100.0, 120.0], 500.0, 89.4)
    s = bench.run_summary(tmp_path / "a", [80.0, 89.1, 90.0])
    # 85.5 first reached at the end of epoch 2 (100 + 100 s); 89.1 only by the TTA evaluation, so the
    # whole clock; 90 never
    assert s["reached"] == {80.0: 200.0, 89.1: total, 90.0: None}
    assert s["images_per_s"] == pytest.approx(500.0)
    fwd = profile(create_model("cifar_fast"), (3, 32, 32)).flops
    assert s["gflops"] == pytest.approx(3 * fwd * 500.0 / 1e9)
    assert s["epochs"] == 3 and s["tta"] == 89.4


def test_a_progressive_run_counts_its_small_epochs_at_their_size(tmp_path):
    bench = load("bench_cifar_fast")
    write_run(
        tmp_path / "p",
        [60.0, 80.0, 89.0],
        [50.0, 50.0, 100.0],
        500.0,
        89.4,
        progressive_size=24,
        progressive_epochs=2,
    )
    s = bench.run_summary(tmp_path / "p", [])
    net = create_model("cifar_fast")
    small, full = profile(net, (3, 24, 24)).flops, profile(net, (3, 32, 32)).flops
    assert small < 0.6 * full
    assert s["gflops"] == pytest.approx(3 * (small * 2 * 50 * 500 + full * 100 * 500) / 200 / 1e9)


def test_report_runs_gives_one_row_per_run_and_the_mean(tmp_path):
    bench = load("bench_cifar_fast")
    write_run(tmp_path / "a", [88.0, 89.0], [60.0, 60.0], 400.0, 90.0)
    write_run(tmp_path / "b", [87.0, 88.0], [60.0, 60.0], 400.0, 89.0)
    lines = bench.report_runs([bench.run_summary(tmp_path / r, [89.1]) for r in "ab"])
    rows = [line for line in lines if line.startswith("| a ") or line.startswith("| b ")]
    assert len(rows) == 2
    assert "mean 89.50%, min 89.00%, max 90.00%" in lines[-1]
    assert "not reached" in rows[1]  # b: 88 per epoch, 89.0 with TTA


def test_plot_runs_writes_a_png(tmp_path):
    bench = load("bench_cifar_fast")
    write_run(tmp_path / "a", [70.0, 80.0], [60.0, 60.0], 400.0, 81.0)
    bench.plot_runs([bench.run_summary(tmp_path / "a", [])], tmp_path / "fig.png")
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"


def test_layer_table_covers_every_layer_and_the_whole_step():
    prof = load("profile_cifar_fast")
    rows = prof.layer_table("cifar_fast_93", batch=4, amp=False, steps=1, peak=100.0)
    table = [r for r in rows if r.startswith("| ") and not r.startswith("| layer |")]
    model = create_model("cifar_fast_93")
    leaves = [n for n, m in model.named_modules() if n and not list(m.children())]
    named = [r.split(" | ")[0][2:].split(" (call")[0] for r in table]
    assert set(leaves) <= set(named)
    # each stage's GELU runs twice, so its rows appear twice
    assert named.count("layer1.act") == 2
    shares = [float(r.rstrip(" |").rsplit("| ", 1)[1].rstrip("%")) for r in table]
    assert sum(shares) == pytest.approx(100.0, abs=0.1 * len(shares))
    # step FLOPs: 3x forward for every convolution and linear layer (forward, input gradient, weight
    # gradient), but the frozen first layer (forward only) and the layer behind it (no input gradient:
    # nothing before it trains)
    fwd = {layer.name: layer.flops for layer in profile(model, (3, 32, 32)).layers}
    conv = sum(v for k, v in fwd.items() if k == "whiten" or "conv" in k or k == "fc")
    expected = 4 * (3 * conv - 2 * fwd["whiten"] - fwd["layer1.conv1"]) / 1e9
    summary = next(r for r in rows if r.startswith("Step:"))
    reported = float(summary.split("FLOPs of the step ")[1].split(" GFLOP")[0])
    assert math.isclose(reported, expected, abs_tol=0.05)


def test_reference_log_is_read_like_a_run(tmp_path):
    bench = load("bench_cifar_fast")
    # the table airbench prints: accuracies as fractions, the clock in seconds; the last row has TTA
    log = tmp_path / "airbench93.log"
    log.write_text(
        "threads 2 variant 93 {}\n"
        "|  run  |  epoch  |  train_loss  |  train_acc  |  val_acc  |  tta_val_acc  |  total_time_seconds |\n"
        "|  0    |         |  2.3000      |  0.1000     |           |               |  0.0000             |\n"
        "|  0    |  0      |  1.7000      |  0.4000     |  0.6390   |               |  210.0000           |\n"
        "|       |  1      |  1.5000      |  0.6000     |  0.8830   |               |  420.0000           |\n"
        "|       |  eval   |  1.5000      |  0.6000     |  0.8830   |  0.8911       |  425.0000           |\n"
    )
    s = bench.run_summary(log, [60.0, 89.1, 95.0])
    assert [round(a, 2) for _, a in s["curve"]] == [63.9, 88.3]
    assert s["tta"] == pytest.approx(89.11) and s["threads"] == 2
    # 89.1 only by the final TTA evaluation: the whole clock, that evaluation included
    assert s["reached"] == {60.0: 210.0, 89.1: 425.0, 95.0: None}
