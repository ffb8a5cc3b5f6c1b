"""This CPU's arithmetic peak, and the share of it a `cifar_fast` training step reaches, levers on and off.

Everything is measured in one process, on the CPU at hand, so every ratio sees the same machine and load:

1. **Peak** of one core and of all cores at once (one process pinned to each), per instruction set:
   the C kernels of ``benchmarks/peak_kernels.c``, compiled at run time with ``-march=native`` (``$CC``,
   else gcc or cc): AMX ``tdpbf16ps`` where the CPU has ``amx_bf16``, AVX-512 BF16 ``vdpbf16ps`` where
   it has ``avx512_bf16``, fp32 FMA in AVX-512 and AVX2, and the core's clock (a chain of dependent
   one-cycle adds), hence FLOPs per cycle. Without a C compiler the peak falls back to a large
   ``torch.mm`` on one thread, a lower bound. ``torch.mm`` is measured in any case, for comparison.
2. **The step**: forward, backward and SGD (Nesterov) of ``cifar_fast`` on a synthetic batch (512 by
   default), the whitening layer frozen as after the recipe's third epoch; its FLOPs counted by
   ``torch.utils.flop_counter`` (forward and backward convolutions and matmuls), its GFLOP/s and its
   fraction of the peak measured beside it.
3. **Levers**, each on and off, interleaved: every round runs one step of each variant (bf16 autocast
   or fp32, channels-last or not, batch size, the weight gradients of the 3x3 convolutions as one
   matrix product over an im2col copy instead of oneDNN's weight-gradient kernels, and with
   ``--compile`` eager against ``torch.compile``). Medians over the rounds; ratios are medians of
   per-round ratios.
4. **Where the time goes**: ``torch.profiler`` over one step, grouped (convolution forward and
   backward, pooling, GELU, batch norm, optimizer, casts, the rest), and every convolution's forward,
   input gradient and weight gradient timed alone (``aten.convolution_backward`` asked for one gradient
   at a time) with its GFLOP/s, the weight gradient also as im2col + matmul.

Freed memory stays in the process (``cnnarch.memory.keep_freed_memory``), as in the trainer, unless
``--no-keep-memory``.

FLOPs are counted as torch.utils.flop_counter counts them: every multiply-add of a convolution over the
zero-padded input, 2 FLOPs. Kernels that skip the padding do fewer: on a 3x3 map with padding 1 only
49 of the 81 products are not with padding, on 7x7 82 %, on 15x15 91 %, on 31x31 96 %.
The machine may be shared: each figure is given per wall second and per CPU second of this process's
threads (``time.process_time()``: the time they actually held a core, summed over the torch threads;
FLOPs per CPU second is the rate per core while they ran), with the load average and the thread count.
Run it at normal priority, on one thread:

    python benchmarks/peak.py                     # about 1.5 minutes of one core's time
    python benchmarks/peak.py --compile --rounds 5   # + torch.compile (it compiles for 1-4 minutes)
    python benchmarks/peak.py --quick             # a few seconds: small batch, one round
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # read once, when torch starts its OpenMP runtime
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from cnnarch.memory import keep_freed_memory  # noqa: E402
from cnnarch.models import create_model  # noqa: E402
from cnnarch.train import config  # noqa: E402
from cnnarch.train.config import cpu_flags  # noqa: E402

KERNELS_C = Path(__file__).with_name("peak_kernels.c")
BF16_KERNELS = ("amx_bf16", "avx512_bf16")  # best first
FP32_KERNELS = ("avx512_fp32", "avx2_fp32")


def cpu_model() -> str:
    """The CPU's model name, family and model, and the flags that decide the bf16 path, e.g.
    ``AMD EPYC (family 26, model 2) (avx512_bf16, avx512f, avx2)``."""
    wanted = [f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in cpu_flags()]
    return f"{config.cpu_model()} ({', '.join(wanted) or 'none of amx_bf16, avx512_bf16, avx512f, avx2'})"


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def build_kernels(workdir: Path) -> Path | None:
    """Compile ``peak_kernels.c`` for this CPU; None (and the reason printed) if there is no compiler."""
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        print("no C compiler (set CC): the peak falls back to torch.mm, a lower bound")
        return None
    binary = workdir / "peak"
    try:
        done = subprocess.run(
            [cc, "-O2", "-march=native", "-o", str(binary), str(KERNELS_C)], capture_output=True, text=True
        )
    except OSError as e:
        print(f"C compiler {cc} did not run ({e}): the peak falls back to torch.mm, a lower bound")
        return None
    if done.returncode:
        print(f"{cc} could not build {KERNELS_C.name} ({done.stderr.strip()[:300]}): peak from torch.mm")
        return None
    return binary


def kernel_names(binary: Path) -> list[str]:
    return subprocess.run([str(binary), "list"], capture_output=True, text=True, check=True).stdout.split()


def run_kernel(binary: Path, name: str, seconds: float, cpus=(None,)) -> list[tuple[float, float, float]]:
    """(FLOPs, wall s, CPU s) of one burst of ``name``, one process per entry of ``cpus`` at once
    (pinned to that CPU; None: not pinned)."""

    def pin(cpu):
        return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))

    procs = [
        subprocess.Popen(
            [str(binary), name, str(seconds)], stdout=subprocess.PIPE, text=True, preexec_fn=pin(cpu)
        )
        for cpu in cpus
    ]
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise RuntimeError(f"kernel {name} failed with exit code {p.returncode}")
        flops, wall, cpu = map(float, stdout.split())
        out.append((flops, wall, cpu))
    return out


def torch_mm(n: int, dtype: torch.dtype, repeats: int) -> tuple[float, float]:
    """GFLOP/s of an n x n x n ``torch.mm`` (per wall s, per CPU s of this process), median of repeats."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        torch.mm(a, b)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    flops = 2 * n**3
    return flops / statistics.median(walls) / 1e9, flops / statistics.median(cpus) / 1e9


