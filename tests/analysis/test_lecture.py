"""The lecture's numbers, recomputed in the test from shape arithmetic written out here."""

import os
import re
from pathlib import Path

import pytest

from cnnarch.analysis import LECTURE_INPUT, naive_inception, profile, reduced_inception
from cnnarch.analysis.lecture import _verdict, check_lecture, claims_for, evaluate
from cnnarch.analysis.lecture_claims import VGG16_TABLE, Claim
from cnnarch.analysis.report import format_lecture, lecture_label, lecture_rows

LECTURE = Path(__file__).resolve().parents[3] / "shared" / "seed" / "cnn-architectures-lecture.md"

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16_by_hand():
    """(label, H*W*C, weights) per line: 3x3 convs with padding 1 keep the size, 2x2 pools halve it."""
    side, depth = 224, 3
    rows = [("INPUT", side * side * depth, 0)]
    for v in VGG16:
        if v == "M":
            side //= 2
            rows.append(("POOL2", side * side * depth, 0))
        else:
            rows.append((f"CONV3-{v}", side * side * v, 3 * 3 * depth * v))
            depth = v
    fan_in = side * side * depth
    for out in (4096, 4096, 1000):
        rows.append(("FC", out, fan_in * out))
        fan_in = out
    return rows


def test_vgg16_table_from_the_network(zoo):
    p = zoo("vgg16")[1]
    got = [("INPUT", 3 * 224 * 224, 0)]
    for r in lecture_rows(p):
        n = 1
        for s in r.output_shape[1:]:
            n *= s
        got.append((lecture_label(r), n, r.weights))
    assert got == vgg16_by_hand()
    assert sum(n for _, n, _ in got) == 15_237_608  # the lecture says 24M: its slip
    assert p.params == sum(w for _, _, w in got) + sum(v for v in VGG16 if v != "M") + 4096 + 4096 + 1000


def test_vgg16_lecture_layout_reprints_the_lecture(zoo):
    """Each line of `summary vgg16 --format lecture` is the lecture's line, plus the biases it leaves out."""
    ours = format_lecture(zoo("vgg16")[1]).splitlines()
    theirs = VGG16_TABLE.splitlines()
    for mine, line in zip(ours, theirs, strict=False):
        assert re.sub(r" \(\+[\d,]+ biases\)$", "", mine) == re.sub(r"\s+", " ", line.strip())
    assert ours[-1] == "TOTAL params: 138M parameters (138,357,544)"
    assert ours[-2].startswith("TOTAL memory: 15.3M * 4 bytes ~= 61MB / image")


def test_vgg16_table_is_the_lectures():
    if not LECTURE.exists():
        # CI always has ../shared; only a checkout without it may skip
        if os.environ.get("CI"):
            pytest.fail(f"the lecture is not at {LECTURE}; CI needs ../shared/seed")
        pytest.skip(f"the lecture is not at {LECTURE}")
    text = LECTURE.read_text(encoding="utf-8")
    for line in VGG16_TABLE.splitlines():
        assert line in text
    # and its numbers are the hand arithmetic: products and rounded memory labels
    for line, (_, n, w) in zip(VGG16_TABLE.splitlines(), vgg16_by_hand(), strict=True):
        assert line.endswith(f" {w:,}") or line.endswith(f"params: {w}")
        dims = re.search(r"memory: ([\d*]+)", line).group(1)
        prod = 1
        for d in dims.split("*"):
            prod *= int(d)
        assert prod == n


def test_inception_modules_by_hand():
    hw = 28 * 28
    naive = hw * (128 * 1 * 1 * 256 + 192 * 3 * 3 * 256 + 96 * 5 * 5 * 256)
    reduced = hw * (64 * 256 + 64 * 256 + 128 * 256 + 192 * 9 * 64 + 96 * 25 * 64 + 64 * 256)
    pn, pr = profile(naive_inception(), LECTURE_INPUT), profile(reduced_inception(), LECTURE_INPUT)
    assert pn.macs == naive and round(naive / 1e6) == 854
    assert pr.macs == reduced and round(reduced / 1e6) == 271  # the slide says 358M
    assert pn.layers[-1].output_shape == (1, 128 + 192 + 96 + 256, 28, 28)
    assert pr.layers[-1].output_shape == (1, 128 + 192 + 96 + 64, 28, 28)


