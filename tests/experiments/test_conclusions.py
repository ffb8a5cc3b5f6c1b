"""The sentences of the reports, computed from synthetic metrics, both ways: a report must say what its
numbers show and nothing else."""

import torch

from cnnarch.experiments import degradation, dropout, ensemble, googlenet_aux, normalization


def run(train, test):
    return {"train_err": train, "test_err": test}


def test_degradation_shown():
    lines = degradation.conclusions({
        "plain20": run(9.8, 11.0), "plain56": run(12.3, 13.5),
        "resnet20": run(8.0, 9.0), "resnet56": run(5.0, 7.5),
    })  # fmt: skip
    text = "\n".join(lines)
    assert "plain-56 ended with higher training error than plain-20: 12.30% vs 9.80%." in text
    assert "plain-56 ended with higher test error than plain-20: 13.50% vs 11.00%." in text
    assert "not overfitting" in text
    assert "ResNet-56 ended below ResNet-20 in test error: 7.50% vs 9.00%." in text
    assert "ResNet-56 ended below ResNet-20 in training error: 5.00% vs 8.00%." in text
    assert "did not" not in text


def test_degradation_not_shown():
    lines = degradation.conclusions({
        "plain20": run(12.0, 14.0), "plain56": run(11.0, 15.0),
        "resnet20": run(8.0, 9.0), "resnet56": run(8.5, 9.5),
    })  # fmt: skip
    text = "\n".join(lines)
    assert (
        "plain-56 did not end with higher training error than plain-20, at this budget: 11.00% vs 12.00%."
        in text
    )
    assert "plain-56 ended with higher test error than plain-20: 15.00% vs 14.00%." in text
    assert "does not show degradation" in text and "not overfitting" not in text
    assert "ResNet-56 did not end below ResNet-20 in test error, at this budget: 9.50% vs 9.00%." in text


def test_degradation_missing_run():
    lines = degradation.conclusions(
        {"plain20": None, "plain56": run(1, 2), "resnet20": None, "resnet56": None}
    )
    assert any("cannot be compared" in s for s in lines)


def probs_for(pred, n_classes=3):
    """One-hot-ish softmax rows: 0.6 on the predicted class, 0.2 elsewhere."""
    p = torch.full((len(pred), n_classes), 0.2)
    p[torch.arange(len(pred)), torch.tensor(pred)] = 0.6
    return p


def test_ensemble_beats_members():
    labels = torch.tensor([0, 1, 2, 0])
    # each member is wrong on a different image; the average of three is right on all four
    members = [
        ("a", probs_for([1, 1, 2, 0])),
        ("b", probs_for([0, 2, 2, 0])),
        ("c", probs_for([0, 1, 0, 0])),
    ]
    curve = ensemble.ensemble_curve(members, labels)
    assert [c["member_err"] for c in curve] == [25.0, 25.0, 25.0]
    assert curve[-1]["ensemble_err"] == 0.0
    text = "\n".join(ensemble.conclusions(curve))
    assert "The ensemble of 3 beat its best member by 25.00 points (0.00% vs 25.00%)." in text


def test_ensemble_does_not_beat_best():
    curve = [
        {"k": 1, "member_err": 10.0, "ensemble_err": 10.0},
        {"k": 2, "member_err": 30.0, "ensemble_err": 20.0},
    ]
    text = "\n".join(ensemble.conclusions(curve))
    assert "did not beat its best member, at this budget: 20.00% vs 10.00%" in text
    assert (
        "lowered the error by 0.00" not in text
        and "not better than the mean member: 20.00% vs 20.00%" in text
    )
    assert "did not fall at every added member" in text


def test_normalization_both_ways():
    def f(train, test, state="done"):
        return {"train_err": train, "test_err": test, "state": state}

    name = normalization.run_name
    final = {
        name("none", 0.01): f(30, 35), name("lrn", 0.01): f(29, 34.5), name("bn", 0.01): f(20, 25),
        name("none", 0.1): f(90, 90, "diverged"), name("lrn", 0.1): f(40, 45), name("bn", 0.1): f(15, 22),
    }  # fmt: skip
    text = "\n".join(normalization.conclusions(final))
    assert (
        "At lr 0.01, LRN (AlexNet) lowered the test error against no normalization by 0.50 points: "
        "34.50% vs 35.00%; training error 29.00% vs 30.00%." in text
    )
    assert (
        "At lr 0.01, batch norm lowered the test error against no normalization by 10.00 points: "
        "25.00% vs 35.00%" in text
    )
    assert "At lr 0.01, LRN helped less than batch norm" in text
    assert "At lr 0.1, no normalization diverged" in text
    final[name("lrn", 0.01)] = f(25, 20)
    text = "\n".join(normalization.conclusions(final))
    assert (
        "At lr 0.01, LRN did not help less than batch norm: test error -15.00 points against no "
        "normalization with LRN, -10.00 with batch norm." in text
    )
    assert "LRN (AlexNet) raised" not in text
    final[name("lrn", 0.01)] = f(40, 41)
    text = "\n".join(normalization.conclusions(final))
    assert (
        "LRN (AlexNet) raised the test error against no normalization by 6.00 points: 41.00% vs 35.00%"
        in text
    )


