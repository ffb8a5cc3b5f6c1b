"""What every experiment shares: its output folder, resumable training runs, a time limit, and the
report (markdown, figures, raw metrics, and the command, machine, wall time and date that made them).

Layout of an experiment's output folder::

    README.md        the report
    *.png            its figures
    metrics.csv      one row per run and epoch (the raw numbers the report's sentences come from)
    metrics.json     the same per run, plus the final numbers and each run's state
    state.json       command, budget, and the wall time of every invocation (resumes add theirs)
    runs/<run>/      cnnarch.train run directories (config.json, metrics.csv, last.pt, ...)

A run is resumed from its ``last.pt``; a finished run (``status.json``) is not trained again. Training
runs advance in rounds, one epoch of every run per round, so that a time limit (``--time-limit``) stops
all of them at the same point of their schedules and the report compares like with like.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnarch.train import DataBundle, NonFiniteLossError, TrainConfig, Trainer, build_data, resolve_config
from cnnarch.train.checkpoint import load_checkpoint
from cnnarch.train.ensemble import model_from_checkpoint


@dataclass
class Context:
    """One invocation of ``cnnarch experiment NAME``."""

    name: str
    output: Path
    budget: float = 1.0
    data: str | None = None
    resume: bool = False
    device: str | None = None
    time_limit: float | None = None  # seconds from the start of this invocation
    limit_train: int | None = None  # caps for tests and quick looks, applied on top of the budget's
    limit_test: int | None = None
    command: str = ""
    log: Callable[[str], None] = field(default=lambda s: print(s, flush=True))
    t0: float = field(default_factory=time.perf_counter)
    stopped_early: bool = False
    no_figures: bool = False
    began: bool = False  # this invocation is recorded in state.json (not --report-only)

    def __post_init__(self):
        self.output = Path(self.output)
        if not self.budget > 0:
            raise ValueError(f"--budget must be > 0, got {self.budget}")
        if not self.command:
            self.command = "cnnarch " + shlex.join(sys.argv[1:])

    @property
    def runs(self) -> Path:
        return self.output / "runs"

    def time_up(self) -> bool:
        return self.time_limit is not None and time.perf_counter() - self.t0 >= self.time_limit

    @property
    def device_type(self) -> str:
        return (
            torch.device(self.device).type
            if self.device
            else ("cuda" if torch.cuda.is_available() else "cpu")
        )

    def scaled(self, n: float, cap: int | None = None, minimum: int = 1) -> int:
        """``n`` times the budget, rounded, at least ``minimum`` and at most ``cap``."""
        v = max(minimum, round(n * self.budget))
        return v if cap is None else min(v, cap)

    def cap_train(self, n: int | None) -> int | None:
        return _min_none(n, self.limit_train)

    def cap_test(self, n: int | None) -> int | None:
        return _min_none(n, self.limit_test)


def _min_none(a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return b if a is None else a
    return min(a, b)


# ---------------------------------------------------------------------------------------------- state


def begin(ctx: Context) -> dict:
    """Check the output folder (an existing one needs ``--resume``) and record this invocation."""
    state_path = ctx.output / "state.json"
    if state_path.exists() and not ctx.resume:
        raise ValueError(
            f"{ctx.output} already holds a run of this experiment; pass --resume to continue it "
            f"(or --report-only to redo its report), or choose another --output"
        )
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if state and state.get("experiment") != ctx.name:
        raise ValueError(f"{ctx.output} holds the experiment {state.get('experiment')!r}, not {ctx.name!r}")
    if state and state.get("budget") != ctx.budget:
        raise ValueError(
            f"--resume {ctx.output}: it was started with --budget {state.get('budget')}, not {ctx.budget}; "
            "resume with the same budget or start another --output"
        )
    state.update(
        experiment=ctx.name, budget=ctx.budget, limit_train=ctx.limit_train, limit_test=ctx.limit_test
    )
    state.setdefault("invocations", [])
    state["invocations"].append({"command": ctx.command, "started": _now(), "wall_s": None})
    ctx.output.mkdir(parents=True, exist_ok=True)
    _write_json(state_path, state)
    ctx.began = True
    return state


def finish(ctx: Context, stopped_early: bool) -> None:
    """Record this invocation's wall time (the report sums them)."""
    state_path = ctx.output / "state.json"
    state = json.loads(state_path.read_text())
    state["invocations"][-1].update(
        wall_s=round(time.perf_counter() - ctx.t0, 1), stopped_early=stopped_early
    )
    _write_json(state_path, state)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def machine() -> str:
    """CPU model and cores, accelerator, Python and torch versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"]
    if torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name(0)}")
    parts.append(f"Python {platform.python_version()}, torch {torch.__version__}")
    return "; ".join(parts)


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
    the papers' figures), mixed precision and channels-last on a GPU, one line per epoch."""
    cuda = ctx.device_type == "cuda"
    values.setdefault("val_split", 0.0)
    values.setdefault("log_interval", 0)
    values.setdefault("amp", cuda)
    values.setdefault("channels_last", cuda)
    values.setdefault("device", ctx.device)
    values.setdefault("workers", 0)
    values["limit_train"] = ctx.cap_train(values.get("limit_train"))
    values["limit_val"] = ctx.cap_test(values.get("limit_val"))
    if values["limit_train"] is not None:  # a tiny subset still gets a few batches per epoch
        values["batch_size"] = max(1, min(values.get("batch_size", 128), values["limit_train"] // 4))
    return resolve_config(None, data=ctx.data, output=str(ctx.runs / "_data"), **values)


def load_data(cfg: TrainConfig, per_epoch_test: bool = True) -> DataBundle:
    """The data of ``cfg`` with the test set as the held-out set: evaluated after every epoch
    (``per_epoch_test``) or left as ``test`` for the caller to use once at the end."""
    data = build_data(cfg, progress=False)
    if data.test is None:
        raise FileNotFoundError(f"--data {cfg.data}: the experiments need a test split (a test/ folder)")
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


def train_rounds(ctx: Context, specs: list[RunSpec], data: DataBundle) -> bool:
    """Train every run to the end of its schedule, one epoch of each per round; returns False when the
    time limit stopped them first. A run whose loss became NaN/inf is marked "diverged" and left."""
    dirs = {s.name: ctx.runs / s.name for s in specs}
    data = dataclasses.replace(data, test=None)  # the trainer would test after every round
    total = {s.name: planned_epochs(s.cfg, data) for s in specs}
    done = {s.name: _epochs_done(dirs[s.name]) for s in specs}
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
            cfg = s.cfg.replace(output=str(d), epochs=round_)
            if (d / "last.pt").exists():
                cfg = cfg.replace(resume=str(d / "last.pt"))
            try:
                Trainer(cfg, data, model=s.model, log=_quiet(ctx)).fit()
            except ModuleNotFoundError as e:
                if e.name != "matplotlib":
                    raise
                ctx.no_figures = True  # the epoch and its checkpoint were saved before the trainer's plot
            except NonFiniteLossError as e:
                ctx.log(f"{s.name}: {e}")
                _write_json(d / "status.json", {"state": "diverged", "message": str(e), "epoch": round_})
                continue
            done[s.name] = round_
            if round_ >= total[s.name]:
                _write_json(d / "status.json", {"state": "done", "epochs": round_})
            row = read_rows(d)[-1]
            ctx.log(
                f"[{ctx.name}] {s.name} epoch {round_}/{total[s.name]} step {row['step']:.0f}: "
                f"train err {100 - row['train_top1']:.2f}%"
                + (f", test err {100 - row['val_top1']:.2f}%" if not math.isnan(row["val_top1"]) else "")
            )
    return True


def planned_epochs(cfg: TrainConfig, data: DataBundle) -> int:
    """Epochs the trainer will run for ``cfg`` on ``data`` (as Trainer.total_epochs)."""
    spe = max(1, len(data.train))
    steps = cfg.epochs * spe
    if cfg.iterations:
        steps = min(steps, cfg.iterations)
    return math.ceil(steps / spe)


def _quiet(ctx: Context) -> Callable[[str], None]:
    """The trainer's per-epoch lines go through; its configuration dump (printed every round) does not."""

    def log(msg: str) -> None:
        if msg.startswith(("training ", "resuming ", "device ")):
            return
        ctx.log(msg)

    return log


def load_model(ctx: Context, spec: RunSpec, num_classes: int) -> nn.Module:
    """The trained network of a run (its last checkpoint), in eval mode."""
    ckpt = load_checkpoint(ctx.runs / spec.name / "last.pt")
    return model_from_checkpoint(ckpt, None if spec.model is None else spec.model())


# ---------------------------------------------------------------------------------------------- metrics

FLOAT_COLUMNS = ("step", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "seconds")


def read_rows(run_dir: Path) -> list[dict]:
    """A run's ``metrics.csv`` as numbers (missing values are NaN)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        row = {"epoch": int(r["epoch"])}
        for k in FLOAT_COLUMNS:
            row[k] = float(r[k]) if r.get(k) not in ("", None) else math.nan
        out.append(row)
    return out


def collect(ctx: Context, specs: list[RunSpec]) -> dict:
    """Per run: label, state, per-epoch curves (step, train/test error, train loss) and final numbers."""
    runs = {}
    for s in specs:
        d = ctx.runs / s.name
        rows = read_rows(d)
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
            for r in rows
        ]
        runs[s.name] = {
            "label": s.label,
            "model": s.cfg.model,
            "state": status["state"],
            "message": status.get("message"),
            "planned_epochs": s.cfg.epochs,
            "planned_iterations": s.cfg.iterations,
            "curve": curve,
            "final": curve[-1] if curve else None,
        }
    return runs


def write_metrics(ctx: Context, runs: dict, extra: dict | None = None) -> None:
    """metrics.json (everything) and metrics.csv (one row per run and epoch)."""
    _write_json(ctx.output / "metrics.json", {"runs": runs, **(extra or {})})
    with (ctx.output / "metrics.csv").open("w", newline="") as f:
        cols = ["run", "epoch", "step", "lr", "train_loss", "train_err", "test_err", "seconds"]
        w = csv.DictWriter(f, cols, extrasaction="ignore")
        w.writeheader()
        for name, r in runs.items():
            for row in r.get("curve", []):
                w.writerow({"run": name, **row})


# ---------------------------------------------------------------------------------------------- report


def pct(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}%"


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class figure:  # noqa: N801 (used as a context manager, like a function)
    """``with figure(ctx): ...draw...``: where matplotlib is not installed (a bare GPU machine) the figure is
    skipped and the report says so, instead of losing the numbers."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, ModuleNotFoundError) and exc.name == "matplotlib":
            self.ctx.no_figures = True
            return True
        return False


def plot_errors(ax, curve: list[dict], color: str, label: str, test_lw: float = 2.4) -> None:
    """He et al.'s Fig. 6 style: a thin line for training error, a bold one for test error."""
    steps = [c["step"] for c in curve]
    ax.plot(steps, [c["train_err"] for c in curve], "-", lw=0.9, color=color, label=f"{label} train")
    ax.plot(steps, [c["test_err"] for c in curve], "-", lw=test_lw, color=color, label=f"{label} test")


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def write_report(ctx: Context, title: str, claim: str, setup: list[str], sections: list[str]) -> Path:
    """README.md: title, the lecture's claim, provenance (command, machine, wall time, date), the setup
    (budget and schedule, said plainly), then the experiment's own sections."""
    state_path = ctx.output / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"invocations": []}
    inv = state["invocations"]
    if ctx.began and inv:  # this invocation, up to now (finish() records it after the report)
        inv[-1]["wall_s"] = round(time.perf_counter() - ctx.t0, 1)
    wall = sum(i["wall_s"] or 0 for i in inv)
    stopped = any(i.get("stopped_early") for i in inv[-1:]) or ctx.stopped_early
    lines = [f"# {title}", "", f"**The claim.** {claim}", "", "## How this report was made", ""]
    lines += [
        f"- command: `{i['command']}` ({i['started']}, {'?' if i['wall_s'] is None else i['wall_s']} s)"
        for i in inv
    ]
    lines += [
        f"- machine: {machine()}",
        f"- wall time: {wall:.0f} s in {len(inv)} invocation(s)"
        + (" (and a killed one, not recorded)" if any(i["wall_s"] is None for i in inv) else "")
        + f"; report written {_now()}",
        f"- budget: {ctx.budget:g}"
        + (f" (tiny-subset caps: train {ctx.limit_train}, test {ctx.limit_test})" if ctx.limit_train else ""),
    ]
    if inv and inv[-1]["wall_s"] is None:
        lines.append(
            "- **the last invocation was killed before it finished**: the numbers below are what the runs "
            "had reached by then"
        )
    elif stopped:
        lines.append(
            "- **stopped by the time limit** before the end of the schedule: the numbers below are what "
            "the runs reached by then"
        )
    if ctx.no_figures:
        lines.append(
            "- figures not drawn: matplotlib is not installed here (the metrics files hold every number)"
        )
    lines += ["", "## Setup", "", *[f"- {s}" for s in setup], ""]
    lines += sections
    path = ctx.output / "README.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
