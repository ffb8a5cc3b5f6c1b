"""``degradation``: the deeper plain network is worse in training *and* test (He et al. 2016, Fig. 1 and 6).

plain-20 and plain-56 against ResNet-20 and ResNet-56 (option A shortcuts), the same recipe and schedule
for each: He et al. sec. 4.2 (SGD momentum 0.9, lr 0.1, weight decay 1e-4, batch 128, 4-pixel pad and
crop, flips), with the paper's 64k iterations compressed to the budget and the learning rate divided
by 10 at 50% and 75% of them, as at 32k and 48k of 64k.

Budget 1 (about an hour on 2 quiet CPU cores; ResNet-20 trains at ~120 images/s and ResNet-56 at ~40 on
one busy core of the development machine): 640 iterations on a 10,000-image subset of the training set,
test error on 2,000 test images after every epoch. Each unit of budget adds 640 iterations, 10,000
training and 2,000 test images (up to the whole of CIFAR-10); ``--budget 100`` is the paper's schedule:
64k iterations on all 50k training images, test error on all 10k.

Differences from the paper: it trains on 45k images and picks hyperparameters on 5k; here all training
images are used and the held-out curve is the test set, as its figures show. Training error is the
running error of each epoch's augmented batches (as the paper's thin curves), not a separate pass.

Named budgets (``--budget NAME``, :data:`BUDGETS`) are whole schedules with more networks and seeds, each
run exactly the ``cnnarch train`` command that :func:`train_command` writes (a run folder that command
made is adopted and resumed): ``cosine15``, a modern compressed schedule for one CPU core per run, and
``paper``, He et al.'s own schedule (a GPU's work). Their report sets the numbers beside the paper's
Table 6 and judges the three claims of Fig. 6 from them, saying how many epochs each run has reached.
"""

from __future__ import annotations

import math
import operator
import shlex
import statistics
from dataclasses import dataclass, replace
from pathlib import Path, PurePath

from matplotlib.figure import Figure

from cnnarch.experiments.report import (
    conclusions_section,
    md_table,
    pct,
    plot_errors,
    save_figure,
    write_metrics,
    write_report,
)
from cnnarch.experiments.runner import (
    Context,
    RunSpec,
    base_config,
    collect,
    fast_precision,
    load_data,
    read_machines,
    schedule,
    train_rounds,
)
from cnnarch.tables import plural
from cnnarch.train.config import resolve_config

NETS = (
    ("plain20", "plain-20"),
    ("plain56", "plain-56"),
    ("resnet20", "ResNet-20"),
    ("resnet56", "ResNet-56"),
)
CLAIM = (
    "He et al. (2016), Fig. 1 and 6, and the lecture: a deeper plain network (56 layers) ends with higher "
    "training error *and* test error than a shallower one (20 layers), so it is not overfitting but harder "
    "to optimize; with residual connections the deeper network ends better than the shallower one."
)


def plan(ctx: Context) -> tuple[list[RunSpec], object]:
    n_train = ctx.scaled(10_000, cap=50_000)
    n_test = ctx.scaled(2_000, cap=10_000)
    base = base_config(
        ctx,
        model="resnet20",
        limit_train=n_train,
        limit_val=n_test,
        batch_size=128,
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        augment="crop,flip",
        seed=0,
    )
    data = load_data(base)
    sched = schedule(ctx.scaled(640), len(data.train))
    specs = [RunSpec(name, label, base.replace(model=name, **sched)) for name, label in NETS]
    return specs, data


def run(ctx: Context) -> bool:
    if ctx.named_budget:
        specs = named_specs(ctx)
        return train_rounds(ctx, specs, load_data(specs[0].cfg))
    specs, data = plan(ctx)
    return train_rounds(ctx, specs, data)


