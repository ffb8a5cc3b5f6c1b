"""``ensemble``: the lecture's "an ensemble of 7 CNNs lowered AlexNet's error from 18.2% to 16.4%"
(Krizhevsky et al. 2012, sec. 6 and Table 2, whose top-5 validation errors are 18.2% for 1 CNN, 16.4% for
5 and 15.4% for 7, two of the 7 pre-trained on a larger set: the lecture's pair is the 5-CNN one).

Up to 7 ResNet-20s that differ only in their seed (initial weights and augmentation draws; the training
subset and the batch order are the same for all, so that the subset is not a second difference) are trained
one after another with the same compressed He et al. schedule; each member's test-set softmax is kept,
and the ensemble of the first k members is their mean (``cnnarch.train.evaluate_ensemble``), k = 1..7.

Budget 1 (about an hour on 2 CPU cores): 7 members of 500 iterations on a 10,000-image subset, tested
on 2,000 test images. The budget scales iterations, training and test images (``--budget 20``: 10k
iterations on all 50k images, all 10k test images). A time limit ends the experiment with the members
finished so far (k is then smaller).

Differences from the paper: AlexNet members were ImageNet AlexNets (one of them pre-trained on a larger
set); here the members are CIFAR ResNet-20s, small enough that seven fit the budget.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from cnnarch.experiments.report import (
    conclusions_section,
    md_table,
    pct,
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
)
from cnnarch.tables import plural
from cnnarch.train import evaluate_ensemble

MEMBERS = 7
CLAIM = (
    "The lecture: an ensemble of 7 CNNs lowered AlexNet's top-5 error from 18.2% to 16.4% (Krizhevsky et al. "
    "2012, Table 2: 16.4% is the 5-CNN ensemble, 7 CNNs reached 15.4%); averaging networks that differ only "
    "in their random start beats each of them."
)


def plan(ctx: Context):
    base = base_config(
        ctx,
        model="resnet20",
        limit_train=ctx.scaled(10_000, cap=50_000),
        limit_val=ctx.scaled(2_000, cap=10_000),
        batch_size=128,
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        augment="crop,flip",
    )
    data = load_data(base, per_epoch_test=False)
    sched = schedule(ctx.scaled(500), len(data.train))
    specs = [
        RunSpec(
            f"seed{i}",
            f"member {i + 1} (seed {i})",
            base.replace(seed=i, output=str(ctx.runs / f"seed{i}"), **sched),
        )
        for i in range(MEMBERS)
    ]
    return specs, data


def run(ctx: Context) -> bool:
    specs, data = plan(ctx)
    for s in specs:
        if not train_rounds(ctx, [s], data):
            return False
        probs_path = ctx.runs / s.name / "test_probs.pt"
        if run_status(ctx.runs / s.name)["state"] == "done" and not probs_path.exists():
            probs, labels = predict(ctx, s, data.test)
            torch.save({"probs": probs, "labels": labels}, probs_path)
    return True


def ensemble_curve(members: list[tuple[str, torch.Tensor]], labels: torch.Tensor) -> list[dict]:
    """Test error of each member and of the ensemble of the first k, for k = 1..len(members)."""
    out = []
    for k in range(1, len(members) + 1):
        rows = evaluate_ensemble(dict(members[:k]), labels)
        out.append({"k": k, "member_err": 100 - rows[k - 1].top1, "ensemble_err": 100 - rows[-1].top1})
    return out


def conclusions(curve: list[dict]) -> list[str]:
    """Sentences from ``ensemble_curve``'s rows (errors in percent)."""
    if not curve:
        return ["No member finished: nothing to compare."]
    if len(curve) == 1:
        return [
            f"Only one member finished (test error {pct(curve[0]['member_err'])}): no ensemble to compare."
        ]
    k = len(curve)
    members = [c["member_err"] for c in curve]
    best, mean = min(members), sum(members) / k
    ens = curve[-1]["ensemble_err"]
    out = [
        f"The ensemble of {k} had test error {pct(ens)}; its members {pct(min(members))} to "
        f"{pct(max(members))} (mean {pct(mean)})."
    ]
    out.append(
        f"The ensemble of {k} beat its best member by {best - ens:.2f} points ({pct(ens)} vs {pct(best)})."
        if ens < best
        else f"The ensemble of {k} did not beat its best member, at this budget: {pct(ens)} vs {pct(best)}."
    )
    out.append(
        f"Against the mean member the ensemble lowered the error by {mean - ens:.2f} points "
        f"(AlexNet's top-5 error: 18.2% for 1 CNN, 16.4% for 5, 15.4% for 7)."
        if ens < mean
        else f"The ensemble was not better than the mean member: {pct(ens)} vs {pct(mean)}."
    )
    errs = [c["ensemble_err"] for c in curve]
    falls = all(b <= a for a, b in zip(errs, errs[1:], strict=False))
    out.append(
        "The ensemble's error never rose as members were added."
        if falls
        else "The ensemble's error did not fall at every added member: "
        + ", ".join(f"k={c['k']}: {pct(c['ensemble_err'])}" for c in curve)
        + "."
    )
    return out


def report(ctx: Context):
    specs, data = plan(ctx)
    runs = collect(ctx, specs)
    members, labels = [], None
    for s in specs:
        path = ctx.runs / s.name / "test_probs.pt"
        if path.exists():
            saved = torch.load(path, weights_only=True)
            members.append((s.name, saved["probs"]))
            labels = saved["labels"]
    curve = ensemble_curve(members, labels) if members else []
    lines = conclusions(curve)
    info = {"budget": ctx.budget, "train_images": data.train.num_images, "test_images": data.test.num_images}
    write_metrics(ctx, runs, {"ensemble": curve, "conclusions": lines, "schedule": info})
    if curve:
        fig = Figure(figsize=(6.5, 4.2))
        ax = fig.subplots()
        ks = [c["k"] for c in curve]
        ax.plot(ks, [c["member_err"] for c in curve], "o", color="gray", label="member k alone")
        ensembles = [c["ensemble_err"] for c in curve]
        ax.plot(ks, ensembles, "o-", lw=2, color="tab:blue", label="ensemble of members 1..k")
        ax.set_xlabel("k (networks)")
        ax.set_ylabel("test error (%)")
        ax.set_xticks(ks)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title("CIFAR-10, ResNet-20 members differing only in seed")
        save_figure(fig, ctx.output / "ensemble.png")
    s = specs[0].cfg
    setup = [
        f"members: {s.model}, seeds 0..{MEMBERS - 1}; SGD momentum {s.optim.momentum}, lr {s.optim.lr}, "
        f"weight decay {s.optim.weight_decay}, batch {s.schedule.batch_size}, {s.dataset.augment}; lr /10 "
        f"at iterations {', '.join(map(str, s.schedule.decay_milestones))}",
        f"schedule per member: {s.schedule.iterations} iterations ({plural(s.schedule.epochs, 'epoch')} of "
        f"{data.train.num_images} training images); test set: {data.test.num_images} images; ensemble = "
        "mean of softmax probabilities",
    ]
    table = md_table(
        ["k", "member k test error", "ensemble of 1..k test error"],
        [[c["k"], pct(c["member_err"]), pct(c["ensemble_err"])] for c in curve],
    )
    sections = ["## Result", "", table, ""]
    sections += ["![error against k](ensemble.png)", ""] if curve else []
    sections += conclusions_section(lines, runs)
    if len(curve) < MEMBERS:
        sections.append(f"- {len(curve)} of {MEMBERS} members finished.")
    return write_report(ctx, "Ensembles: averaging networks that differ only in seed", CLAIM, setup, sections)
