"""TrainConfig: options in groups, one flat name each, and a JSON form that reads back."""

import json

import pytest

from cnnarch.train.config import RECIPES, TrainConfig, resolve_config


def test_flat_names_land_in_their_groups():
    cfg = resolve_config("cifar-fast", lr=0.5, tta="flip", data="d", seed=3)
    assert cfg.optim.lr == cfg.lr == 0.5
    assert cfg.speedrun.tta == "flip" and cfg.speedrun.target_accuracy == (80.0, 90.0, 93.0, 94.0)
    assert cfg.dataset.data == "d" and cfg.run.seed == 3 and cfg.schedule.sched == "onecycle"
    assert cfg.replace(momentum=0.5).optim == TrainConfig().optim.__class__(
        opt="sgd", lr=0.5, momentum=0.5, nesterov=True, weight_decay=1.33e-3
    )
    with pytest.raises(ValueError, match="unknown training options \\['milestones'\\]"):
        cfg.replace(milestones=(90,))
    with pytest.raises(AttributeError):
        cfg.milestones  # noqa: B018


@pytest.mark.parametrize("recipe", [None, *RECIPES])
def test_json_round_trip(recipe):
    cfg = resolve_config(recipe, output="somewhere")
    back = TrainConfig.from_dict(json.loads(cfg.to_json()))
    assert back == cfg and back.notes == cfg.notes


def test_unknown_keys_refused_and_the_flat_layout_of_earlier_versions_read():
    d = TrainConfig().to_dict()
    d["optim"]["lrr"] = 1
    with pytest.raises(ValueError, match=r"unknown training options \['lrr'\]"):
        TrainConfig.from_dict(d)
    old = {"model": "cifar_fast", "lr": 1.5, "trainer": "fast", "milestones": [90.0], "whiten": True}
    cfg = TrainConfig.from_dict(old)
    assert cfg.lr == 1.5 and cfg.target_accuracy == (90.0,) and cfg.whiten


def test_options_are_checked_in_their_group():
    with pytest.raises(ValueError, match="--nesterov applies to --opt sgd only"):
        resolve_config("cifar-fast", opt="adam")
    with pytest.raises(ValueError, match="--tta must be one of"):
        resolve_config(tta="mirror")
    with pytest.raises(ValueError, match="--bn-momentum must be in"):
        resolve_config(bn_momentum=0)
