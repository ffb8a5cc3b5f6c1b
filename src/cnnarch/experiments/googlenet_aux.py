"""``googlenet-aux``: GoogLeNet's auxiliary classifiers on and off (Szegedy et al. 2014, sec. 5).

The paper adds two auxiliary classifiers, on the outputs of Inception 4a and 4d, whose losses are added
to the main loss with weight 0.3 during training, "to increase the gradient signal that gets propagated
back, and provide additional regularization"; the lecture repeats it: they "inject additional gradient at
lower layers". Two things are measured here:

1. the gradient itself: on fixed training batches, the norm of the gradient that each stage of the network
   receives from the main loss alone and from the main loss plus 0.3 times the auxiliary losses, for a
   freshly initialized network and for each run's last weights (the gradients are only measured);
2. training: the paper's GoogLeNet (no batch norm, LRN, Table 1) trained twice from the same
   initialization on the same batches, with the auxiliary losses weighted 0.3 and 0. Both networks carry
   the heads (weight 0 gives them no gradient and the trunk none from them), so the runs differ in that
   one number only; training and test error after every epoch.

Budget 1 (about 35 minutes of one CPU core): CIFAR-10 resized to 80x80 (the smallest input at which the
auxiliary heads' 5x5/3 pooling fits is 79), 5,000 training images (500 per class), 4 epochs, 1,000 test
images after every epoch; SGD momentum 0.9, lr 0.01, weight decay 2e-4, batch 32 (BVLC's Caffe GoogLeNet
solver, whose lr and weight decay the ``googlenet`` recipe follows), the lr lowered 4% every 8 epochs as
in the paper (constant here); random crops and flips; bf16 autocast where the CPU has it. A larger
budget scales the training and test images (up to all of CIFAR-10). This is far shorter than the
paper's training (ImageNet, 224x224, hundreds of thousands of steps): the report says what such a run
can and cannot show.
"""

from __future__ import annotations

import json
import math

import torch
from matplotlib.figure import Figure
from torch import nn

from cnnarch.experiments.degradation import data_label
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
    train_rounds,
    write_json,
)
from cnnarch.models import create_model
from cnnarch.tables import plural
from cnnarch.train.checkpoint import load_checkpoint

AUX_WEIGHT = 0.3  # sec. 5: the auxiliary losses are "weighted by 0.3"
IMAGE_SIZE = 80  # the paper's GoogLeNet trains with its auxiliary heads from 79x79 up
EPOCHS = 4
VARIANTS = (("aux", "auxiliary losses 0.3", AUX_WEIGHT), ("no-aux", "auxiliary losses 0", 0.0))
# the stages of the network in the order the input passes them; the auxiliary heads sit after 4a and 4d
STAGES = tuple(
    "conv1 conv2 conv3 inception3a inception3b inception4a inception4b inception4c inception4d inception4e "
    "inception5a inception5b fc".split()
)
PROBE_BATCHES = 4  # fixed training batches the gradient is measured on
MORE = 1.1  # "more gradient": at least 10% more than the main loss alone gives
CLAIM = (
    "Szegedy et al. (2014), sec. 5, and the lecture: GoogLeNet's two auxiliary classifiers (after Inception "
    "4a and 4d, their losses weighted 0.3) inject additional gradient into the lower layers, which a "
    "22-layer network without them receives weakly, and regularize; the network trains better with them."
)


def plan(ctx: Context):
    base = base_config(
        ctx,
        model="googlenet",
        limit_train=ctx.scaled(5_000, cap=50_000),
        limit_val=ctx.scaled(1_000, cap=10_000),
        image_size=IMAGE_SIZE,
        batch_size=32,
        lr=0.01,
        momentum=0.9,
        weight_decay=2e-4,
        augment="crop,flip",
        sched="step",
        decay_epochs=8,
        decay_rate=0.96,
        epochs=ctx.scaled(EPOCHS, cap=EPOCHS),
        seed=0,
        **fast_precision(ctx),
    )
    data = load_data(base)
    specs = [RunSpec(name, label, base.replace(aux_loss_weight=w)) for name, label, w in VARIANTS]
    return specs, data


def stage_of(param_name: str) -> str | None:
    """The stage a parameter belongs to (None: an auxiliary head's own parameters)."""
    head = param_name.split(".", 1)[0]
    return head if head in STAGES else None


