"""Every numeric claim of the lecture (/shared/seed/cnn-architectures-lecture.md, after CS231n 2017
lecture 9), checked against the real networks of the zoo and the lecture's Inception modules.

The claims are data (:mod:`cnnarch.analysis.lecture_claims`); this module computes the quantities they
name, once per network, and gives each claim a verdict: ``agree``, ``differ`` (with why) or ``cited``
(the lecture repeats a paper's figure, a training recipe or a competition result: nothing to compute).
The computed value always stands: nothing here is tuned toward the lecture's figure. "Agree" for a
rounded figure means the computed value rounds to it (3,211,264 agrees with "3.2M"); for "about"
figures the claim's check names the tolerance.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from functools import cache, cached_property

import torch
from torch import nn

from cnnarch.analysis.inception import LECTURE_INPUT
from cnnarch.analysis.lecture_claims import ALEXNET_LIST, CLAIMS, VGG16_TABLE, Claim
from cnnarch.analysis.profiler import Layer, Profile, profile
from cnnarch.analysis.report import human, hwc, lecture_label, lecture_rows, megabytes
from cnnarch.analysis.zoo import build

__all__ = ["CLAIMS", "VGG16_TABLE", "Claim", "Result", "check_lecture", "claims_for", "evaluate"]

SECTIONS = list(dict.fromkeys(c.section for c in CLAIMS))
# what a claim's source says about its network, beyond the name
_NETWORK_SOURCE = {
    "alexnet": "network: alexnet (2012 original)",
    "googlenet": "network: googlenet (paper original, inference: auxiliary heads off)",
    "inception_naive": "module: naive_inception() on 28x28x256",
    "inception_reduced": "module: reduced_inception() on 28x28x256",
}
# the network a cited claim (or arithmetic on papers' figures) is about, by section
_SECTION_NETWORK = {"AlexNet": "alexnet", "VGG-16": "vgg16", "GoogLeNet": "googlenet", "ResNet": "resnet152"}


@dataclass(frozen=True)
class Fact:
    """A computed quantity: ``value`` is what the check compares, ``shown`` how it is printed,
    ``notes`` the numbers a claim's ``why`` may quote, ``why`` the quantity's own remark (a table's
    line), used where the claim has none."""

    value: object
    shown: str = ""
    notes: dict = field(default_factory=dict)
    why: str = ""


@dataclass(frozen=True)
class Result:
    section: str
    claim: str
    lecture: str  # as the lecture writes it
    computed: str  # the computed value as printed; for a cited claim, the paper's value where it differs
    value: object  # the computed number (or text, or the check's yes/no) itself; None when cited
    status: str  # agree | differ | cited
    why: str
    source: str
    network: str

    @property
    def agree(self) -> bool:
        return self.status == "agree"

    def row(self) -> dict:
        return asdict(self)


# ----- quantities: a claim's "[network.]name[:argument]" calls Network(network).name(argument)


class Network:
    """The quantities the claims name, of one network of the zoo or lecture module (built and profiled
    once, on first use). Each returns a :class:`Fact` or a plain value."""

    def __init__(self, name: str):
        self.name = name

    @cached_property
    def p(self) -> Profile:
        return profile(*build(self.name))

    @cached_property
    def model(self) -> nn.Module:
        return build(self.name)[0]

    def _of_type(self, *types: str) -> list[Layer]:
        return [r for r in self.p.layers if r.type in types]

    def count(self, layer_type: str) -> Fact:
        layers = self._of_type(layer_type)
        names = f" ({', '.join(r.name for r in layers)})" if layer_type == "Linear" and layers else ""
        return Fact(len(layers), f"{len(layers)}{names}", {"layer_params": sum(r.params for r in layers)})

    def input_image(self) -> str:
        return hwc(self.p.input_shape, "x")

    def output(self) -> str:
        return hwc(self.p.layers[-1].output_shape, "x")

    def params(self) -> Fact:
        return Fact(self.p.params, f"{self.p.params:,}", {"weights": self.p.weights})

    def inference_params(self) -> Fact:
        n = self.p.inference_params
        return Fact(n, f"{n:,} ({human(n, 2)}); {self.p.params:,} with the auxiliary heads")

    def fewer_params_than(self, other: str) -> Fact:
        a, b = _network(other).p.params, self.p.inference_params
        return Fact(a / b, f"{a:,} / {b:,} = {a / b:.1f}x")

    def depth(self) -> Fact:
        return Fact(self.p.depth, f"{self.p.depth} weighted layers on the longest path")

    def macs(self) -> Fact:
        return Fact(self.p.macs, f"{self.p.macs:,} MACs ({human(self.p.macs, 3)})")

    def macs_over(self, other: str) -> Fact:
        r = self.p.macs / _network(other).p.macs
        return Fact(r, f"{r:.2f}x")

    def error_ratio(self, errors: str) -> Fact:
        """Two papers' top-5 errors in percent, "worse/better", and their ratio (no network)."""
        a, b = (float(x) for x in errors.split("/"))
        return Fact(a / b, f"{a}% / {b}% = {a / b:.2f}x")

    def list_line(self, line: str) -> Fact:
        return self._alexnet_list[int(line) - 1]

    @cached_property
    def _alexnet_list(self) -> list[Fact]:
        """The lecture's AlexNet list followed with its own numbers (the output size each line implies),
        next to the network's layers of the same kinds, in order. Each fact's value: do they agree."""
        layers = {kind: iter(self._of_type(t)) for kind, t in _KIND_TYPES.items()}
        order = [r.name for r in self.p.layers if r.type in _KIND_TYPES.values()]
        shape, facts = (3, 227, 227), []
        for line in ALEXNET_LIST.splitlines():
            label, words = (s.strip() for s in line.split(":", 1))
            m = _LIST_LINE.fullmatch(words)
            r = next(layers[label.rstrip("0123456789")], None)
            if r is None:
                facts.append(Fact(False, "missing", why="the network has fewer such layers"))
                continue
            e, ok, why = r.extra, True, ""
            if m["k"]:  # conv and pool: the lecture's arithmetic, the real stride where the lecture has none
                k, stride, pad = int(m["k"]), _first(e["stride"]), int(m["pad"] or 0)
                if m["stride"] == "?":
                    why = f"the lecture's line drops the stride's number; the layer has stride {stride}"
                else:
                    stride = int(m["stride"])
                side = (shape[1] + 2 * pad - k) // stride + 1
                shape = (int(m["filters"] or shape[0]), side, side)
                cfg = (_first(e["kernel_size"]), _first(e["stride"]), _first(e["padding"]))
                ok = (k, stride, pad) == cfg and (not m["filters"] or shape[0] == e["out_channels"])
                head = f"{e['out_channels']} filters " if m["filters"] else ""
                shown = f"{head}{cfg[0]}x{cfg[0]} stride {cfg[1]} pad {cfg[2]}"
            elif m["neurons"]:
                shape = (int(m["neurons"]),)
                ok, shown = e["out_features"] == shape[0], f"{e['out_features']} neurons"
            else:
                shown = "same size" if r.input_shape == r.output_shape else "resizes"
                if tuple(r.output_shape[1:]) != shape:
                    pos = order.index(r.name)
                    around = " -> ".join(order[pos - 1 : pos + 2])
                    why = (
                        f"the network, like the paper, normalizes before pooling ({around}); "
                        f"the lecture's list puts NORM after POOL, where the size is {hwc((1, *shape), 'x')}"
                    )
            ok = ok and tuple(r.output_shape[1:]) == shape
            facts.append(Fact(ok, f"{shown} -> {hwc(r.output_shape, 'x')}", {"layer": r.name}, why))
        return facts

    def conv1_width(self) -> int:
        return self._of_type("Conv2d")[0].output_shape[-1]

    def conv1_weights(self) -> Fact:
        r = self._of_type("Conv2d")[0]
        return Fact(r.weights, f"{r.weights:,} weights", {"biases": r.biases, "params": r.params})

    def pool1_params(self) -> int:
        return self._of_type("MaxPool2d")[0].params

    def grouped(self) -> Fact:
        names = [r.name for r in self._of_type("Conv2d") if r.extra.get("groups", 1) == 2]
        return Fact(bool(names), f"groups=2 in {', '.join(names)}" if names else "no grouped layer")

    def dropout_percent(self) -> Fact:
        """The dropout probability in percent (0 without dropout; a list when the layers differ)."""
        rates = [m.p for m in self.model.modules() if isinstance(m, nn.Dropout)]
        value = 100 * rates[0] if len(set(rates)) == 1 else rates or 0
        return Fact(value, ", ".join(f"{r:.0%}" for r in rates) or "0")

    def table_line(self, line: str) -> Fact:
        """Line ``line`` of the lecture's VGG table against the network's layer: label, H*W*C, memory
        to the lecture's rounding, weights."""
        i = int(line) - 1
        m = _VGG_LINE.match(VGG16_TABLE.splitlines()[i])
        r = None if i == 0 else lecture_rows(self.p)[i - 1]
        shape = self.p.input_shape if r is None else r.output_shape
        values, dims = _per_image(shape), hwc(shape)
        label, weights = ("INPUT", 0) if r is None else (lecture_label(r), r.weights)
        ok = (
            label == m["label"]
            and m["dims"] in (None, dims)
            and _rounds_to(values, m["mem"])
            and weights == int(m["params"].replace(",", ""))
        )
        why = (
            f"the lecture counts weights only; the layer also has {r.biases:,} biases"
            if r and r.biases
            else ""
        )
        shown = f"{dims}={values:,} ({human(values)}); weights {weights:,}"
        return Fact(ok, shown, {"layer": "input" if r is None else r.name}, why)

    def table_sum(self) -> Fact:
        total = _per_image(self.p.input_shape) + sum(_per_image(r.output_shape) for r in lecture_rows(self.p))
        return Fact(total, f"{total:,} ({human(total, 3)})", {"allocated": self.p.activations_per_image})

    def forward_mb(self) -> Fact:
        mb = self.p.forward_bytes_per_image / 1e6
        return Fact(mb, f"{mb:.1f} MB / image (float32)")

    def train_over_forward(self) -> Fact:
        train = self.p.train_bytes_per_image
        return Fact(train / self.p.forward_bytes_per_image, megabytes(train))

    @cached_property
    def _measured(self):
        from cnnarch.analysis.measure import measure_memory

        model, size = build(self.name, "cpu")
        return measure_memory(model, size)

    def measured_forward_mb(self) -> Fact:
        """The forward pass measured on the CPU (batch 1): peak tensor memory with autograd on."""
        m = self._measured
        mb = m.forward / 1e6
        shown = f"{mb:.1f} MB measured (CPU; {m.inference / 1e6:.1f} MB under no_grad)"
        return Fact(
            mb, shown, {"inference": m.inference / 1e6, "estimate": self.p.forward_bytes_per_image / 1e6}
        )

    def measured_train_over_forward(self) -> Fact:
        """A training step measured on the CPU: its peak beyond the weights' gradients, over the
        measured forward's."""
        m = self._measured
        rest = m.train_step - m.weight_grads
        shown = (
            f"step peak {m.train_step / 1e6:.0f} MB = {m.weight_grads / 1e6:.0f} MB weight gradients + "
            f"{rest / 1e6:.0f} MB; forward {m.forward / 1e6:.0f} MB"
        )
        return Fact(rest / m.forward, shown, {"ratio": rest / m.forward})

    def fits_5gb(self) -> Fact:
        fits = self.p.images_that_fit(5e9, training=False, with_params=False)
        fits_w = self.p.images_that_fit(5e9, training=False, with_params=True)
        shown = f"{fits} ({fits_w} after the {megabytes(self.p.param_bytes)} of weights)"
        return Fact(fits, shown, {"mb": self.p.forward_bytes_per_image / 1e6})

    def norm_layers(self) -> int:
        norms = (nn.modules.batchnorm._NormBase, nn.LocalResponseNorm)
        return sum(isinstance(m, norms) for m in self.model.modules())

    def better_and_bigger(self, other: str) -> Fact:
        """This network uses more memory per image than ``other`` and has the higher published top-1."""
        from cnnarch.analysis.published import torchvision_metrics

        mem, mem_o = self.p.forward_bytes_per_image, _network(other).p.forward_bytes_per_image
        acc, acc_o = torchvision_metrics(self.name), torchvision_metrics(other)
        ok = mem > mem_o and acc is not None and acc_o is not None and acc["acc@1"] > acc_o["acc@1"]
        top1 = f"top-1 {acc['acc@1']}% vs {acc_o['acc@1']}%" if acc and acc_o else "no published accuracy"
        return Fact(ok, f"{megabytes(mem)} vs {megabytes(mem_o)} per image; {top1}")

    def stem(self) -> str:
        layers = self.p.layers
        first = next((i for i, r in enumerate(layers) if "inception" in r.name.lower()), len(layers))
        types = [r.type for r in layers[:first]]
        return f"{types.count('Conv2d')} conv, {types.count('MaxPool2d')} pool"

    def aux_heads(self) -> int:
        return len([n for n, _ in self.p.unused if "aux" in n])

    def branch_outputs(self) -> str:
        tops = {r.name.split(".")[0]: r for r in self.p.layers if r.name.startswith("branch")}
        return ", ".join(hwc(r.output_shape, "x") for r in tops.values())

    def one_by_one_output(self) -> str:
        """The slide's 32 1x1 filters on 56x56x64 (no network)."""
        return hwc(profile(nn.Conv2d(64, 32, 1), (64, 56, 56)).layers[0].output_shape, "x")

    def zoo_inception_macs(self) -> Fact:
        """The zoo's GoogLeNet Inception class with the lecture's widths costs what the lecture's
        module with 1x1 reductions does."""
        from cnnarch.models.googlenet import Inception

        with torch.device("meta"):
            m = profile(Inception(256, 128, 64, 192, 64, 96, 64), LECTURE_INPUT).macs
        return Fact(m == _network("inception_reduced").p.macs, f"{m:,} MACs")

    def block_kernels(self) -> str:
        block = self.model.layer1[0]
        ds = getattr(block, "downsample", None)
        shortcut = set(ds.modules()) if ds is not None else set()
        convs = [c for c in block.modules() if isinstance(c, nn.Conv2d) and c not in shortcut]
        return ", ".join(f"{c.kernel_size[0]}x{c.kernel_size[0]}" for c in convs)

    def stages(self) -> Fact:
        """Stage by stage, channels double and the side halves."""
        tops = [r for r in self.p.blocks if r.level == 1 and r.name.startswith("layer")]
        widths, sizes = [r.output_shape[1] for r in tops], [r.output_shape[-1] for r in tops]
        pairs = list(zip(widths, widths[1:], sizes, sizes[1:], strict=False))
        ok = all(w2 == 2 * w1 and s1 == 2 * s2 for w1, w2, s1, s2 in pairs)
        return Fact(ok, f"{widths} channels, {sizes} pixels")

    def stem_convs(self) -> int:
        first = next(i for i, r in enumerate(self.p.layers) if r.name.startswith("layer"))
        return len([r for r in self.p.layers[:first] if r.type == "Conv2d"])

    def bn_per_conv(self) -> Fact:
        n_conv, n_bn = len(self._of_type("Conv2d")), len(self._of_type("BatchNorm2d"))
        return Fact(n_conv == n_bn, f"{n_conv} conv, {n_bn} BN")


