"""``architectures``: the lecture's comparison of networks (Canziani et al. 2016's chart, as CS231n shows it).

Every ImageNet network of the zoo, profiled by the analyzer at its own input size (224x224; AlexNet's
227x227): published top-1 accuracy against operations, bubble area by parameters
(:func:`cnnarch.analysis.compare.plot`). Then the zoo's CIFAR networks (32x32) with the CIFAR-10 test
error that our own runs reached, read from the reports of the ``degradation`` and ``ensemble``
experiments found beside this report's folder (``OUTPUT/../degradation`` etc.), each with its budget.
"""

from __future__ import annotations

import json
from pathlib import Path

from cnnarch.analysis import build, profile
from cnnarch.analysis.compare import compare, format_compare, plot
from cnnarch.experiments.report import conclusions_section, md_table, pct, write_csv, write_report
from cnnarch.experiments.runner import Context, write_json
from cnnarch.models import get_model_entry, list_models

CLAIM = (
    "The lecture's comparison: networks got more accurate from AlexNet to VGG, GoogLeNet and ResNet; VGG is "
    "the most expensive in operations and parameters, GoogLeNet the most efficient, ResNet the most accurate "
    "of the lecture's networks at moderate cost."
)
TRAINED_EXPERIMENTS = ("degradation", "ensemble")


def run(ctx: Context) -> bool:
    return True  # the zoo part needs no training; the CIFAR table reads other experiments' reports


def imagenet_models() -> list[str]:
    return [n for n in list_models() if get_model_entry(n).input_size[1] >= 224]


def cifar_models() -> list[str]:
    return [n for n in list_models() if get_model_entry(n).input_size[1] == 32]


def our_runs(root: Path) -> list[dict]:
    """CIFAR-10 test errors our experiments reached (final epoch of each run), with their budgets."""
    out = []
    for exp in TRAINED_EXPERIMENTS:
        path = root / exp / "metrics.json"
        if not path.exists():
            continue
        m = json.loads(path.read_text())
        info = m.get("schedule", {})
        where = f"{exp} (budget {info.get('budget', '?')}, {info.get('train_images', '?')} training images)"
        for r in m["runs"].values():
            f = r.get("final")
            if not f or exp == "ensemble":
                continue
            out.append(
                {
                    "model": r["model"],
                    "test_err": f["test_err"],
                    "iterations": f["step"],
                    "epochs": f["epoch"],
                    "state": r["state"],
                    "source": where,
                }
            )
        if exp == "ensemble" and m.get("ensemble"):
            curve = m["ensemble"]
            best = min(curve, key=lambda c: c["member_err"])
            steps = [r["final"]["step"] for r in m["runs"].values() if r.get("final")]
            its = max(steps) if steps else 0
            out.append(
                {
                    "model": "resnet20",
                    "test_err": best["member_err"],
                    "iterations": its,
                    "epochs": None,
                    "state": f"best of {len(curve)} seeds",
                    "source": where,
                }
            )
            out.append(
                {
                    "model": f"resnet20 x{len(curve)} (ensemble)",
                    "test_err": curve[-1]["ensemble_err"],
                    "iterations": its,
                    "epochs": None,
                    "state": "softmax average",
                    "source": where,
                }
            )
    return out


