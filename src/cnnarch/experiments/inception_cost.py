"""``inception-cost`` (no training): what GoogLeNet's 1x1 "bottleneck" convolutions save.

The lecture's two modules on a 28x28x256 input (naive: 1x1, 3x3, 5x5 convolutions and a 3x3 max pool side
by side; reduced: 1x1 convolutions before the 3x3 and 5x5 and after the pool), and each of GoogLeNet's
nine Inception modules as Table 1 of Szegedy et al. (2015) gives them, against its naive twin: the same
input and the same 1x1/3x3/5x5 output widths, without the reductions (so its pool branch passes every
input channel through). Every number is computed by :func:`cnnarch.analysis.profile` (multiply-
accumulates of the convolutions, parameters with biases).
"""

from __future__ import annotations

from matplotlib.figure import Figure

from cnnarch.analysis import LECTURE_INPUT, build, naive_inception, naive_twin, profile, reduced_inception
from cnnarch.experiments.report import conclusions_section, md_table, save_figure, write_csv, write_report
from cnnarch.experiments.runner import Context, write_json
from cnnarch.models.googlenet import TABLE_1

CLAIM = (
    "The lecture (CS231n lecture 9): a naive Inception module on 28x28x256 costs 854M operations and grows "
    'the depth at every layer; 1x1 "bottleneck" layers cut it to 358M (the slide\'s sum; see '
    "`cnnarch lecture`), which is how GoogLeNet stays at about 5M parameters with 22 layers."
)


def run(ctx: Context) -> bool:
    return True  # nothing to train: the report computes everything


def measure() -> dict:
    """Operations (MACs) and parameters of the lecture's modules and of GoogLeNet's, naive and reduced."""
    lecture = {}
    for name, make in (("naive", naive_inception), ("reduced", reduced_inception)):
        p = profile(make(), LECTURE_INPUT)
        lecture[name] = {"macs": p.macs, "params": p.params, "output": list(p.layers[-1].output_shape[1:])}
    net, size = build("googlenet")
    whole = profile(net, size)
    blocks = {b.name: b for b in whole.blocks}
    modules = []
    for name, row in TABLE_1.items():
        b = blocks[f"inception{name}"]
        cin, h, w = b.input_shape[1:]
        naive = profile(naive_twin(cin, row), (cin, h, w))
        modules.append(
            {
                "module": name,
                "input": [cin, h, w],
                "output_reduced": list(b.output_shape[1:]),
                "output_naive": list(naive.layers[-1].output_shape[1:]),
                "macs_reduced": b.macs,
                "params_reduced": b.params,
                "macs_naive": naive.macs,
                "params_naive": naive.params,
            }
        )
    return {
        "lecture": lecture,
        "googlenet": modules,
        "googlenet_macs": whole.macs,
        "googlenet_params": whole.inference_params,
    }


def conclusions(m: dict) -> list[str]:
    lec = m["lecture"]
    n, r = lec["naive"], lec["reduced"]
    out = [
        f"On 28x28x256 the naive module costs {n['macs'] / 1e6:.0f}M MACs and {n['params'] / 1e6:.2f}M "
        f"parameters (output {'x'.join(map(str, n['output']))}); with 1x1 reductions {r['macs'] / 1e6:.0f}M "
        f"MACs and {r['params'] / 1e6:.2f}M parameters (output {'x'.join(map(str, r['output']))}): "
        f"{n['macs'] / r['macs']:.2f}x fewer operations, {n['params'] / r['params']:.2f}x fewer parameters."
    ]
    g = m["googlenet"]
    if g:
        tn, tr = sum(x["macs_naive"] for x in g), sum(x["macs_reduced"] for x in g)
        pn, pr = sum(x["params_naive"] for x in g), sum(x["params_reduced"] for x in g)
        ratios = [(x["macs_naive"] / x["macs_reduced"], x["module"]) for x in g]
        hi, lo = max(ratios), min(ratios)
        out.append(
            f"GoogLeNet's {len(g)} Inception modules cost {tr / 1e9:.2f}G MACs and hold {pr / 1e6:.2f}M "
            "parameters; their naive twins (same inputs and branch widths, no reductions) would cost "
            f"{tn / 1e9:.2f}G MACs ({tn / tr:.2f}x) and hold {pn / 1e6:.2f}M parameters ({pn / pr:.2f}x)."
        )
        out.append(
            f"The saving ranges from {lo[0]:.2f}x (inception {lo[1]}) to {hi[0]:.2f}x (inception "
            f"{hi[1]}) in operations."
        )
        out.append(
            f"The Inception modules are {100 * tr / m['googlenet_macs']:.0f}% of the whole network's "
            f"{m['googlenet_macs'] / 1e9:.2f}G MACs ({m['googlenet_params'] / 1e6:.2f}M "
            "parameters used at inference)."
        )
    return out


