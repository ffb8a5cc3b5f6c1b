"""Diagrams: the boxes, arcs, branches and side branches read from the networks, checked against counts
taken from the module trees; SVG and PNG as a person sees them; rich display in notebooks."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnnarch.analysis import build, profile
from cnnarch.analysis.diagram import COLORS, draw, sheet
from cnnarch.cli import main
from cnnarch.models.fractalnet import Join
from cnnarch.models.googlenet import Inception, InceptionAux
from cnnarch.models.resnet import BasicBlock

SVG = "{http://www.w3.org/2000/svg}"


def kinds(d, kind):
    return [n for n in d.nodes if n.kind == kind]


def svg_layers(d):
    root = ET.fromstring(d.to_svg())
    return [g for g in root.iter(f"{SVG}g") if "layer" in g.get("class", "").split()]


def test_resnet34_boxes_and_shortcut_arcs():
    model, size = build("resnet34")
    d = draw("resnet34")
    modules = dict(model.named_modules())
    blocks = [m for m in modules.values() if isinstance(m, BasicBlock)]
    convs = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
    # the projection shortcuts are drawn on their arcs, every other convolution as a box
    assert len(kinds(d, "conv")) == len([n for n in convs if "downsample" not in n]) == 33
    assert len(kinds(d, "pool")) == sum(
        isinstance(m, nn.MaxPool2d | nn.AdaptiveAvgPool2d) for m in modules.values()
    )
    assert [n.label for n in kinds(d, "fc")] == [f"FC {model.fc.out_features}"]
    assert len(kinds(d, "add")) == len(blocks) == 16
    assert len(d.arcs) == len(blocks)
    assert sum(dashed for *_, dashed in d.arcs) == sum(b.downsample is not None for b in blocks) == 3
    first = kinds(d, "conv")[0]
    assert first.label == "7x7 conv, 64, /2" and first.shape == f"64x{(224 + 2 * 3 - 7) // 2 + 1}x112"
    assert kinds(d, "pool")[0].label == "pool, /2"
    assert len(svg_layers(d)) == len(d.nodes)
    root = ET.fromstring(d.to_svg())
    arcs = [p for p in root.iter(f"{SVG}path") if "arc" in p.get("class", "")]
    assert len(arcs) == 16 and sum("projection" in p.get("class") for p in arcs) == 3


def test_googlenet_inception_branches_and_auxiliary_heads():
    model, _ = build("googlenet")
    d = draw("googlenet")
    inceptions = [n for n, m in model.named_children() if isinstance(m, Inception)]
    concat_groups = [g for g in d.groups if g[2] == "concat"]
    assert [g[0] for g in concat_groups] == inceptions and len(inceptions) == 9
    assert all(branches == 4 for _, branches, _ in concat_groups)
    aux = [n for n, m in model.named_children() if isinstance(m, InceptionAux)]
    assert len(d.sides) == len(aux) == 2
    for chain, name in zip(d.sides, aux, strict=True):
        assert all(n.name.startswith(name + ".") for n in chain)
        linears = [m for m in getattr(model, name).modules() if isinstance(m, nn.Linear)]
        assert [n.label for n in chain if n.kind == "fc"] == [f"FC {m.out_features}" for m in linears]
    collapsed = draw("googlenet", depth=1)
    assert [n.name for n in kinds(collapsed, "block") if n.name in inceptions] == inceptions
    for n in kinds(collapsed, "block"):
        if n.name in inceptions:
            module = getattr(model, n.name)
            convs = sum(isinstance(m, nn.Conv2d) for m in module.modules())
            pools = sum(isinstance(m, nn.MaxPool2d) for m in module.modules())
            assert n.lines == [f"{convs} conv, {pools} pool, 1 concat"]
    assert [chain[0].name for chain in collapsed.sides] == aux
    assert kinds(collapsed, "conv")[0].label == "7x7 conv, 64, /2"  # conv1 wraps one convolution and a ReLU
    trunk = [n for n in d.nodes if not any(n in chain for chain in d.sides)]
    assert [n.label for n in trunk if n.kind == "fc"] == [f"FC {model.fc.out_features}"]
    assert [n.label for n in trunk if n.kind == "norm"] == ["LRN", "LRN"]


def test_fractalnet_columns_and_joins():
    model, _ = build("fractalnet20")
    d = draw("fractalnet20")
    c, b = model.num_columns, model.num_blocks
    assert len(kinds(d, "conv")) == b * (2**c - 1)  # columns of 1, 2, 4 convolutions per block
    assert [g[0] for g in d.groups if g[0]] == [f"block{i}" for i in range(1, b + 1)]
    assert len(kinds(d, "join")) == sum(isinstance(m, Join) for m in model.modules()) == 10


def test_resnet152_collapsed_stages():
    model, _ = build("resnet152")
    d = draw("resnet152", depth=1)
    stages = kinds(d, "block")
    assert (
        [n.repeat for n in stages] == [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [3, 8, 36, 3]
    )
    svg = d.to_svg()
    for r in ("x3", "x8", "x36"):
        assert f">{r}</text>" in svg
    assert stages[0].lines == ["1x1 conv, 64", "3x3 conv, 64", "1x1 conv, 256"]
    assert len(svg_layers(d)) == len(d.nodes) == 1 + 1 + 2 + 4 + 1  # input, conv1, 2 pools, stages, fc


class Tiny(nn.Module):
    """A user's network: two branches concatenated, a residual sum, a classifier."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 5, padding=2))
        self.res = nn.Conv2d(16, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        x = torch.cat([self.a(x), self.b(x)], 1)
        x = x + self.res(x)
        return self.fc(torch.flatten(self.pool(x), 1))


def test_user_module():
    d = draw(Tiny(), (3, 16, 16))
    assert [n.label for n in d.nodes] == [
        "input", "3x3 conv, 8", "1x1 conv, 4", "5x5 conv, 8", "concat", "3x3 conv, 16", "+", "pool, /2",
        "FC 10",
    ]  # fmt: skip
    assert d.groups == [("", 2, "concat")] and d.arcs == [("", "add", False)]
    assert d.nodes[-2].shape == "16x8x8" and d.title == "Tiny"


class Dense(nn.Module):
    """Every layer reads all the earlier ones: not series-parallel, drawn as a column with arcs."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(3 + 4 * i, 4, 3, padding=1) for i in range(3))

    def forward(self, x):
        feats = [x]
        for conv in self.convs:
            feats.append(conv(torch.cat(feats, 1)))
        return torch.cat(feats, 1)


def test_dense_graph_falls_back_to_a_column_with_arcs():
    d = draw(Dense(), (3, 8, 8))
    assert [n.kind for n in d.nodes] == ["input", "conv", "concat", "conv", "concat", "conv", "concat"]
    # every edge that skips a row is an arc: cat#2 reads x (1 skip), cat#3 reads x and conv 0, ...
    assert len(d.arcs) == 1 + 2 + 3


def test_png_and_svg_files(tmp_path):
    d = sheet([draw("alexnet"), draw("vgg16")])
    assert d.width > 2 * 150 and d.height > 21 * 22  # two columns; VGG-16 has 22 boxes
    png, svg = tmp_path / "s.png", tmp_path / "s.svg"
    d.save(png, dpi=72)
    d.save(svg)
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert abs(img.shape[1] - (d.width + 16)) <= 2 and abs(img.shape[0] - (d.height + 16)) <= 2
    assert img.std() > 20  # not blank
    conv = np.array([int(COLORS["conv"][i : i + 2], 16) for i in (1, 3, 5)])
    fc = np.array([int(COLORS["fc"][i : i + 2], 16) for i in (1, 3, 5)])
    for color in (conv, fc):
        assert (np.abs(img - color).sum(-1) < 6).sum() > 500  # the boxes are filled
    root = ET.parse(svg).getroot()
    titles = [t.text for t in root.iter(f"{SVG}text")]
    assert "alexnet" in titles and "vgg16" in titles and titles.count("FC 4096") == 4
    with pytest.raises(ValueError, match=r"\.svg or \.png"):
        d.save(tmp_path / "s.pdf")


def test_notebook_and_terminal_forms():
    d = draw("alexnet")
    assert d._repr_svg_() == d.to_svg() and d.to_svg().startswith("<svg")
    model, size = build("alexnet")
    p = profile(model, size)
    text = str(p)  # print(profile(...)): the summary table, not a dataclass repr
    assert text.splitlines()[0].split()[:3] == ["layer", "type", "output"]
    assert f"params: {sum(t.numel() for t in model.parameters()):,}" in text
    page = p._repr_html_()
    assert page.count("<tr data-name=") == len(p.layers) and "params:" in page
    assert "<style>" in page and "border-collapse" in page  # its own style: a notebook gives none


def test_jupyter_picks_the_rich_forms():
    formatters = pytest.importorskip("IPython.core.formatters", reason="IPython is not installed")
    model, size = build("alexnet")
    p = profile(model, size)
    assert formatters.DisplayFormatter().format(draw("alexnet"))[0]["image/svg+xml"].startswith("<svg")
    assert formatters.DisplayFormatter().format(p)[0]["text/html"] == p._repr_html_()


def test_cli_draw_and_report(tmp_path, capsys):
    out = tmp_path / "d.svg"
    assert main(["draw", "alexnet", "resnet18", "--out", str(out), "--depth", "1"]) == 0
    assert "layer1: BasicBlock" in out.read_text() and ">x2</text>" in out.read_text()
    assert main(["draw", "alexnet", "--out", str(tmp_path / "d.txt")]) == 2
    assert "must end in .svg or .png" in capsys.readouterr().err
    assert main(["draw", "alexnet", "--out", str(out), "--overwrite", "--depth", "0"]) == 2
    assert "depth must be 1 or more" in capsys.readouterr().err
    assert main(["draw", "alexnet", "--out", str(out), "--overwrite", "--input", "3x8x8"]) == 2
    assert "alexnet accepts inputs of 227x227" in capsys.readouterr().err  # the zoo's own refusal
    with pytest.raises(ValueError, match="input_size"):
        draw(Tiny())


def test_docs_show_the_figures():
    """docs/figures.md shows every committed figure, each a real picture, with the command that made it."""
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    page = (docs / "figures.md").read_text()
    pngs = sorted((docs / "figures").glob("*.png"))
    assert len(pngs) >= 7
    for png in pngs:
        assert f"(figures/{png.name})" in page and f"docs/figures/{png.name}" in page
        img = np.asarray(Image.open(png).convert("L")).astype(int)
        assert min(img.shape) > 150 and img.std() > 20


class Deep(nn.Module):
    """400 residual blocks (ResNet-1202 has 600): the layout walks the column without deep recursion."""

    def __init__(self, n=400):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(2, 2, 1) for _ in range(n))

    def forward(self, x):
        for conv in self.convs:
            x = x + conv(x)
        return x


def test_very_deep_residual_network():
    model = Deep()
    p = profile(model, (2, 1, 1))
    assert p.unused == [] and p.inference_params == p.params  # a ModuleList has no forward, yet it ran
    d = draw(model, (2, 1, 1))
    assert len(kinds(d, "conv")) == len(kinds(d, "add")) == len(d.arcs) == 400


def test_lecture_comparison_lines_up_stage_by_stage():
    """He et al. (2016) Fig. 3: VGG-19, plain-34 and ResNet-34 side by side, the same layers on the same
    rows, each output size starting at the same height."""
    names = ("vgg19", "plain34", "resnet34")
    diagrams = [draw(n) for n in names]
    s = sheet(diagrams)
    columns = {}
    for name, d in zip(names, diagrams, strict=True):
        mid = next(p[1] for p in s.prims if p[0] == "text" and p[3] == name)  # the column's title
        left, right = mid - d.width / 2, mid + d.width / 2
        columns[name] = [(p[2], p[5]) for p in s.prims if p[0] == "box" and left <= p[1] <= right]
    plain = [(y, n.label) for y, n in columns["plain34"] if n.kind == "conv"]
    residual = [(y, n.label) for y, n in columns["resnet34"] if n.kind == "conv"]
    model, _ = build("plain34")
    assert len(plain) == sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert residual == plain  # same labels at the same heights: the shortcuts add no rows
    first = {}  # (network, output size) -> the top of its first box
    for name, boxes in columns.items():
        for y, n in boxes:
            first.setdefault((name, n.shape.partition("x")[2] or "flat"), y)
    margin = {p[3]: p[2] for p in s.prims if p[0] == "text" and p[3].startswith("output ")}
    for size in ("112x112", "56x56", "28x28", "14x14", "7x7", "flat"):
        tops = {name: first[name, size] for name in names if (name, size) in first}
        assert len(tops) >= 2 and len(set(tops.values())) == 1, (size, tops)
        # the size is written in the left margin, level with the stage's first row
        label = "output " + ("classifier" if size == "flat" else size)
        assert margin[label] == pytest.approx(next(iter(tops.values())) + 11)


@pytest.mark.parametrize("name,depth", [("vgg16", 1), ("resnet152", 1), ("zfnet", None)])
def test_labels_fit_their_boxes(name, depth):
    """Each box's label measured with the real font (matplotlib's DejaVu Sans outlines), not with the
    layout's own width estimate: "features: Sequential" spilled out of VGG-16's box at depth 1."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    from cnnarch.analysis.diagram import LABEL, SMALL

    font = FontProperties(family="DejaVu Sans")
    d = draw(name, depth=depth)
    boxes = [p for p in d.prims if p[0] == "box"]
    assert boxes
    for _, _, _, width, _, node in boxes:
        for text, size in [(node.label, LABEL), *((line, SMALL) for line in node.lines)]:
            assert TextPath((0, 0), text, size=size, prop=font).get_extents().width < width - 4, text
