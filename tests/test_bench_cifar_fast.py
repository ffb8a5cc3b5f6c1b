"""The arithmetic of the CPU speedrun benchmarks: the run summary of `bench_cifar_fast.py` (images/s,
GFLOP/s, time to accuracy) on a run directory written here, and the layer-by-layer profile of
`profile_cifar_fast.py` on a tiny batch."""

import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
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


def write_run(path: Path, accs, seconds, rate, tta, model="cifar_fast", setup=0.0, **options):
    path.mkdir()
    (path / "config.json").write_text(resolve_config("cifar-fast", model=model, **options).to_json())
    with open(path / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "val_top1", "images_per_s", "seconds"])
        for i, (a, s) in enumerate(zip(accs, seconds, strict=True)):
            w.writerow([i + 1, a, rate, s])
    total = setup + sum(seconds) + 5.0  # model building and whitening, the epochs, the final TTA pass
    (path / "results.json").write_text(
        json.dumps({"test_top1": accs[-1], "tta_top1": tta, "train_seconds": total, "tta_seconds": 5.0})
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


def test_the_clock_of_a_run_starts_with_its_setup(tmp_path):
    bench = load("bench_cifar_fast")
    total = write_run(tmp_path / "a", [70.0, 85.5], [100.0, 100.0], 500.0, 86.0, setup=2.0)
    s = bench.run_summary(tmp_path / "a", [80.0, 86.0])
    # 2 s of setup, then epochs ending at 102 and 202 s; 86 % only with TTA: the whole clock, 207 s
    assert s["curve"] == [(102.0, 70.0), (202.0, 85.5)] and total == 207.0
    assert s["reached"] == {80.0: 202.0, 86.0: 207.0}
    assert s["images_per_s"] == pytest.approx(500.0)  # over the epochs' seconds


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


def test_profile_step_with_muon_gives_the_filters_to_muon_only():
    import torch

    prof = load("profile_cifar_fast")
    step = prof.Step("cifar_fast_93", 4, amp=False, muon=torch.bfloat16)
    sgd, muon = step.opts
    filters = {id(p) for p in muon.param_groups[0]["params"]}
    conv = [
        m.weight for m in step.model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.requires_grad
    ]
    assert filters == {id(w) for w in conv} and len(conv) == 6  # 2 per stage; the whitening layer frozen
    assert not filters & {id(p) for g in sgd.param_groups for p in g["params"]}
    assert muon.ns_dtype == torch.bfloat16
    before = [w.detach().clone() for w in conv]
    step()
    assert all(not torch.equal(a, w) for a, w in zip(before, conv, strict=True))


def reference_log(path: Path, rows, tta, tta_seconds):
    """airbench_cpu.py's output: the threads line, then airbench's table with the wall clock before
    each line; ``rows`` of (accuracy %, clock s) per epoch, numbered from 0 as airbench does."""
    lines = [
        "threads 1 variant 93 {} bf16",
        "[wall     0.1 s] |  run     |  epoch  |  train_loss  |  train_acc  |  val_acc  |  tta_val_acc  "
        "|  total_time_seconds  |",
    ]
    for epoch, (acc, seconds) in enumerate(rows):
        run = "0" if epoch == 0 else ""
        lines.append(
            f"[wall {seconds + 9:8.1f} s] |  {run:>6}  |  {epoch:>5}  |  1.5000  |  0.6000  "
            f"|  {acc / 100:.4f}  |               |  {seconds:.4f}  |"
        )
    lines.append(
        f"[wall {tta_seconds + 9:8.1f} s] |          |   eval  |  1.5000  |  0.6000  "
        f"|  {rows[-1][0] / 100:.4f}  |  {tta / 100:.4f}  |  {tta_seconds:.4f}  |"
    )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reference_log_with_the_wall_clock_and_bf16(tmp_path):
    bench = load("bench_cifar_fast")
    log = tmp_path / "ref.log"  # as airbench_cpu.py --bf16 prints it
    log.write_text(
        "threads 1 variant 93 {'epochs': 2.0} bf16\n"
        "[wall     0.1 s] -----------------------------------------------------------------\n"
        "[wall     0.1 s] |  run     |  epoch  |  train_loss  |  train_acc  |  val_acc  |  tta_val_acc  "
        "|  total_time_seconds  |\n"
        "[wall     0.1 s] -----------------------------------------------------------------\n"
        "[wall   109.5 s] |       0  |      0  |      2.3064  |     0.1025  |   0.8000  |               "
        "|            100.0000  |\n"
        "[wall   215.4 s] |          |      1  |      2.3064  |     0.1025  |   0.8600  |               "
        "|            200.0000  |\n"
        "[wall   225.4 s] |          |   eval  |      2.3064  |     0.1025  |   0.8600  |       0.8850  "
        "|            210.0000  |\n"
        "[wall   225.4 s] -----------------------------------------------------------------\n"
        "wall 225.4 s\n"
    )
    s = bench.run_summary(log, [85.0, 88.0, 89.1])
    assert s["curve"] == [(100.0, 80.0), (200.0, 86.0)]
    assert s["model"] == "airbench93's own network, bf16" and s["threads"] == 1
    # 85 after the second epoch (200 s); 88 only with TTA (the whole clock, 210 s); 89.1 never
    assert s["reached"] == {85.0: 200.0, 88.0: 210.0, 89.1: None}
    assert s["tta"] == pytest.approx(88.5) and s["train_seconds"] == 210.0


def test_race_table_per_seed_median_and_ratio(tmp_path):
    race = load("race_reference")
    levels = [85.0, 88.0, 89.1]
    # (reference epochs (accuracy, clock), its TTA and clock), (ours: accuracies, epoch seconds, TTA)
    seeds = {
        0: (([(80.0, 100.0), (86.0, 200.0), (88.5, 300.0)], 89.5, 310.0), ([86.0, 88.2, 88.9], 89.3)),
        1: (([(84.0, 100.0), (87.0, 200.0), (88.9, 300.0)], 89.0, 312.0), ([84.0, 88.0, 89.2], 89.8)),
        2: (([(86.0, 100.0), (88.0, 200.0), (89.2, 300.0)], 89.9, 308.0), ([80.0, 87.0, 88.5], 88.9)),
    }
    pairs = []
    for seed, ((rows, rtta, rclock), (accs, otta)) in seeds.items():
        log = reference_log(tmp_path / f"reference-s{seed}.log", rows, rtta, rclock)
        write_run(tmp_path / f"ours-s{seed}", accs, [50.0, 50.0, 60.0], 400.0, otta, model="cifar_fast_93")
        ours = race.run_summary(tmp_path / f"ours-s{seed}", levels)
        pairs.append({"seed": seed, "reference": race.reference_summary(log, levels), "ours": ours})
    s = race.summarize(pairs, levels)
    # ours: epochs end at 50, 100, 160 s; the TTA pass makes the clock 165 s
    by_seed = {r["seed"]: r for r in s["seeds"]}
    assert by_seed[0]["reference"]["reached"] == {"85": 200.0, "88": 300.0, "89.1": 310.0}
    assert by_seed[0]["ours"]["reached"] == {"85": 50.0, "88": 100.0, "89.1": 165.0}
    assert by_seed[1]["reference"]["reached"]["89.1"] is None  # 88.9 in its epochs, 89.0 with TTA
    assert by_seed[1]["ours"]["reached"] == {"85": 100.0, "88": 100.0, "89.1": 160.0}
    assert by_seed[2]["ours"]["reached"] == {"85": 100.0, "88": 160.0, "89.1": None}
    assert by_seed[0]["ratio"]["85"] == pytest.approx(50 / 200)
    assert by_seed[0]["ratio"]["89.1"] == pytest.approx(165 / 310)
    assert by_seed[1]["ratio"]["89.1"] is None
    m = s["median"]
    # medians over the seeds, one that never reached a level counting as the slowest
    assert m["reference"]["reached"] == {"85": 200.0, "88": 300.0, "89.1": 310.0}
    assert m["ours"]["reached"] == {"85": 100.0, "88": 100.0, "89.1": 165.0}
    assert (m["reference"]["final"], m["reference"]["final_min"], m["reference"]["final_max"]) == (
        pytest.approx(89.5),
        pytest.approx(89.0),
        pytest.approx(89.9),
    )
    assert m["ours"]["final"] == pytest.approx(89.3) and m["ours"]["train_seconds"] == 165.0
    assert m["ratio"]["85"] == pytest.approx(0.5) and m["ratio"]["89.1"] == pytest.approx(165 / 310)
    lines = race.table(s)
    assert "| median | ours | 100 s | 100 s | 165 s | 89.30 % (88.90-89.80) | 165 s |" in lines
    assert "| median | ours / reference | 0.50x | 0.33x | 0.53x |  | 0.53x |" in lines
    assert "| 1 | ours / reference | 0.50x | 0.33x |  |  | 0.53x |" in lines  # 100/200, 100/300, 165/312
    assert any(
        line.startswith("| 2 | reference (airbench93's own network, bf16, 3 epoch(s))") for line in lines
    )


def test_race_median_counts_a_seed_that_never_got_there_as_slowest():
    race = load("race_reference")
    assert race.median_or_none([None, 3.0, 5.0]) == 5.0
    assert race.median_or_none([None, None, 5.0]) is None
    assert race.median_or_none([4.0, 2.0]) == 3.0


def test_race_subset_links_the_first_images_of_each_class(tmp_path):
    race = load("race_reference")
    for split, n in (("train", 5), ("test", 2)):
        for c in ("cat", "dog"):
            (tmp_path / "data" / split / c).mkdir(parents=True)
            for i in range(n):
                (tmp_path / "data" / split / c / f"{i:02d}.jpg").write_bytes(b"x")
    sub = race.make_subset(tmp_path / "data", tmp_path / "sub", 6, 2)
    assert sorted(p.name for p in (sub / "train" / "cat").iterdir()) == ["00.jpg", "01.jpg", "02.jpg"]
    assert sorted(p.name for p in (sub / "test" / "dog").iterdir()) == ["00.jpg"]
    assert (sub / "train" / "dog" / "02.jpg").resolve() == (tmp_path / "data/train/dog/02.jpg").resolve()
    with pytest.raises(ValueError, match="fewer than the 2 classes"):
        race.make_subset(tmp_path / "data", tmp_path / "sub2", 6, 1)


def test_race_starts_both_together_with_one_thread_each(tmp_path):
    race = load("race_reference")
    script = (
        "import os, sys, time; print(time.time(), os.environ['OMP_NUM_THREADS'], os.nice(0)); "
        "time.sleep(float(sys.argv[1]))"
    )
    commands = {side: [sys.executable, "-c", script, t] for side, t in (("reference", "0.6"), ("ours", "0"))}
    logs = {side: tmp_path / f"{side}.log" for side in commands}
    result = race.run_pair(commands, logs, nice=3)
    (t_ref, threads_ref, nice_ref), (t_ours, threads_ours, nice_ours) = (
        logs[side].read_text().split() for side in ("reference", "ours")
    )
    assert abs(float(t_ref) - float(t_ours)) < 0.5  # both started before either ended
    assert threads_ref == threads_ours == "1"
    assert int(nice_ref) == int(nice_ours) == os.nice(0) + 3
    assert result["returncode"] == {"reference": 0, "ours": 0}
    assert result["wall_seconds"]["reference"] >= 0.6 > result["wall_seconds"]["ours"]


def test_an_interrupted_race_leaves_no_run_behind(tmp_path, monkeypatch):
    race = load("race_reference")
    script = "import os, time; print(os.getpid(), flush=True); time.sleep(120)"
    commands = {side: [sys.executable, "-c", script] for side in ("reference", "ours")}
    logs = {side: tmp_path / f"{side}.log" for side in commands}
    sleep, naps = race.time.sleep, []

    def interrupted_after_3_s(seconds):
        naps.append(seconds)
        if len(naps) > 30:  # the waiting loop naps 0.1 s at a time
            raise KeyboardInterrupt
        sleep(seconds)

    monkeypatch.setattr(race.time, "sleep", interrupted_after_3_s)
    with pytest.raises(KeyboardInterrupt):
        race.run_pair(commands, logs, nice=0)
    pids = [int(logs[side].read_text()) for side in commands]
    assert len(set(pids)) == 2 and not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_a_failing_run_stops_the_other(tmp_path):
    race = load("race_reference")
    commands = {
        "reference": [sys.executable, "-c", "import time; time.sleep(120)"],
        "ours": [sys.executable, "-c", "raise SystemExit(2)"],
    }
    logs = {side: tmp_path / f"{side}.log" for side in commands}
    t = time.perf_counter()
    result = race.run_pair(commands, logs, nice=0)
    assert time.perf_counter() - t < 60
    assert result["failed"] == "ours" and result["returncode"]["ours"] == 2
    assert result["returncode"]["reference"] == -15  # terminated (SIGTERM)


def test_race_seeds_the_reference_and_gives_both_the_same_precision(tmp_path):
    race = load("race_reference")
    args = race.argparse.Namespace(
        reference=Path("ref.py"),
        variant="93",
        bf16=True,
        epochs=None,
        ours="--recipe cifar-fast-93",
        levels=[85.0],
    )
    ref = race.reference_command(args, Path("data"), Path("cache"), 2)
    assert ref[1:3] == ["-c", race.SEEDED] and ref[3:7] == ["2", "ref.py", "data", "93"]
    assert "--bf16" in ref
    ours = race.ours_command(args, Path("data"), 2, Path("out"))
    assert ours[2:6] == ["cnnarch.cli", "train", "--recipe", "cifar-fast-93"]
    assert ours[ours.index("--threads") + 1] == "1" and ours[ours.index("--seed") + 1] == "2"
    assert "--amp" in ours and "--channels-last" in ours
    args.bf16 = False
    assert "--bf16" not in race.reference_command(args, Path("data"), Path("cache"), 2)
    assert "--no-amp" in race.ours_command(args, Path("data"), 2, Path("out"))
    # the seed shim: the script sees its own argv and the generator seeded as torch.manual_seed does
    import torch

    stub = tmp_path / "stub.py"
    stub.write_text("import sys, torch; print(sys.argv[1:], torch.randint(1000, (3,)).tolist())")
    out = subprocess.run(
        [sys.executable, "-c", race.SEEDED, "7", str(stub), "a", "b"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    draws = {seed: torch.Generator().manual_seed(seed) for seed in (7, 8)}
    expected = {seed: torch.randint(1000, (3,), generator=g).tolist() for seed, g in draws.items()}
    assert expected[7] != expected[8]
    assert out.strip() == f"['a', 'b'] {expected[7]}"