ALEXNET_LIST = ["CONV1", "MAX POOL1", "NORM1", "CONV2", "MAX POOL2", "NORM2", "CONV3", "CONV4", "CONV5"]
ALEXNET_LIST += ["MAX POOL3", "FC6", "FC7", "FC8"]
RECIPE = ["SGD momentum", "learning rate, divided by 10 when the error plateaus", "mini-batch size"]
EXPECTED = {
    "AlexNet": [
        "five convolutional layers",
        "three fully connected layers",
        "three max-pooling layers",
        "two normalization layers",
        "input image",
        *ALEXNET_LIST,
        "CONV1 output width (227 - 11) / 4 + 1",
        "CONV1 parameters (11x11x3)x96",
        "MAX POOL1 parameters",
        "trained on two GPUs (GTX 580, 3 GB): layers split in two groups",
        "dropout",
        "batch size",
        "SGD momentum",
        "learning rate, divided by 10 by hand when validation error stops improving",
        "L2 weight decay",
        "ensemble of 7 CNNs: top-5 error",
        "ZFNet, ILSVRC 2013: top-5 error",
    ],
    "VGG-16": [
        *(f"line {i}: {label}" for i, (label, _, _) in enumerate(vgg16_by_hand(), 1)),
        "TOTAL memory (activations per image)",
        "TOTAL memory in bytes: 24M * 4 bytes",
        "text: memory per image, forward only",
        "forward + backward memory",
        "TOTAL memory, measured: one forward pass of the real network",
        "forward + backward memory, measured: one training step",
        "a 5 GB card processes about 50 images at a time (forward only)",
        "TOTAL params",
        "VGG16 has 16 layers",
        "VGG19 has 19 layers",
        "no normalization layers",
        "VGG19 works better but uses more memory",
        "ILSVRC 2014: 2nd in classification, 1st in localization",
        "2014: VGGNet more than twice better than AlexNet (top-5 error)",
    ],
    "GoogLeNet": [
        "layers",
        "no fully connected layers",
        "parameters",
        "12 times fewer parameters than AlexNet",
        "stem network: 3 conv layers and 2 pooling layers",
        "auxiliary classifier outputs",
    ],
    "Inception": [
        "naive module: branch outputs (1x1 128, 3x3 192, 5x5 96, 3x3 pool)",
        "naive module: output after concatenation",
        "naive module: operations",
        "32 1x1 filters reduce depth (slide: 56x56x64 input)",
        "module with 1x1 reductions: operations",
        "module with 1x1 reductions: output",
        "reductions cut the cost almost 2.5 times",
        "the zoo's GoogLeNet Inception class, same widths",
    ],
    "ResNet": [
        "ResNet-152 layers",
        "residual block: two 3x3 conv layers (resnet34)",
        "residual block: two 3x3 conv layers (resnet152)",
        "filters double, size halves (stride 2) stage by stage",
        "one extra conv layer at the start",
        "no FC layers but the output layer",
        "batch norm after every conv layer",
        "no dropout",
        *RECIPE,
        "weight decay",
        "ILSVRC 2015 top-5 error",
        "almost twice as good as GoogLeNet",
    ],
}


@pytest.fixture(scope="module")
def results():
    return check_lecture()


@pytest.fixture(scope="module")
def claims(results):
    return {(c.section, c.claim): c for c in results}


def test_every_claim_once_in_the_lectures_order(results, claims):
    expected = [(section, claim) for section, rows in EXPECTED.items() for claim in rows]
    assert len(expected) == 29 + 36 + 6 + 8 + 14 == 93
    assert [(c.section, c.claim) for c in results] == expected
    assert len(claims) == 93  # no two claims share a key


def test_every_claim_is_complete(claims):
    for c in claims.values():
        assert c.lecture and c.source and c.status in ("agree", "differ", "cited")
        assert c.computed or c.status == "cited", c
        if not c.agree:
            assert c.why or c.status == "cited", f"{c.claim}: a difference needs its reason"


@pytest.mark.parametrize(
    "section,claim,status",
    [
        ("AlexNet", "CONV1 parameters (11x11x3)x96", "agree"),
        ("AlexNet", "MAX POOL1 parameters", "agree"),
        ("AlexNet", "CONV1", "agree"),
        ("AlexNet", "NORM1", "differ"),  # the network normalizes before pooling
        ("AlexNet", "CONV4", "agree"),  # the lecture gives no stride: the layer's 1 is used
        ("VGG-16", "TOTAL params", "agree"),
        ("VGG-16", "TOTAL memory (activations per image)", "differ"),
        ("VGG-16", "a 5 GB card processes about 50 images at a time (forward only)", "differ"),
        ("VGG-16", "2014: VGGNet more than twice better than AlexNet (top-5 error)", "agree"),
        ("GoogLeNet", "layers", "agree"),
        ("GoogLeNet", "12 times fewer parameters than AlexNet", "differ"),
        ("Inception", "naive module: operations", "agree"),
        ("Inception", "naive module: output after concatenation", "agree"),
        ("Inception", "module with 1x1 reductions: operations", "differ"),
        ("Inception", "reductions cut the cost almost 2.5 times", "differ"),
        ("ResNet", "ResNet-152 layers", "agree"),
        ("ResNet", "weight decay", "differ"),
        ("ResNet", "almost twice as good as GoogLeNet", "agree"),
    ],
)
def test_claim_status(claims, section, claim, status):
    assert claims[section, claim].status == status, claims[section, claim]


