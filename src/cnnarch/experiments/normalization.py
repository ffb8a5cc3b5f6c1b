"""``normalization``: AlexNet's local response normalization "does not help much" (the lecture), and batch
norm after every convolution (He et al. 2016; Ioffe & Szegedy 2015) lets a network train at a learning
rate that the same network without it cannot use well.

One small AlexNet-style network (three conv-ReLU-max-pool stages, 32-64-128 channels, one FC layer) in
three variants: no normalization, LRN after each ReLU (AlexNet's k=2, n=5, alpha=1e-4, beta=0.75), and
batch norm between each convolution and its ReLU; each at learning rate 0.01 and 0.1 (SGD momentum 0.9,
weight decay 5e-4, lr /10 at 50% and 75% of the schedule), the same seed, data and schedule.

Budget 1 (about an hour on 2 CPU cores; LRN is the slow variant, ~140 images/s on one busy core against
~400 for the others): 1,000 iterations on a 20,000-image subset, test error on 2,000 test images after
every epoch; the budget scales all three (up to the whole of CIFAR-10).
"""

from __future__ import annotations

import math
from collections import OrderedDict

from matplotlib.figure import Figure
from torch import nn

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
    load_data,
    schedule,
    train_rounds,
)
from cnnarch.models._layers import LocalResponseNorm
from cnnarch.models.vgg import make_features
from cnnarch.tables import plural

NORMS = {"none": "no normalization", "lrn": "LRN (AlexNet)", "bn": "batch norm"}
LRS = (0.01, 0.1)
CLAIM = (
    'The lecture: AlexNet\'s local response normalization "does not help much" (and is no longer used); '
    "ResNet puts batch normalization after every convolution, which lets networks train fast at high "
    "learning rates."
)