def im2col_weight_grad(grad_out: torch.Tensor, x: torch.Tensor, kernel_size, padding) -> torch.Tensor:
    """The weight gradient of a stride-1 convolution as one matrix product instead of oneDNN's
    weight-gradient kernel: the kh*kw shifted windows of the zero-padded input copied side by side
    (im2col, channels-last), then ``grad_out^T (K x N*Ho*Wo) @ cols (N*Ho*Wo x kh*kw*C)``.

    grad_out: (N, K, Ho, Wo); x: (N, C, H, W); returns (K, C, kh, kw) in their dtype (the matmul
    accumulates in fp32), laid out channels-last like the recipe's weights."""
    n, c = x.shape[:2]
    k, ho, wo = grad_out.shape[1:]
    (kh, kw), (ph, pw) = kernel_size, padding
    padded = F.pad(x, (pw, pw, ph, ph)).permute(0, 2, 3, 1)  # (N, H + 2 ph, W + 2 pw, C)
    cols = x.new_empty(n, ho, wo, kh, kw, c)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j] = padded[:, i : i + ho, j : j + wo]
    rows = grad_out.permute(0, 2, 3, 1).reshape(n * ho * wo, k)
    return (rows.t() @ cols.view(n * ho * wo, kh * kw * c)).view(k, kh, kw, c).permute(0, 3, 1, 2)


class MatmulWeightGradConv(torch.autograd.Function):
    """A bias-free stride-1 convolution whose forward and input gradient are torch's (oneDNN) and whose
    weight gradient is :func:`im2col_weight_grad`. Under autocast it computes in bf16 like ``F.conv2d``."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.bfloat16)
    def forward(ctx, x, weight, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight, None, 1, padding)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            conv = (None, [1, 1], list(ctx.padding), [1, 1], False, [0, 0], 1, [True, False, False])
            grad_x = torch.ops.aten.convolution_backward(grad_out, x, weight, *conv)[0]
        if ctx.needs_input_grad[1]:
            grad_w = im2col_weight_grad(grad_out, x, weight.shape[2:], ctx.padding)
        return grad_x, grad_w, None


def im2col_applies(m: nn.Conv2d) -> bool:
    """Whether :func:`im2col_weight_grad` computes this convolution's weight gradient."""
    return (
        m.stride == (1, 1)
        and m.dilation == (1, 1)
        and m.groups == 1
        and m.padding_mode == "zeros"
        and not isinstance(m.padding, str)
    )