def test_dropout_both_ways():
    shown = dropout.conclusions({"dropout": run(5.0, 20.0), "no-dropout": run(0.5, 25.0)})
    text = "\n".join(shown)
    assert "gap 24.50 points" in text and "gap 15.00 points" in text
    assert "Dropout narrowed the train/test gap by 9.50 points." in text
    assert "Dropout lowered the test error: 20.00% vs 25.00%." in text
    assert "did not overfit" not in text
    text = "\n".join(dropout.conclusions({"dropout": run(5.0, 30.0), "no-dropout": run(4.0, 25.0)}))
    assert "Dropout did not narrow the train/test gap, at this budget." in text
    assert "Dropout did not lower the test error, at this budget: 30.00% vs 25.00%." in text
    assert "cannot be compared" in dropout.conclusions({"dropout": None, "no-dropout": run(1, 2)})[0]


def test_dropout_without_overfitting():
    text = "\n".join(dropout.conclusions({"dropout": run(72.81, 72.38), "no-dropout": run(69.53, 69.88)}))
    assert "Without dropout the network did not overfit at this budget (gap 0.35 < 2.0 points)" in text


def grads(conv1_main, conv1_aux):
    g = {s: {"main": 1.0, "with_aux": 1.0} for s in googlenet_aux.STAGES}
    g["conv1"] = {"main": conv1_main, "with_aux": conv1_aux}
    return {"init": g}


def curve(*pairs):
    return [{"epoch": i + 1, "train_err": tr, "test_err": te} for i, (tr, te) in enumerate(pairs)]


def test_googlenet_aux_reproduced():
    curves = {
        "aux": curve((85.0, 84.0), (70.0, 71.0), (60.0, 62.0)),
        "no-aux": curve((84.0, 83.0), (75.0, 76.0), (70.0, 72.0)),
    }
    text = "\n".join(googlenet_aux.conclusions(curves, grads(0.01, 0.03), n_test=1000))
    assert "Holds at initialization: with the auxiliary losses the first convolution receives 3.00x" in text
    # two standard errors of the difference: 200 * sqrt(0.62 * 0.38 / 1000 + 0.72 * 0.28 / 1000) = 4.18
    assert "Reproduced at this budget: with the auxiliary losses the test error is lower by 10.00" in text
    assert "lower at every epoch after the first" in text and "1,000 test images: 4.18 points" in text
    assert "lower with the auxiliary losses at 2 of 3 epochs (60.00% against 70.00% at epoch 3)" in text


def test_googlenet_aux_not_established_when_the_runs_change_order():
    # the final gap is beyond the binomial noise, but at epoch 2 the run without the losses was ahead
    curves = {
        "aux": curve((88.0, 83.0), (82.0, 80.0), (75.0, 72.8)),
        "no-aux": curve((89.0, 86.0), (83.0, 74.7), (76.0, 76.8)),
    }
    text = "\n".join(googlenet_aux.conclusions(curves, {}, n_test=1000))
    assert "Not established at this budget: with the auxiliary losses the test error is lower by 4.00" in text
    assert "but not lower at epoch(s) 2: the two runs changed order" in text and "Reproduced" not in text


def test_googlenet_aux_not_reproduced():
    curves = {"aux": curve((90.0, 85.0), (80.0, 81.0)), "no-aux": curve((91.0, 84.0), (79.0, 80.0))}
    text = "\n".join(googlenet_aux.conclusions(curves, grads(0.01, 0.0105), n_test=1000))
    assert "Does not hold at initialization" in text and "1.05x" in text
    assert "Not reproduced at this budget: the test errors differ by 1.00 points, within the noise" in text
    assert "at 1 of 2 epochs (80.00% against 79.00% at epoch 2)" in text and "above 50%" in text
    worse = {"aux": curve((20.0, 30.0)), "no-aux": curve((15.0, 20.0))}
    text = "\n".join(googlenet_aux.conclusions(worse, {}, n_test=10_000))
    assert "Not reproduced at this budget: with the auxiliary losses the test error is higher by 10" in text
    assert "initialization" not in text
