"""Text forms of a :class:`~cnnarch.analysis.profiler.Profile`: table, markdown, JSON, CSV and the
lecture's own layout (``CONV3-64: memory: 224*224*64=3.2M params: (3*3*3)*64 = 1,728``).

Units are decimal, as in the lecture: 1 MB = 10^6 bytes, 1 G = 10^9.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from torch import nn

from cnnarch.analysis.profiler import Layer, Profile
from cnnarch.tables import render, text_table


def human(n: float, digits: int = 2) -> str:
    """The lecture's rounding: exact below 10,000, else ``digits`` significant digits and K/M/G
    (3.2M, 800K; totals use 3 digits: 138M)."""
    if abs(n) < 10_000:
        return f"{n:,.0f}" if float(n).is_integer() else f"{n:.3g}"
    div, suffix = next((d, s) for d, s in ((1e9, "G"), (1e6, "M"), (1e3, "K")) if abs(n) >= d)
    return f"{float(f'{n / div:.{digits}g}'):g}{suffix}"


def megabytes(n_bytes: float) -> str:
    if n_bytes >= 1e5:
        return f"{n_bytes / 1e6:,.1f} MB"
    return f"{n_bytes / 1e3:,.1f} KB" if n_bytes >= 1e3 else f"{n_bytes:.0f} B"


def shape_str(shape: tuple) -> str:
    """Per-image shape (the batch dimension dropped), C x H x W."""
    return "x".join(map(str, shape[1:])) if len(shape) > 1 else "x".join(map(str, shape))


def axes_str(v) -> str:
    if v is None:
        return "global"
    if not v:
        return "-"
    return str(v[0]) if len(set(v)) == 1 else "x".join(map(str, v))


COLUMNS = ["layer", "type", "output", "weights", "biases", "activations", "memory", "MACs", "RF", "jump"]


def _cells(r: Layer, indent: bool) -> list[str]:
    name = ("  " * (r.level - 1) if indent else "") + r.name
    mem = megabytes(r.activation_bytes) if r.activation_bytes else "0"
    return [
        name,
        r.type,
        shape_str(r.output_shape),
        f"{r.weights:,}",
        f"{r.biases:,}",
        f"{r.activations:,}",
        mem,
        human(r.macs) if r.macs else "0",
        axes_str(r.rf),
        axes_str(r.jump),
    ]


def totals_lines(p: Profile, gpu_memory_gb: float | None = None) -> list[str]:
    per = p.batch_size
    dt = str(p.dtype).removeprefix("torch.")
    lines = [
        f"input: {shape_str(p.input_shape)} ({dt}), batch {per}; model {p.model}",
        f"params: {p.params:,} (weights {p.weights:,} + biases {p.biases:,}) = {megabytes(p.param_bytes)}",
        f"MACs per image: {p.macs_per_image:,} = {p.macs_per_image / 1e9:.3f} G "
        f"(FLOPs = 2 x MACs = {2 * p.macs_per_image / 1e9:.3f} G;",
        f"  pooling, norm, ReLU, sums: {p.other_ops // per / 1e9:.3f} G other ops)",
        f"training FLOPs per image (forward + backward): {p.train_flops_per_image / 1e9:.3f} G "
        f"= {p.train_flops_per_image / max(p.flops // per, 1):.2f} x forward",
        f"forward activations per image: {p.activations_per_image:,} values = "
        f"{megabytes(p.forward_bytes_per_image)}; forward+backward ~ {megabytes(p.train_bytes_per_image)}",
        f"depth: {p.depth} weighted layers on the longest path; output receptive field {axes_str(p.rf)}",
    ]
    if p.unused:
        names = ", ".join(f"{n} ({c:,})" for n, c in p.unused)
        lines.append(f"not called by forward (counted in params): {names}")
    if gpu_memory_gb:
        mem = gpu_memory_gb * 1e9
        lines.append(
            f"images per {gpu_memory_gb:g} GB: {p.images_that_fit(mem, training=False):,} for inference, "
            f"{p.images_that_fit(mem, training=True):,} for training (weights and gradients subtracted)"
        )
    return lines


def format_table(p: Profile, depth: int | None = None, *, markdown: bool = False, gpu_memory_gb=None) -> str:
    rows = [_cells(r, indent=not markdown) for r in p.rows(depth)]
    table = text_table(COLUMNS, rows, {3, 4, 5, 6, 7}, markdown)
    totals = totals_lines(p, gpu_memory_gb)
    return "\n".join([table, ""] + ([f"- {t}" for t in totals] if markdown else totals))


def _numbers(axes: tuple | None) -> list | None:
    """Receptive field or jump per axis as JSON numbers (a fractional jump, after upsampling or an
    uneven adaptive pool, as a float); ``None`` stays ``None``: global."""
    return None if axes is None else [v if isinstance(v, int) else float(v) for v in axes]


_COUNTS = ("weights", "biases", "params", "activations", "activation_bytes", "macs", "flops", "other_ops")


def records(p: Profile, depth: int | None = None) -> list[dict]:
    """Plain dicts, one per row, with every field and numbers as numbers (the JSON and CSV forms)."""
    return [
        {
            **{k: getattr(r, k) for k in ("name", "type", "kind", "level")},
            "output_shape": list(r.output_shape),
            **{k: getattr(r, k) for k in _COUNTS},
            "rf": _numbers(r.rf),
            "jump": _numbers(r.jump),
        }
        for r in p.rows(depth)
    ]


def measured_lines(p: Profile, m) -> list[str]:
    """A :class:`~cnnarch.analysis.measure.Measured` beside the profile's estimate, per image."""
    est_train = p.train_bytes_per_image + p.param_bytes
    return [
        f"measured on {m.device}, batch {m.batch_size}, peak tensor memory per image: forward "
        f"{megabytes(m.per_image('forward'))} with autograd, {megabytes(m.per_image('inference'))} "
        f"without (estimate {megabytes(p.forward_bytes_per_image)})",
        f"measured training step: {megabytes(m.per_image('train_step'))} per image, of which weight "
        f"gradients {megabytes(m.weight_grads / m.batch_size)} (estimate: activations x 2 + weight gradients "
        f"= {megabytes(est_train)})",
    ]