def matmul_weight_grads(model: nn.Module) -> nn.Module:
    """Give every trainable bias-free stride-1 convolution of ``model`` the weight gradient of
    :class:`MatmulWeightGradConv` (in place); the others keep torch's."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.weight.requires_grad and m.bias is None and im2col_applies(m):
            m.forward = lambda x, m=m: MatmulWeightGradConv.apply(x, m.weight, m.padding)
    return model


def build(model_name: str, channels_last: bool = True) -> nn.Module:
    model = create_model(model_name).train()
    model.whiten.requires_grad_(False)  # the recipe's state after its first 3 epochs
    return model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


class Step:
    """One training step on a fixed synthetic batch: forward, backward, SGD with Nesterov momentum."""

    def __init__(self, model_name, batch, amp=True, channels_last=True, compile=False, matmul_wgrad=False):
        torch.manual_seed(0)
        self.model = build(model_name, channels_last)
        if matmul_wgrad:
            matmul_weight_grads(self.model)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=fmt)
        self.y = torch.randint(0, 10, (batch,))
        self.amp, self.batch = amp, batch
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(params, lr=0.01, momentum=0.85, nesterov=True, weight_decay=1e-3)
        self.forward = torch.compile(self.model) if compile else self.model

    def __call__(self):
        with torch.autocast("cpu", torch.bfloat16, enabled=self.amp):
            loss = F.cross_entropy(self.forward(self.x), self.y, label_smoothing=0.2)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def step_flops(model: nn.Module, x: torch.Tensor, amp: bool = False) -> int:
    """FLOPs of one forward and backward pass of ``model`` on ``x`` (torch.utils.flop_counter:
    convolutions, matmuls and their gradients; elementwise work and the optimizer count as zero)."""
    with FlopCounterMode(display=False) as counter:
        with torch.autocast("cpu", torch.bfloat16, enabled=amp):
            out = model(x)
        out.float().sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def median_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


# torch.profiler op names -> what the step spends the time on; the innermost match decides (the fill_
# inside max pooling's backward is pooling), except that everything under the optimizer is optimizer
CATEGORIES = (
    ("ConvolutionBackward", "convolution backward (input + weight gradients)"),
    ("convolution_backward", "convolution backward (input + weight gradients)"),
    ("convolution", "convolution forward"),
    ("MaxPool2DWithIndicesBackward", "max pooling backward"),
    ("max_pool2d_with_indices_backward", "max pooling backward"),
    ("max_pool2d", "max pooling forward"),
    ("GeluBackward", "GELU backward"),
    ("gelu_backward", "GELU backward"),
    ("gelu", "GELU forward"),
    ("NativeBatchNormBackward", "batch norm backward"),
    ("batch_norm_backward", "batch norm backward"),
    ("batch_norm", "batch norm forward"),
    ("cross_entropy", "loss"),
    ("log_softmax", "loss"),
    ("nll_loss", "loss"),
    ("_to_copy", "bf16/fp32 casts (autocast)"),
)


def time_breakdown(step: Step) -> dict[str, float]:
    """Seconds of one step per category (CATEGORIES), from torch.profiler's self CPU times."""
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    totals = defaultdict(float)
    for event in prof.events():
        chain, e = [], event
        while e is not None:
            chain.append(e.name)
            e = e.cpu_parent
        if any(n.startswith(("Optimizer.step", "Optimizer.zero_grad")) for n in chain):
            category = "optimizer (SGD step, zero_grad)"
        else:
            matches = (label for n in chain for key, label in CATEGORIES if key in n)
            category = next(matches, "other (autograd, adds, views)")
        totals[category] += event.self_cpu_time_total / 1e6
    return dict(totals)


