"""Every numeric claim of the lecture (/shared/seed/cnn-architectures-lecture.md, after CS231n 2017
lecture 9), checked against the real networks of the zoo and the lecture's Inception modules.

Each :class:`Claim` holds the lecture's value as the lecture writes it, the value computed from the
network (or, for training recipes and competition results, read from the paper it comes from), whether
they agree, and why where they do not. The computed value always stands: nothing here is tuned toward
the lecture's figure. "Agree" for a rounded figure means the computed value rounds to it (3,211,264
agrees with "3.2M"); for "about" figures the tolerance is written in the claim's check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from cnnarch.analysis.inception import LECTURE_INPUT, naive_inception, reduced_inception
from cnnarch.analysis.profiler import Layer, Profile, profile
from cnnarch.analysis.report import human, hwc, lecture_rows, megabytes
from cnnarch.analysis.zoo import build


@dataclass(frozen=True)
class Claim:
    section: str
    claim: str
    lecture: str  # as the lecture writes it
    computed: str  # from the network, or from the cited paper
    agree: bool
    why: str = ""  # the convention or the slip, where they differ; a remark otherwise
    source: str = ""  # what the computed value comes from

    @property
    def status(self) -> str:
        return "agree" if self.agree else "differ"


@cache
def _model(name: str) -> nn.Module:
    return build(name)[0]


@cache
def _profile(name: str) -> Profile:
    return profile(*build(name))


def _rounds_to(value: float, label: str) -> bool:
    """Does ``value`` round to the lecture's label ("3.2M", "800K", "4096", "138M")?"""
    m = re.fullmatch(r"([\d.,]+)\s*([KMG]?)", label.strip())
    if not m:
        raise ValueError(f"not a rounded figure: {label!r}")
    digits = m.group(1).replace(",", "")
    scale = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]
    if scale == 1:
        return value == float(digits)
    # significant digits of a round figure: "800K" has one, "150K" two, "3.2M" two, "138M" three
    whole, _, frac = digits.partition(".")
    sig = len((whole + frac).lstrip("0")) if frac else len(whole.strip("0"))
    return float(f"{value / scale:.{max(sig, 1)}g}") == float(digits)


def _hwc(shape: tuple) -> str:
    return hwc(shape, "x")


def _of_type(p: Profile, *types: str) -> list[Layer]:
    return [r for r in p.layers if r.type in types]


# ----- AlexNet

# The lecture's list: (label, kind, filters, kernel, stride, pad). CONV4's stride has no number in the
# lecture ("с шагом, отступ 1"): None.
ALEXNET_LIST = [
    ("CONV1", "conv", 96, 11, 4, 0),
    ("MAX POOL1", "pool", None, 3, 2, 0),
    ("NORM1", "norm", None, None, None, None),
    ("CONV2", "conv", 256, 5, 1, 2),
    ("MAX POOL2", "pool", None, 3, 2, 0),
    ("NORM2", "norm", None, None, None, None),
    ("CONV3", "conv", 384, 3, 1, 1),
    ("CONV4", "conv", 384, 3, None, 1),
    ("CONV5", "conv", 256, 3, 1, 1),
    ("MAX POOL3", "pool", None, 3, 2, 0),
    ("FC6", "fc", 4096, None, None, None),
    ("FC7", "fc", 4096, None, None, None),
    ("FC8", "fc", 1000, None, None, None),
]
_KIND_TYPES = {"conv": ("Conv2d",), "pool": ("MaxPool2d",), "norm": ("LocalResponseNorm",), "fc": ("Linear",)}


def _first(v):
    return v[0] if isinstance(v, tuple | list) else v


