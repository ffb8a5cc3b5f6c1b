"""The lecture's numbers, recomputed in the test from shape arithmetic written out here."""

import os
import re
from pathlib import Path

import pytest

from cnnarch.analysis import LECTURE_INPUT, naive_inception, profile, reduced_inception
from cnnarch.analysis.lecture import VGG16_TABLE, check_lecture
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


@pytest.fixture(scope="module")
def claims():
    return {c.claim: c for c in check_lecture()}


def test_every_claim_is_complete(claims):
    assert len(claims) >= 80
    for c in claims.values():
        assert c.lecture and c.computed and c.source
        if not c.agree:
            assert c.why, f"{c.claim}: a difference needs its reason"


@pytest.mark.parametrize(
    "claim,agree",
    [
        ("CONV1 parameters (11x11x3)x96", True),
        ("MAX POOL1 parameters", True),
        ("CONV1 (features.conv1)", True),
        ("TOTAL params", True),
        ("TOTAL memory (activations per image)", False),
        ("a 5 GB card processes about 50 images at a time (forward only)", False),
        ("layers", True),  # GoogLeNet's 22
        ("naive module: operations", True),
        ("naive module: output after concatenation", True),
        ("module with 1x1 reductions: operations", False),
        ("reductions cut the cost almost 2.5 times", False),
        ("ResNet-152 layers", True),
        ("weight decay", False),
    ],
)
def test_claim_status(claims, claim, agree):
    assert claims[claim].agree is agree, claims[claim]


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
        row = next(c for name, c in claims.items() if name.startswith(label + " ("))
        assert row.computed.endswith("-> " + shape) and row.agree
