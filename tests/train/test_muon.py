import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnarch.train.speedrun import Muon, filter_params, newton_schulz5


@pytest.mark.parametrize("shape", [(64, 24 * 9), (256, 64 * 9), (576, 128), (10, 256), (64, 64)])
@pytest.mark.parametrize("steps", [3, 5])
def test_newton_schulz_keeps_the_singular_vectors_and_brings_singular_values_near_one(shape, steps):
    g = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = newton_schulz5(g, steps, dtype=torch.float64)
    s = torch.linalg.svdvals(x)
    if shape[0] != shape[1]:
        # Jordan: "something like U S' V^T where S'_ii ~ Uniform(0.5, 1.5)" (a square Gaussian matrix
        # has singular values near 0, which a few iterations cannot lift)
        assert 0.5 < s.min() and s.max() < 1.5, (s.min(), s.max())
    # an odd polynomial of g: U^T x V is diagonal, and its diagonal is the scalar iteration applied to
    # g's singular values over ||g||_F
    u, sg, vh = torch.linalg.svd(g, full_matrices=False)
    core = u.T @ x @ vh.T
    off = core - torch.diag(torch.diagonal(core))
    assert off.abs().max() < 1e-9
    t = sg / (g.norm() + 1e-7)
    for _ in range(steps):
        t = 3.4445 * t - 4.7750 * t**3 + 2.0315 * t**5
    torch.testing.assert_close(torch.diagonal(core), t, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="matrices"):
        newton_schulz5(torch.randn(2, 3, 4))


def _reference_ns(g, steps):
    """The published iteration, written out (Jordan 2024, airbench94_muon.py)."""
    a, b, c = (3.4445, -4.7750, 2.0315)
    x = g / (g.norm() + 1e-7)
    if g.size(0) > g.size(1):
        x = x.T
    for _ in range(steps):
        A = x @ x.T
        B = b * A + c * A @ A
        x = a * x + B @ x
    return x.T if g.size(0) > g.size(1) else x


@pytest.mark.parametrize("nesterov", [True, False])
def test_two_steps_equal_the_update_written_out(nesterov):
    gen = torch.Generator().manual_seed(1)
    p = nn.Parameter(torch.randn(8, 3, 3, 3, generator=gen, dtype=torch.float64))
    grads = [torch.randn(8, 3, 3, 3, generator=gen, dtype=torch.float64) for _ in range(2)]
    lr, m = 0.1, 0.6
    opt = Muon([p], lr=lr, momentum=m, nesterov=nesterov, ns_steps=3, ns_dtype=torch.float64)
    want, buf = p.detach().clone(), torch.zeros_like(p)
    for g in grads:
        p.grad = g.clone()
        opt.step()
        buf = m * buf + g
        d = g + m * buf if nesterov else buf
        want = want * (8**0.5 / want.norm())
        want = want - lr * _reference_ns(d.reshape(8, 27), 3).reshape(want.shape)
        torch.testing.assert_close(p.detach(), want, rtol=1e-12, atol=1e-12)
    assert p.norm().item() == pytest.approx(8**0.5, rel=0.2)  # renormalised, then one bounded step


def test_without_weight_normalisation_the_step_is_the_orthogonalised_momentum():
    p = nn.Parameter(torch.randn(4, 6, dtype=torch.float64))
    start = p.detach().clone()
    g = torch.randn(4, 6, dtype=torch.float64)
    p.grad = g
    Muon([p], lr=0.5, momentum=0.0, nesterov=False, normalize_weights=False, ns_dtype=torch.float64).step()
    torch.testing.assert_close(p.detach(), start - 0.5 * _reference_ns(g, 3))


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.fc(x.amax(dim=(2, 3)))


def _batches():
    """Synthetic two-class data: class 1 has a bright left half."""
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(4):
        y = torch.randint(0, 2, (32,), generator=g)
        x = torch.randn(32, 3, 8, 8, generator=g)
        x[:, :, :, :4] += 1.5 * y[:, None, None, None]
        out.append((x, y))
    return out


def _optimizers(model):
    filters, others = filter_params(model)
    return Muon(filters, lr=0.05), torch.optim.SGD(others, lr=0.05, momentum=0.9, nesterov=True)


def _train(model, opts, batches, steps):
    losses = []
    for i in range(steps):
        x, y = batches[i % len(batches)]
        loss = F.cross_entropy(model(x), y)
        for o in opts:
            o.zero_grad()
        loss.backward()
        for o in opts:
            o.step()
        losses.append(loss.item())
    return losses


def test_filter_split_and_training_a_tiny_conv_net():
    torch.manual_seed(0)
    model = TinyNet()
    filters, others = filter_params(model)
    assert [p.shape for p in filters] == [(8, 3, 3, 3), (8, 8, 3, 3)]
    assert {p.dim() for p in others} == {1, 2} and len(others) == 4
    with pytest.raises(ValueError, match="give biases and norm parameters to SGD"):
        Muon(model.parameters())
    batches = _batches()
    losses = _train(model, _optimizers(model), batches, 40)
    assert sum(losses[-4:]) / 4 < 0.5 * sum(losses[:4]) / 4, losses


def test_resume_from_state_dicts_is_bit_identical():
    batches = _batches()
    torch.manual_seed(1)
    model = TinyNet()
    opts = _optimizers(model)
    _train(model, opts, batches, 3)
    blob = io.BytesIO()
    torch.save({"model": model.state_dict(), "opts": [o.state_dict() for o in opts]}, blob)
    _train(model, opts, batches, 3)

    blob.seek(0)
    ckpt = torch.load(blob, weights_only=True)
    torch.manual_seed(99)  # a different initialisation, overwritten by the checkpoint
    resumed = TinyNet()
    resumed.load_state_dict(ckpt["model"])
    ropts = _optimizers(resumed)
    for o, sd in zip(ropts, ckpt["opts"], strict=True):
        o.load_state_dict(sd)
    assert ropts[0].state_dict()["state"][0]["momentum_buffer"].abs().sum() > 0
    _train(resumed, ropts, batches, 3)
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_bad_arguments_are_refused():
    p = [nn.Parameter(torch.randn(2, 2))]
    for kwargs, msg in [
        ({"lr": -1}, "learning rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": 0.0}, "Nesterov"),
        ({"ns_steps": 0}, "ns_steps"),
    ]:
        with pytest.raises(ValueError, match=msg):
            Muon(p, **kwargs)
