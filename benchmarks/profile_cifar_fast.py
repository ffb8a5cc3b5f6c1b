"""Where a `cifar-fast` training step spends its time on this CPU, and which levers pay.

Three parts, all in one process so that every ratio is measured under the same load:

1. **Matmul rate**: a large fp32 matmul (and a bf16 one) at the same thread count, GFLOP/s, median of
   rounds; a reference point, not the CPU's peak (benchmarks/peak.py measures that).
2. **Layer by layer**: one training step of the recipe's network (batch, bf16 autocast, channels-last,
   frozen whitening layer, SGD with Nesterov momentum) timed per layer with forward and backward hooks;
   each layer's FLOPs come from cnnarch's analyzer (backward of a convolution or linear layer = 2x its
   forward: gradients of the input and of the weights; 1x where the input needs no gradient, as for
   the first trained layer behind the frozen whitening layer), so the table shows the GFLOP/s each
   layer reaches against the matmul rate.
3. **Levers**, each measured on and off in interleaved rounds (the median step time of each variant):
   bf16 autocast, channels-last, the oneDNN convolution path, batch size, threads, ReLU for GELU, average
   for max pooling, lower resolution (progressive resizing), torch.compile (inductor; its compile time
   printed), the cost of evaluating the test set after each epoch, and Muon for the filters with its
   Newton-Schulz iteration in fp32 or bf16 (the whole step, and the optimizer step alone).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/profile_cifar_fast.py --threads 1
    python benchmarks/profile_cifar_fast.py --threads 2 --levers threads batch --rounds 5
    python benchmarks/profile_cifar_fast.py --batch 64 --steps 1 --rounds 1 --matmul 256   # smoke test

Synthetic batches (random images and labels) are used throughout: the data path is not part of a step
(`cnnarch train` keeps the decoded training set in memory and augments whole batches; its share is the
`data_seconds` column of every run's metrics.csv).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from unittest import mock

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when torch starts its OpenMP runtime

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from cnnarch.analysis import profile  # noqa: E402
from cnnarch.models import create_model  # noqa: E402
from cnnarch.train.speedrun import Muon, filter_params  # noqa: E402

LEVERS = (
    "reference",
    "amp",
    "channels_last",
    "onednn",
    "batch",
    "threads",
    "relu",
    "avgpool",
    "resize",
    "compile",
    "eval",
    "muon",
)


def matmul_gflops(n: int, dtype: torch.dtype, rounds: int) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def build(model_name: str, act: str = "gelu", pool: str = "max") -> nn.Module:
    model = create_model(model_name)
    if act == "relu":
        for parent in model.modules():
            for name, child in parent.named_children():
                if isinstance(child, nn.GELU):
                    setattr(parent, name, nn.ReLU())
    if pool == "avg":
        for parent in model.modules():
            for name, child in parent.named_children():
                if isinstance(child, nn.MaxPool2d):
                    setattr(parent, name, nn.AvgPool2d(child.kernel_size))
    model.whiten.requires_grad_(False)  # the recipe's state after its first 3 epochs
    return model.train()


class Step:
    """One recipe training step on a fixed synthetic batch: ``step()`` runs forward, backward, SGD (and
    with ``muon`` set to a dtype, Muon for the convolution filters, its Newton-Schulz in that dtype)."""

    def __init__(
        self,
        model: str | nn.Module,
        batch,
        amp=True,
        channels_last=True,
        act="gelu",
        pool="max",
        size=32,
        compile=False,
        onednn=True,
        muon: torch.dtype | None = None,
    ):
        torch.manual_seed(0)
        self.model = model if isinstance(model, nn.Module) else build(model, act, pool)
        self.amp, self.onednn = amp, onednn
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(memory_format=fmt)
        self.x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
        self.y = torch.randint(0, 10, (batch,))
        filters, others = filter_params(self.model)
        params = others if muon is not None else filters + others
        self.opts = [torch.optim.SGD(params, lr=0.01, momentum=0.85, nesterov=True, weight_decay=1e-3)]
        if muon is not None:
            self.opts.append(Muon(filters, ns_dtype=muon))
        self.forward = self.model
        if compile:
            self.forward = torch.compile(self.model)

    def __call__(self):
        with torch.backends.mkldnn.flags(enabled=self.onednn):
            with torch.autocast("cpu", torch.bfloat16, enabled=self.amp):
                loss = F.cross_entropy(self.forward(self.x), self.y, label_smoothing=0.2)
            self.model.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer_step()

    def optimizer_step(self):
        for opt in self.opts:
            opt.step()


def airbench93_net() -> nn.Module | None:
    """The public reference's own 93 % network (pip package ``airbench``), in fp32 on the CPU as
    ``../shared/peers/airbench_cpu.py`` runs it; None when the package is not installed."""
    try:
        from airbench import lib_airbench93
    except ImportError:
        return None
    with (
        mock.patch.object(nn.Module, "half", lambda self: self.float()),
        mock.patch.object(nn.Module, "cuda", lambda self, *a, **k: self),
    ):
        torch.manual_seed(0)
        return lib_airbench93.make_net93().train()


def compare(variants: dict, rounds: int, steps: int) -> dict:
    """Median seconds per step of each variant, rounds interleaved (one warm-up step each first)."""
    for step in variants.values():
        step()
    times = defaultdict(list)
    for _ in range(rounds):
        for name, step in variants.items():
            t = time.perf_counter()
            for _ in range(steps):
                step()
            times[name].append((time.perf_counter() - t) / steps)
    return {name: statistics.median(ts) for name, ts in times.items()}


def layer_table(model_name: str, batch: int, amp: bool, steps: int, peak: float) -> list[str]:
    """Per-layer forward and backward time of recipe steps, with the analyzer's FLOPs."""
    step = Step(model_name, batch, amp=amp)
    model = step.model
    per_image = {}
    for layer in profile(build(model_name), (3, 32, 32)).layers:
        per_image.setdefault(layer.name, []).append(layer)
    names = {m: n for n, m in model.named_modules() if n and not list(m.children())}
    modules = dict(model.named_modules())
    times = defaultdict(lambda: [0.0, 0.0])  # (name, call) -> [forward s, backward s]
    calls, starts, fwd_order, bwd_marks, shapes, input_grad = defaultdict(int), {}, [], [], {}, {}

    def pre(module, args):
        starts[module] = time.perf_counter()

    def post(module, args, out):
        name = names[module]
        key = (name, calls[name])
        calls[name] += 1
        times[key][0] += time.perf_counter() - starts[module]
        if key not in fwd_order:
            fwd_order.append(key)
            shapes[key] = "x".join(map(str, out.shape[1:]))
            input_grad[key] = args[0].requires_grad

    # Backward runs the layers in reverse order on this one thread: a layer's backward lasts from the
    # gradient of its output arriving to that of the layer before it. Layers whose output needs no
    # gradient (the frozen whitening layer and its activation) get no event and no backward time.
    def bpre(module, grad_out):
        bwd_marks.append((names[module], time.perf_counter()))

    handles = []
    for m in names:
        handles += [
            m.register_forward_pre_hook(pre),
            m.register_forward_hook(post),
            m.register_full_backward_pre_hook(bpre),
        ]
    step()  # warm-up
    times.clear()
    totals = []
    for _ in range(steps):
        calls.clear()
        bwd_marks.clear()
        t0 = time.perf_counter()
        with torch.autocast("cpu", torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(step.x), step.y, label_smoothing=0.2)
        t1 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        step.optimizer_step()
        t4 = time.perf_counter()
        totals.append((t1 - t0, t3 - t2, t4 - t3, t4 - t0))
        seen = defaultdict(int)
        for i, (name, t) in enumerate(bwd_marks):
            end = bwd_marks[i + 1][1] if i + 1 < len(bwd_marks) else t3
            times[(name, calls[name] - 1 - seen[name])][1] += end - t
            seen[name] += 1
    for h in handles:
        h.remove()

    fwd, bwd, opt, whole = (statistics.median(col) for col in zip(*totals, strict=True))
    rows = [
        "| layer | type | output (per image) | fwd GFLOP/batch | fwd ms | fwd GFLOP/s | bwd ms | bwd GFLOP/s "
        "| share of the step |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    step_flops = 0.0
    for name, call in fwd_order:
        tf, tb = (t / steps for t in times[(name, call)])
        layers = per_image.get(name, [])
        layer = layers[call] if call < len(layers) else None
        flops = (layer.flops if layer else 0) * batch
        # backward FLOPs: the weights' gradient (not for the frozen whitening layer) and the input's
        # (not where the input needs none: the image, and everything before the first trained layer)
        kind = type(modules[name]).__name__
        bwd_flops = 0.0
        if kind in ("Conv2d", "Linear"):
            wants_weight = any(q.requires_grad for q in modules[name].parameters())
            bwd_flops = flops * (int(wants_weight) + int(input_grad[(name, call)]))
        step_flops += flops + bwd_flops
        gf = f"{flops / tf / 1e9:.0f}" if flops and tf else ""
        gb = f"{bwd_flops / tb / 1e9:.0f}" if bwd_flops and tb > 0 else ""
        rows.append(
            f"| {name}{'' if call == 0 else f' (call {call + 1})'} | {kind} | {shapes[(name, call)]} | "
            f"{flops / 1e9:.2f} | "
            f"{tf * 1e3:.1f} | {gf} | {tb * 1e3:.1f} | {gb} | {100 * (tf + tb) / whole:.1f}% |"
        )
    layers_s = sum(tf + tb for tf, tb in times.values()) / steps
    rows.append(f"| optimizer step (SGD, Nesterov) | | | | | | | | {100 * opt / whole:.1f}% |")
    rows.append(
        f"| loss, autograd and hook overhead | | | | | | | | {100 * (whole - layers_s - opt) / whole:.1f}% |"
    )
    rows.append("")
    rows.append(
        f"Step: {whole * 1e3:.0f} ms for {batch} images ({batch / whole:.0f} images/s): forward "
        f"{fwd * 1e3:.0f} ms, backward {bwd * 1e3:.0f} ms, optimizer {opt * 1e3:.0f} ms. Convolution and "
        f"linear FLOPs of the step {step_flops / 1e9:.1f} GFLOP -> {step_flops / whole / 1e9:.0f} GFLOP/s, "
        f"{100 * step_flops / whole / 1e9 / peak:.0f}% of the fp32 matmul rate measured above "
        "(the CPU's peak: benchmarks/peak.py)."
    )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="cifar_fast")
    p.add_argument("--batch", type=int, default=1024, help="the recipe's batch (levers use --lever-batch)")
    p.add_argument("--lever-batch", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=2, help="steps per timing")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per lever")
    p.add_argument("--matmul", type=int, default=2048, help="matrix size of the matmul measurement")
    p.add_argument("--levers", nargs="*", default=list(LEVERS), choices=LEVERS)
    p.add_argument("--no-layers", action="store_true", help="skip the layer-by-layer table")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; torch {torch.__version__}; "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}; {torch.get_num_threads()} thread(s); "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    peak = matmul_gflops(args.matmul, torch.float32, 5)
    peak_bf16 = matmul_gflops(args.matmul, torch.bfloat16, 5)
    print(
        f"\nmatmul {args.matmul}x{args.matmul}: fp32 {peak:.0f} GFLOP/s, bf16 {peak_bf16:.0f} GFLOP/s "
        f"({torch.get_num_threads()} thread(s))\n",
        flush=True,
    )
    fwd_flops = profile(build(args.model), (3, 32, 32)).flops
    print(f"{args.model}: {fwd_flops / 1e9:.3f} GFLOP forward per image (analyzer)\n")

    if not args.no_layers:
        print(f"Layer by layer: batch {args.batch}, bf16 autocast, channels-last, {args.steps} step(s)\n")
        print("\n".join(layer_table(args.model, args.batch, True, args.steps, peak)), flush=True)

    b = args.lever_batch
    step_flops = 3 * fwd_flops * b
    rows = [
        "| lever | variant | ms/step | images/s | GFLOP/s | vs first row |",
        "|---|---|---:|---:|---:|---:|",
    ]

    def report(lever, variants, sizes=None, flops_scale=None):
        res = compare(variants, args.rounds, args.steps)
        rate = {name: (sizes or {}).get(name, b) / s for name, s in res.items()}
        first = next(iter(rate.values()))
        for name, s in res.items():
            gf = 3 * fwd_flops * (flops_scale or {}).get(name, 1.0) * rate[name] / 1e9
            rows.append(
                f"| {lever} | {name} | {s * 1e3:.0f} | {rate[name]:.0f} | {gf:.0f} | "
                f"{rate[name] / first:.2f}x |"
            )
        print("\n".join(rows[-len(res) :]), flush=True)

    print(
        f"\nLevers: batch {b}, {args.rounds} interleaved rounds of {args.steps} step(s), medians\n",
        flush=True,
    )
    print("\n".join(rows[:2]), flush=True)
    m = args.model
    if "reference" in args.levers:
        ref = airbench93_net()
        if ref is None:
            print("| reference | airbench not installed (pip install 'cnnarch[reference]') | | | | |")
        else:
            report(
                "reference (airbench93's own network) vs ours",
                {
                    "airbench93 net, fp32": Step(ref, b, amp=False),
                    "cifar_fast_93, fp32": Step("cifar_fast_93", b, amp=False),
                    # as airbench_cpu.py --bf16 runs it: bf16 autocast, channels-last model and input
                    "airbench93 net, bf16": Step(airbench93_net(), b),
                    "cifar_fast_93, bf16": Step("cifar_fast_93", b),
                    "cifar_fast, bf16": Step("cifar_fast", b),
                },
                flops_scale={  # GFLOP/s of each network's own FLOPs, whichever --model sets fwd_flops
                    **dict.fromkeys(
                        (
                            "airbench93 net, fp32",
                            "cifar_fast_93, fp32",
                            "airbench93 net, bf16",
                            "cifar_fast_93, bf16",
                        ),
                        profile(build("cifar_fast_93"), (3, 32, 32)).flops / fwd_flops,
                    ),
                    "cifar_fast, bf16": profile(build("cifar_fast"), (3, 32, 32)).flops / fwd_flops,
                },
            )
    if "amp" in args.levers:
        report("bf16 autocast", {"bf16": Step(m, b), "fp32": Step(m, b, amp=False)})
    if "channels_last" in args.levers:
        report("channels-last (bf16)", {"channels-last": Step(m, b), "NCHW": Step(m, b, channels_last=False)})
        report(
            "channels-last (fp32)",
            {"channels-last": Step(m, b, amp=False), "NCHW": Step(m, b, amp=False, channels_last=False)},
        )
    if "onednn" in args.levers:
        small = max(8, b // 16)  # without oneDNN a convolution falls back to a much slower path
        report(
            f"oneDNN (fp32, batch {small})",
            {"on": Step(m, small, amp=False), "off": Step(m, small, amp=False, onednn=False)},
            sizes={"on": small, "off": small},
        )
    if "batch" in args.levers:
        sizes = {f"batch {n}": n for n in (b // 4, b // 2, b, 2 * b)}
        report("batch size", {k: Step(m, n) for k, n in sizes.items()}, sizes=sizes)
    if "threads" in args.levers:
        res = {}
        for n in sorted({1, args.threads, os.cpu_count() or 1}):
            torch.set_num_threads(n)
            res[f"{n} thread(s)"] = compare({"x": Step(m, b)}, args.rounds, args.steps)["x"]
        torch.set_num_threads(args.threads)
        first = next(iter(res.values()))
        for name, s in res.items():
            rows.append(
                f"| threads | {name} | {s * 1e3:.0f} | {b / s:.0f} | {step_flops / s / 1e9:.0f} | "
                f"{first / s:.2f}x |"
            )
            print(rows[-1], flush=True)
    if "relu" in args.levers:
        report("activation", {"GELU": Step(m, b), "ReLU": Step(m, b, act="relu")})
    if "avgpool" in args.levers:
        report("stage pooling", {"max": Step(m, b), "average": Step(m, b, pool="avg")})
    if "resize" in args.levers:
        report(
            "resolution",
            {f"{s}x{s}": Step(m, b, size=s) for s in (32, 28, 24, 16)},
            flops_scale={f"{s}x{s}": (s / 32) ** 2 for s in (32, 28, 24, 16)},
        )
    if "compile" in args.levers:
        compiled = Step(m, b, compile=True)
        t = time.perf_counter()
        compiled()  # the first call compiles (forward and backward graphs)
        print(
            f"torch.compile (inductor): first step {time.perf_counter() - t:.1f} s (compilation)", flush=True
        )
        report("torch.compile", {"eager": Step(m, b), "inductor": compiled})
    if "muon" in args.levers:
        # Muon's Newton-Schulz orthogonalisation of every filter bank: the whole step, then the
        # optimizer step alone (its gradients from the warm-up step)
        variants = {
            "SGD": Step(m, b),
            "Muon, Newton-Schulz fp32": Step(m, b, muon=torch.float32),
            "Muon, Newton-Schulz bf16": Step(m, b, muon=torch.bfloat16),
        }
        report("Muon for the filters", variants)
        alone = compare({k: v.optimizer_step for k, v in variants.items()}, args.rounds, args.steps)
        for name, s in alone.items():
            print(f"optimizer step alone, {name}: {s * 1e3:.1f} ms", flush=True)
    if "eval" in args.levers:
        model = build(m).eval().to(memory_format=torch.channels_last)
        x = torch.randn(b, 3, 32, 32).contiguous(memory_format=torch.channels_last)

        def infer():
            with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
                model(x)

        s = compare({"eval": infer}, args.rounds, args.steps)["eval"]
        train_s = compare({"train": Step(m, b)}, args.rounds, args.steps)["train"]
        per_epoch = 10_000 / b * s
        print(
            f"\nevaluation: {b / s:.0f} images/s (bf16, no grad) -> {per_epoch:.1f} s for the 10,000 test "
            f"images after each epoch, {100 * per_epoch / (50_000 / b * train_s):.1f}% of an epoch of "
            f"50,000 training images ({50_000 / b * train_s:.0f} s at this rate)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
