"""``dropout``: AlexNet's 50% dropout in the FC layers (Krizhevsky et al. 2012, sec. 4.2: "without dropout,
our network exhibits substantial overfitting").

A VGG-style network for 32x32 images (conv3x3-ReLU-max-pool with 32-64-128 channels, then VGG's classifier
FC-ReLU-Dropout-FC-ReLU-Dropout-FC with 512 units) trained with dropout 0.5 and with dropout 0, everything
else equal: SGD momentum 0.9, lr 0.01 (/10 at 50% and 75%), weight decay 5e-4, no data augmentation and
a training subset, so that the network can overfit within the budget. The train/test gap is measured at
the end with both errors computed in evaluation mode (dropout off), so that dropout's noise does not
inflate the training error; the per-epoch curves show the running training error (dropout on).

Budget 1 (well within an hour on 2 CPU cores): 40 epochs of a 5,000-image subset, test error on 2,000
test images after every epoch; a larger budget scales the subset and the test images, a smaller one
also the epochs.
"""

from __future__ import annotations

import json
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
    predict,
    run_status,
    schedule,
    train_rounds,
    write_json,
)
from cnnarch.models.vgg import make_features
from cnnarch.tables import plural

EPOCHS = 40
OVERFIT_POINTS = 2.0  # a train/test gap below this is not called overfitting
VARIANTS = (("dropout", "dropout 0.5", 0.5), ("no-dropout", "no dropout", 0.0))
CLAIM = (
    "AlexNet (Krizhevsky et al. 2012): dropout with probability 0.5 in the first two fully connected layers "
    "reduces overfitting substantially; without it the network fits its training set far better than its "
    "test set."
)


