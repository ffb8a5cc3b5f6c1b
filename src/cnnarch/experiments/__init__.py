"""cnnarch.experiments: the lecture's claims that are experiments, not arithmetic, as commands.

``cnnarch experiment NAME`` runs one (resumably) and writes a report folder: README.md, PNG figures, the
raw metrics, and the command, machine, wall time and date. Each experiment is a module with ``run(ctx)``
(train; returns False when the time limit stopped it) and ``report(ctx)`` (write the report from what is
on disk) with :mod:`cnnarch.experiments.runner` (output folder, state, resumable training runs) and
:mod:`cnnarch.experiments.report` (README, figures, metrics files). See docs/experiments.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnarch.experiments.runner import Context

EXPERIMENTS = {
    "degradation": "plain-20/56 against ResNet-20/56: training and test error against iterations; "
    "--budget cosine15 or paper for the CIFAR ResNet family beside the paper's Table 6",
    "ensemble": "k networks that differ only in seed, and their softmax average, as k grows",
    "normalization": "the same small network with no normalization, LRN and batch norm, at two "
    "learning rates",
    "dropout": "a VGG-style network with and without 50% dropout in its FC layers: the train/test gap",
    "googlenet-aux": "GoogLeNet (the paper's, no batch norm) with its auxiliary losses weighted 0.3 and 0: "
    "the gradient each stage receives, training and test error",
    "inception-cost": "naive against 1x1-reduced Inception modules, and GoogLeNet's modules (no training)",
    "architectures": "the zoo at 224x224: published accuracy against operations, and our CIFAR-10 runs",
}


def get_experiment(name: str):
    if name not in EXPERIMENTS:
        import difflib

        close = difflib.get_close_matches(name, EXPERIMENTS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown experiment {name!r}{hint} (known: {', '.join(EXPERIMENTS)})")
    return importlib.import_module(f"cnnarch.experiments.{name.replace('-', '_')}")


def run_experiment(ctx: Context, report_only: bool = False):
    """Run (unless ``report_only``) and report; returns the report's path."""
    from cnnarch.experiments.runner import begin, finish

    module = get_experiment(ctx.name)
    named = getattr(module, "BUDGETS", {})
    if ctx.named_budget is not None and ctx.named_budget not in named:
        known = f"a number or one of {', '.join(named)}" if named else "a number (it has no named budgets)"
        raise ValueError(f"{ctx.name} has no budget {ctx.named_budget!r}: --budget takes {known}")
    if report_only:
        # run folders that `cnnarch train` made (a named budget's commands) are reported as they are
        if not (ctx.output / "state.json").exists() and not (ctx.named_budget and ctx.runs.is_dir()):
            raise FileNotFoundError(f"--report-only: {ctx.output} holds no run of {ctx.name} (no state.json)")
        return module.report(ctx)
    begin(ctx)
    complete = False
    try:
        complete = module.run(ctx)
        ctx.stopped_early = ctx.stopped_early or not complete
        return module.report(ctx)
    finally:
        finish(ctx, stopped_early=not complete)


def __getattr__(name: str):
    # `Context` comes with the runner, which imports torch: only when asked for, so that the command
    # line's parser (which needs EXPERIMENTS) stays light
    if name == "Context":
        from cnnarch.experiments.runner import Context

        return Context
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["EXPERIMENTS", "Context", "get_experiment", "run_experiment"]