def conclusions(final: dict) -> list[str]:
    """Sentences from the final numbers. ``final[name]`` is ``{"train_err", "test_err"}`` (percent) or None
    for a run that has no finished epoch."""

    def both(a, b):
        return final.get(a) is not None and final.get(b) is not None

    def ended(a: str, b: str, key: str, how: str, holds) -> str:
        """Run ``a`` ended ``how`` (or did not, at this budget), with the numbers of ``a`` and ``b``."""
        x, y = final[a][key], final[b][key]
        said = f"{label(a)} ended {how}" if holds(x, y) else f"{label(a)} did not end {how}, at this budget"
        return f"{said}: {pct(x)} vs {pct(y)}."

    out = []
    kinds = (("train_err", "training error"), ("test_err", "test error"))
    if both("plain20", "plain56"):
        p20, p56 = final["plain20"], final["plain56"]
        tr, te = (p56[key] > p20[key] for key, _ in kinds)
        for key, what in kinds:
            out.append(ended("plain56", "plain20", key, f"with higher {what} than plain-20", operator.gt))
        if tr and te:
            out.append(
                "The deeper plain network is worse in training as well as in test, so its higher test error "
                "is not overfitting: the degradation pattern of He et al.'s Fig. 6 (a run shorter than the "
                "paper's cannot tell a worse end point from slower convergence)."
            )
        elif te and not tr:
            out.append("plain-56 is worse in test but not in training: this run does not show degradation.")
    else:
        out.append("plain-20 and plain-56 cannot be compared: at least one has no finished epoch.")
    if both("resnet20", "resnet56"):
        for key, what in reversed(kinds):
            out.append(ended("resnet56", "resnet20", key, f"below ResNet-20 in {what}", operator.lt))
    else:
        out.append("ResNet-20 and ResNet-56 cannot be compared: at least one has no finished epoch.")
    if both("plain56", "resnet56"):
        p, r = final["plain56"], final["resnet56"]
        lower = r["train_err"] < p["train_err"]
        out.append(
            (
                "With shortcuts the 56-layer network ended with lower training error than without"
                if lower
                else "The 56-layer ResNet did not end with lower training error than plain-56"
            )
            + f": {pct(r['train_err'])} vs {pct(p['train_err'])}."
        )
    return out


def plot(runs: dict, path) -> None:
    """The paper's Fig. 6 layout: plain nets left, ResNets right; thin lines training, bold lines test."""
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    colors = {"20": "tab:orange", "56": "tab:red"}
    for ax, family, title in ((axes[0], "plain", "plain networks"), (axes[1], "resnet", "ResNets")):
        for name, r in runs.items():
            if not name.startswith(family) or not r["curve"]:
                continue
            plot_errors(ax, r["curve"], colors[name[-2:]], r["label"], test_lw=2.6)
        ax.set_title(title)
        ax.set_xlabel("iterations")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("error (%)")
    fig.suptitle("CIFAR-10: thin lines training error, bold lines test error")
    save_figure(fig, path)


def report(ctx: Context):
    if ctx.named_budget:
        return report_named(ctx)
    specs, data = plan(ctx)
    runs = collect(ctx, specs)
    final = {
        n: (
            {"train_err": r["final"]["train_err"], "test_err": r["final"]["test_err"]} if r["final"] else None
        )
        for n, r in runs.items()
    }
    lines = conclusions(final)
    info = {"budget": ctx.budget, "train_images": data.train.num_images, "test_images": data.val.num_images}
    write_metrics(ctx, runs, {"conclusions": lines, "schedule": info})
    plot(runs, ctx.output / "degradation.png")
    s = specs[0].cfg
    rows = [
        [
            r["label"],
            r["state"],
            f"{r['final']['epoch'] if r['final'] else 0}/{r['planned_epochs']}",
            r["final"]["step"] if r["final"] else 0,
            pct(r["final"]["train_err"]) if r["final"] else "n/a",
            pct(r["final"]["test_err"]) if r["final"] else "n/a",
        ]
        for r in runs.values()
    ]
    setup = [
        f"recipe: He et al. 4.2, SGD momentum {s.optim.momentum}, lr {s.optim.lr}, weight decay "
        f"{s.optim.weight_decay}, batch {s.schedule.batch_size}, augmentation {s.dataset.augment}; "
        f"lr /10 at iterations {', '.join(map(str, s.schedule.decay_milestones))}",
        f"schedule: {s.schedule.iterations} iterations ({plural(s.schedule.epochs, 'epoch')} of "
        f"{data.train.num_images} training images); the paper runs 64,000 iterations on 50,000 images "
        "(`--budget 100`)",
        f"test error after every epoch on {data.val.num_images} test images",
        f"mixed precision: {'bf16 autocast, channels-last' if s.run.amp else 'none (fp32)'}",
    ]
    sections = [
        "## Result",
        "",
        md_table(
            ["network", "state", "epochs", "iterations", "final training error", "final test error"], rows
        ),
        "",
        "![training and test error](degradation.png)",
        "",
        *conclusions_section(lines, runs),
    ]
    return write_report(ctx, "Degradation: deeper plain networks train worse", CLAIM, setup, sections)


