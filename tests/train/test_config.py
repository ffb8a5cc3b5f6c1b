"""TrainConfig: options in groups, one flat name each, and a JSON form that reads back."""

import json
import re

import pytest

from cnnarch.train.config import RECIPES, TrainConfig, resolve_config


def test_flat_names_land_in_their_groups():
    cfg = resolve_config("cifar-fast", lr=0.5, tta="flip", data="d", seed=3)
    assert cfg.optim.lr == cfg.flat()["lr"] == 0.5
    assert cfg.speedrun.tta == "flip" and cfg.speedrun.target_accuracy == (80.0, 90.0, 93.0, 94.0)
    assert cfg.dataset.data == "d" and cfg.run.seed == 3 and cfg.schedule.sched == "onecycle"
    assert cfg.replace(momentum=0.5).optim == TrainConfig().optim.__class__(
        opt="sgd", lr=0.5, momentum=0.5, nesterov=True, weight_decay=1.33e-3
    )
    with pytest.raises(ValueError, match="unknown training options \\['milestones'\\]"):
        cfg.replace(milestones=(90,))
    with pytest.raises(AttributeError):
        cfg.lr  # noqa: B018  (code reads options in their group)


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
    assert cfg.optim.lr == 1.5 and cfg.speedrun.target_accuracy == (90.0,) and cfg.speedrun.whiten


def test_options_are_checked_in_their_group():
    with pytest.raises(ValueError, match="--tta must be one of"):
        resolve_config(tta="mirror")
    with pytest.raises(ValueError, match="--bn-momentum must be in"):
        resolve_config(bn_momentum=0)
    with pytest.raises(ValueError, match="--threads must be >= 0"):
        resolve_config(threads=-1)


# Each setting that has no effect in the configuration around it, with that configuration. Written out
# here from what the trainer does (torch's Adam takes no momentum; only StepLR reads a period; ...).
NO_EFFECT_CASES = [
    (dict(opt="adam", momentum=0.5), "--momentum 0.5 has no effect without --opt sgd"),
    (dict(opt="adamw", nesterov=True, momentum=0.9), "--nesterov True has no effect without --opt sgd"),
    (dict(momentum=0.0, nesterov=True), "--nesterov True has no effect without --momentum > 0"),
    (dict(muon_lr=0.1), "--muon-lr 0.1 has no effect without --muon"),
    (dict(muon_momentum=0.9), "--muon-momentum 0.9 has no effect without --muon"),
    (dict(muon_ns_steps=5), "--muon-ns-steps 5 has no effect without --muon"),
    (dict(sched="cosine", decay_epochs=3), "--decay-epochs 3 has no effect without --sched step"),
    (
        dict(sched="step", decay_milestones=(3, 6)),
        "--decay-milestones 3 6 has no effect without --sched multi",
    ),
    (dict(sched="cosine", decay_rate=0.5), "--decay-rate 0.5 has no effect without --sched step, multi"),
    (dict(sched="step", patience_epochs=2), "--patience-epochs 2 has no effect without --sched plateau"),
    (dict(sched="step", min_lr=0.01), "--min-lr 0.01 has no effect without --sched plateau, cosine or one"),
    (dict(sched="plateau", sched_unit="iter"), "--sched-unit iter has no effect without --sched step, mul"),
    (dict(sched="none", sched_unit="iter"), "--sched-unit iter has no effect without --sched step, mul"),
    (dict(warmup_lr=0.01), "--warmup-lr 0.01 has no effect without --warmup-epochs > 0"),
    (dict(whiten_bias_epochs=2), "--whiten-bias-epochs 2 has no effect without --whiten"),
    (dict(augment="flip", crop_padding=2), "--crop-padding 2 has no effect without crop in --augment"),
    (dict(augment="flip", pad_mode="reflect"), "--pad-mode reflect has no effect without crop in --augment"),
    (dict(augment="crop", alternate_flip=True), "--alternate-flip True has no effect without flip in --aug"),
    (dict(amp_dtype="float16"), "--amp-dtype float16 has no effect without --amp"),
    (dict(freeze="features"), "--freeze features has no effect without --pretrained or --initial-checkpoint"),
]