def stage_gradients(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict:
    """Per stage, the norm of the gradient of the main loss and of the main loss plus ``AUX_WEIGHT``
    times the auxiliary losses, summed over ``batches`` (training mode, fp32, the same dropout masks for
    both: each batch's forward pass is shared)."""
    model.train()
    params = {n: p for n, p in model.named_parameters() if stage_of(n)}
    main_sq = dict.fromkeys(STAGES, 0.0)
    total_sq = dict.fromkeys(STAGES, 0.0)
    ce = nn.CrossEntropyLoss()
    acc_main = {n: torch.zeros_like(p) for n, p in params.items()}
    acc_aux = {n: torch.zeros_like(p) for n, p in params.items()}
    torch.manual_seed(0)
    for x, y in batches:
        out = model(x)
        main = ce(out.logits, y)
        aux = ce(out.aux_logits1, y) + ce(out.aux_logits2, y)
        names = list(params)
        g_main = torch.autograd.grad(main, [params[n] for n in names], retain_graph=True, allow_unused=True)
        g_aux = torch.autograd.grad(aux, [params[n] for n in names], allow_unused=True)
        for n, gm, ga in zip(names, g_main, g_aux, strict=True):
            if gm is not None:
                acc_main[n] += gm
            if ga is not None:
                acc_aux[n] += ga
    for n in params:
        s = stage_of(n)
        main_sq[s] += acc_main[n].pow(2).sum().item()
        total_sq[s] += (acc_main[n] + AUX_WEIGHT * acc_aux[n]).pow(2).sum().item()
    return {s: {"main": math.sqrt(main_sq[s]), "with_aux": math.sqrt(total_sq[s])} for s in STAGES}


def probe_batches(data) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``PROBE_BATCHES`` batches of 32 test images as the network sees them (nothing is
    trained on them: they only carry the gradient)."""
    xs, ys = [], []
    for x, y in data.val:
        xs.append(x if data.eval_transform is None else data.eval_transform(x))
        ys.append(y)
        if sum(len(t) for t in ys) >= PROBE_BATCHES * 32:
            break
    x, y = torch.cat(xs).float().contiguous().cpu(), torch.cat(ys).cpu()
    n = min(len(y), PROBE_BATCHES * 32)
    return [(x[i : i + 32], y[i : i + 32]) for i in range(0, n, 32)]


def measure_gradients(ctx: Context, specs: list[RunSpec], data) -> None:
    """The stage gradients of a freshly initialized network (seed 0) and of each run's last weights."""
    batches = probe_batches(data)
    out = {}
    torch.manual_seed(specs[0].cfg.run.seed)
    out["init"] = stage_gradients(create_model("googlenet", num_classes=data.num_classes), batches)
    for s in specs:
        last = ctx.runs / s.name / "last.pt"
        if last.exists():
            model = create_model("googlenet", num_classes=data.num_classes)
            model.load_state_dict(load_checkpoint(last)["model"])
            out[s.name] = stage_gradients(model, batches)
    write_json(ctx.output / "gradients.json", out)


def run(ctx: Context) -> bool:
    specs, data = plan(ctx)
    complete = train_rounds(ctx, specs, data)
    measure_gradients(ctx, specs, data)
    return complete


def noise(n_test: int, err_a: float, err_b: float) -> float:
    """Two binomial standard errors (in points) of the difference of two test errors on ``n_test``
    images, treated as independent (a bound: the same images make the difference less noisy)."""
    var = sum(e / 100 * (1 - e / 100) / n_test for e in (err_a, err_b))
    return 200 * math.sqrt(var)


def conclusions(curves: dict, grads: dict, n_test: int, sizes: dict | None = None) -> list[str]:
    """Sentences from the numbers. ``curves[name]`` is a run's per-epoch ``{"epoch", "train_err",
    "test_err"}`` (percent); ``grads`` is :func:`measure_gradients`' dict, ``sizes`` the parameters
    of each stage. The training claim counts as
    reproduced only when the run with auxiliary losses ends lower in test error by more than two binomial
    standard errors *and* is lower at every epoch after the first: with one seed per run, a gap at one
    epoch that the other epochs contradict is the runs' fluctuation, not an effect."""
    out = []
    init = grads.get("init")
    if init:
        early = STAGES[: STAGES.index("inception4a") + 1]
        ratio = {s: init[s]["with_aux"] / init[s]["main"] for s in early if init[s]["main"] > 0}
        more = ratio["conv1"] >= MORE
        out.append(
            ("Holds" if more else "Does not hold")
            + f" at initialization: with the auxiliary losses the first convolution receives "
            f"{ratio['conv1']:.2f}x the gradient norm of the main loss alone (conv2 {ratio['conv2']:.2f}x, "
            f"inception3a {ratio['inception3a']:.2f}x, inception4a {ratio['inception4a']:.2f}x; from 4e "
            "on exactly 1x, as no auxiliary head draws on those stages)."
        )
        fall = init["conv1"]["main"] / init["fc"]["main"] if init["fc"]["main"] else math.nan
        both = f" (layers of {sizes['conv1']:,} and {sizes['fc']:,} parameters)" if sizes else ""
        out.append(
            f"The main loss alone gives the first convolution {fall:.3g}x the gradient norm of the final "
            f"classifier{both} at initialization."
        )
    if "aux" in grads and curves.get("aux"):
        g = grads["aux"]["conv1"]
        out.append(
            f"After training, in the run with auxiliary losses, they still add to the first convolution's "
            f"gradient: {g['with_aux'] / g['main']:.2f}x the main loss's norm."
        )
    a_curve, b_curve = curves.get("aux") or [], curves.get("no-aux") or []
    if not a_curve or not b_curve:
        out.append("The two training runs cannot be compared: at least one has no finished epoch.")
        return out
    a, b = a_curve[-1], b_curve[-1]
    gap = b["test_err"] - a["test_err"]
    two_se = noise(n_test, a["test_err"], b["test_err"])
    by_epoch = {c["epoch"]: c for c in b_curve}
    later = [c for c in a_curve[1:] if c["epoch"] in by_epoch]
    reversed_at = [c["epoch"] for c in later if not c["test_err"] < by_epoch[c["epoch"]]["test_err"]]
    with_aux = "with the auxiliary losses the test error is"
    numbers = (
        f"{pct(a['test_err'])} with, {pct(b['test_err'])} without at epoch {a['epoch']}; two binomial "
        f"standard errors of the difference on {n_test:,} test images: {two_se:.2f} points"
    )
    if gap > two_se and not reversed_at:
        out.append(
            f"Reproduced at this budget: {with_aux} lower by {gap:.2f} points, and lower at every epoch "
            f"after the first ({numbers}; one seed each, so the seed-to-seed spread is not measured)."
        )
    elif gap > two_se:
        out.append(
            f"Not established at this budget: {with_aux} lower by {gap:.2f} points at the end ({numbers}), "
            f"but not lower at epoch(s) {', '.join(map(str, reversed_at))}: the two runs changed order, so "
            "with one seed each the final gap cannot be told from the runs' fluctuation."
        )
    elif gap < -two_se:
        out.append(f"Not reproduced at this budget: {with_aux} higher by {-gap:.2f} points ({numbers}).")
    else:
        out.append(
            f"Not reproduced at this budget: the test errors differ by {abs(gap):.2f} points, within the "
            f"noise ({numbers})."
        )
    lower = [
        c["epoch"]
        for c in a_curve
        if c["epoch"] in by_epoch and c["train_err"] < by_epoch[c["epoch"]]["train_err"]
    ]
    out.append(
        f"The running training error of the main classifier is lower with the auxiliary losses at "
        f"{len(lower)} of {len(a_curve)} epochs ({pct(a['train_err'])} against {pct(b['train_err'])} at "
        f"epoch {a['epoch']})."
    )
    if a["test_err"] > 50 and b["test_err"] > 50:
        out.append(
            "Both runs are still early in training (test error above 50%): a budget this small shows how "
            "training starts, not where it ends, and cannot show regularization."
        )
    return out


def plot(runs: dict, grads: dict, path) -> None:
    fig = Figure(figsize=(12, 4.4))
    ax, gx = fig.subplots(1, 2)
    for (name, _, _), color in zip(VARIANTS, ("tab:blue", "tab:red"), strict=True):
        curve = [dict(c, step=c["epoch"]) for c in runs[name]["curve"]]
        if curve:
            plot_errors(ax, curve, color, runs[name]["label"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("error (%)")
    ax.set_title("thin: training error (running), bold: test error")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    xs = range(len(STAGES))
    for key, style, tag in (("init", "-", "initialization"), ("aux", "--", "after training (aux run)")):
        if key not in grads:
            continue
        g = grads[key]
        gx.plot(xs, [g[s]["main"] for s in STAGES], style, color="tab:red", label=f"main loss, {tag}")
        gx.plot(xs, [g[s]["with_aux"] for s in STAGES], style, color="tab:blue", label=f"+ 0.3 aux, {tag}")
    gx.set_yscale("log")
    gx.set_xticks(list(xs), [s.replace("inception", "") for s in STAGES], rotation=45, fontsize=8)
    gx.axvline(STAGES.index("inception4a"), color="gray", lw=0.8, ls=":")
    gx.axvline(STAGES.index("inception4d"), color="gray", lw=0.8, ls=":")
    gx.set_title("gradient norm per stage (aux heads after 4a and 4d)")
    gx.grid(alpha=0.3)
    if gx.get_legend_handles_labels()[0]:
        gx.legend(fontsize=7)
    save_figure(fig, path)


def report(ctx: Context):
    specs, data = plan(ctx)
    runs = collect(ctx, specs)
    path = ctx.output / "gradients.json"
    grads = json.loads(path.read_text()) if path.exists() else {}
    n_test = data.val.num_images
    net = create_model("googlenet", num_classes=data.num_classes)
    sizes = {st: sum(p.numel() for n, p in net.named_parameters() if stage_of(n) == st) for st in STAGES}
    lines = conclusions({n: r["curve"] for n, r in runs.items()}, grads, n_test, sizes)
    write_metrics(ctx, runs, {"gradients": grads, "conclusions": lines})
    plot(runs, grads, ctx.output / "googlenet_aux.png")
    s = specs[0].cfg
    rows = [
        [
            r["label"],
            r["state"],
            f"{r['final']['epoch'] if r['final'] else 0}/{s.schedule.epochs}",
            pct(r["final"]["train_err"]) if r["final"] else "n/a",
            pct(r["final"]["test_err"]) if r["final"] else "n/a",
            f"{sum(c['seconds'] for c in r['curve']) / 60:.1f}",
        ]
        for r in runs.values()
    ]
    grad_rows = [
        [stage]
        + [
            f"{grads[k][stage]['main']:.3g} / {grads[k][stage]['with_aux']:.3g}" if k in grads else "n/a"
            for k in ("init", "aux", "no-aux")
        ]
        for stage in STAGES
    ]
    setup = [
        f"network: the paper's GoogLeNet (`googlenet`: LRN, no batch norm, Table 1), auxiliary heads after "
        f"4a and 4d in both runs; their losses weighted {AUX_WEIGHT} in one run and 0 in the other (same "
        "initialization, same batches)",
        f"data: {data_label(s.dataset.data)} ({s.dataset.data}), resized to {IMAGE_SIZE}x{IMAGE_SIZE}; "
        f"{data.train.num_images:,} training images ({data.train.num_images // data.num_classes} per class), "
        f"random crops and flips; test error after every epoch on {n_test:,} test images",
        f"SGD momentum {s.optim.momentum}, lr {s.optim.lr} lowered 4% every 8 epochs (the paper's), weight "
        f"decay {s.optim.weight_decay}, batch {s.schedule.batch_size}, "
        f"{plural(s.schedule.epochs, 'epoch')}",
        f"mixed precision: {'bf16 autocast, channels-last' if s.run.amp else 'none (fp32)'}; the gradient "
        f"norms in fp32, training mode, summed over {PROBE_BATCHES} fixed batches of 32 test images; a "
        "stage's norm is over all its parameters (stages differ in size: conv1 and fc about 10k, conv2 4k, "
        "an Inception module 0.16-1.4M)",
    ]
    sections = [
        f"## Training (last epoch; {data_label(s.dataset.data)})",
        "",
        md_table(["run", "state", "epochs", "training error", "test error", "minutes"], rows),
        "",
        "![errors and gradients](googlenet_aux.png)",
        "",
        "## Gradient norm per stage: main loss alone / with 0.3 x the auxiliary losses",
        "",
        md_table(
            ["stage", "initialization", "after training, aux run", "after training, no-aux run"], grad_rows
        ),
        "",
        *conclusions_section(lines, runs),
    ]
    return write_report(ctx, "GoogLeNet's auxiliary classifiers on and off", CLAIM, setup, sections)
