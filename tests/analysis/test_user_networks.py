"""Networks users write themselves, drawn and profiled: a U-Net, a squeeze-and-excitation block, one module
called in a loop, a dense block and a two-headed net. Every expected count is taken from the modules."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnarch.analysis import draw, profile
from cnnarch.analysis.diagram import graph


def kinds(d, kind):
    return [n for n in d.nodes if n.kind == kind]


def double_conv(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1))


class UNet(nn.Module):
    """Ronneberger et al. 2015, two levels: functional max pools down, transposed convolutions up."""

    def __init__(self, c=8):
        super().__init__()
        self.down1, self.down2 = double_conv(3, c), double_conv(c, 2 * c)
        self.bottom = double_conv(2 * c, 4 * c)
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = double_conv(4 * c, 2 * c)
        self.up1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.dec1 = double_conv(2 * c, c)
        self.head = nn.Conv2d(c, 2, 1)

    def forward(self, x):
        d1 = self.down1(x)
        d2 = self.down2(F.max_pool2d(d1, 2))
        b = self.bottom(F.max_pool2d(d2, 2))
        u2 = self.dec2(torch.cat([self.up2(b), d2], 1))
        u1 = self.dec1(torch.cat([self.up1(u2), d1], 1))
        return self.head(u1)


def test_unet_pools_halve_and_transposed_convolutions_double():
    model = UNet()
    d = draw(model, (3, 32, 32))
    ups = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    drawn = kinds(d, "conv")
    assert len(drawn) == len(convs) + len(ups)
    up_labels = [n.label for n in drawn if "up" in n.name]
    assert up_labels == [f"2x2 up-conv, {m.out_channels}, x{m.stride[0]}" for m in ups]
    assert not any("/" in label for label in up_labels)
    # the two functional pools keep their stride
    assert [n.label for n in kinds(d, "pool")] == ["pool, /2", "pool, /2"]
    assert len(kinds(d, "concat")) == 2
    assert d.nodes[-1].shape == "2x32x32"


class SE(nn.Module):
    """Hu et al. 2018: squeeze (global average pool, functional), excite (two FCs), scale."""

    def __init__(self, c=16, r=4):
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(c, c // r), nn.Linear(c // r, c)

    def forward(self, x):
        x = self.conv(x)
        s = F.adaptive_avg_pool2d(x, 1).flatten(1)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s[:, :, None, None]


def test_se_block_draws_its_squeeze():
    model = SE()
    d = draw(model, (3, 8, 8))
    assert [n.label for n in kinds(d, "pool")] == ["avg pool"]
    assert [n.label for n in kinds(d, "fc")] == [
        f"FC {model.fc1.out_features}",
        f"FC {model.fc2.out_features}",
    ]
    assert [n.label for n in d.nodes if n.kind == "join"] == ["x"]  # the scale multiplies the two paths


class Shared(nn.Module):
    """One block applied three times (weights shared), as in a recurrent refinement."""

    def __init__(self, steps=3):
        super().__init__()
        self.steps = steps
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1))
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        for _ in range(self.steps):
            x = x + self.block(x)
        return self.fc(x.mean((2, 3)))


def test_module_called_in_a_loop():
    model = Shared()
    p = profile(model, (3, 8, 8))
    assert p.params == sum(t.numel() for t in model.parameters())  # shared weights counted once
    convs_per_call = sum(isinstance(m, nn.Conv2d) for m in model.block.modules())
    d = draw(model, (3, 8, 8))
    assert len(kinds(d, "conv")) == 1 + model.steps * convs_per_call
    assert len(d.arcs) == model.steps
    for depth in (1, 2):
        collapsed = draw(model, (3, 8, 8), depth=depth)  # crashed with KeyError: 'block'
        assert len(kinds(collapsed, "add")) == model.steps
    blocks = kinds(draw(model, (3, 8, 8), depth=1), "block")
    assert len(blocks) == model.steps and all(b.label == "block: Sequential" for b in blocks)


class DenseBlock(nn.Module):
    """Huang et al. 2017: every layer reads the concatenation of all earlier outputs."""

    def __init__(self, cin=8, growth=4, layers=4):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.BatchNorm2d(cin + i * growth), nn.ReLU(), nn.Conv2d(cin + i * growth, growth, 3, padding=1)
            )
            for i in range(layers)
        )

    def forward(self, x):
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, 1)))
        return torch.cat(feats, 1)


class DenseNet(nn.Module):
    def __init__(self, blocks=2, layers=4):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.Sequential(*(DenseBlock(8 + 16 * i, 4, layers) for i in range(blocks)))
        self.fc = nn.Linear(8 + 16 * blocks, 10)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


def test_dense_blocks_drawn_compactly():
    model = DenseNet()
    full = draw(model, (3, 8, 8), depth=9)  # deeper than any module: every layer
    n_layers = sum(len(b.layers) for b in model.blocks)
    assert len(kinds(full, "conv")) == 1 + n_layers
    # each layer reads all earlier ones and the block's output concatenates them all
    layers = len(model.blocks[0].layers)
    assert len(full.arcs) == len(model.blocks) * sum(range(1, layers + 1))
    # by default: one box per dense block ("x4" layers), no arcs left
    for d in (draw(model, (3, 8, 8)), draw(model, (3, 8, 8), depth=2)):
        blocks = kinds(d, "block")
        assert [b.name for b in blocks] == [f"blocks.{i}" for i in range(len(model.blocks))]
        assert all(b.repeat == layers for b in blocks)
        assert d.arcs == []


class TwoHeads(nn.Module):
    """A shared trunk and two outputs (class and box), returned as a tuple."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.cls = nn.Linear(8, 5)
        self.box = nn.Linear(8, 4)

    def forward(self, x):
        h = self.trunk(x)
        return self.cls(h), self.box(h)


def test_two_outputs_are_two_heads_not_an_auxiliary_branch():
    model = TwoHeads()
    d = draw(model, (3, 8, 8))
    assert d.sides == []  # neither output is drawn as a side branch
    heads = [n for n in d.nodes if n.kind == "fc"]
    assert sorted(n.label for n in heads) == sorted(f"FC {m.out_features}" for m in (model.cls, model.box))
    assert [g[1] for g in d.groups] == [2]  # side by side, both ending open
    assert len(graph(profile(model, (3, 8, 8)))) == 1 + 2 + 2


def test_draw_is_exported_and_rejects_a_bad_depth():
    with pytest.raises(ValueError, match="depth"):
        draw(TwoHeads(), (3, 8, 8), depth=0)
