import io

import pytest
import torch
from torch import nn

from cnnarch.train.speedrun import Lookahead


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def _perturb(model, step):
    """A stand-in for an optimizer step: known, different values every step."""
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.add_(0.1 * (step + i))


def test_updates_follow_the_airbench_arithmetic():
    model = _model()
    total = 12
    la = Lookahead(model, total_steps=total)
    assert la.decay(total) == pytest.approx(0.95**5) and la.decay(6) == pytest.approx(0.95**5 / 8)
    slow = {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    assert "1.num_batches_tracked" not in slow and "1.running_mean" in slow
    with torch.no_grad():
        model[1].running_mean += 1.0  # buffers are averaged too
    for step in range(1, total + 1):
        _perturb(model, step)
        fast = {k: v.clone() for k, v in model.state_dict().items() if k in slow}
        la.update(step)
        now = model.state_dict()
        if step % 5 and step < total:
            assert all(torch.equal(now[k], fast[k]) for k in slow), step  # untouched between updates
            continue
        if step % 5:
            break
        d = 0.95**5 * (step / total) ** 3
        for k in slow:
            slow[k] = d * slow[k] + (1 - d) * fast[k]  # slow + (1 - d) * (fast - slow)
            torch.testing.assert_close(now[k], slow[k])
    # after the last step (12, not a multiple of 5) the model holds the slow weights of step 10
    for k in slow:
        torch.testing.assert_close(model.state_dict()[k], slow[k])
    assert not torch.allclose(model[0].weight, fast["0.weight"])


def test_state_dict_round_trip_resumes_exactly():
    model = _model()
    la = Lookahead(model, total_steps=20)
    for step in range(1, 8):
        _perturb(model, step)
        la.update(step)
    blob = io.BytesIO()
    torch.save({"model": model.state_dict(), "la": la.state_dict()}, blob)
    for step in range(8, 21):
        _perturb(model, step)
        la.update(step)

    blob.seek(0)
    ckpt = torch.load(blob, weights_only=True)
    other = _model()
    other.load_state_dict(ckpt["model"])
    la2 = Lookahead(other, total_steps=20)  # built from the resumed weights; its slow copy is replaced
    la2.load_state_dict(ckpt["la"])
    for step in range(8, 21):
        _perturb(other, step)
        la2.update(step)
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="same schedule"):
        Lookahead(_model(), total_steps=30).load_state_dict(ckpt["la"])
    with pytest.raises(ValueError, match="different model"):
        Lookahead(nn.Linear(3, 2), total_steps=20).load_state_dict(ckpt["la"])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="total_steps"):
        Lookahead(_model(), total_steps=0)
    with pytest.raises(ValueError, match="decay"):
        Lookahead(_model(), total_steps=5, decay=1.5)