def conv_table(model_name: str, batch: int, amp: bool, rounds: int) -> list[tuple]:
    """Each convolution of the step timed alone: (name, input shape, out channels, FLOPs, needs the input
    gradient, forward s, input-gradient s, weight-gradient s, weight gradient by
    :func:`im2col_weight_grad` s or None where it does not apply), CPU seconds of this process's threads (the
    time they held a core, so that other jobs on a shared machine count less), medians of interleaved
    rounds."""
    step = Step(model_name, batch, amp=amp)
    dtype = torch.bfloat16 if amp else torch.float32
    convs = {}

    def hook(module, args, out):
        convs[module] = (args[0].detach().to(dtype), out.shape, args[0].requires_grad)

    names = {m: n for n, m in step.model.named_modules() if isinstance(m, nn.Conv2d)}
    handles = [m.register_forward_hook(hook) for m in names if m.weight.requires_grad]
    with torch.autocast("cpu", torch.bfloat16, enabled=amp):  # with autograd: which inputs need a gradient
        step.model(step.x)
    for h in handles:
        h.remove()
    rows, work = [], []
    for m, (x, out_shape, needs_dx) in convs.items():
        x = x.contiguous(memory_format=torch.channels_last)
        w = m.weight.detach().to(dtype).contiguous(memory_format=torch.channels_last)
        gy = torch.randn(out_shape, dtype=dtype).contiguous(memory_format=torch.channels_last)
        args = (m.stride, m.padding, m.dilation, False, [0, 0], m.groups)
        cases = {
            "forward": lambda x=x, w=w, m=m: F.conv2d(x, w, None, m.stride, m.padding, m.dilation, m.groups),
            "input gradient": lambda gy=gy, x=x, w=w, a=args: torch.ops.aten.convolution_backward(
                gy, x, w, None, *a, [True, False, False]
            ),
            "weight gradient": lambda gy=gy, x=x, w=w, a=args: torch.ops.aten.convolution_backward(
                gy, x, w, None, *a, [False, True, False]
            ),
        }
        if im2col_applies(m):
            cases["weight gradient as matmul"] = lambda gy=gy, x=x, m=m: im2col_weight_grad(
                gy, x, m.kernel_size, m.padding
            )
        n, c, kh, kw = out_shape[0], m.in_channels // m.groups, *m.kernel_size
        flops = 2 * n * m.out_channels * out_shape[2] * out_shape[3] * c * kh * kw
        rows.append([names[m], tuple(x.shape[1:]), m.out_channels, flops, needs_dx])
        work.append(cases)
    times = [defaultdict(list) for _ in work]
    for cases in work:
        for f in cases.values():
            f()
    for _ in range(rounds):
        for cases, t in zip(work, times, strict=True):
            for key, f in cases.items():
                s = time.process_time()
                f()
                t[key].append(time.process_time() - s)
    keys = ("forward", "input gradient", "weight gradient", "weight gradient as matmul")
    return [
        (*row, *(statistics.median(t[k]) if t[k] else None for k in keys))
        for row, t in zip(rows, times, strict=True)
    ]


def measure_peaks(args) -> dict[bool, tuple[float, str]]:
    """Print the peak tables; return {bf16?: (GFLOP/s of one core per CPU second, where it comes from)}."""
    with tempfile.TemporaryDirectory(prefix="cnnarch-peak-") as workdir:
        binary = build_kernels(Path(workdir))
        names = kernel_names(binary) if binary else []
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [None]
        bursts = 1 if args.quick else 3
        peak = {}  # kernel -> GFLOP/s of one core per CPU second
        if names:
            print(f"\n## Peak: C kernels ({', '.join(names)}), best of {bursts} bursts of {args.burst} s\n")
            clock = max(
                f / c for f, _, c in (run_kernel(binary, "clock", args.burst)[0] for _ in range(bursts))
            )
            print(f"clock of one core (dependent adds): {clock / 1e9:.2f} GHz\n")
            print(
                f"| kernel | one core, GFLOP/s per CPU s | per wall s | FLOP/cycle | all {len(cpus)} cores "
                "at once, GFLOP/s per CPU s (sum) | per wall s (sum) | load |"
            )
            print("|---|---:|---:|---:|---:|---:|---|")
        for name in (n for n in names if n != "clock"):
            try:
                one = [run_kernel(binary, name, args.burst)[0] for _ in range(bursts)]
                every = [run_kernel(binary, name, args.burst, cpus) for _ in range(bursts)]
            except RuntimeError as e:  # e.g. a kernel that Linux refuses the AMX tile state
                print(f"| {name} | {e} | | | | | {load()} |")
                continue
            peak[name] = max(f / c for f, _, c in one) / 1e9
            wall = max(f / w for f, w, _ in one) / 1e9
            all_cpu = max(sum(f / c for f, _, c in r) for r in every) / 1e9
            all_wall = max(sum(f / w for f, w, _ in r) for r in every) / 1e9
            print(
                f"| {name} | {peak[name]:.0f} | {wall:.0f} | {peak[name] * 1e9 / clock:.1f} | "
                f"{all_cpu:.0f} | {all_wall:.0f} | {load()} |",
                flush=True,
            )
    n = 256 if args.quick else 2048
    mm_bf16, mm_fp32 = torch_mm(n, torch.bfloat16, 3), torch_mm(n, torch.float32, 3)
    print(
        f"\ntorch.mm {n}x{n}, {torch.get_num_threads()} thread(s): bf16 {mm_bf16[1]:.0f} GFLOP/s per CPU s "
        f"({mm_bf16[0]:.0f} per wall s), fp32 {mm_fp32[1]:.0f} ({mm_fp32[0]:.0f}); {load()}",
        flush=True,
    )
    fp32_kernel = next((k for k in FP32_KERNELS if k in peak), None)
    # without bf16 units a bf16 product is computed in fp32, so the fp32 peak bounds it
    bf16_kernel = next((k for k in BF16_KERNELS if k in peak), fp32_kernel)
    peaks = {
        True: (peak[bf16_kernel], bf16_kernel) if bf16_kernel else (mm_bf16[1], "torch.mm bf16"),
        False: (peak[fp32_kernel], fp32_kernel) if fp32_kernel else (mm_fp32[1], "torch.mm fp32"),
    }
    for amp, (value, source) in peaks.items():
        print(f"peak of one core, {'bf16' if amp else 'fp32'}: {value:.0f} GFLOP/s ({source})")
    return peaks