# ---------------------------------------------------------------------------------------------- named budgets

# He et al. (2016), Table 6: CIFAR-10 test error (%) of the ResNets (ResNet-110: best of 5 runs; their
# mean was 6.61 +- 0.16); parameters in millions as the table gives them
PAPER_TABLE6 = {
    "resnet20": (0.27, 8.75),
    "resnet32": (0.46, 7.51),
    "resnet44": (0.66, 7.17),
    "resnet56": (0.85, 6.97),
    "resnet110": (1.7, 6.43),
}


def data_label(data: str | None) -> str:
    """How the report names its data: the JPEG copy of CIFAR-10 scores lower than the original images."""
    name = PurePath(data or "cifar10").name.lower()
    if name in ("cifar10", "cifar-10"):
        return "CIFAR-10"
    return "CIFAR-10 (JPEG copy)" if "jpeg" in name or "jpg" in name else f"CIFAR-10 ({name})"


@dataclass(frozen=True)
class Schedule:
    """A named budget: its runs ``(model, seed)`` in the order they are worth training (the comparisons
    of Fig. 6 first), and the options of ``cnnarch train --recipe resnet-cifar`` that every run shares."""

    about: str
    runs: tuple[tuple[str, int], ...]
    options: dict


FIG6_RUNS = (
    ("plain20", 0),
    ("resnet20", 0),
    ("plain56", 0),
    ("resnet56", 0),
    ("plain20", 1),
    ("resnet20", 1),
    ("plain56", 1),
    ("resnet56", 1),
    ("resnet32", 0),
    ("resnet44", 0),
)
BUDGETS = {
    "cosine15": Schedule(
        "15 epochs of cosine decay with 1 epoch of warm-up, SGD with Nesterov momentum 0.9, weight decay "
        "5e-4, label smoothing 0.1, batch 128, all 50,000 training images (the shipped ResNet-20's recipe "
        "at 15 instead of 50 epochs), ten runs up to ResNet-56: about 8 hours of one quiet AMD EPYC "
        "Zen 4 core (an epoch of a 20-layer network 1.6 minutes, of a 56-layer one 4.2-4.5), two to three "
        "times that on a loaded one; ResNet-110 (twice ResNet-56) is left to the paper budget",
        FIG6_RUNS,
        dict(
            epochs=15,
            iterations=1_000_000,  # the recipe's 64k cap would not bind; the epochs end the run
            sched="cosine",
            sched_unit="iter",
            warmup_epochs=1.0,
            val_split=0.0,
            weight_decay=5e-4,
            nesterov=True,
            smoothing=0.1,
            target_accuracy=(80.0, 85.0, 90.0),
        ),
    ),
    "paper": Schedule(
        "He et al. sec. 4.2 unchanged (the resnet-cifar recipe): 64k iterations at batch 128 on 45k "
        "training images (5k held out), lr 0.1 divided by 10 at 32k and 48k, weight decay 1e-4; "
        "ResNet-110, and plain-32 and plain-44 as in Fig. 6 (a GPU's work: hours)",
        (*FIG6_RUNS, ("resnet110", 0), ("plain32", 0), ("plain44", 0)),
        {},
    ),
}


