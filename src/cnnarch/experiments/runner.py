"""Running an experiment: its output folder and state, and resumable training runs under a time limit.
The report (markdown, figures, metrics files) is :mod:`cnnarch.experiments.report`'s.

Layout of an experiment's output folder::

    README.md        the report
    *.png            its figures
    metrics.csv      one row per run and epoch (the raw numbers the report's sentences come from)
    metrics.json     the same per run, plus the final numbers and each run's state
    state.json       command, budget, and the wall time of every invocation (resumes add theirs)
    runs/<run>/      cnnarch.train run directories (config.json, metrics.csv, last.pt, ...)

A run is resumed from its ``last.pt`` (refused when the checkpoint's configuration differs from the
experiment's in anything that changes the computation); a finished run (``status.json``) is not trained
again. Training runs advance in rounds, one epoch of every run per round (each paused, its schedule left
whole), so that a time limit (``--time-limit``) stops all of them at the same point of their schedules
and the report compares like with like. Every start or resume of a run appends the machine that trains
it to the run's ``machines.jsonl``.

This module is the experiments' only user of :mod:`cnnarch.train` (besides ``evaluate_ensemble``).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnarch.data.base import atomic_file
from cnnarch.train import (
    DataBundle,
    NonFiniteLossError,
    TrainConfig,
    Trainer,
    build_data,
    predict_probs,
    resolve_config,
)
from cnnarch.train.checkpoint import load_checkpoint
from cnnarch.train.config import bf16_is_fast, cpu_flags, cpu_model, resume_conflicts
from cnnarch.train.evaluate import model_from_checkpoint


@dataclass
class Context:
    """One invocation of ``cnnarch experiment NAME``."""

    name: str
    output: Path
    budget: float | str = 1.0  # a scale of the experiment's default schedule, or a named schedule
    data: str | None = None
    resume: bool = False
    device: str | None = None
    time_limit: float | None = None  # seconds from the start of this invocation
    limit_train: int | None = None  # caps for tests and quick looks, applied on top of the budget's
    limit_val: int | None = None  # the held-out set is the test set
    command: str = ""
    log: Callable[[str], None] = field(default=lambda s: print(s, flush=True))
    t0: float = field(default_factory=time.perf_counter)
    stopped_early: bool = False
    began: bool = False  # this invocation is recorded in state.json (not --report-only)

    def __post_init__(self):
        self.output = Path(self.output)
        if isinstance(self.budget, str):
            try:
                self.budget = float(self.budget)
            except ValueError:
                pass  # a name: the experiment checks that it has it
        if isinstance(self.budget, float | int) and not self.budget > 0:
            raise ValueError(f"--budget must be > 0, got {self.budget}")
        if not self.command:
            self.command = "cnnarch " + shlex.join(sys.argv[1:])

    @property
    def runs(self) -> Path:
        return self.output / "runs"

    def time_up(self) -> bool:
        return self.time_limit is not None and time.perf_counter() - self.t0 >= self.time_limit

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    @property
    def named_budget(self) -> str | None:
        return self.budget if isinstance(self.budget, str) else None

    def scaled(self, n: float, cap: int | None = None, minimum: int = 1) -> int:
        """``n`` times the budget, rounded, at least ``minimum`` and at most ``cap``."""
        v = max(minimum, round(n * self.budget))
        return v if cap is None else min(v, cap)

    def cap_train(self, n: int | None) -> int | None:
        return _min_none(n, self.limit_train)

    def cap_val(self, n: int | None) -> int | None:
        """The held-out images of a run: ``n`` (the budget's), at most --limit-val; a budget below
        --limit-val is said, not applied silently."""
        if n is not None and self.limit_val is not None and n < self.limit_val:
            print(
                f"--limit-val {self.limit_val}: the budget holds out {n:,} test images in this run; "
                "a larger --budget holds out more",
                file=sys.stderr,
            )
        return _min_none(n, self.limit_val)


def _min_none(a: int | None, b: int | None) -> int | None:
    return min((v for v in (a, b) if v is not None), default=None)


# ---------------------------------------------------------------------------------------------- state


def read_state(ctx: Context) -> dict:
    path = ctx.output / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def begin(ctx: Context) -> dict:
    """Check the output folder (an existing one needs ``--resume``) and record this invocation."""
    state = read_state(ctx)
    if state and not ctx.resume:
        raise ValueError(
            f"{ctx.output} already holds a run of this experiment; pass --resume to continue it "
            f"(or --report-only to redo its report), or choose another --output"
        )
    if state and state.get("experiment") != ctx.name:
        raise ValueError(f"{ctx.output} holds the experiment {state.get('experiment')!r}, not {ctx.name!r}")
    if state and state.get("budget") != ctx.budget:
        raise ValueError(
            f"--resume {ctx.output}: it was started with --budget {state.get('budget')}, not {ctx.budget}; "
            "resume with the same budget or start another --output"
        )
    state.update(experiment=ctx.name, budget=ctx.budget, limit_train=ctx.limit_train, limit_val=ctx.limit_val)
    state.setdefault("invocations", [])
    state["invocations"].append({"command": ctx.command, "started": now(), "wall_s": None})
    ctx.output.mkdir(parents=True, exist_ok=True)
    write_json(ctx.output / "state.json", state)
    ctx.began = True
    return state


def finish(ctx: Context, stopped_early: bool) -> None:
    """Record this invocation's wall time (the report sums them)."""
    state = read_state(ctx)
    state["invocations"][-1].update(
        wall_s=round(time.perf_counter() - ctx.t0, 1), stopped_early=stopped_early
    )
    write_json(ctx.output / "state.json", state)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def write_json(path: Path, obj) -> None:
    """``obj`` as indented JSON, written atomically (a killed run leaves the old file or the new one)."""
    with atomic_file(path) as f:
        f.write((json.dumps(obj, indent=2) + "\n").encode())


# ---------------------------------------------------------------------------------------------- training


@dataclass
class RunSpec:
    """One training run of an experiment: its name (folder), label (legend) and configuration.

    ``model`` builds the network when it is not in the zoo (``cfg.model`` then only names it)."""

    name: str
    label: str
    cfg: TrainConfig
    model: Callable[[], nn.Module] | None = None


def base_config(ctx: Context, **values) -> TrainConfig:
    """A configuration for ``ctx``: no validation split (the curves' held-out set is the test set, as in
    the papers' figures), mixed precision and channels-last on a GPU."""
    cuda = ctx.torch_device.type == "cuda"
    defaults = dict(val_split=0.0, log_interval=0, amp=cuda, channels_last=cuda, device=ctx.device, workers=0)
    values = {**defaults, **values}
    values["limit_train"] = ctx.cap_train(values.get("limit_train"))
    values["limit_val"] = ctx.cap_val(values.get("limit_val"))
    if values["limit_train"] is not None:  # a tiny subset still gets a few batches per epoch
        values["batch_size"] = max(1, min(values.get("batch_size", 128), values["limit_train"] // 4))
    return resolve_config(None, data=ctx.data, output=str(ctx.runs / "_data"), **values)


def load_data(cfg: TrainConfig, per_epoch_test: bool = True) -> DataBundle:
    """The data of ``cfg`` with the test set as the held-out set: evaluated after every epoch
    (``per_epoch_test``) or left as ``test`` for the caller to use once at the end."""
    data = build_data(cfg, progress=False)
    if data.test is None:
        raise FileNotFoundError(
            f"--data {cfg.dataset.data}: the experiments need a test split (a test/ folder)"
        )
    if per_epoch_test:
        data.val, data.test = data.test, None
    return data


def schedule(iterations: int, steps_per_epoch: int, milestones=(0.5, 0.75)) -> dict:
    """He et al.'s CIFAR schedule compressed to ``iterations``: lr /10 at 50% and 75% (32k and 48k of 64k)."""
    iterations = max(1, iterations)
    return dict(
        iterations=iterations,
        epochs=max(1, math.ceil(iterations / steps_per_epoch)),
        sched="multistep",
        sched_unit="iter",
        decay_milestones=tuple(sorted({max(1, round(m * iterations)) for m in milestones})),
    )


def run_status(run_dir: Path) -> dict:
    path = run_dir / "status.json"
    return json.loads(path.read_text()) if path.exists() else {"state": "pending"}


def _epochs_done(run_dir: Path) -> int:
    last = run_dir / "last.pt"
    return load_checkpoint(last)["epoch"] + 1 if last.exists() else 0


def planned_epochs(cfg: TrainConfig, data: DataBundle) -> int:
    """Epochs the trainer will run for ``cfg`` on ``data`` (as Trainer.total_epochs)."""
    return cfg.schedule.total_epochs(max(1, len(data.train)))


def adoptable(cfg: TrainConfig, checkpoint: Path) -> TrainConfig:
    """``cfg`` resuming ``checkpoint``, which must come from a run of the same configuration (a run folder
    made by ``cnnarch train`` with the same options is adopted); anything else is refused by name."""
    saved = TrainConfig.from_dict(load_checkpoint(checkpoint)["config"])
    ours = {k: v for k, v in cfg.flat().items() if k != "notes"}
    bad = resume_conflicts(saved, ours)
    if bad:
        raise ValueError(
            f"{checkpoint} was trained with another configuration than this experiment's:\n  "
            + "\n  ".join(bad).replace("command line gives", "the experiment has")
            + f"\nmove {checkpoint.parent} away (or choose another --output) to train it anew"
        )
    return cfg.replace(resume=str(checkpoint))


def machine_record(from_epoch: int, threads: int | None = None) -> dict:
    """Where a run (re)starts: the date, the CPU with the flags that decide its speed, the GPU if any."""
    record = {
        "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": " ".join(sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})),
        "threads": threads or torch.get_num_threads(),
        "from_epoch": from_epoch,
    }
    if torch.cuda.is_available():
        record["gpu"] = torch.cuda.get_device_name(0)
    return record


def read_machines(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "machines.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


def fast_precision(ctx: Context) -> dict:
    """bf16 autocast and channels-last where they are fast (a GPU, a CPU with AVX512-BF16 or AMX)."""
    on = bf16_is_fast(ctx.torch_device.type)
    return {"amp": on, "channels_last": on}


def train_rounds(ctx: Context, specs: list[RunSpec], data: DataBundle) -> bool:
    """Train every run to the end of its schedule, one epoch of each per round; returns False when the
    time limit stopped them first. A run whose loss became NaN/inf is marked "diverged" and left.

    The trainer itself is silent (its configuration would be printed every round); one line per run
    and round is logged from the metrics row that ``fit()`` returns."""
    dirs = {s.name: ctx.runs / s.name for s in specs}
    data = dataclasses.replace(data, test=None)  # the trainer would test after every round
    total = {s.name: planned_epochs(s.cfg, data) for s in specs}
    done = {s.name: _epochs_done(dirs[s.name]) for s in specs}
    recorded: set[str] = set()
    for round_ in range(1, max(total.values()) + 1):
        for s in specs:
            d = dirs[s.name]
            if run_status(d)["state"] in ("done", "diverged") or done[s.name] >= round_:
                continue
            if ctx.time_up():
                ctx.log(
                    f"time limit ({ctx.time_limit:.0f} s) reached: stopping before {s.name} epoch {round_}"
                )
                ctx.stopped_early = True
                return False
            cfg = s.cfg.replace(output=str(d))
            if (d / "last.pt").exists():
                cfg = adoptable(cfg, d / "last.pt")
            if s.name not in recorded:
                d.mkdir(parents=True, exist_ok=True)
                with (d / "machines.jsonl").open("a") as f:
                    f.write(json.dumps(machine_record(done[s.name], cfg.run.threads)) + "\n")
                recorded.add(s.name)
            try:
                row = Trainer(cfg, data, model=s.model, log=lambda _: None).fit(until_epoch=round_)
            except NonFiniteLossError as e:
                ctx.log(f"{s.name}: {e}")
                write_json(d / "status.json", {"state": "diverged", "message": str(e), "epoch": round_})
                continue
            done[s.name] = round_
            if round_ >= total[s.name]:
                write_json(d / "status.json", {"state": "done", "epochs": round_})
            ctx.log(
                f"[{ctx.name}] {s.name} epoch {round_}/{total[s.name]} step {row['step']}: "
                f"train err {100 - row['train_top1']:.2f}%"
                + (f", test err {100 - row['val_top1']:.2f}%" if "val_top1" in row else "")
                + f" ({row['seconds']:.1f} s)"
            )
    return True


def predict(ctx: Context, spec: RunSpec, batches) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities and labels of a run's last weights (evaluation mode) over ``batches``."""
    ckpt = load_checkpoint(ctx.runs / spec.name / "last.pt")
    model = model_from_checkpoint(ckpt, None if spec.model is None else spec.model())
    return predict_probs(model, batches, None, ctx.torch_device)


# ---------------------------------------------------------------------------------------------- results

FLOAT_COLUMNS = ("step", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "seconds")


def read_rows(run_dir: Path) -> list[dict]:
    """A run's ``metrics.csv`` as numbers (missing values are NaN)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        {"epoch": int(r["epoch"]), **{k: float(r.get(k) or math.nan) for k in FLOAT_COLUMNS}} for r in rows
    ]


def collect(ctx: Context, specs: list[RunSpec]) -> dict:
    """Per run: label, state, per-epoch curves (step, train/test error, train loss) and final numbers."""
    runs = {}
    for s in specs:
        d = ctx.runs / s.name
        status = run_status(d)
        curve = [
            {
                "epoch": r["epoch"],
                "step": int(r["step"]),
                "train_err": 100 - r["train_top1"],
                "test_err": 100 - r["val_top1"],
                "train_loss": r["train_loss"],
                "lr": r["lr"],
                "seconds": r["seconds"],
            }
            for r in read_rows(d)
        ]
        runs[s.name] = {
            "label": s.label,
            "model": s.cfg.model,
            "state": status["state"],
            "message": status.get("message"),
            "planned_epochs": s.cfg.schedule.epochs,
            "planned_iterations": s.cfg.schedule.iterations,
            "curve": curve,
            "final": curve[-1] if curve else None,
        }
    return runs