def test_a_papers_figure_is_cited_not_computed(claims):
    cited = [("ResNet", c) for c in [*RECIPE, "ILSVRC 2015 top-5 error"]]
    cited += [("AlexNet", c) for c in ["batch size", "SGD momentum", "L2 weight decay"]]
    for key in cited:
        c = claims[key]
        assert c.status == "cited" and not c.agree and c.computed == "" and c.value is None, c
    # where the paper says otherwise, its value is shown and the claim differs
    assert claims["ResNet", "weight decay"].computed == "1e-4"
    assert claims["AlexNet", "ensemble of 7 CNNs: top-5 error"].status == "differ"
    counts = {s: sum(c.status == s for c in claims.values()) for s in ("agree", "differ", "cited")}
    assert counts == {"agree": 67, "differ": 16, "cited": 10}


def test_computed_values_are_the_hand_arithmetic(claims):
    hw = 28 * 28
    assert claims["Inception", "naive module: operations"].value == hw * 256 * (128 + 192 * 9 + 96 * 25)
    assert claims["VGG-16", "TOTAL memory (activations per image)"].value == sum(
        n for _, n, _ in vgg16_by_hand()
    )
    assert claims["AlexNet", "CONV1 parameters (11x11x3)x96"].value == 11 * 11 * 3 * 96
    ratio = claims["VGG-16", "2014: VGGNet more than twice better than AlexNet (top-5 error)"].value
    assert ratio == pytest.approx(16.4 / 7.3)
    assert "with the 96 biases the layer has 34,944" in claims["AlexNet", "CONV1 parameters (11x11x3)x96"].why


@pytest.mark.parametrize(
    "quoted,check,value,agree",
    [
        ("3.2M", "rounds", 3_211_264, True),
        ("800K", "rounds", 802_816, True),
        ("24M", "rounds", 15_237_608, False),
        ("12x", "rounds", 8.7, False),
        ("~96MB / image", "within 10%", 88.0, True),
        ("~96MB / image", "within 10%", 61.1, False),
        ("> 2x", "above", 2.25, True),
        ("34,848", "equal", 34_848, True),
        ("28x28x672", "equal", "28x28x672", True),
        ("28x28x480", "equal", "28x28x512", False),
    ],
)
def test_evaluator_checks(quoted, check, value, agree):
    assert _verdict(Claim("s", "c", quoted, "net.q", check), value) is agree


def test_a_malformed_claim_is_named():
    with pytest.raises(ValueError, match="no quantity 'parms'"):
        evaluate(Claim("VGG-16", "TOTAL params", "138M", "vgg16.parms", "rounds"))
    with pytest.raises(ValueError, match="unknown check"):
        _verdict(Claim("s", "c", "5", "net.q", "close to"), 5)


def test_claims_for_a_network():
    vgg19 = claims_for("vgg19")
    assert [c.claim for c in vgg19] == ["VGG19 has 19 layers", "VGG19 works better but uses more memory"]
    resnet = {c.claim: c for c in claims_for("resnet152")}
    assert resnet["ResNet-152 layers"].agree and resnet["weight decay"].status == "differ"
    assert "residual block: two 3x3 conv layers (resnet34)" not in resnet
    assert claims_for("lenet") == []


def test_alexnet_output_sizes_by_hand(claims):
    side = 227
    expected = {}
    layers = [
        ("CONV1", 11, 4, 0, 96),
        ("MAX POOL1", 3, 2, 0, 96),
        ("CONV2", 5, 1, 2, 256),
        ("MAX POOL2", 3, 2, 0, 256),
        ("CONV3", 3, 1, 1, 384),
        ("CONV4", 3, 1, 1, 384),
        ("CONV5", 3, 1, 1, 256),
        ("MAX POOL3", 3, 2, 0, 256),
    ]
    for label, k, s, p, depth in layers:
        side = (side + 2 * p - k) // s + 1
        expected[label] = f"{side}x{side}x{depth}"
    assert expected["CONV1"] == "55x55x96" and expected["MAX POOL3"] == "6x6x256"
    for label, shape in expected.items():
        row = claims["AlexNet", label]
        assert row.computed.endswith("-> " + shape) and row.agree