def small_net(norm: str = "none", num_classes: int = 10, widths=(32, 64, 128)) -> nn.Sequential:
    """conv3x3-[BN]-ReLU-[LRN]-maxpool x 3 (32, 64, 128 channels), global average pool, FC; the
    convolutions are ``vgg.make_features``'s, without bias before batch norm."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    bn = norm == "bn"
    layers = []
    for m in make_features([v for w in widths for v in (w, "M")], batch_norm=bn, bias=not bn):
        layers.append(m)
        if norm == "lrn" and isinstance(m, nn.ReLU):  # AlexNet's place for it: after the ReLU
            layers.append(LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
    return nn.Sequential(
        OrderedDict(
            features=nn.Sequential(*layers),
            avgpool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            fc=nn.Linear(widths[-1], num_classes),
        )
    )


def run_name(norm: str, lr: float) -> str:
    return f"{norm}-lr{lr:g}"


def plan(ctx: Context):
    base = base_config(
        ctx,
        model="smallnet",
        limit_train=ctx.scaled(20_000, cap=50_000),
        limit_val=ctx.scaled(2_000, cap=10_000),
        batch_size=128,
        momentum=0.9,
        weight_decay=5e-4,
        augment="crop,flip",
        seed=0,
    )
    data = load_data(base)
    sched = schedule(ctx.scaled(1_000), len(data.train))
    specs = [
        RunSpec(
            run_name(norm, lr),
            f"{label}, lr {lr:g}",
            base.replace(model=f"smallnet-{norm}", lr=lr, **sched),
            model=lambda norm=norm: small_net(norm, data.num_classes),
        )
        for lr in LRS
        for norm, label in NORMS.items()
    ]
    return specs, data


def run(ctx: Context) -> bool:
    specs, data = plan(ctx)
    return train_rounds(ctx, specs, data)


def conclusions(final: dict) -> list[str]:
    """``final[run_name(norm, lr)]`` is ``{"train_err", "test_err", "state"}`` (percent) or None."""
    out = []
    for lr in LRS:
        got = {n: final.get(run_name(n, lr)) for n in NORMS}
        for n, f in got.items():
            if f is not None and f.get("state") == "diverged":
                out.append(f"At lr {lr:g}, {NORMS[n]} diverged (the loss became NaN/inf).")
        ok = {
            n: f
            for n, f in got.items()
            if f is not None and f.get("state") != "diverged" and f.get("test_err") is not None
        }
        if "none" not in ok:
            continue
        ref = ok["none"]
        for n in ("lrn", "bn"):
            if n not in ok:
                continue
            d = ok[n]["test_err"] - ref["test_err"]
            verb = "lowered" if d < 0 else "raised" if d > 0 else "did not change"
            by = f" by {abs(d):.2f} points" if d else ""
            out.append(
                f"At lr {lr:g}, {NORMS[n]} {verb} the test error against no normalization{by}: "
                f"{pct(ok[n]['test_err'])} vs {pct(ref['test_err'])}; training error "
                f"{pct(ok[n]['train_err'])} vs {pct(ref['train_err'])}."
            )
        if "lrn" in ok and "bn" in ok:
            d_lrn = ok["lrn"]["test_err"] - ref["test_err"]
            d_bn = ok["bn"]["test_err"] - ref["test_err"]
            verdict = "helped less than" if d_lrn > d_bn else "did not help less than"
            out.append(
                f"At lr {lr:g}, LRN {verdict} batch norm: test error {d_lrn:+.2f} points against no "
                f"normalization with LRN, {d_bn:+.2f} with batch norm."
            )
    lo, hi = LRS
    b_lo, b_hi = final.get(run_name("bn", lo)), final.get(run_name("bn", hi))
    n_lo, n_hi = final.get(run_name("none", lo)), final.get(run_name("none", hi))
    if all(f is not None and f.get("state") != "diverged" for f in (b_lo, b_hi, n_hi)) and n_lo is not None:
        out.append(
            f"Raising the learning rate from {lo:g} to {hi:g} changed batch norm's test error from "
            f"{pct(b_lo['test_err'])} to {pct(b_hi['test_err'])}, and no normalization's from "
            f"{pct(n_lo['test_err'])} to {pct(n_hi['test_err'])}."
        )
    return out or ["No run finished an epoch: nothing to compare."]


def _final(runs: dict) -> dict:
    out = {}
    for n, r in runs.items():
        if r["final"] is None and r["state"] != "diverged":
            out[n] = None
            continue
        f = r["final"] or {}
        out[n] = {"train_err": f.get("train_err"), "test_err": f.get("test_err"), "state": r["state"]}
    return out


def report(ctx: Context):
    specs, data = plan(ctx)
    runs = collect(ctx, specs)
    lines = conclusions(_final(runs))
    write_metrics(ctx, runs, {"conclusions": lines})
    fig = Figure(figsize=(11, 7))
    axes = fig.subplots(2, len(LRS), sharex=True)
    colors = {"none": "tab:gray", "lrn": "tab:orange", "bn": "tab:blue"}
    for j, lr in enumerate(LRS):
        for norm, label in NORMS.items():
            curve = runs[run_name(norm, lr)]["curve"]
            steps = [c["step"] for c in curve]
            loss = [c["train_loss"] if math.isfinite(c["train_loss"]) else math.nan for c in curve]
            axes[0, j].plot(steps, loss, "-", color=colors[norm], label=label)
            plot_errors(axes[1, j], curve, colors[norm], label)
        axes[0, j].set_title(f"learning rate {lr:g}")
        axes[0, j].set_ylabel("training loss")
        axes[1, j].set_ylabel("error (%): thin train, bold test")
        axes[1, j].set_xlabel("iterations")
        for ax in axes[:, j]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    save_figure(fig, ctx.output / "normalization.png")
    s = specs[0].cfg
    rows = [
        [
            r["label"],
            r["state"],
            r["final"]["step"] if r["final"] else 0,
            f"{r['final']['train_loss']:.4f}" if r["final"] else "n/a",
            pct(r["final"]["train_err"]) if r["final"] else "n/a",
            pct(r["final"]["test_err"]) if r["final"] else "n/a",
        ]
        for r in runs.values()
    ]
    setup = [
        "network: 3 x (conv3x3, [batch norm], ReLU, [LRN], max pool 2x2), 32-64-128 channels, global average "
        "pool, FC; the three variants differ only in the normalization layers",
        f"SGD momentum {s.optim.momentum}, weight decay {s.optim.weight_decay}, batch "
        f"{s.schedule.batch_size}, {s.dataset.augment}; "
        f"lr /10 at iterations {', '.join(map(str, s.schedule.decay_milestones))}",
        f"schedule: {s.schedule.iterations} iterations ({plural(s.schedule.epochs, 'epoch')} of "
        f"{data.train.num_images} training images); test error after every epoch on "
        f"{data.val.num_images} test images",
    ]
    sections = [
        "## Result",
        "",
        md_table(
            ["run", "state", "iterations", "final training loss", "final training error", "final test error"],
            rows,
        ),
        "",
        "![training curves](normalization.png)",
        "",
        *conclusions_section(lines, runs),
    ]
    return write_report(ctx, "Normalization: none, LRN, batch norm", CLAIM, setup, sections)
