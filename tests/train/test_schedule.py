import math

import pytest
import torch

from cnnarch.train.config import RECIPES, resolve_config
from cnnarch.train.speedrun import LRSchedule, build_optimizer


def lrs(cfg, steps_per_epoch, epochs, val=None):
    """The lr used by every step of ``epochs`` epochs."""
    opt = build_optimizer(torch.nn.Linear(1, 1), cfg)
    sched = LRSchedule(opt, cfg, steps_per_epoch)
    out = []
    step = 0
    for e in range(epochs):
        for _ in range(steps_per_epoch):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            step += 1
            sched.set(step)
        sched.step_epoch(None if val is None else val[e])
        sched.set(step)  # a plateau's new rate
    return out


def test_multistep_by_iteration_as_in_resnet_cifar():
    r = RECIPES["resnet-cifar"].values  # He et al. 4.2, written out
    assert (r["lr"], r["batch_size"], r["weight_decay"], r["momentum"]) == (0.1, 128, 1e-4, 0.9)
    assert (
        r["decay_milestones"] == (32_000, 48_000) and r["iterations"] == 64_000 and r["sched_unit"] == "iter"
    )
    cfg = resolve_config("resnet-cifar", decay_milestones=(4, 6), iterations=8)
    got = lrs(cfg, steps_per_epoch=3, epochs=3)[:8]  # the milestones fall inside epochs
    assert got == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)


def test_linear_warmup_then_constant():
    cfg = resolve_config(lr=0.1, sched="none", warmup_epochs=1, warmup_lr=0.01)
    got = lrs(cfg, steps_per_epoch=4, epochs=2)
    expected = [0.1 * (0.1 + 0.9 * t / 4) for t in range(4)] + [0.1] * 4
    assert got == pytest.approx(expected)


def test_plateau_divides_by_ten_when_validation_accuracy_stalls():
    cfg = resolve_config(lr=0.1, sched="plateau", patience_epochs=1, decay_rate=0.1)
    got = lrs(cfg, steps_per_epoch=1, epochs=6, val=[50, 60, 60, 60, 70, 70])
    # epochs 3 and 4 do not improve on 60: after the 2nd such epoch (patience 1) the lr drops
    assert got == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_per_epoch_and_googlenet_step():
    cfg = resolve_config(lr=0.2, sched="cosine", epochs=4, min_lr=0.0)
    got = lrs(cfg, steps_per_epoch=2, epochs=4)[::2]
    assert got == pytest.approx([0.1 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])
    g = resolve_config("googlenet")  # lr decreased 4% every 8 epochs (Szegedy et al. sec. 6)
    got = lrs(g, steps_per_epoch=1, epochs=17)
    assert (
        got[7] == pytest.approx(0.01)
        and got[8] == pytest.approx(0.0096)
        and got[16] == pytest.approx(0.01 * 0.96**2)
    )


def test_recipes_and_overrides():
    a = resolve_config("alexnet", lr=0.02)
    assert (
        a.optim.lr,
        a.optim.momentum,
        a.optim.weight_decay,
        a.regularization.drop,
        a.schedule.batch_size,
        a.schedule.sched,
    ) == (
        0.02,
        0.9,
        5e-4,
        0.5,
        128,
        "plateau",
    )
    r = resolve_config("resnet-imagenet")
    assert r.optim.weight_decay == 1e-5 and r.regularization.drop == 0.0 and any("1e-4" in n for n in r.notes)
    assert resolve_config("googlenet").regularization.aux_loss_weight == 0.3
    with pytest.raises(ValueError, match="unknown recipe 'resnet'; known: alexnet"):
        resolve_config("resnet")
    with pytest.raises(ValueError, match="--sched must be one of"):
        resolve_config(sched="linear")
    with pytest.raises(ValueError, match="--nesterov True has no effect without --opt sgd"):
        resolve_config(opt="adamw", nesterov=True)


def test_the_rate_is_a_function_of_the_step_alone():
    """A schedule built afresh and set to step s gives the rate that stepping through s steps gave: a
    resumed run needs nothing else (cosine with warm-up, per step and per epoch)."""
    walked = {}
    for unit in ("iter", "epoch"):
        cfg = resolve_config(
            sched="cosine", sched_unit=unit, epochs=3, warmup_epochs=1, warmup_lr=0.01, min_lr=0.001
        )
        walked[unit] = lrs(cfg, steps_per_epoch=4, epochs=3)
        for s, lr in enumerate(walked[unit]):
            fresh = LRSchedule(build_optimizer(torch.nn.Linear(1, 1), cfg), cfg, 4)
            fresh.set(s)
            assert fresh.optimizer.param_groups[0]["lr"] == lr
    # written out: warm-up 0.01/0.1 -> 1 over 4 steps times the cosine over 12 steps (3 epochs), floor 0.001
    for s in (0, 2, 7):
        cos = 0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * s / 12)) / 2
        assert walked["iter"][s] == pytest.approx(cos * (0.1 + 0.9 * min(s, 4) / 4))
    cos = 0.001 + (0.1 - 0.001) * 3 / 4  # epoch 1 of 3: (1 + cos(pi / 3)) / 2
    assert walked["epoch"][4:8] == pytest.approx([cos] * 4)


def test_a_plateau_state_of_torchs_scheduler_in_an_earlier_checkpoint_is_read():
    cfg = resolve_config(sched="plateau", patience_epochs=0)
    opt = build_optimizer(torch.nn.Linear(1, 1), cfg)
    old = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0)
    for acc in (50.0, 40.0):
        old.step(acc)  # the second epoch is worse: the rate drops to 0.01
    sched = LRSchedule(opt, cfg, 10)
    sched.load_state_dict({"warmup": None, "main": old.state_dict()})
    sched.set(20)
    assert (sched.best, sched.bad_epochs) == (50.0, 0) and opt.param_groups[0]["lr"] == pytest.approx(0.01)
    sched.step_epoch(45.0)  # worse again: torch would divide once more
    old.step(45.0)
    sched.set(30)
    assert opt.param_groups[0]["lr"] == pytest.approx(old.get_last_lr()[0]) == pytest.approx(0.001)