def budget_schedule(ctx: Context) -> Schedule:
    if ctx.named_budget not in BUDGETS:
        raise ValueError(
            f"degradation has no budget {ctx.budget!r}: give a number (a scale of the default schedule) or "
            f"one of {', '.join(BUDGETS)}"
        )
    return BUDGETS[ctx.named_budget]


def run_name(model: str, seed: int) -> str:
    return f"{model}-s{seed}"


def depth(model: str) -> int:
    return int(model.removeprefix("plain").removeprefix("resnet"))


def label(model: str) -> str:
    return f"{'plain' if model.startswith('plain') else 'ResNet'}-{depth(model)}"


def named_specs(ctx: Context) -> list[RunSpec]:
    """The runs of a named budget, configured as :func:`train_command` configures them (``ctx``'s
    device, data and caps added; bf16 autocast and channels-last where they are fast)."""
    sched = budget_schedule(ctx)
    options = dict(sched.options)
    if ctx.limit_train is not None:  # a tiny subset (tests, rehearsals) still gets a few batches per epoch
        options["batch_size"] = max(1, min(128, ctx.limit_train // 4))
    specs = []
    for model, seed in sched.runs:
        name = run_name(model, seed)
        cfg = resolve_config(
            "resnet-cifar",
            model=model,
            seed=seed,
            data=ctx.data,
            output=str(ctx.runs / name),
            device=ctx.device,
            limit_train=ctx.limit_train,
            limit_val=ctx.limit_val,
            log_interval=0,
            workers=0,
            **fast_precision(ctx),
            **options,
        )
        specs.append(RunSpec(name, f"{label(model)} (seed {seed})", cfg))
    return specs


def train_command(ctx: Context, spec: RunSpec) -> str:
    """The ``cnnarch train`` command that trains ``spec`` exactly (its folder is then adopted)."""
    sched = budget_schedule(ctx)
    cfg = spec.cfg
    values = {
        "recipe": "resnet-cifar",
        "model": cfg.model,
        "data": cfg.dataset.data or "cifar10",
        **sched.options,
        "amp": cfg.run.amp,
        "channels_last": cfg.run.channels_last,
        "seed": cfg.run.seed,
        "threads": 1,
        "output": cfg.run.output,
    }
    words = ["cnnarch", "train"]
    for k, v in values.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            words.append(flag if v else f"--no-{k.replace('_', '-')}")
        elif isinstance(v, tuple):
            words += [flag, *(f"{x:g}" for x in v)]
        else:
            words += [flag, f"{v:g}" if isinstance(v, float) else str(v)]
    return shlex.join(words)


def planned(cfg, curve: list[dict]) -> int:
    """Epochs the run will train (as the trainer counts them): steps per epoch from its first logged
    epoch, else from CIFAR-10's 50,000 training images less the held-out split."""
    spe = curve[0]["step"] if curve else None
    if not spe:
        n = cfg.dataset.limit_train or round(50_000 * (1 - cfg.dataset.val_split))
        spe = max(1, n // cfg.schedule.batch_size)
    return cfg.schedule.total_epochs(spe)


def cpus(machines: list[dict]) -> str:
    """Each machine a run was trained on, once: CPU (cores; the flags that set its speed), threads, GPU."""
    seen = []
    for m in machines:
        s = f"{m.get('cpu', '?')} ({m.get('cores', '?')} cores; {m.get('cpu_flags') or 'no AVX flags'})"
        s += f", {m.get('threads', '?')} thread(s)" + (f", {m['gpu']}" if m.get("gpu") else "")
        if s not in seen:
            seen.append(s)
    return "; ".join(seen) or "not recorded"


def collect_named(ctx: Context, specs: list[RunSpec]) -> dict:
    """``collect``'s runs with each run's model, seed, planned and trained epochs, state and machines."""
    runs = collect(ctx, specs)
    for s in specs:
        r = runs[s.name]
        r["seed"] = s.cfg.run.seed
        r["planned_epochs"] = planned(s.cfg, r["curve"])
        r["epochs"] = len(r["curve"])
        r["state"] = (
            "done" if r["epochs"] >= r["planned_epochs"] else "partial" if r["epochs"] else "not started"
        )
        r["machines"] = read_machines(ctx.runs / s.name)
        r["train_minutes"] = sum(c["seconds"] for c in r["curve"] if not math.isnan(c["seconds"])) / 60
    return runs


def by_model(runs: dict, state: str | None = "done") -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in runs.values():
        if state is None or r["state"] == state:
            out.setdefault(r["model"], []).append(r)
    return out


def spread(values: list[float]) -> float:
    return max(values) - min(values)


def named_conclusions(runs: dict, skip: int) -> list[str]:
    """The three claims of Fig. 6 and Table 6 judged from the runs (``collect_named``'s dict), each said
    to hold or not, or to be not yet judged with the epochs the runs have reached. ``skip``: the first
    epochs left out of the epoch-by-epoch comparison of plain-56 with plain-20."""
    out = []
    # 1. degradation: plain-56 above plain-20 in training and test error at every epoch after the first few
    seeds = sorted({r["seed"] for r in runs.values() if r["model"] in ("plain20", "plain56")})
    for seed in seeds:
        p20, p56 = runs.get(run_name("plain20", seed)), runs.get(run_name("plain56", seed))
        if not (p20 and p56):
            continue
        e20 = {c["epoch"]: c for c in p20["curve"]}
        e56 = {c["epoch"]: c for c in p56["curve"]}
        judged = sorted(e for e in e20.keys() & e56.keys() if e > skip)
        total = p56["planned_epochs"]
        if not judged:
            out.append(
                f"plain-56 against plain-20 (seed {seed}): not judged yet; plain-20 has {p20['epochs']} and "
                f"plain-56 {p56['epochs']} of {total} epochs, and the first {skip} are left out."
            )
            continue
        worse = {
            what: [e for e in judged if not e56[e][key] > e20[e][key]]
            for key, what in (("train_err", "training"), ("test_err", "test"))
        }
        last = judged[-1]
        at = (
            f"at epoch {last}: training {pct(e56[last]['train_err'])} against {pct(e20[last]['train_err'])}, "
            f"test {pct(e56[last]['test_err'])} against {pct(e20[last]['test_err'])}"
        )
        span = f"epochs {judged[0]}-{last} of {total}" + (
            "" if last >= total else f"; the runs have reached {last} of {total} epochs"
        )
        if not any(worse.values()):
            out.append(
                f"Holds (seed {seed}): plain-56 has higher training and higher test error than plain-20 at "
                f"every logged epoch after the first {skip} ({span}); {at}."
            )
        else:
            fails = "; ".join(
                f"not higher in {what} error at epoch(s) {', '.join(map(str, es))}"
                for what, es in worse.items()
                if es
            )
            out.append(f"Does not hold (seed {seed}): plain-56 against plain-20, {fails} ({span}); {at}.")
    if not seeds:
        out.append("plain-56 against plain-20: not judged; neither run has started.")
    done = by_model(runs)
    everything = by_model(runs, None)

    def progress(model: str) -> str:
        rs = everything.get(model, [])
        done_epochs = (f"seed {r['seed']}: {r['epochs']} of {r['planned_epochs']} epochs" for r in rs)
        return ", ".join(done_epochs) or "none"

    # 2. ResNet-56 below ResNet-20 in final test error by more than the seed-to-seed spread
    if "resnet20" in done and "resnet56" in done:
        t20 = [r["final"]["test_err"] for r in done["resnet20"]]
        t56 = [r["final"]["test_err"] for r in done["resnet56"]]
        gap = statistics.mean(t20) - statistics.mean(t56)
        means = (
            f"mean final test error of {len(t56)} and {len(t20)} seed(s): {pct(statistics.mean(t56))} "
            f"against {pct(statistics.mean(t20))}"
        )
        if max(len(t20), len(t56)) < 2:
            out.append(
                f"ResNet-56 against ResNet-20: not judged, only one finished seed each, so no seed-to-seed "
                f"spread yet ({means})."
            )
        else:
            noise = max(spread(t) for t in (t20, t56) if len(t) > 1)
            verdict = "Holds" if gap > noise else "Does not hold"
            out.append(
                f"{verdict}: ResNet-56 is below ResNet-20 by {gap:.2f} points ({means}); the largest "
                f"seed-to-seed spread of the two is {noise:.2f} points."
            )
    else:
        out.append(
            "ResNet-56 against ResNet-20: not judged yet, it needs finished runs (ResNet-20: "
            f"{progress('resnet20')}; ResNet-56: {progress('resnet56')})."
        )
    # 3. ResNet test error falls with depth, among the depths the budget trains
    depths = sorted({depth(m) for m in everything if m.startswith("resnet")})
    finished = [d for d in depths if f"resnet{d}" in done]
    missing = [d for d in depths if f"resnet{d}" not in done]
    errs = {d: statistics.mean(r["final"]["test_err"] for r in done[f"resnet{d}"]) for d in finished}
    listed = ", ".join(f"ResNet-{d} {pct(errs[d])}" for d in finished)
    unfinished = "; not finished: " + "; ".join(f"ResNet-{d} ({progress(f'resnet{d}')})" for d in missing)
    if len(finished) < 2:
        out.append(f"ResNet error against depth: not judged yet{unfinished}.")
    else:
        rises = [(a, b) for a, b in zip(finished, finished[1:], strict=False) if not errs[b] < errs[a]]
        verdict = (
            "Holds" if not rises else "Does not hold (" + ", ".join(f"{a} to {b}" for a, b in rises) + ")"
        )
        # a rise is set beside the seed-to-seed spread measured on any network, so that a reader can tell
        # a rise from the noise of one seed; the verdict above does not depend on it
        finals = [[r["final"]["test_err"] for r in rs] for rs in done.values()]
        spreads = [spread(t) for t in finals if len(t) > 1]
        sizes = "; ".join(f"{a} to {b}: up {errs[b] - errs[a]:.2f} points" for a, b in rises)
        noise = (
            f"; the largest seed-to-seed spread measured is {max(spreads):.2f} points"
            if spreads
            else "; no network has two finished seeds yet to set it beside"
        )
        out.append(
            f"{verdict}: ResNet test error falls with depth among the finished ResNets (seed means): {listed}"
            + (f" ({sizes}{noise})" if rises else "")
            + (unfinished if missing else "")
            + "."
        )
    # the same depth with and without shortcuts
    if "plain56" in done and "resnet56" in done:
        tp = statistics.mean(r["final"]["train_err"] for r in done["plain56"])
        tr = statistics.mean(r["final"]["train_err"] for r in done["resnet56"])
        out.append(
            ("ResNet-56 ended with lower" if tr < tp else "ResNet-56 did not end with lower")
            + f" training error than plain-56: {pct(tr)} against {pct(tp)} (seed means)."
        )
    return out


def plot_named(runs: dict, path, title: str) -> None:
    """Fig. 6 per epoch: plain networks left, ResNets right; thin lines training error, bold lines test
    error; seed 0 labelled, other seeds fainter."""
    colors = {20: "tab:orange", 32: "tab:blue", 44: "tab:green", 56: "tab:red", 110: "black"}
    fig = Figure(figsize=(11, 4.4))
    axes = fig.subplots(1, 2, sharey=True)
    errs = [c[k] for r in runs.values() for c in r["curve"][1:] for k in ("train_err", "test_err")]
    top = min(100.0, 5 * math.ceil(max(errs) / 5)) if errs else 30.0  # every run after its 1st epoch
    for ax, family, name in ((axes[0], "plain", "plain networks"), (axes[1], "resnet", "ResNets")):
        for r in sorted(runs.values(), key=lambda r: (depth(r["model"]), r["seed"])):  # legend by depth
            if not r["model"].startswith(family) or not r["curve"]:
                continue
            epochs = [c["epoch"] for c in r["curve"]]
            color, alpha = colors.get(depth(r["model"]), "tab:gray"), 1.0 if r["seed"] == 0 else 0.45
            tag = label(r["model"]) if r["seed"] == 0 else None
            ax.plot(epochs, [c["train_err"] for c in r["curve"]], lw=0.9, color=color, alpha=alpha)
            ax.plot(epochs, [c["test_err"] for c in r["curve"]], lw=2.4, color=color, alpha=alpha, label=tag)
        planned_max = max((r["planned_epochs"] for r in runs.values()), default=1)
        ax.set_xlim(0, planned_max)
        ax.set_ylim(0, top)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, title="bold: test, thin: train", title_fontsize=8)
    axes[0].set_ylabel("error (%)")
    fig.suptitle(title)
    save_figure(fig, path)


def report_named(ctx: Context):
    from cnnarch.models import create_model

    sched = budget_schedule(ctx)
    specs = named_specs(ctx)
    runs = collect_named(ctx, specs)
    data = data_label(specs[0].cfg.dataset.data)
    total = max(r["planned_epochs"] for r in runs.values())
    skip = max(1, round(0.2 * total))  # "after the first few": the first fifth of the schedule
    lines = named_conclusions(runs, skip)
    trained = sum(r["epochs"] for r in runs.values())
    planned_all = sum(r["planned_epochs"] for r in runs.values())
    n_done = sum(r["state"] == "done" for r in runs.values())
    progress = (
        f"{trained} of {planned_all} epochs trained over the {len(runs)} runs; {n_done} of {len(runs)} runs "
        "finished" + ("" if n_done == len(runs) else " (the others continue with `--resume`)")
    )
    info = {"budget": ctx.budget, "about": sched.about, "progress": progress}
    write_metrics(ctx, runs, {"conclusions": lines, "schedule": info})
    plot_named(
        runs,
        ctx.output / "degradation.png",
        f"{data}, schedule {ctx.budget}: thin lines training error (augmented batches), bold lines "
        "test error",
    )
    all_runs = by_model(runs, None)
    models = sorted(
        all_runs.keys() | PAPER_TABLE6.keys(), key=lambda m: (not m.startswith("plain"), depth(m))
    )
    params = {m: sum(p.numel() for p in create_model(m).parameters()) for m in models}
    table6 = []
    for model in models:
        rs = all_runs.get(model, [])
        fin = [r["final"]["test_err"] for r in rs if r["state"] == "done"]
        if fin:
            ours = pct(statistics.mean(fin)) + (
                f" (seeds {', '.join(pct(v) for v in fin)})" if len(fin) > 1 else " (1 seed)"
            )
        else:
            ours = "not finished" if rs else f"not in the `{ctx.budget}` budget"
        now = "; ".join(
            f"seed {r['seed']}: {pct(r['final']['test_err'])} at epoch {r['epochs']} of {r['planned_epochs']}"
            for r in rs
            if r["state"] == "partial"
        )
        paper = PAPER_TABLE6.get(model)
        table6.append(
            [
                label(model),
                f"{params[model] / 1e6:.2f}M",
                ours,
                now or "",
                f"{paper[1]:.2f}% ({paper[0]}M)" if paper else "(Fig. 6 only)",
            ]
        )
    run_rows = [
        [
            r["label"],
            r["state"],
            f"{r['epochs']}/{r['planned_epochs']}",
            pct(r["final"]["train_err"]) if r["final"] else "n/a",
            pct(r["final"]["test_err"]) if r["final"] else "n/a",
            f"{r['train_minutes']:.1f}",
            cpus(r["machines"]),
        ]
        for r in runs.values()
    ]
    setup = [
        f"schedule `{ctx.budget}`: {sched.about}",
        "every run is this command with its own `--model`, `--seed` and `--output`: "
        f"`{train_command(ctx, specs[0])}`",
        f"data: {data} ({specs[0].cfg.dataset.data or 'cifar10'}); test error on the test split after "
        "every epoch; training error is the running error of each epoch's augmented batches, as the "
        "paper's thin curves",
        f"mixed precision: {'bf16 autocast, channels-last' if specs[0].cfg.run.amp else 'none (fp32)'}",
        f"progress: {progress}",
    ]
    sections = [
        f"## Beside the paper's Table 6 (test error, {data}; the paper's: CIFAR-10, 64k iterations)",
        "",
        md_table(
            [
                "network",
                "parameters",
                f"test error, {data}, finished runs",
                "unfinished runs so far",
                "He et al. Table 6 (parameters)",
            ],
            table6,
        ),
        "",
        f"The paper trained 64,000 iterations on the original images; this schedule trains "
        f"{specs[0].cfg.schedule.epochs} epochs. The JPEG copy costs accuracy by itself: the public "
        "airbench93 recipe ends 3.3 points below its published 93.0% on it (docs/cifar_fast.md).",
        "",
        "![training and test error per epoch](degradation.png)",
        "",
        f"## Runs ({data}; the CPU each ran on)",
        "",
        md_table(["run", "state", "epochs", "training error", "test error", "minutes", "machine"], run_rows),
        "",
        *conclusions_section(
            [*lines, f"The data: {progress}; the figure and tables show every epoch reached."], runs
        ),
    ]
    return write_report(
        ctx, "Degradation: deeper plain networks train worse, deeper ResNets better", CLAIM, setup, sections
    )


# ---------------------------------------------------------------------------------------------- weights


def export_weights(ctx: Context, into: str | Path) -> list[str]:
    """Each network's finished run as ``INTO/MODEL-cifar10.safetensors`` (the name under which
    ``create_model(MODEL, weights="cifar10")`` finds shipped weights), the run of the lowest seed, from
    its ``last.pt``; its metadata records the test accuracy (``results.json``), the run's name, seed and
    ``cnnarch train`` command, the CPU that trained it, the data and the date. A file already there that
    records a higher test accuracy is kept. Returns one line per network saying what was done."""
    from cnnarch.models import create_model
    from cnnarch.models.weights import load_weights_file, save_weights, with_run_record, without_machine_paths

    if not ctx.named_budget:
        raise ValueError(
            "--export-weights needs a named --budget (cosine15, paper): its runs are the networks"
        )
    into = Path(into)
    into.mkdir(parents=True, exist_ok=True)
    specs = named_specs(ctx)
    runs = collect_named(ctx, specs)
    lines = []
    for model in dict.fromkeys(s.cfg.model for s in specs):
        finished = [
            s
            for s in specs
            if s.cfg.model == model
            and runs[s.name]["state"] == "done"
            and (ctx.runs / s.name / "results.json").is_file()
        ]
        if not finished:
            lines.append(f"{model}: no finished run yet")
            continue
        spec = min(finished, key=lambda s: s.cfg.run.seed)
        last = ctx.runs / spec.name / "last.pt"
        net = create_model(model, weights=last)
        meta = with_run_record(net.weights_meta, last)
        record = {
            "run": spec.name,
            "seed": spec.cfg.run.seed,
            "command": shlex.join(map(without_machine_paths, shlex.split(train_command(ctx, spec)))),
            "schedule": ctx.budget,
            "data": data_label(spec.cfg.dataset.data),
            "cpu": cpus(meta.extra.get("machines", [])),
        }
        meta = replace(meta, source=f"{spec.name}/last.pt", extra={**meta.extra, **record})
        top1 = meta.extra.get("test_top1")
        if top1 is None:
            lines.append(f"{model}: {spec.name} has no test accuracy in its results.json; not exported")
            continue
        out = into / f"{model}-cifar10.safetensors"
        if out.is_file():
            old = load_weights_file(out).meta
            if old.extra.get("test_top1", -1.0) >= top1:
                lines.append(
                    f"{model}: kept {out} ({old.extra['test_top1']:.2f}% from {old.source}; "
                    f"{spec.name} reached {top1:.2f}%)"
                )
                continue
        save_weights(net, meta, out)
        lines.append(
            f"{model}: {out} from {spec.name} ({top1:.2f}% on {meta.extra.get('test_images')} test images)"
        )
    return lines