_TOTALS = tuple(
    "params weights biases macs flops train_flops_per_image other_ops activations_per_image "
    "forward_bytes_per_image train_bytes_per_image depth".split()
)


def to_json(p: Profile, depth: int | None = None, measured=None) -> str:
    totals = {
        "model": p.model,
        "input_shape": list(p.input_shape),
        "dtype": str(p.dtype).removeprefix("torch."),
        **{k: getattr(p, k) for k in _TOTALS},
        "unused": [{"name": n, "params": c} for n, c in p.unused],
    }
    if measured is not None:
        totals["measured"] = asdict(measured)
    return json.dumps({"totals": totals, "layers": records(p, depth)}, indent=1)


def to_csv(p: Profile, depth: int | None = None) -> str:
    # an empty receptive field or jump is the whole image
    rows = [{k: "global" if v is None else v for k, v in row.items()} for row in records(p, depth)]
    return render(rows, "csv") + "\n"


# ----- the lecture's layout


def lecture_rows(p: Profile) -> list[Layer]:
    """The layers the lecture's tables list: those with parameters, those that change the shape, and
    normalization layers (AlexNet's NORM1); ReLU, dropout and VGG's 7x7 -> 7x7 adaptive pool are
    folded into the layer before."""
    return [
        r
        for r in p.layers
        if r.params or (r.input_shape and r.input_shape != r.output_shape) or r.type.endswith("Norm")
    ]


def hwc(shape: tuple, sep: str = "*") -> str:
    """A batched shape as the lecture writes it, H*W*C (224*224*64); a flat vector is its length."""
    s = shape[1:]
    return sep.join(map(str, (*s[1:], s[0]))) if len(s) > 1 else str(s[0])


def lecture_label(r: Layer) -> str:
    e = r.extra
    cls = getattr(nn, r.type, None)
    if cls is not None and issubclass(cls, nn.modules.conv._ConvNd):
        k = e["kernel_size"]
        return f"CONV{k[0] if len(set(k)) == 1 else 'x'.join(map(str, k))}-{e['out_channels']}"
    if r.type in ("MaxPool2d", "AvgPool2d"):
        k = e["kernel_size"]
        return f"POOL{k if isinstance(k, int) else k[0]}"
    if r.type == "Linear":
        return "FC"
    if r.type == "LocalResponseNorm":
        return "NORM"
    return r.type.upper()


def _weight_formula(r: Layer, previous: tuple | None) -> str:
    e = r.extra
    if "kernel_size" in e and "in_channels" in e:
        k = "*".join(map(str, e["kernel_size"]))
        cin = e["in_channels"] // e.get("groups", 1)
        return f"({k}*{cin})*{e['out_channels']} = {r.weights:,}"
    if r.type == "Linear":
        fan_in = hwc(previous) if previous and _numel(previous) == e["in_features"] else e["in_features"]
        return f"{fan_in}*{e['out_features']} = {r.weights:,}"
    return f"{r.weights:,}"


def _numel(shape: tuple) -> int:
    n = 1
    for s in shape[1:]:
        n *= s
    return n


def format_lecture(p: Profile) -> str:
    """The lecture's VGG-16 table for any plain stack: one line per layer, then TOTAL memory and params.

    Weights are shown with the lecture's formula; the real layer's biases, which the lecture leaves
    out, follow in brackets, and TOTAL params counts them."""
    lines = [f"INPUT: memory: {hwc(p.input_shape)}={human(_numel(p.input_shape))} params: 0"]
    previous = p.input_shape
    for r in lecture_rows(p):
        shape = r.output_shape
        mem = f"{hwc(shape)}={human(_numel(shape))}" if len(shape) > 2 else f"{_numel(shape)}"
        params = _weight_formula(r, previous) if r.params else "0"
        if r.biases:
            params += f" (+{r.biases:,} biases)"
        lines.append(f"{lecture_label(r)}: memory: {mem} params: {params}")
        previous = shape
    values = p.activations_per_image
    mb = p.forward_bytes_per_image / 1e6
    lines.append(
        f"TOTAL memory: {human(values, 3)} * {p.dtype.itemsize} bytes ~= {mb:.0f}MB / image "
        f"(only forward! ~*2 for bwd)"
    )
    lines.append(f"TOTAL params: {human(p.params, 3)} parameters ({p.params:,})")
    return "\n".join(lines)
