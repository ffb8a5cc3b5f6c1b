"""Writing an experiment's report: README.md (the claim, how the report was made, the setup, the
experiment's own sections), PNG figures, and the raw numbers in metrics.csv and metrics.json.

Figures are :class:`matplotlib.figure.Figure` objects drawn straight to PNG files (no pyplot, so no
window and no global backend state).
"""

from __future__ import annotations

import csv
import math
import os
import platform
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure

from cnnarch.experiments.runner import Context, now, read_state, write_json
from cnnarch.tables import text_table
from cnnarch.train.config import cpu_model

CONCLUSIONS = "## Conclusions (computed from the numbers above)"


def pct(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}%"


def md_table(header: list[str], rows: list[list]) -> str:
    return text_table(header, [[str(c) for c in row] for row in rows], set(), markdown=True)


def conclusions_section(lines: list[str], runs: dict | None = None) -> list[str]:
    """The report's conclusions as a list, then the message of each run that has one (a divergence)."""
    out = [CONCLUSIONS, "", *[f"- {c}" for c in lines]]
    return out + [f"- {r['label']}: {r['message']}" for r in (runs or {}).values() if r["message"]]


def plot_errors(ax, curve: list[dict], color: str, label: str, test_lw: float = 2.4) -> None:
    """He et al.'s Fig. 6 style: a thin line for training error, a bold one for test error."""
    steps = [c["step"] for c in curve]
    ax.plot(steps, [c["train_err"] for c in curve], "-", lw=0.9, color=color, label=f"{label} train")
    ax.plot(steps, [c["test_err"] for c in curve], "-", lw=test_lw, color=color, label=f"{label} test")


def save_figure(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_csv(path: Path, header: list[str], rows) -> None:
    with Path(path).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_metrics(ctx: Context, runs: dict, extra: dict | None = None) -> None:
    """metrics.json (everything) and metrics.csv (one row per run and epoch) of training runs."""
    write_json(ctx.output / "metrics.json", {"runs": runs, **(extra or {})})
    cols = ["step", "lr", "train_loss", "train_err", "test_err", "seconds"]
    rows = [[name, c["epoch"], *(c[k] for k in cols)] for name, r in runs.items() for c in r.get("curve", [])]
    write_csv(ctx.output / "metrics.csv", ["run", "epoch", *cols], rows)


def machine() -> str:
    """CPU model and cores, accelerator, Python and torch versions."""
    parts = [f"{cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"]
    if torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name(0)}")
    parts.append(f"Python {platform.python_version()}, torch {torch.__version__}")
    return "; ".join(parts)


def write_report(ctx: Context, title: str, claim: str, setup: list[str], sections: list[str]) -> Path:
    """README.md: title, the lecture's claim, provenance (command, machine, wall time, date), the setup
    (budget and schedule, said plainly), then the experiment's own sections."""
    inv = read_state(ctx).get("invocations", [])
    if ctx.began and inv:  # this invocation, up to now (finish() records it after the report)
        inv[-1]["wall_s"] = round(time.perf_counter() - ctx.t0, 1)
    wall = sum(i["wall_s"] or 0 for i in inv)
    stopped = any(i.get("stopped_early") for i in inv[-1:]) or ctx.stopped_early
    lines = [f"# {title}", "", f"**The claim.** {claim}", "", "## How this report was made", ""]
    lines += [
        f"- command: `{i['command']}` ({i['started']}, {'?' if i['wall_s'] is None else i['wall_s']} s)"
        for i in inv
    ]
    if not inv:
        lines.append(
            f"- command: `{ctx.command}`: a report of run folders that `cnnarch train` made (their "
            "commands, machines and minutes are below)"
        )
    budget = f"{ctx.budget:g}" if ctx.named_budget is None else f"{ctx.budget} (a named schedule)"
    lines += [
        f"- machine: {machine()}",
        f"- wall time: {wall:.0f} s in {len(inv)} invocation(s)"
        + (" (and a killed one, not recorded)" if any(i["wall_s"] is None for i in inv) else "")
        + f"; report written {now()}",
        f"- budget: {budget}"
        + (f" (tiny-subset caps: train {ctx.limit_train}, test {ctx.limit_val})" if ctx.limit_train else ""),
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
    lines += ["", "## Setup", "", *[f"- {s}" for s in setup], ""]
    lines += sections
    path = ctx.output / "README.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