def _alexnet_claims() -> list[Claim]:
    p = _profile("alexnet")
    src = "network: alexnet (2012 original)"
    out: list[Claim] = []
    sec = "AlexNet"
    counts = [("conv", 5, "five convolutional layers"), ("fc", 3, "three fully connected layers")]
    counts += [("pool", 3, "three max-pooling layers"), ("norm", 2, "two normalization layers")]
    for kind, n, text in counts:
        got = len(_of_type(p, *_KIND_TYPES[kind]))
        out.append(Claim(sec, text, str(n), str(got), got == n, source=src))
    c, h, w = p.input_shape[1:]
    out.append(Claim(sec, "input image", "227x227x3", f"{h}x{w}x{c}", (h, w, c) == (227, 227, 3), source=src))

    # the lecture's list, followed with its own numbers, next to the real layers of the same kinds
    real = {k: iter(_of_type(p, *t)) for k, t in _KIND_TYPES.items()}
    order = [r.name for r in p.layers if r.type in sum(_KIND_TYPES.values(), ())]
    shape = (3, 227, 227)
    for label, kind, filters, k, stride, pad in ALEXNET_LIST:
        r = next(real[kind], None)
        if r is None:
            out.append(
                Claim(sec, label, "a layer", "missing", False, "the network has fewer such layers", src)
            )
            continue
        e, note, cfg_ok = r.extra, "", True
        if kind in ("conv", "pool"):
            real_stride = _first(e["stride"])
            if stride is None:
                note = f"the lecture's line drops the stride's number; the layer has stride {real_stride}"
            s_ = real_stride if stride is None else stride
            side = (shape[1] + 2 * pad - k) // s_ + 1
            shape = (filters or shape[0], side, side)
            real_cfg = (_first(e["kernel_size"]), real_stride, _first(e["padding"]))
            cfg_ok = (k, s_, pad) == real_cfg and (kind == "pool" or filters == e["out_channels"])
            head = f"{filters} filters " if filters else ""
            lect = f"{head}{k}x{k} stride {stride if stride is not None else '?'} pad {pad}"
            real_head = f"{e['out_channels']} filters " if kind == "conv" else ""
            got = f"{real_head}{real_cfg[0]}x{real_cfg[0]} stride {real_cfg[1]} pad {real_cfg[2]}"
        elif kind == "fc":
            shape = (filters,)
            cfg_ok = e["out_features"] == filters
            lect, got = f"{filters} neurons", f"{e['out_features']} neurons"
        else:
            lect, got = "same size", "same size" if r.input_shape == r.output_shape else "resizes"
        lect += f" -> {_hwc((1, *shape))}"
        got += f" -> {_hwc(r.output_shape)}"
        shape_ok = tuple(r.output_shape[1:]) == shape
        if not shape_ok and kind == "norm":
            pos = order.index(r.name)
            note = (
                "the network, like the paper, normalizes before pooling "
                f"({' -> '.join(order[pos - 1 : pos + 2])}); "
                "the lecture's list puts NORM after POOL"
            )
        out.append(Claim(sec, f"{label} ({r.name})", lect, got, cfg_ok and shape_ok, note, src))
        if label == "CONV1":
            out.append(
                Claim(
                    sec,
                    "CONV1 output width (227 - 11) / 4 + 1",
                    "55",
                    str(r.output_shape[-1]),
                    r.output_shape[-1] == 55,
                    source=src,
                )
            )
            out.append(
                Claim(
                    sec,
                    "CONV1 parameters (11x11x3)x96",
                    "34,848",
                    f"{r.weights:,} weights",
                    r.weights == 34_848,
                    f"the lecture counts weights only; with the {r.biases} biases the layer has {r.params:,}",
                    src,
                )
            )
        if label == "MAX POOL1":
            out.append(Claim(sec, "MAX POOL1 parameters", "0", str(r.params), r.params == 0, source=src))
    grouped = [r.name for r in _of_type(p, "Conv2d") if r.extra.get("groups", 1) == 2]
    out.append(
        Claim(
            sec,
            "trained on two GPUs (GTX 580, 3 GB): layers split in two groups",
            "2",
            f"groups=2 in {', '.join(grouped)}" if grouped else "no grouped layer",
            bool(grouped),
            "the paper's conv2, conv4, conv5 see only the kernels on their own GPU",
            src,
        )
    )
    drops = [m.p for m in _model("alexnet").modules() if isinstance(m, nn.Dropout)]
    out.append(
        Claim(
            sec,
            "dropout",
            "50%",
            ", ".join(f"{d:.0%}" for d in drops),
            bool(drops) and all(d == 0.5 for d in drops),
            source=src,
        )
    )
    paper = "Krizhevsky et al. 2012, section 5"
    for text, lect, val in [
        ("batch size", "128", "128"),
        ("SGD momentum", "0.9", "0.9"),
        ("learning rate, divided by 10 by hand when validation error stops improving", "1e-2", "0.01"),
        ("L2 weight decay", "5e-4", "0.0005"),
    ]:
        out.append(Claim(sec, text, lect, val, float(lect) == float(val), "training recipe", paper))
    out.append(
        Claim(
            sec,
            "ensemble of 7 CNNs: top-5 error",
            "18.2% -> 16.4%",
            "18.2% -> 15.4% (val), 15.3% (test)",
            False,
            "16.4% is the paper's 5-CNN ensemble; 7 CNNs (two pre-trained on ImageNet Fall 2011) reach 15.4%",
            "Krizhevsky et al. 2012, Table 2",
        )
    )
    out.append(
        Claim(
            sec,
            "ZFNet, ILSVRC 2013: top-5 error",
            "11.7%",
            "11.7% (Clarifai, ILSVRC 2013 winner)",
            True,
            "Zeiler & Fergus's own paper reports 14.8% (test) for its 6-net ensemble; 11.7% is the ILSVRC "
            "2013 winning entry by Zeiler's Clarifai",
            "ILSVRC 2013 results; Zeiler & Fergus 2014, Table 2",
        )
    )
    return out