@pytest.mark.parametrize(("values", "message"), NO_EFFECT_CASES, ids=lambda v: str(v)[:40])
def test_a_setting_without_effect_is_refused(values, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_config(**values)
    # the same setting where it acts is accepted
    assert resolve_config(**values | EFFECTIVE[next(iter(values))]) is not None


# what makes each first setting above act
EFFECTIVE = {
    "opt": dict(opt="sgd"),
    "momentum": dict(momentum=0.9),
    "muon_lr": dict(muon=True),
    "muon_momentum": dict(muon=True),
    "muon_ns_steps": dict(muon=True),
    "sched": dict(sched="step", decay_milestones=(), patience_epochs=5, min_lr=0.0, sched_unit="epoch"),
    "warmup_lr": dict(warmup_epochs=1.0),
    "whiten_bias_epochs": dict(whiten=True),
    "augment": dict(augment="crop,flip"),
    "amp_dtype": dict(amp=True),
    "freeze": dict(pretrained=True),
}


def test_a_recipes_setting_without_effect_is_ignored_with_a_note():
    cfg = resolve_config("cifar-fast", opt="adam", sched="plateau", augment="flip")
    ignored = [n for n in cfg.notes if n.startswith("ignored: ")]
    assert ignored == [
        "ignored: --momentum 0.85 has no effect without --opt sgd",
        "ignored: --nesterov True has no effect without --opt sgd",
        "ignored: --sched-unit iter has no effect without --sched step, multistep, cosine or onecycle",
        "ignored: --crop-padding 2 has no effect without crop in --augment",
        "ignored: --pad-mode reflect has no effect without crop in --augment",
    ]
    # put back to the defaults, so that nothing acts on them; validating again changes nothing
    assert (cfg.optim.momentum, cfg.optim.nesterov, cfg.schedule.sched_unit) == (0.9, False, "epoch")
    assert cfg.validate() == cfg and cfg.validate().notes == cfg.notes
    # an explicit value that the recipe does not set is refused
    with pytest.raises(ValueError, match="--momentum 0.5 has no effect"):
        resolve_config("cifar-fast", opt="adam", momentum=0.5)


def test_contradictions_are_refused():
    for values, message in [
        (dict(progressive_size=16), "--progressive-size N and --progressive-epochs E go together"),
        (dict(progressive_size=16, progressive_epochs=10, epochs=10), "leaves no epoch at full size"),
        (dict(pretrained=True, initial_checkpoint="w.pt"), "both name weights"),
        (dict(sched="multistep"), "--sched multistep needs --decay-milestones"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            resolve_config(**values)


def test_precision_is_chosen_for_the_device(monkeypatch):
    import cnnarch.train.config as C

    auto = resolve_config("cifar-fast")
    assert auto.run.amp is None  # decided once the device is known
    assert auto.validate("cuda").run.amp is True
    for fast in (True, False):
        monkeypatch.setattr(C, "cpu_has_fast_bf16", lambda fast=fast: fast)
        cpu = auto.validate("cpu")
        assert cpu.run.amp is fast and cpu.validate("cpu") == cpu
        assert any("AVX512-BF16" in n for n in cpu.notes) is not fast
        forced = resolve_config("cifar-fast", amp=True).validate("cpu")
        assert forced.run.amp is True and any(n.startswith("warning") for n in forced.notes) is not fast
    with pytest.raises(ValueError, match="--amp-dtype float16 is for GPUs"):
        resolve_config(amp=True, amp_dtype="float16").validate("cpu")
    assert resolve_config(amp=True, amp_dtype="float16").validate("cuda").run.amp is True


@pytest.mark.parametrize(
    ("cpuinfo", "nhwc"),
    [
        ("flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_bf16\n", True),  # Zen 4
        ("flags\t\t: fpu sse2 avx avx2 fma\n", True),  # AVX2 only
        ("flags\t\t: fpu sse2 sse4_2 avx\n", False),  # Sandy Bridge: no AVX2
        ("processor\t: 0\nFeatures\t: fp asimd sve\n", False),  # an ARM server
    ],
)
def test_channels_last_is_chosen_for_the_cpu(monkeypatch, cpuinfo, nhwc):
    import cnnarch.train.config as C

    monkeypatch.setattr(C.Path, "read_text", lambda self: cpuinfo)
    auto = resolve_config("cifar-fast")
    assert auto.run.channels_last is None  # decided once the device is known
    assert auto.validate("cpu").run.channels_last is nhwc
    assert auto.validate("cuda").run.channels_last is True
    assert auto.validate("cpu").validate("cpu") == auto.validate("cpu")
    assert resolve_config("cifar-fast", channels_last=False).validate("cuda").run.channels_last is False
    assert resolve_config(channels_last=True).validate("cpu").run.channels_last is True


@pytest.mark.parametrize(
    ("cpuinfo", "named"),
    [
        # a virtual machine's Zen 5 EPYC: the brand alone, the first processor's numbers tell the generation
        (
            "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
            "model name\t: AMD EPYC\n\nprocessor\t: 1\ncpu family\t: 25\nmodel\t\t: 17\n",
            "AMD EPYC (family 26, model 2)",
        ),
        # an ARM server: no family numbers
        ("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nmodel name\t: Neoverse\n", "Neoverse"),
    ],
)
def test_the_cpu_is_named_with_its_family_and_model(monkeypatch, cpuinfo, named):
    import cnnarch.train.config as C

    monkeypatch.setattr(C.Path, "read_text", lambda self: cpuinfo)
    assert C.cpu_model() == named