def vgg_small(drop_prob: float = 0.5, num_classes: int = 10, widths=(32, 64, 128), hidden: int = 512):
    """VGG-style for 32x32 inputs: ``vgg.make_features`` with a max pool after each conv3x3-ReLU, then
    VGG's classifier with ``hidden`` units and ``drop_prob`` dropout."""
    return nn.Sequential(
        OrderedDict(
            features=make_features([v for w in widths for v in (w, "M")]),
            flatten=nn.Flatten(),
            classifier=nn.Sequential(
                nn.Linear(widths[-1] * 4 * 4, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(drop_prob),
                nn.Linear(hidden, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(drop_prob),
                nn.Linear(hidden, num_classes),
            ),
        )
    )


def plan(ctx: Context):
    base = base_config(
        ctx,
        model="vggsmall",
        limit_train=ctx.scaled(5_000, cap=50_000),
        limit_val=ctx.scaled(2_000, cap=10_000),
        batch_size=128,
        lr=0.01,
        momentum=0.9,
        weight_decay=5e-4,
        augment="none",
        seed=0,
    )
    data = load_data(base)
    sched = schedule(ctx.scaled(EPOCHS, cap=EPOCHS) * len(data.train), len(data.train))
    specs = [
        RunSpec(
            name,
            label,
            base.replace(model=f"vggsmall-{name}", **sched),
            model=lambda p=p: vgg_small(p, data.num_classes),
        )
        for name, label, p in VARIANTS
    ]
    return specs, data


def run(ctx: Context) -> bool:
    specs, data = plan(ctx)
    complete = train_rounds(ctx, specs, data)
    final_eval(ctx, specs, data)
    return complete


def final_eval(ctx: Context, specs: list[RunSpec], data) -> None:
    """Training and test error of each run's last weights in evaluation mode (dropout off)."""
    for s in specs:
        d = ctx.runs / s.name
        if not (d / "last.pt").exists():
            continue
        errors = {}
        for split, batches in (("train", data.train), ("test", data.val)):
            probs, labels = predict(ctx, s, batches)
            errors[f"{split}_err"] = 100 * (probs.argmax(1) != labels).double().mean().item()
        write_json(d / "final_eval.json", {"state": run_status(d)["state"], **errors})


def conclusions(final: dict) -> list[str]:
    """``final[name]`` is ``{"train_err", "test_err"}`` (evaluation mode, percent) or None."""
    with_d, without = final.get("dropout"), final.get("no-dropout")
    if with_d is None or without is None:
        return ["The two runs cannot be compared: at least one has no finished epoch."]
    g_with = with_d["test_err"] - with_d["train_err"]
    g_without = without["test_err"] - without["train_err"]
    out = [
        f"Without dropout: training error {pct(without['train_err'])}, test error "
        f"{pct(without['test_err'])}, gap {g_without:.2f} points.",
        f"With dropout 0.5: training error {pct(with_d['train_err'])}, test error {pct(with_d['test_err'])}, "
        f"gap {g_with:.2f} points.",
        f"Dropout narrowed the train/test gap by {g_without - g_with:.2f} points."
        if g_with < g_without
        else "Dropout did not narrow the train/test gap, at this budget.",
        f"Dropout lowered the test error: {pct(with_d['test_err'])} vs {pct(without['test_err'])}."
        if with_d["test_err"] < without["test_err"]
        else f"Dropout did not lower the test error, at this budget: {pct(with_d['test_err'])} vs "
        f"{pct(without['test_err'])}.",
    ]
    if g_without < OVERFIT_POINTS:
        out.append(
            f"Without dropout the network did not overfit at this budget (gap {g_without:.2f} < "
            f"{OVERFIT_POINTS} points), so this run cannot show what dropout does against overfitting."
        )
    return out


def report(ctx: Context):
    specs, data = plan(ctx)
    runs = collect(ctx, specs)
    final = {}
    for s in specs:
        path = ctx.runs / s.name / "final_eval.json"
        final[s.name] = json.loads(path.read_text()) if path.exists() else None
    lines = conclusions(final)
    write_metrics(ctx, runs, {"final_eval_mode": final, "conclusions": lines})
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for (name, _, _), color in zip(VARIANTS, ("tab:blue", "tab:red"), strict=True):
        plot_errors(ax, runs[name]["curve"], color, runs[name]["label"])
    ax.set_xlabel("iterations")
    ax.set_ylabel("error (%)")
    ax.set_title("thin: training error (running, dropout on); bold: test error")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, ctx.output / "dropout.png")
    s = specs[0].cfg
    rows = [
        [
            runs[n]["label"],
            runs[n]["state"],
            runs[n]["final"]["step"] if runs[n]["final"] else 0,
            pct(f["train_err"]) if f else "n/a",
            pct(f["test_err"]) if f else "n/a",
            f"{f['test_err'] - f['train_err']:.2f}" if f else "n/a",
        ]
        for n, f in final.items()
    ]
    setup = [
        "network: 3 x (conv3x3-ReLU, max pool 2x2), 32-64-128 channels; FC 2048-512-512-10 with dropout "
        "after the first two FC layers' ReLUs (VGG's classifier, AlexNet's placement)",
        f"SGD momentum {s.optim.momentum}, lr {s.optim.lr}, weight decay {s.optim.weight_decay}, batch "
        f"{s.schedule.batch_size}, no augmentation; "
        f"lr /10 at iterations {', '.join(map(str, s.schedule.decay_milestones))}",
        f"schedule: {s.schedule.iterations} iterations ({plural(s.schedule.epochs, 'epoch')} of "
        f"{data.train.num_images} training images); test error after every epoch on "
        f"{data.val.num_images} test images",
    ]
    sections = [
        "## Result (last weights, evaluation mode)",
        "",
        md_table(["run", "state", "iterations", "training error", "test error", "gap (points)"], rows),
        "",
        "![train/test gap](dropout.png)",
        "",
        *conclusions_section(lines),
    ]
    return write_report(ctx, "Dropout: the train/test gap with and without it", CLAIM, setup, sections)