# ----- VGG-16: the lecture's table, transcribed

VGG16_TABLE = """\
INPUT:  memory: 224*224*3=150K params: 0
CONV3-64:  memory: 224*224*64=3.2M params: (3*3*3)*64 = 1,728
CONV3-64:  memory: 224*224*64=3.2M params: (3*3*64)*64 = 36,864
POOL2:  memory: 112*112*64=800K params: 0
CONV3-128:  memory: 112*112*128=1.6M params: (3*3*64)*128 = 73,728
CONV3-128:  memory: 112*112*128=1.6M params: (3*3*128)*128 = 147,456
POOL2:  memory: 56*56*128=400K params: 0
CONV3-256:  memory: 56*56*256=800K params: (3*3*128)*256 = 294,912
CONV3-256:  memory: 56*56*256=800K params: (3*3*256)*256 = 589,824
CONV3-256:  memory: 56*56*256=800K params: (3*3*256)*256 = 589,824
POOL2:  memory: 28*28*256=200K params: 0
CONV3-512:  memory: 28*28*512=400K params: (3*3*256)*512 = 1,179,648
CONV3-512:  memory: 28*28*512=400K params: (3*3*512)*512 = 2,359,296
CONV3-512:  memory: 28*28*512=400K params: (3*3*512)*512 = 2,359,296
POOL2:  memory: 14*14*512=100K params: 0
CONV3-512:  memory: 14*14*512=100K params: (3*3*512)*512 = 2,359,296
CONV3-512:  memory: 14*14*512=100K params: (3*3*512)*512 = 2,359,296
CONV3-512:  memory: 14*14*512=100K params: (3*3*512)*512 = 2,359,296
POOL2:  memory: 7*7*512=25K params: 0
FC:  memory: 4096 params: 7*7*512*4096 = 102,760,448
FC:  memory: 4096 params: 4096*4096 = 16,777,216
FC:  memory: 1000 params: 4096*1000 = 4,096,000
"""
_VGG_LINE = re.compile(
    r"(?P<label>[\w-]+):\s+memory:\s+(?:(?P<dims>[\d*]+)=)?(?P<mem>[\d.,]+[KM]?)\s+params:\s+"
    r"(?:(?P<expr>[\d*()]+) = )?(?P<params>[\d,]+)"
)