def measure_levers(args, peaks) -> Step:
    """Print the step's table, every variant interleaved; return the first variant's step."""
    m, b = args.model, args.batch
    variants = {
        "bf16, channels-last": dict(batch=b),
        "fp32, channels-last": dict(batch=b, amp=False),
        "bf16, NCHW": dict(batch=b, channels_last=False),
    }
    variants["bf16, channels-last, weight gradients as im2col + matmul"] = dict(batch=b, matmul_wgrad=True)
    if args.compile:
        variants["bf16, channels-last, torch.compile"] = dict(batch=b, compile=True)
    variants |= {f"bf16, channels-last, batch {n}": dict(batch=n) for n in args.batches if n != b}
    # FLOPs grow with the batch and do not depend on the dtype or the memory layout
    per_image = step_flops(build(m), torch.randn(2, 3, 32, 32)) / 2
    steps = {}
    for name, kw in variants.items():
        steps[name] = Step(m, **kw)
        t = time.perf_counter()
        steps[name]()  # warm-up; torch.compile compiles here
        if kw.get("compile"):
            print(f"\ntorch.compile (inductor): first step {time.perf_counter() - t:.0f} s (compilation)")
    print(
        f"\n## The {m} training step: batch {b}, {torch.get_num_threads()} thread(s), {args.rounds} "
        f"interleaved rounds, medians\n\nFLOPs per image (forward + backward, torch.utils.flop_counter): "
        f"{per_image / 1e9:.3f} GFLOP\n",
        flush=True,
    )
    walls, cpus = defaultdict(list), defaultdict(list)
    loads = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for name, step in steps.items():
            w, c = time.perf_counter(), time.process_time()
            step()
            walls[name].append(time.perf_counter() - w)
            cpus[name].append(time.process_time() - c)
        loads.append(os.getloadavg()[0])
    print(
        "| variant | ms/step (wall) | images/s (wall) | GFLOP/s per wall s | CPU share | ms/step (CPU) | "
        "images/s per CPU s | GFLOP/s per CPU s | % of one core's peak | speed vs first row (CPU) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    first = [b / c for c in cpus[next(iter(steps))]]
    for name, kw in variants.items():
        n, amp = kw["batch"], kw.get("amp", True)
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        flops = per_image * n
        print(
            f"| {name} | {wall * 1e3:.0f} | {n / wall:.0f} | {flops / wall / 1e9:.0f} | "
            f"{100 * cpu / wall:.0f}% | {cpu * 1e3:.0f} | {n / cpu:.0f} | {flops / cpu / 1e9:.0f} | "
            f"{100 * flops / cpu / 1e9 / peaks[amp][0]:.0f}% of {peaks[amp][0]:.0f} "
            f"({'bf16' if amp else 'fp32'}) | {median_ratio([n / c for c in cpus[name]], first):.2f}x |",
            flush=True,
        )
    print(f"\nload average (1 min) during the rounds: {min(loads):.1f}-{max(loads):.1f}")
    return steps[next(iter(steps))]


def show_breakdown(args, step: Step) -> None:
    parts = time_breakdown(step)
    total = sum(parts.values())
    print(
        f"\n## Where the time goes: torch.profiler over one step (bf16, channels-last, batch {args.batch}); "
        f"{load()}\n"
    )
    print("| part | ms (wall) | share |\n|---|---:|---:|")
    for name, s in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {s * 1e3:.0f} | {100 * s / total:.1f}% |")
    print(f"| total (profiled) | {total * 1e3:.0f} | |")

    print(
        f"\nEach convolution alone (bf16, channels-last, batch {args.batch}; CPU seconds of the process, "
        f"medians of {args.rounds}); {load()}\n"
    )
    print(
        "| layer | input (C, H, W) | out channels | GFLOP | forward ms | GFLOP/s | input gradient ms | "
        "GFLOP/s | weight gradient ms | GFLOP/s | weight gradient as im2col + matmul ms | GFLOP/s | speed |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    sums = [0.0, 0.0, 0.0, 0.0]
    for name, shape, out_c, fl, needs_dx, tf, tdx, tdw, tmm in conv_table(
        args.model, args.batch, True, args.rounds
    ):
        dx = f"{tdx * 1e3:.1f} | {fl / tdx / 1e9:.0f}" if needs_dx else "(not needed) | "
        mm = f"{tmm * 1e3:.1f} | {fl / tmm / 1e9:.0f} | {tdw / tmm:.2f}x" if tmm else "(does not apply) | |"
        print(
            f"| {name} | {'x'.join(map(str, shape))} | {out_c} | {fl / 1e9:.2f} | {tf * 1e3:.1f} | "
            f"{fl / tf / 1e9:.0f} | {dx} | {tdw * 1e3:.1f} | {fl / tdw / 1e9:.0f} | {mm} |"
        )
        sums = [sums[0] + tf, sums[1] + (tdx if needs_dx else 0.0), sums[2] + tdw, sums[3] + (tmm or tdw)]
    print(
        f"\nConvolutions alone: forward {sums[0] * 1e3:.0f} ms, input gradients {sums[1] * 1e3:.0f} ms, "
        f"weight gradients {sums[2] * 1e3:.0f} ms (CPU); as im2col + matmul where it applies "
        f"{sums[3] * 1e3:.0f} ms."
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="cifar_fast")
    p.add_argument("--batch", type=int, default=512, help="the batch of the step and of the levers")
    p.add_argument("--batches", type=int, nargs="*", default=[128, 256, 1024], help="batch sizes compared")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the peak kernels run per core)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    p.add_argument("--burst", type=float, default=0.25, help="seconds of each peak-kernel burst")
    p.add_argument("--compile", action="store_true", help="also torch.compile (it compiles for minutes)")
    p.add_argument("--quick", action="store_true", help="batch 32, one round, short bursts, no compile")
    p.add_argument(
        "--keep-memory",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep freed memory in the process, as the trainer does (a step reuses the pages of the last)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.batches, args.rounds, args.burst, args.compile = 32, [16], 1, 0.03, False
    if args.batch < 1 or args.rounds < 1 or args.threads < 1 or any(b < 1 for b in args.batches):
        p.error("--batch, --batches, --rounds and --threads must be positive")

    torch.set_num_threads(args.threads)
    kept = args.keep_memory and keep_freed_memory()
    began = time.perf_counter()
    print(
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; CPU: {cpu_model()}, {os.cpu_count()} logical "
        f"CPUs; torch {torch.__version__} (capability {torch.backends.cpu.get_cpu_capability()}); "
        f"{torch.get_num_threads()} torch thread(s); freed memory {'kept' if kept else 'returned'}; "
        f"nice {os.nice(0)}; {load()}",
        flush=True,
    )
    peaks = measure_peaks(args)
    step = measure_levers(args, peaks)
    show_breakdown(args, step)
    print(f"\ndone in {time.perf_counter() - began:.0f} s; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
