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
"""

from __future__ import annotations

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
    load_data,
    schedule,
    train_rounds,
)

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
    specs, data = plan(ctx)
    return train_rounds(ctx, specs, data)


def conclusions(final: dict) -> list[str]:
    """Sentences from the final numbers. ``final[name]`` is ``{"train_err", "test_err"}`` (percent) or None
    for a run that has no finished epoch."""

    def both(a, b):
        return final.get(a) is not None and final.get(b) is not None

    out = []
    if both("plain20", "plain56"):
        p20, p56 = final["plain20"], final["plain56"]
        tr = p56["train_err"] > p20["train_err"]
        te = p56["test_err"] > p20["test_err"]
        out.append(
            (
                "plain-56 ended with higher training error than plain-20"
                if tr
                else "plain-56 did not end with higher training error than plain-20, at this budget"
            )
            + f": {pct(p56['train_err'])} vs {pct(p20['train_err'])}."
        )
        out.append(
            (
                "plain-56 ended with higher test error than plain-20"
                if te
                else "plain-56 did not end with higher test error than plain-20, at this budget"
            )
            + f": {pct(p56['test_err'])} vs {pct(p20['test_err'])}."
        )
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
        r20, r56 = final["resnet20"], final["resnet56"]
        for key, what in (("test_err", "test error"), ("train_err", "training error")):
            below = r56[key] < r20[key]
            out.append(
                (
                    f"ResNet-56 ended below ResNet-20 in {what}"
                    if below
                    else f"ResNet-56 did not end below ResNet-20 in {what}, at this budget"
                )
                + f": {pct(r56[key])} vs {pct(r20[key])}."
            )
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
        f"recipe: He et al. 4.2, SGD momentum {s.momentum}, lr {s.lr}, weight decay {s.weight_decay}, batch "
        f"{s.batch_size}, augmentation {s.augment}; lr /10 at iterations "
        f"{', '.join(map(str, s.decay_milestones))}",
        f"schedule: {s.iterations} iterations ({s.epochs} epochs of {data.train.num_images} "
        "training images); "
        f"the paper runs 64,000 iterations on 50,000 images (`--budget 100`)",
        f"test error after every epoch on {data.val.num_images} test images",
        f"mixed precision: {'bf16 autocast, channels-last' if s.amp else 'none (fp32)'}",
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