def _vgg_claims() -> list[Claim]:
    p = _profile("vgg16")
    src = "network: vgg16"
    sec = "VGG-16"
    out: list[Claim] = []
    rows = [None, *lecture_rows(p)]  # None: the input
    lines = VGG16_TABLE.splitlines()
    if len(rows) != len(lines):
        out.append(
            Claim(sec, "table lines", str(len(lines)), str(len(rows)), False, "layer lists differ", src)
        )
    lecture_sum = 0
    for line, r in zip(lines, rows, strict=False):
        m = _VGG_LINE.match(line)
        shape = p.input_shape if r is None else r.output_shape
        values = 1
        for s in shape[1:]:
            values *= s
        lecture_sum += values
        label = "INPUT" if r is None else _label(r)
        weights = 0 if r is None else r.weights
        dims = hwc(shape)
        ok = (
            label == m["label"]
            and (m["dims"] is None or m["dims"] == dims)
            and _rounds_to(values, m["mem"])
            and weights == int(m["params"].replace(",", ""))
        )
        computed = f"{dims}={values:,} ({human(values)}); weights {weights:,}"
        why = (
            f"the lecture counts weights only; the layer also has {r.biases:,} biases"
            if r is not None and r.biases
            else ""
        )
        out.append(
            Claim(
                sec,
                line.split("params")[0].strip().replace("  ", " "),
                f"{m['mem']}; {m['params']}",
                computed,
                ok,
                why,
                src + ("" if r is None else f" ({r.name})"),
            )
        )
    total = p.activations_per_image
    mb = p.forward_bytes_per_image / 1e6
    out.append(
        Claim(
            sec,
            "TOTAL memory (activations per image)",
            "24M",
            f"{lecture_sum:,} ({human(lecture_sum, 3)})",
            _rounds_to(lecture_sum, "24M"),
            f"arithmetic slip: the table's own lines sum to {lecture_sum:,}; the whole forward pass, "
            f"with the 7x7 adaptive pool's copy, allocates {total:,}",
            src,
        )
    )
    out.append(
        Claim(
            sec,
            "TOTAL memory in bytes: 24M * 4 bytes",
            "~96MB / image",
            f"{mb:.1f} MB / image (float32)",
            abs(mb - 96) / 96 < 0.1,
            "follows from the 24M slip (24M * 4 B = 96 MB is right for 24M values)",
            src,
        )
    )
    out.append(
        Claim(
            sec,
            "text: memory per image, forward only",
            "about 100 MB",
            f"{mb:.1f} MB",
            abs(mb - 100) / 100 < 0.15,
            "the text rounds the table's 96 MB, which rests on the 24M slip",
            src,
        )
    )
    out.append(
        Claim(
            sec,
            "forward + backward memory",
            "~*2",
            megabytes(p.train_bytes_per_image),
            True,
            "the same rule (each activation gets a gradient of its size) applied to the computed forward",
            src,
        )
    )
    fits = p.images_that_fit(5e9, training=False, with_params=False)
    fits_w = p.images_that_fit(5e9, training=False, with_params=True)
    out.append(
        Claim(
            sec,
            "a 5 GB card processes about 50 images at a time (forward only)",
            "50",
            f"{fits} ({fits_w} after the {megabytes(p.param_bytes)} of weights)",
            abs(fits - 50) / 50 < 0.1,
            "5e9 B / 96 MB = 52 follows from the 24M slip; with the real 61 MB per image 81 fit",
            src,
        )
    )
    out.append(
        Claim(
            sec,
            "TOTAL params",
            "138M",
            f"{p.params:,}",
            _rounds_to(p.params, "138M"),
            f"counting biases; weights alone {p.weights:,} also round to 138M",
            src,
        )
    )
    for name in ("vgg16", "vgg19"):
        d = _profile(name).depth
        n = int(name[3:])
        out.append(
            Claim(
                sec,
                f"{name.upper()} has {n} layers",
                str(n),
                f"{d} weighted layers",
                d == n,
                source=f"network: {name}",
            )
        )
    norms = [
        m
        for m in _model("vgg16").modules()
        if isinstance(m, nn.modules.batchnorm._NormBase | nn.LocalResponseNorm)
    ]
    out.append(Claim(sec, "no normalization layers", "0", str(len(norms)), not norms, source=src))
    m16, m19 = (_profile(n).forward_bytes_per_image for n in ("vgg16", "vgg19"))
    from cnnarch.analysis.published import torchvision_metrics

    a16, a19 = (torchvision_metrics(n) for n in ("vgg16", "vgg19"))
    ok = m19 > m16 and a16 is not None and a19 is not None and a19["acc@1"] > a16["acc@1"]
    acc = f"top-1 {a19['acc@1']}% vs {a16['acc@1']}%" if a16 and a19 else "no published accuracy"
    out.append(
        Claim(
            sec,
            "VGG19 works better but uses more memory",
            "VGG19 > VGG16",
            f"{megabytes(m19)} vs {megabytes(m16)} per image; {acc}",
            ok,
            source="networks vgg16, vgg19; torchvision IMAGENET1K_V1 weights' metrics",
        )
    )
    out.append(
        Claim(
            sec,
            "ILSVRC 2014: 2nd in classification, 1st in localization",
            "2nd / 1st",
            "2nd / 1st",
            True,
            source="Simonyan & Zisserman 2015, abstract",
        )
    )
    out.append(
        Claim(
            sec,
            "2014: VGGNet more than twice better than AlexNet (top-5 error)",
            "> 2x",
            f"16.4% / 7.3% = {16.4 / 7.3:.2f}x",
            16.4 / 7.3 > 2,
            "AlexNet's 16.4% (5 CNNs) vs VGG's ILSVRC 2014 submission 7.3%",
            "Krizhevsky et al. 2012, Table 2; Simonyan & Zisserman 2015, Table 7",
        )
    )
    return out


