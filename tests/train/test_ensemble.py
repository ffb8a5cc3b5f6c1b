import math

import numpy as np
import torch
from torch import nn

from cnnarch.train.evaluate import evaluate_ensemble, predict_probs


def numpy_ensemble_accuracy(logit_sets, labels):
    """Independent oracle: softmax written out in NumPy, averaged, ranked with argsort."""
    probs = []
    for logits in logit_sets:
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        probs.append(e / e.sum(axis=1, keepdims=True))
    mean = sum(probs) / len(probs)
    top1 = top5 = 0
    for row, label in zip(mean, labels, strict=True):
        ranked = list(np.argsort(-row, kind="stable"))
        top1 += ranked[0] == label
        top5 += label in ranked[:5]
    return 100 * top1 / len(labels), 100 * top5 / len(labels)


def test_ensemble_accuracy_matches_an_independent_computation():
    g = torch.Generator().manual_seed(1)
    n, classes = 1000, 10
    labels = torch.randint(0, classes, (n,), generator=g)
    # three weak "networks": independent noise, each leaning towards the right class
    logit_sets = [
        torch.randn(n, classes, generator=g) * 2 + s * nn.functional.one_hot(labels, classes)
        for s in (1.5, 1.5, 1.5)
    ]
    members = {f"m{i}": z.softmax(1) for i, z in enumerate(logit_sets)}
    rows = evaluate_ensemble(members, labels)
    assert [r.name for r in rows] == ["m0", "m1", "m2", "ensemble of 3"]
    for row, logits in zip(rows[:3], logit_sets, strict=True):
        top1, top5 = numpy_ensemble_accuracy([logits.double().numpy()], labels.numpy())
        assert math.isclose(row.top1, top1) and math.isclose(row.top5, top5)
    top1, top5 = numpy_ensemble_accuracy([z.double().numpy() for z in logit_sets], labels.numpy())
    assert math.isclose(rows[3].top1, top1) and math.isclose(rows[3].top5, top5)
    assert rows[3].top1 > max(r.top1 for r in rows[:3])  # the point of ensembles, on this data


def test_predict_probs_averages_crops_per_image():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    x = torch.randn(6, 3, 8, 8)
    y = torch.arange(6) % 5

    def corners(batch):  # (B, 2, C, 4, 4): two crops per image
        return torch.stack([batch[..., :4, :4], batch[..., 4:, 4:]], dim=1)

    probs, labels = predict_probs(model, [(x[:4], y[:4]), (x[4:], y[4:])], corners)
    with torch.no_grad():
        expected = (model(x[..., :4, :4]).softmax(1) + model(x[..., 4:, 4:]).softmax(1)) / 2
    torch.testing.assert_close(probs, expected)
    assert torch.equal(labels, y)


def test_an_empty_set_is_zero_images_and_nan_accuracy_everywhere():
    from cnnarch.train.evaluate import evaluate

    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    res = evaluate(model, [])
    assert res.images == 0 and math.isnan(res.top1) and math.isnan(res.loss)
    probs, labels = predict_probs(model, [])
    assert len(probs) == len(labels) == 0
    (row,) = evaluate_ensemble({"m": probs}, labels)
    assert row.images == 0 and math.isnan(row.top1) and math.isnan(row.top5)