@cache
def _network(name: str) -> Network:
    return Network(name)


def _per_image(shape: tuple) -> int:
    return math.prod(shape[1:])


def _first(v):
    return v[0] if isinstance(v, tuple | list) else v


_LIST_LINE = re.compile(
    r"(?:(?P<filters>\d+) filters )?(?P<k>\d+)x\d+ stride (?P<stride>\d+|\?)(?: pad (?P<pad>\d+))?"
    r"|(?P<neurons>\d+) neurons|normalization"
)
_KIND_TYPES = {"CONV": "Conv2d", "MAX POOL": "MaxPool2d", "NORM": "LocalResponseNorm", "FC": "Linear"}
_VGG_LINE = re.compile(
    r"(?P<label>[\w-]+):\s+memory:\s+(?:(?P<dims>[\d*]+)=)?(?P<mem>[\d.,]+[KM]?)\s+params:\s+"
    r"(?:[\d*()]+ = )?(?P<params>[\d,]+)"
)


# ----- the evaluator


def _rounds_to(value: float, label: str) -> bool:
    """Does ``value`` round to the lecture's label ("3.2M", "800K", "4096", "138M", "12")?"""
    m = re.fullmatch(r"([\d.,]+)\s*([KMG]?)", label.strip())
    if not m:
        raise ValueError(f"not a rounded figure: {label!r}")
    digits = m.group(1).replace(",", "")
    scale = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]
    whole, _, frac = digits.partition(".")
    if scale == 1:
        return round(value, len(frac)) == float(digits)
    # significant digits of a round figure: "800K" has one, "150K" two, "3.2M" two, "138M" three
    sig = len((whole + frac).lstrip("0")) if frac else len(whole.strip("0"))
    return float(f"{value / scale:.{max(sig, 1)}g}") == float(digits)