def _label(r: Layer) -> str:
    from cnnarch.analysis.report import lecture_label

    return lecture_label(r)


# ----- GoogLeNet and the Inception modules


def _googlenet_claims() -> list[Claim]:
    p = _profile("googlenet")
    a = _profile("alexnet")
    src = "network: googlenet (paper original, inference: auxiliary heads off)"
    sec = "GoogLeNet"
    out = [
        Claim(
            sec, "layers", "22", f"{p.depth} weighted layers on the longest path", p.depth == 22, source=src
        )
    ]
    fcs = _of_type(p, "Linear")
    out.append(
        Claim(
            sec,
            "no fully connected layers",
            "0",
            f"{len(fcs)} ({', '.join(r.name for r in fcs)})",
            not fcs,
            "the lecture means no large hidden FC layers; the net ends in one linear classifier "
            f"({fcs[0].params:,} params)"
            if fcs
            else "",
            src,
        )
    )
    aux = sum(c for _, c in p.unused)
    out.append(
        Claim(
            sec,
            "parameters",
            "5M",
            f"{p.params - aux:,} ({human(p.params - aux, 2)}); {p.params:,} with the auxiliary heads",
            _rounds_to(p.params - aux, "5M"),
            "5M is the slide's round figure; the paper's Table 1 sums to about 6.8M",
            src,
        )
    )
    ratio = a.params / (p.params - aux)
    out.append(
        Claim(
            sec,
            "12 times fewer parameters than AlexNet",
            "12x",
            f"{a.params:,} / {p.params - aux:,} = {ratio:.1f}x",
            round(ratio) == 12,
            "the paper's claim (vs AlexNet's 60M) rests on its round figures; the real networks give "
            f"{ratio:.1f}x",
            "networks alexnet, googlenet",
        )
    )
    first = next((i for i, r in enumerate(p.layers) if "inception" in r.name.lower()), len(p.layers))
    stem = p.layers[:first]
    n_conv = len([r for r in stem if r.type == "Conv2d"])
    n_pool = len([r for r in stem if r.type == "MaxPool2d"])
    out.append(
        Claim(
            sec,
            "stem network: 3 conv layers and 2 pooling layers",
            "3 conv, 2 pool",
            f"{n_conv} conv, {n_pool} pool",
            (n_conv, n_pool) == (3, 2),
            "counting layers with output before inception3a; the stem also has 2 LRN layers",
            src,
        )
    )
    heads = [n for n, _ in p.unused if "aux" in n]
    out.append(
        Claim(
            sec,
            "auxiliary classifier outputs",
            "2",
            str(len(heads)),
            len(heads) == 2,
            "training only: the forward in eval mode skips them",
            src,
        )
    )
    return out


def _branch_outputs(p: Profile) -> list[str]:
    tops = {}
    for r in p.layers:
        if r.name.startswith("branch"):
            tops[r.name.split(".")[0]] = r
    return [_hwc(r.output_shape) for r in tops.values()]


