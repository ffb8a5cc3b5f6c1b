"""Training FLOPs (forward + backward) against torch's FlopCounterMode on a real backward pass, and the
measured memory of real passes against arithmetic written out here."""

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cnnarch.analysis import profile
from cnnarch.cli import main
from cnnarch.models import create_model

sys.path.insert(0, str(Path(__file__).parent))
from test_user_networks import SE, TwoHeads, UNet  # noqa: E402


def counted_training_flops(model, size, batch=2):
    """FlopCounterMode over one real forward and backward (of the sum of every output)."""
    model.train()
    x = torch.randn(batch, *size)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        outs = out if isinstance(out, tuple) else (out,)
        sum(o.sum() for o in outs).backward()
    return counter.get_total_flops()


@pytest.mark.parametrize(
    "make,size",
    [
        (lambda: create_model("resnet18"), (3, 32, 32)),
        (UNet, (3, 32, 32)),  # transposed convolutions
        (SE, (3, 8, 8)),
        (TwoHeads, (3, 8, 8)),  # two outputs, both back-propagated
    ],
)
def test_training_flops_match_a_real_backward(make, size):
    torch.manual_seed(0)
    model = make()
    p = profile(model, size, batch_size=2, train=True)
    assert p.train_flops == counted_training_flops(model, size)
    # the first layer computes no gradient for the input image: a little under 3x the forward
    assert 2 * p.flops < p.train_flops < 3 * p.flops


def test_training_flops_of_a_grouped_convolution_by_hand():
    """FlopCounterMode counts a grouped convolution's weight gradient as if it were dense (groups
    times too many), so here the count is written out: a 3x3 conv of 8 -> 8 channels in 4 groups over
    an 8x8 map after a 1x1 conv, both in the backward (input and weight) as in the forward."""
    model = nn.Sequential(nn.Conv2d(4, 8, 1), nn.Conv2d(8, 8, 3, padding=1, groups=4))
    p = profile(model, (4, 8, 8), train=True)
    first = 8 * 8 * 8 * 4  # outputs x inputs per output (1x1 conv)
    grouped = 8 * 8 * 8 * (8 // 4) * 9
    assert p.macs == first + grouped
    assert p.train_flops == 2 * (2 * first + 3 * grouped)  # no gradient for the image itself


_ARITHMETIC = """
import json
import torch
from torch import nn
from cnnarch.analysis.measure import measure_memory
model = nn.Sequential(
    nn.Conv2d(8, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 1), nn.ReLU(inplace=True), nn.Conv2d(8, 8, 1)
)
torch.set_num_threads(1)
m = measure_memory(model, (8, 100, 100), batch_size=4)
left = model.training and all(t.grad is None for t in model.parameters())
print(json.dumps(dict(device=m.device, batch_size=m.batch_size, inference=m.inference, forward=m.forward,
    weight_grads=m.weight_grads, train_step=m.train_step, per_image=m.per_image("forward"), left=left,
    params=sum(t.numel() for t in model.parameters()))))
"""


def test_measured_memory_by_arithmetic():
    """Three 1x1 convolutions with ReLUs between, on 4 images of 8x100x100 (1.28 MB per activation), in a
    fresh process on one thread: with more threads the convolutions allocate workspaces of their own
    (6.4 MB instead of 2.56 MB for inference on 2 threads here), which the measurement rightly counts."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", _ARITHMETIC], capture_output=True, text=True, check=True)
    m = json.loads(out.stdout.splitlines()[-1])
    act = 4 * 8 * 100 * 100 * 4
    assert m["device"] == "cpu" and m["batch_size"] == 4
    assert m["inference"] == 2 * act  # a layer's input and output at once; the rest is freed
    assert m["forward"] == 3 * act  # kept for the backward: each ReLU's output and the output
    assert m["weight_grads"] == 4 * m["params"]
    assert m["train_step"] >= m["forward"] + m["weight_grads"] + act  # + the gradient of the output at least
    assert m["left"]  # the model left as it was: training mode, no gradients
    assert m["per_image"] == 3 * act / 4


def test_summary_measures_beside_the_estimate(capsys):
    assert main(["summary", "resnet20", "--measure", "--format", "json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    measured = totals["measured"]
    assert measured["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    model = create_model("resnet20")
    assert measured["weight_grads"] == 4 * sum(t.numel() for t in model.parameters())
    # the estimate (every new output kept) and the measurement (what autograd keeps) agree within 2x
    assert 0.5 < measured["forward"] / totals["forward_bytes_per_image"] < 2
    assert totals["train_flops_per_image"] == counted_training_flops(model, (3, 32, 32), batch=1)
    assert main(["summary", "resnet20", "--measure"]) == 0
    out = capsys.readouterr().out
    assert "training FLOPs per image" in out and "measured training step" in out