def _number(quoted: str) -> float:
    """The first number the lecture writes: "~96MB / image" -> 96, "34,848" -> 34848."""
    return float(re.search(r"\d[\d,]*(?:\.\d+)?(?:e-?\d+)?", quoted).group().replace(",", ""))


def _verdict(c: Claim, value) -> bool:
    if c.check == "holds":
        return bool(value)
    if isinstance(value, str):
        if c.check != "equal":
            raise ValueError(f"{c.claim!r}: a text value is checked 'equal', not {c.check!r}")
        return value == c.quoted
    if c.check == "rounds":
        return _rounds_to(value, re.search(r"[\d.,]+\s*[KMG]?", c.quoted).group())
    quoted = _number(c.quoted)
    if c.check == "equal":
        return value == quoted
    if c.check == "above":
        return value > quoted
    tolerance = re.fullmatch(r"within (\d+)%", c.check)
    if tolerance is None:
        raise ValueError(f"{c.claim!r}: unknown check {c.check!r}")
    return abs(value - quoted) <= quoted * int(tolerance[1]) / 100


def evaluate(c: Claim) -> Result:
    """A claim's verdict: the lecture's value against the computed one, or cited from the paper."""
    network = c.network or _SECTION_NETWORK.get(c.section, "")
    if not c.compute:
        status = "differ" if c.paper else "cited"
        return Result(c.section, c.claim, c.quoted, c.paper, None, status, c.why, c.source, network)
    head, _, arg = c.compute.partition(":")
    net, _, name = head.rpartition(".")
    quantity = getattr(_network(net), name, None)
    if quantity is None or name.startswith("_"):
        raise ValueError(f"{c.claim!r}: no quantity {name!r}; the quantities are Network's methods")
    fact = quantity(arg) if arg else quantity()
    fact = fact if isinstance(fact, Fact) else Fact(fact)
    shown = fact.shown or (f"{fact.value:,}" if isinstance(fact.value, int) else str(fact.value))
    source = c.source or _NETWORK_SOURCE.get(net, f"network: {net}")
    if "layer" in fact.notes:
        source += f" ({fact.notes['layer']})"
    why = c.why.format(value=fact.value, **fact.notes) if c.why else fact.why
    status = "agree" if _verdict(c, fact.value) else "differ"
    return Result(c.section, c.claim, c.quoted, shown, fact.value, status, why, source, network)


def check_lecture(section: str | None = None) -> list[Result]:
    """All claims in the lecture's order, or those of one section (case-insensitive)."""
    if section is not None and section.lower() not in {s.lower() for s in SECTIONS}:
        raise ValueError(f"no section {section!r}; sections: {', '.join(SECTIONS)}")
    return [evaluate(c) for c in CLAIMS if section is None or c.section.lower() == section.lower()]


def claims_for(model_name: str) -> list[Result]:
    """The lecture's claims about one network of the zoo (or lecture module), evaluated: those that
    measure it, and the cited ones of its section (e.g. ResNet's training recipe for ``resnet152``)."""
    return [evaluate(c) for c in CLAIMS if (c.network or _SECTION_NETWORK.get(c.section, "")) == model_name]