def _inception_claims() -> list[Claim]:
    sec = "Inception"
    naive = profile(naive_inception(), LECTURE_INPUT)
    red = profile(reduced_inception(), LECTURE_INPUT)
    src_n = "module: naive_inception() on 28x28x256"
    src_r = "module: reduced_inception() on 28x28x256"
    out = [
        Claim(
            sec,
            "naive module: branch outputs (1x1 128, 3x3 192, 5x5 96, 3x3 pool)",
            "28x28x128, 28x28x192, 28x28x96, 28x28x256",
            ", ".join(_branch_outputs(naive)),
            _branch_outputs(naive) == ["28x28x128", "28x28x192", "28x28x96", "28x28x256"],
            source=src_n,
        ),
        Claim(
            sec,
            "naive module: output after concatenation",
            "28x28x672",
            _hwc(naive.layers[-1].output_shape),
            naive.layers[-1].output_shape[1] == 672,
            "the pool branch keeps all 256 channels, so depth only grows: 256 -> 672",
            src_n,
        ),
        Claim(
            sec,
            "naive module: operations",
            "854M",
            f"{naive.macs:,} MACs",
            _rounds_to(naive.macs, "854M"),
            "the lecture's 'operations' are the convolutions' multiply-accumulates",
            src_n,
        ),
    ]
    conv = nn.Conv2d(64, 32, 1)
    p = profile(conv, (64, 56, 56))
    out.append(
        Claim(
            sec,
            "32 1x1 filters reduce depth (slide: 56x56x64 input)",
            "56x56x32",
            _hwc(p.layers[0].output_shape),
            p.layers[0].output_shape[1:] == (32, 56, 56),
            source="module: Conv2d(64, 32, 1) on 56x56x64",
        )
    )
    terms = [(64, 1, 256), (64, 1, 256), (128, 1, 256), (192, 3, 64), (96, 5, 64), (64, 1, 256)]
    slide = sum(28 * 28 * c * k * k * cin for c, k, cin in terms)
    out.append(
        Claim(
            sec,
            "module with 1x1 reductions: operations",
            "358M",
            f"{red.macs:,} MACs ({human(red.macs, 3)})",
            _rounds_to(red.macs, "358M"),
            f"arithmetic slip on the slide: its own six terms (28*28*64*1*1*256, ...) sum to {slide:,}",
            src_r,
        )
    )
    out.append(
        Claim(
            sec,
            "module with 1x1 reductions: output",
            "28x28x480",
            _hwc(red.layers[-1].output_shape),
            red.layers[-1].output_shape[1] == 480,
            source=src_r,
        )
    )
    ratio = naive.macs / red.macs
    out.append(
        Claim(
            sec,
            "reductions cut the cost almost 2.5 times",
            "~2.5x",
            f"{ratio:.2f}x",
            abs(ratio - 2.5) < 0.25,
            f"854M / 358M = {854 / 358:.2f} follows from the slide's slip; the real saving is larger",
            src_r,
        )
    )
    zoo = _zoo_inception()
    if zoo is not None:
        pz = profile(zoo, LECTURE_INPUT)
        out.append(
            Claim(
                sec,
                "the zoo's GoogLeNet Inception class, same widths",
                f"{red.macs:,} MACs",
                f"{pz.macs:,} MACs",
                pz.macs == red.macs,
                source="cnnarch.models.googlenet.Inception",
            )
        )
    return out


def _zoo_inception() -> nn.Module | None:
    try:
        from cnnarch.models.googlenet import Inception
    except ImportError:
        return None
    with torch.device("meta"):
        return Inception(256, 128, 64, 192, 64, 96, 64)


# ----- ResNet