def conclusions(rows: list[dict], runs: list[dict]) -> list[str]:
    """``rows``: ``{"name", "gmacs", "params", "top1_err", "top5_err"}`` of the ImageNet networks;
    ``runs``: :func:`our_runs`."""
    pub = [r for r in rows if r["top1_err"] is not None]
    out = []
    if pub:
        best = min(pub, key=lambda r: r["top1_err"])
        cheap = min(pub, key=lambda r: r["gmacs"])
        big = max(pub, key=lambda r: r["params"])
        eff = max(pub, key=lambda r: (100 - r["top1_err"]) / r["gmacs"])
        out += [
            f"Most accurate (published top-1): {best['name']}, {pct(best['top1_err'])} error at "
            f"{best['gmacs']:.2f} GMACs and {best['params'] / 1e6:.1f}M parameters.",
            f"Fewest operations: {cheap['name']}, {cheap['gmacs']:.2f} GMACs "
            f"({pct(cheap['top1_err'])} top-1 error).",
            f"Most parameters: {big['name']}, {big['params'] / 1e6:.1f}M.",
            f"Most accuracy per operation: {eff['name']} ({100 - eff['top1_err']:.1f}% top-1 at "
            f"{eff['gmacs']:.2f} GMACs).",
        ]
    by = {r["name"]: r for r in rows}
    if {"vgg16", "googlenet"} <= by.keys():
        v, g = by["vgg16"], by["googlenet"]
        key = "top1_err" if v["top1_err"] is not None and g["top1_err"] is not None else "top5_err"
        acc = (
            f", for {pct(v[key])} vs {pct(g[key])} {key[:4].replace('top', 'top-')} error (published)"
            if v.get(key) is not None and g.get(key) is not None
            else ""
        )
        out.append(
            f"VGG-16 needs {v['gmacs'] / g['gmacs']:.1f}x GoogLeNet's operations and "
            f"{v['params'] / g['params']:.1f}x its parameters{acc}."
        )
    if runs:
        best = min(runs, key=lambda r: r["test_err"])
        out.append(
            f"Our best CIFAR-10 result: {best['model']}, {pct(best['test_err'])} test error "
            f"({best['source']})."
        )
    else:
        out.append("No CIFAR-10 runs of ours were found beside this report: the CIFAR table is empty.")
    return out


def report(ctx: Context):
    rows = compare(imagenet_models())
    left_out = plot(rows, str(ctx.output / "architectures.png"))
    runs = our_runs(ctx.output.parent)
    cifar = []
    for name in cifar_models():
        model, size = build(name)
        p = profile(model, size)
        cifar.append({"name": name, "params": p.inference_params, "macs": p.macs_per_image})
    plain = [
        {"name": r.name, "gmacs": r.gmacs, "params": r.params, "top1_err": r.top1_err, "top5_err": r.top5_err}
        for r in rows
    ]
    lines = conclusions(plain, runs)
    write_json(
        ctx.output / "metrics.json",
        {"imagenet": [r.__dict__ for r in rows], "cifar": cifar, "our_runs": runs, "conclusions": lines},
    )
    write_csv(
        ctx.output / "metrics.csv",
        ["model", "input", "params", "gmacs", "top1_err", "top5_err", "source"],
        ([r.name, r.input, r.params, f"{r.gmacs:.4f}", r.top1_err, r.top5_err, r.source] for r in rows),
    )
    by_model = {}
    for r in runs:
        by_model.setdefault(r["model"].split(" ")[0], []).append(r)
    cifar_rows = [
        [
            c["name"],
            f"{c['params'] / 1e6:.2f}M",
            f"{c['macs'] / 1e6:.1f}",
            "; ".join(
                f"{pct(r['test_err'])} ({r['state']}, {r['iterations']} it., {r['source']})"
                for r in by_model.get(c["name"], [])
            )
            or "-",
        ]
        for c in cifar
    ]
    ens = [r for r in runs if "ensemble" in r["model"]]
    setup = [
        "no training for the ImageNet part: `cnnarch.analysis.compare` (meta tensors), published "
        "accuracies with their sources",
        f"CIFAR-10 results: read from {', '.join(f'`{ctx.output.parent / e}`' for e in TRAINED_EXPERIMENTS)}",
    ]
    sections = [
        "## ImageNet networks of the zoo",
        "",
        format_compare(rows, markdown=True),
        "",
        "![accuracy against operations](architectures.png)",
        "",
    ]
    if left_out:
        sections += [f"Not in the chart (no published ImageNet accuracy): {', '.join(left_out)}.", ""]
    sections += [
        "## CIFAR networks of the zoo, and the CIFAR-10 test error our runs reached",
        "",
        md_table(["model", "params", "M MACs (32x32)", "our CIFAR-10 test error (run, budget)"], cifar_rows),
        "",
    ]
    sections += [f"Ensemble: {r['model']}: {pct(r['test_err'])} ({r['source']})." for r in ens]
    sections += ["", *conclusions_section(lines)]
    return write_report(ctx, "Architectures: accuracy, operations, parameters", CLAIM, setup, sections)