def plot(m: dict, path) -> None:
    names = ["lecture"] + [x["module"] for x in m["googlenet"]]
    naive_ops = [m["lecture"]["naive"]["macs"]] + [x["macs_naive"] for x in m["googlenet"]]
    red_ops = [m["lecture"]["reduced"]["macs"]] + [x["macs_reduced"] for x in m["googlenet"]]
    naive_p = [m["lecture"]["naive"]["params"]] + [x["params_naive"] for x in m["googlenet"]]
    red_p = [m["lecture"]["reduced"]["params"]] + [x["params_reduced"] for x in m["googlenet"]]
    fig = Figure(figsize=(12, 4.2))
    a1, a2 = fig.subplots(1, 2)
    xs = range(len(names))
    for ax, naive, red, unit, div in (
        (a1, naive_ops, red_ops, "operations (M MACs)", 1e6),
        (a2, naive_p, red_p, "parameters (M)", 1e6),
    ):
        ax.bar([x - 0.2 for x in xs], [v / div for v in naive], 0.4, label="naive", color="tab:red")
        ax.bar([x + 0.2 for x in xs], [v / div for v in red], 0.4, label="1x1 reductions", color="tab:blue")
        ax.set_xticks(list(xs), names)
        ax.set_ylabel(unit)
        ax.set_xlabel("module (lecture's 28x28x256 example, then GoogLeNet's Table 1)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend()
    save_figure(fig, path)


def report(ctx: Context):
    m = measure()
    lines = conclusions(m)
    write_json(ctx.output / "metrics.json", {**m, "conclusions": lines})
    lec = m["lecture"]
    lecture = {"module": "lecture", "input": LECTURE_INPUT}
    lecture |= {f"{v}_{k}": lec[k][v] for k in ("naive", "reduced") for v in ("macs", "params")}
    cols = ["macs_naive", "macs_reduced", "params_naive", "params_reduced"]
    write_csv(
        ctx.output / "metrics.csv",
        ["module", "input", *cols],
        (
            [x["module"], "x".join(map(str, x["input"])), *(x[c] for c in cols)]
            for x in [lecture, *m["googlenet"]]
        ),
    )
    plot(m, ctx.output / "inception_cost.png")
    rows = [
        [
            x["module"],
            "x".join(map(str, x["input"])),
            f"{x['macs_naive'] / 1e6:.1f}",
            f"{x['macs_reduced'] / 1e6:.1f}",
            f"{x['macs_naive'] / x['macs_reduced']:.2f}x",
            f"{x['params_naive'] / 1e6:.3f}",
            f"{x['params_reduced'] / 1e6:.3f}",
            "x".join(map(str, x["output_naive"])),
            "x".join(map(str, x["output_reduced"])),
        ]
        for x in m["googlenet"]
    ]
    setup = [
        "no training; `cnnarch.analysis.profile` on meta tensors (shapes only)",
        "GoogLeNet as in the paper (5x5 convolutions, LRN; `create_model('googlenet')`), 224x224 input",
        "naive twin of a module: the same 1x1, 3x3 and 5x5 widths from its input, a 3x3 max pool passing the "
        "input through; ReLU after each convolution",
    ]
    sections = [
        "## Result",
        "",
        md_table(
            [
                "module",
                "input CxHxW",
                "naive M MACs",
                "reduced M MACs",
                "saving",
                "naive M params",
                "reduced M params",
                "naive output",
                "reduced output",
            ],
            rows,
        ),
        "",
        "![operations and parameters](inception_cost.png)",
        "",
        *conclusions_section(lines),
    ]
    return write_report(ctx, "Inception modules: the cost of 1x1 reductions", CLAIM, setup, sections)