def _resnet_claims() -> list[Claim]:
    sec = "ResNet"
    p = _profile("resnet152")
    src = "network: resnet152"
    out = [
        Claim(
            sec,
            "ResNet-152 layers",
            "152",
            f"{p.depth} weighted layers on the longest path",
            p.depth == 152,
            source=src,
        )
    ]
    for name in ("resnet34", "resnet152"):
        m = _model(name)
        block = m.layer1[0]
        convs = [c for c in block.modules() if isinstance(c, nn.Conv2d) and c not in set(_downsample(block))]
        ks = [c.kernel_size[0] for c in convs]
        ok = ks == [3, 3]
        why = "" if ok else "ResNet-50/101/152 use bottleneck blocks: 1x1 reduce, 3x3, 1x1 expand"
        out.append(
            Claim(
                sec,
                f"residual block: two 3x3 conv layers ({name})",
                "3x3, 3x3",
                ", ".join(f"{k}x{k}" for k in ks),
                ok,
                why,
                f"network: {name}",
            )
        )
    p34 = _profile("resnet34")
    stages = [r for r in p34.blocks if r.level == 1 and r.name.startswith("layer")]
    widths = [r.output_shape[1] for r in stages]
    sizes = [r.output_shape[-1] for r in stages]
    out.append(
        Claim(
            sec,
            "filters double, size halves (stride 2) stage by stage",
            "x2 / /2",
            f"{widths} channels, {sizes} pixels",
            all(b == 2 * a for a, b in zip(widths, widths[1:], strict=False))
            and all(a == 2 * b for a, b in zip(sizes, sizes[1:], strict=False)),
            source="network: resnet34",
        )
    )
    first = next(i for i, r in enumerate(p.layers) if r.name.startswith("layer"))
    stem = [r for r in p.layers[:first] if r.type == "Conv2d"]
    out.append(
        Claim(sec, "one extra conv layer at the start", "1", str(len(stem)), len(stem) == 1, source=src)
    )
    fcs = _of_type(p, "Linear")
    out.append(Claim(sec, "no FC layers but the output layer", "1", str(len(fcs)), len(fcs) == 1, source=src))
    n_conv, n_bn = len(_of_type(p, "Conv2d")), len(_of_type(p, "BatchNorm2d"))
    out.append(
        Claim(
            sec,
            "batch norm after every conv layer",
            "every conv",
            f"{n_conv} conv, {n_bn} BN",
            n_conv == n_bn,
            source=src,
        )
    )
    drops = [m for m in _model("resnet152").modules() if isinstance(m, nn.Dropout)]
    out.append(Claim(sec, "no dropout", "0", str(len(drops)), not drops, source=src))
    paper = "He et al. 2016, section 3.4"
    for text, lect, val in [
        ("SGD momentum", "0.9", "0.9"),
        ("learning rate, divided by 10 when the error plateaus", "0.1", "0.1"),
        ("mini-batch size", "256", "256"),
        ("weight decay", "1e-5", "0.0001"),
    ]:
        why = (
            "training recipe"
            if float(lect) == float(val)
            else "slip in the lecture (and CS231n's slide): the paper uses 1e-4"
        )
        out.append(Claim(sec, text, lect, val, float(lect) == float(val), why, paper))
    out.append(
        Claim(
            sec,
            "ILSVRC 2015 top-5 error",
            "3.57%",
            "3.57%",
            True,
            "ensemble, test set",
            "He et al. 2016, Table 5",
        )
    )
    out.append(
        Claim(
            sec,
            "almost twice as good as GoogLeNet",
            "~2x",
            f"6.67% / 3.57% = {6.67 / 3.57:.2f}x",
            1.7 < 6.67 / 3.57 < 2.0,
            "GoogLeNet's ILSVRC 2014 winning 6.67% top-5",
            "Szegedy et al. 2015, Table 2; He et al. 2016, Table 5",
        )
    )
    return out


def _downsample(block: nn.Module) -> list[nn.Module]:
    ds = getattr(block, "downsample", None)
    return list(ds.modules()) if ds is not None else []


SECTIONS = {
    "AlexNet": _alexnet_claims,
    "VGG-16": _vgg_claims,
    "GoogLeNet": _googlenet_claims,
    "Inception": _inception_claims,
    "ResNet": _resnet_claims,
}


def check_lecture(section: str | None = None) -> list[Claim]:
    """All claims in the lecture's order, or those of one section (case-insensitive)."""
    if section is None:
        return [c for check in SECTIONS.values() for c in check()]
    by_lower = {k.lower(): v for k, v in SECTIONS.items()}
    if section.lower() not in by_lower:
        raise ValueError(f"no section {section!r}; sections: {', '.join(SECTIONS)}")
    return by_lower[section.lower()]()
