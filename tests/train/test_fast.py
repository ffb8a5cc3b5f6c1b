"""The speedrun techniques (recipe cifar-fast): each trick against its definition, and a few real steps."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cnnarch.cli import main
from cnnarch.models import create_model
from cnnarch.train.config import resolve_config
from cnnarch.train.speedrun import init_whitening, one_cycle, param_groups, tta_logits


def test_whitening_makes_patch_features_uncorrelated_with_unit_variance():
    g = torch.Generator().manual_seed(0)
    # strongly correlated channels and neighbouring pixels: a smooth random field mixed across channels
    base = F.avg_pool2d(torch.randn(64, 3, 18, 18, generator=g), 3, stride=1)
    images = torch.einsum(
        "ij,njhw->nihw", torch.tensor([[1.0, 0.9, 0.8], [0.2, 1.0, 0.5], [0.0, 0.3, 1.0]]), base
    )
    conv = nn.Conv2d(3, 24, 2)
    init_whitening(conv, images, eps=0.0)
    assert not conv.weight.requires_grad
    feats = F.conv2d(images.double(), conv.weight.double())  # no bias
    half = feats[:, :12].permute(1, 0, 2, 3).reshape(12, -1)
    cov = half @ half.T / half.shape[1]  # uncentred, as the patches' covariance was
    torch.testing.assert_close(cov, torch.eye(12, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(feats[:, 12:], -feats[:, :12])


def test_whitening_refuses_a_layer_of_the_wrong_width():
    with pytest.raises(ValueError, match="no-whiten"):
        init_whitening(nn.Conv2d(3, 16, 2), torch.randn(2, 3, 8, 8))


def test_one_cycle_is_linear_up_then_down():
    f = dict(up=10, length=110, start=0.2, end=0.07)
    assert one_cycle(0, **f) == pytest.approx(0.2)
    assert one_cycle(5, **f) == pytest.approx(0.6)  # halfway between 0.2 and 1
    assert one_cycle(10, **f) == pytest.approx(1.0)
    assert one_cycle(60, **f) == pytest.approx(1 - 0.93 / 2)
    assert one_cycle(110, **f) == pytest.approx(0.07)


def _reflect_shift(x, dy, dx):
    """x shifted by (dy, dx) pixels with reflection at the border, by index arithmetic."""
    h, w = x.shape[-2:]

    def idx(n, d):
        i = torch.arange(n) - d
        return torch.where(i < 0, -i, torch.where(i >= n, 2 * (n - 1) - i, i))

    return x[..., idx(h, dy), :][..., idx(w, dx)]


def test_tta_averages_the_views_it_names():
    torch.manual_seed(0)
    model = create_model("cifar_fast").eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        f = model
        mirror = [
            0.5 * (f(v) + f(v.flip(-1))) for v in (x, _reflect_shift(x, 1, 1), _reflect_shift(x, -1, -1))
        ]
        torch.testing.assert_close(tta_logits(model, x, "none"), f(x))
        torch.testing.assert_close(tta_logits(model, x, "flip"), mirror[0])
        want = 0.5 * mirror[0] + 0.25 * (mirror[1] + mirror[2])
        torch.testing.assert_close(tta_logits(model, x, "flip-translate"), want)


def test_tta_with_a_margin_shifts_only_the_unsure_images():
    torch.manual_seed(0)
    model = create_model("cifar_fast").eval()
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        mirror = [
            0.5 * (model(v) + model(v.flip(-1)))
            for v in (x, _reflect_shift(x, 1, 1), _reflect_shift(x, -1, -1))
        ]
        full = 0.5 * mirror[0] + 0.25 * (mirror[1] + mirror[2])
        p = mirror[0].softmax(1).sort(1, descending=True).values
        gap = p[:, 0] - p[:, 1]
        margin = gap.median().item()  # half the images on each side
        unsure = gap < margin
        assert 0 < unsure.sum() < len(x)
        got = tta_logits(model, x, "flip-translate", margin=margin)
        torch.testing.assert_close(got[unsure], full[unsure])
        torch.testing.assert_close(got[~unsure], mirror[0][~unsure])
        # no image unsure: the mirrored logits alone, no shifted view computed
        tiny = gap.min().item() / 2
        torch.testing.assert_close(tta_logits(model, x, "flip-translate", margin=tiny), mirror[0])
        torch.testing.assert_close(tta_logits(model, x, "flip-translate", margin=1.0), full)


@pytest.mark.parametrize("margin", [0.0, -0.1, 1.5])
def test_a_tta_margin_outside_0_1_is_refused(margin):
    with pytest.raises(ValueError, match="--tta-margin"):
        resolve_config("cifar-fast-93-short", tta_margin=margin)


def test_bn_shifts_get_their_own_learning_rate_and_weight_decay():
    cfg = resolve_config("cifar-fast")
    model = create_model("cifar_fast")
    model.whiten.weight.requires_grad_(False)
    groups = param_groups(model, cfg)
    shifts = [m.bias for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [id(p) for p in groups[1]["params"]] == [id(p) for p in shifts]
    assert groups[1]["lr"] == pytest.approx(64 * cfg.optim.lr)
    assert groups[1]["weight_decay"] == pytest.approx(cfg.optim.weight_decay / 64)
    every = [id(p) for g in groups for p in g["params"]]
    assert sorted(every) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert id(model.whiten.weight) not in every
    assert len(param_groups(model, cfg.replace(bias_lr_scale=1.0))) == 1


def test_cifar_fast_network_size_written_out():
    m = create_model("cifar_fast")
    # whitening 3*24*2*2 + 24; stages: 3x3 convs 24->64->64, 64->256->256, 256->256->256; BN shifts
    # (no scales) 64+64+256+256+256+256; classifier 256*10
    convs = 9 * (24 * 64 + 64 * 64 + 64 * 256 + 256 * 256 + 256 * 256 + 256 * 256)
    want = 3 * 24 * 4 + 24 + convs + (2 * 64 + 4 * 256) + 2560
    assert sum(p.numel() for p in m.parameters()) == want
    assert sum(p.numel() for p in create_model("cifar_fast", bn_weight=True).parameters()) == want + 1152
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.fixture
def tree16(tmp_path, monkeypatch, colour_tree):
    """A 3-class ImageFolder tree of 16x16 PNGs whose class is their dominant colour."""
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    colour_tree(tmp_path / "data", size=16, n_train=24, n_test=6)
    return tmp_path


def test_recipe_runs_a_few_steps_and_times_target_accuracies(tree16, capsys):
    run = tree16 / "run"
    args = ["train", "--recipe", "cifar-fast", "--data", str(tree16 / "data"), "-b", "24", "--epochs", "3"]
    assert main([*args, "--threads", "1", "--target-accuracy", "20", "101", "--output", str(run)]) == 0
    out = capsys.readouterr().out
    assert "threads: 1 " in out and "OMP_WAIT_POLICY" in out
    assert "target 20%: reached after epoch" in out
    assert "target 101%: not reached" in out
    assert "test with TTA (flip-translate, 18 images)" in out
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and int(rows[-1]["step"]) == 9
    assert main(["eval", str(run / "last.pt"), "--data", str(tree16 / "data")]) == 0


def test_a_batch_larger_than_the_training_set_is_refused(tree16, capsys):
    args = ["train", "--recipe", "cifar-fast", "--data", str(tree16 / "data"), "--output", str(tree16 / "r")]
    # the recipe's batch of 1024 > 72 images: no step would be taken
    assert main([*args, "--threads", "1"]) == 2
    assert "-b 1024 is more than the training images" in capsys.readouterr().err


def test_cnnarch_train_sets_the_wait_policy_before_torch_is_imported():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in sys.path if p])
    code = (
        "import os, sys\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch':\n"
        "            policy = os.environ.get('OMP_WAIT_POLICY')\n"
        "            print('torch imported, OMP_WAIT_POLICY', policy, flush=True)\n"
        "            sys.meta_path.remove(self)\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from cnnarch.cli import main\n"
        "sys.exit(main(['train', '--recipe', 'cifar-fast', '--print-config']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # once: the process was not started again
    assert out.stdout.splitlines()[0] == "torch imported, OMP_WAIT_POLICY PASSIVE"
    assert out.stdout.count("torch imported") == 1


def test_python_and_the_command_line_run_the_same(tree16, monkeypatch):
    """``Trainer(cfg)`` from Python and ``cnnarch train`` with the same options: the same precision (the
    recipe leaves it to the device; here a CPU without fast bf16) and bit-identical weights."""
    import cnnarch.train.config as C
    from cnnarch.train import Trainer, build_data

    monkeypatch.setattr(C, "cpu_has_fast_bf16", lambda: False)
    from cnnarch.train.checkpoint import load_checkpoint

    opts = dict(data=str(tree16 / "data"), batch_size=24, epochs=2, threads=1, muon=True)
    args = ["train", "--recipe", "cifar-fast", "--data", opts["data"], "-b", "24", "--epochs", "2"]
    assert main([*args, "--threads", "1", "--muon", "--output", str(tree16 / "cli")]) == 0
    cfg = resolve_config("cifar-fast", output=str(tree16 / "py"), **opts)
    Trainer(cfg, build_data(cfg, progress=False), log=lambda s: None).fit()
    a, b = (load_checkpoint(tree16 / run / "last.pt") for run in ("cli", "py"))
    assert a["config"]["run"]["amp"] is b["config"]["run"]["amp"] is False
    for k, v in a["config"].items():
        assert k == "run" or v == b["config"][k], k
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


class _Crash(Exception):
    pass


def _crash_then_resume(cfg, line: str) -> dict:
    """Train ``cfg`` until the log line that starts with ``line`` (logged once that epoch's checkpoint is
    written), crash there, resume from its last.pt and finish; the resumed run's final row."""
    from cnnarch.train import Trainer, build_data, config_for_resume
    from cnnarch.train.checkpoint import load_checkpoint

    def crash(msg):
        if msg.startswith(line):
            raise _Crash

    with pytest.raises(_Crash):
        Trainer(cfg, build_data(cfg, progress=False), log=crash).fit()
    last = os.path.join(cfg.run.output, "last.pt")
    epoch = int(line.split()[1].split("/")[0])  # "epoch 2/4": the checkpoint holds epoch 2, 0-based 1
    assert load_checkpoint(last)["epoch"] == epoch - 1
    resumed = config_for_resume(last, {})
    return Trainer(resumed, build_data(resumed, progress=False), log=lambda s: None).fit()


# One thread in the runs compared bit for bit: the recipes' --threads 0 counts the free cores again
# during a run, and another count sums the convolutions in another order.
def _fast_cfg(tree16, out, recipe="cifar-fast", **kw):
    return resolve_config(
        recipe,
        data=str(tree16 / "data"),
        batch_size=24,
        amp=False,
        output=str(tree16 / out),
        threads=1,
        **kw,
    )


def test_a_fast_run_resumes_bit_exactly(tree16):
    """Whitening, BN-shift lr, BN momentum, one cycle, TTA and target timing, lookahead, alternating
    flips, reflect padding, the whitening bias frozen after epoch 1 and Muon under a crash and a resume:
    the weights equal those of the straight run."""
    from cnnarch.train import Trainer, build_data
    from cnnarch.train.checkpoint import load_checkpoint

    def cfg(out):
        return _fast_cfg(tree16, out, epochs=3, whiten_bias_epochs=1, muon=True)

    assert (
        cfg("x").speedrun.lookahead
        and cfg("x").speedrun.alternate_flip
        and cfg("x").speedrun.pad_mode == "reflect"
    )

    straight = cfg("a")
    Trainer(straight, build_data(straight, progress=False), log=lambda s: None).fit()

    row = _crash_then_resume(cfg("b"), "epoch 1/3")

    a, b = load_checkpoint(tree16 / "a/last.pt"), load_checkpoint(tree16 / "b/last.pt")
    assert a["step"] == b["step"] == 3 * 3
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for k, v in a["lookahead"]["slow"].items():
        assert torch.equal(v, b["lookahead"]["slow"][k]), k
    assert a["muon"]["state"].keys() == b["muon"]["state"].keys() and len(a["muon"]["state"]) == 6
    for k, v in a["muon"]["state"].items():
        assert torch.equal(v["momentum_buffer"], b["muon"]["state"][k]["momentum_buffer"]), k
    assert not b["model"]["whiten.weight"].equal(create_model("cifar_fast", num_classes=3).whiten.weight)
    with (tree16 / "b/metrics.csv").open() as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]
    results = json.loads((tree16 / "b/results.json").read_text())
    assert results["test_images"] == 18 and results["tta_top1"] == row["tta_top1"]
    assert results["train_seconds"] > results["tta_seconds"] > 0


def test_the_whitening_bias_trains_for_its_epochs_then_stays(tree16):
    from cnnarch.train import Trainer, build_data

    cfg = _fast_cfg(tree16, "wb", epochs=3, whiten_bias_epochs=1, lookahead=False)
    biases = []
    holder = {}

    def log(msg):
        if msg.startswith("epoch "):
            biases.append(holder["t"].model.whiten.bias.detach().clone())

    holder["t"] = trainer = Trainer(cfg, build_data(cfg, progress=False), log=log)
    assert trainer.model.whiten.bias.requires_grad
    trainer.fit()
    assert len(biases) == 3 and not torch.equal(biases[0], torch.zeros(24))  # it trained in epoch 1
    assert torch.equal(biases[1], biases[0]) and torch.equal(biases[2], biases[0])
    assert not trainer.model.whiten.bias.requires_grad


def test_lookahead_ends_on_the_slow_weights_also_when_the_run_stops_early(tree16):
    """7 of 9 steps (--iterations): lookahead's last update (step 5) is not the last step, so only the
    final swap puts the slow weights into the model."""
    from cnnarch.train import Trainer, build_data
    from cnnarch.train.checkpoint import load_checkpoint

    cfg = _fast_cfg(tree16, "la", epochs=3, iterations=7)
    trainer = Trainer(cfg, build_data(cfg, progress=False), log=lambda s: None)
    assert trainer.lookahead.total_steps == 7
    trainer.fit()
    ckpt = load_checkpoint(tree16 / "la/last.pt")
    assert ckpt["step"] == 7
    slow = ckpt["lookahead"]["slow"]
    assert set(slow) == {k for k, v in ckpt["model"].items() if v.is_floating_point()}
    for k, v in slow.items():
        assert torch.equal(ckpt["model"][k], v), k


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")  # no optimizer steps here
def test_muon_takes_the_filters_and_follows_the_schedule_scaled(tree16):
    from cnnarch.train import Trainer, build_data

    cfg = _fast_cfg(tree16, "mu", epochs=2, muon=True, muon_lr=0.3)
    trainer = Trainer(cfg, build_data(cfg, progress=False), log=lambda s: None)
    model = trainer.model
    filters = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d) and m is not model.whiten]
    assert [id(p) for p in trainer.muon.param_groups[0]["params"]] == [id(p) for p in filters]
    sgd = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not sgd & {id(p) for p in filters}
    assert sgd == {id(p) for p in model.parameters() if p.requires_grad and p.dim() < 4}
    lrs = []
    for step in range(trainer.total_steps):
        lrs.append((trainer.optimizer.param_groups[0]["lr"], trainer.muon.param_groups[0]["lr"]))
        trainer.schedule.set(step + 1)
        trainer.muon_schedule.set(step + 1)
    for lr, muon_lr in lrs:
        assert muon_lr == pytest.approx(lr * 0.3 / 1.5)
    assert lrs[0][0] == pytest.approx(0.3) and lrs[-1][0] > 1.0  # the one cycle's rise


def test_the_speedrun_data_options_reach_the_transform_and_are_refused_where_they_cannot_act(tree16):
    from cnnarch.train import build_data

    tf = build_data(_fast_cfg(tree16, "d"), progress=False).train.transform
    assert tf.alternate_flip and tf.pad_mode == "reflect" and tf.padding == 2
    # the recipe's alternating flips and mirrored padding without flips or crops: ignored, with a note
    no_flip = _fast_cfg(tree16, "d", augment="crop")
    assert "ignored: --alternate-flip True has no effect without flip in --augment" in no_flip.notes
    assert not build_data(no_flip, progress=False).train.transform.alternate_flip
    with pytest.raises(ValueError, match="--alternate-flip True has no effect without flip"):
        resolve_config(augment="crop", alternate_flip=True)
    with pytest.raises(ValueError, match="--pad-mode reflect has no effect without crop"):
        resolve_config(augment="flip", pad_mode="reflect")
    with pytest.raises(ValueError, match="--pad-mode reflect"):
        build_data(_fast_cfg(tree16, "d", crop_padding=0), progress=False)


def test_speedrun_options_refused_where_they_cannot_apply(syn):
    from cnnarch.train import Trainer

    with pytest.raises(ValueError, match="--whiten-bias-epochs 3 has no effect without --whiten"):
        resolve_config(whiten_bias_epochs=3)
    with pytest.raises(ValueError, match="--muon-momentum"):
        resolve_config(muon=True, muon_momentum=1.0)
    x, y = syn.blob_images(64)
    cfg = resolve_config(model="mlp", epochs=1, batch_size=16, muon=True, log_interval=0)
    with pytest.raises(ValueError, match="--muon trains convolution filters, and mlp has no"):
        Trainer(cfg, syn.bundle(x, y, 16, 4), model=syn.tiny_mlp_net(), log=lambda s: None)
    cfg = resolve_config(model="tiny", epochs=1, batch_size=16, whiten=True, whiten_bias_epochs=1)
    with pytest.raises(ValueError, match="no `whiten` convolution"):
        Trainer(cfg, syn.bundle(x, y, 16, 4), model=syn.tiny_cnn(), log=lambda s: None)


def test_the_93_recipe_is_airbench93():
    """lib_airbench93.py (airbench 0.1.8): the 94% recipe's hyperparameters, widths 64/128/128, 11
    epochs, the lr peaking after 23% of the steps; lookahead, alternating flips, 2-pixel reflect
    translation and 3 epochs of whitening bias in both."""
    c93, c94 = resolve_config("cifar-fast-93"), resolve_config("cifar-fast")
    assert c93.model == "cifar_fast_93" and c93.schedule.epochs == 11
    assert c93.schedule.warmup_epochs == pytest.approx(
        0.23 * 11
    ) and c94.schedule.warmup_epochs == pytest.approx(0.23 * 10)
    for c in (c93, c94):
        # airbench's lr 11.5 per 1024 summed-loss examples under Nesterov 0.85: 11.5 / (1 + 1 / 0.15)
        assert (
            c.optim.lr == pytest.approx(11.5 / (1 + 1 / 0.15))
            and c.optim.momentum == 0.85
            and c.schedule.batch_size == 1024
        )
        assert (
            c.speedrun.lookahead
            and c.speedrun.alternate_flip
            and c.speedrun.pad_mode == "reflect"
            and c.dataset.crop_padding == 2
        )
        assert (
            c.speedrun.whiten_bias_epochs == 3
            and c.speedrun.bn_momentum == pytest.approx(1 - 0.6)
            and not c.speedrun.muon
        )
    same = {"model", "epochs", "warmup_epochs", "target_accuracy"}
    d93, d94 = c93.to_dict(), c94.to_dict()
    for g in ("optim", "schedule", "regularization", "speedrun", "dataset"):
        for k, v in d94[g].items():
            if k not in same:
                assert d93[g][k] == v, k


def test_the_muon_recipe_is_cifar_fast_with_muon_for_12_epochs():
    muon, base = resolve_config("cifar-fast-muon").to_dict(), resolve_config("cifar-fast").to_dict()
    assert muon["speedrun"]["muon"] and not base["speedrun"]["muon"] and muon["schedule"]["epochs"] == 12
    assert muon["speedrun"]["muon_lr"] == 0.24 and muon["speedrun"]["muon_momentum"] == 0.6  # airbench94_muon
    for g in ("optim", "schedule", "regularization", "speedrun", "dataset", "run"):
        for k, v in base[g].items():
            if k not in {"muon", "epochs", "target_accuracy"}:
                assert muon[g][k] == v, k


def test_the_short_93_recipe_is_cifar_fast_93_with_muon_and_small_early_epochs():
    short, base = resolve_config("cifar-fast-93-short").to_dict(), resolve_config("cifar-fast-93").to_dict()
    assert short["speedrun"]["muon"] and short["schedule"]["epochs"] == 10
    assert short["speedrun"]["progressive_size"] == [24] and short["speedrun"]["progressive_epochs"] == [6]
    # airbench94_muon's schedule: linear from the peak at step 0 to 0, no lookahead
    assert short["schedule"]["warmup_epochs"] == 0 and short["schedule"]["min_lr"] == 0
    assert not short["speedrun"]["lookahead"] and base["speedrun"]["lookahead"]
    # half the batch, half of every rate: the same step per image as cifar-fast-93's
    assert short["schedule"]["batch_size"] * 2 == base["schedule"]["batch_size"] == 1024
    assert short["optim"]["lr"] * 2 == pytest.approx(base["optim"]["lr"])
    assert short["speedrun"]["muon_lr"] * 2 == pytest.approx(base["speedrun"]["muon_lr"])
    changed = {"muon", "epochs", "warmup_epochs", "progressive_size", "progressive_epochs", "target_accuracy"}
    changed |= {"batch_size", "lr", "warmup_lr", "min_lr", "muon_lr", "lookahead", "tta_margin"}
    # the shifted TTA views only for unsure images; cifar-fast-93 shifts every image
    assert short["speedrun"]["tta_margin"] == 0.3 and base["speedrun"]["tta_margin"] is None
    for g in ("optim", "schedule", "regularization", "speedrun", "dataset", "run"):
        for k, v in base[g].items():
            if k not in changed:
                assert short[g][k] == v, k


def test_the_short_93_recipe_decays_every_rate_linearly_from_the_first_step():
    """lr(step) = peak * (1 - step / steps) for SGD and Muon alike, written out: no warm-up, no floor."""
    from cnnarch.train.speedrun import LRSchedule

    cfg = resolve_config("cifar-fast-93-short")
    assert not any("ignored" in n for n in cfg.to_dict()["notes"])  # no warm-up rate left from cifar-fast
    assert "sgd lr 0.75 (onecycle without warm-up: linear from the peak to 0)" in cfg.summary()[1]
    w, f = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    # the recipe's SGD and Muon peaks
    opt = torch.optim.SGD([{"params": [w], "lr": 0.75}, {"params": [f], "lr": 0.12}], lr=0.75)
    sched, steps = LRSchedule(opt, cfg, steps_per_epoch=97), 97 * 10
    for step in (0, 1, 485, 969, 970):
        for group, peak in enumerate((0.75, 0.12)):
            assert sched.lr(group, step) == pytest.approx(peak * (1 - step / steps), abs=1e-12), (step, group)


@pytest.mark.slow
def test_the_short_93_recipe_resumes_bit_exactly(tree16):
    """Its levers together (Muon, progressive resizing, alternating flips, the whitening bias frozen after
    epoch 1; lookahead and a warm-up as in the one-cycle variant) under a crash after the last small
    epoch and a resume: the same weights, slow weights, Muon buffers, and per-epoch learning rates and
    accuracies as the straight run."""
    from cnnarch.train import Trainer, build_data
    from cnnarch.train.checkpoint import load_checkpoint

    def cfg(out):
        return _fast_cfg(
            tree16,
            out,
            "cifar-fast-93-short",
            epochs=4,
            warmup_epochs=0.92,
            lookahead=True,
            progressive_size=12,
            progressive_epochs=2,
            whiten_bias_epochs=1,
        )

    seen = []
    straight = Trainer(cfg("a"), build_data(cfg("a"), progress=False), log=lambda s: None)
    straight.model.register_forward_pre_hook(lambda m, a: seen.append((m.training, a[0].shape[-1])))
    straight.fit()
    assert [s for t, s in seen if t] == [12] * 6 + [16] * 6  # 3 steps per epoch

    _crash_then_resume(cfg("b"), "epoch 2/4")
    a, b = load_checkpoint(tree16 / "a/last.pt"), load_checkpoint(tree16 / "b/last.pt")
    assert a["step"] == b["step"] == 4 * 3
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for k, v in a["lookahead"]["slow"].items():
        assert torch.equal(v, b["lookahead"]["slow"][k]), k
    assert len(a["muon"]["state"]) == 6
    for k, v in a["muon"]["state"].items():
        assert torch.equal(v["momentum_buffer"], b["muon"]["state"][k]["momentum_buffer"]), k
    rows = {}
    for run in "ab":
        with (tree16 / run / "metrics.csv").open() as f:
            rows[run] = [(r["epoch"], r["step"], r["lr"], r["val_top1"]) for r in csv.DictReader(f)]
    assert rows["a"] == rows["b"] and len(rows["a"]) == 4


def test_downscale_matches_pil_antialiased_bilinear():
    from cnnarch.train.speedrun import downscale

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 29, 3), dtype=np.uint8)  # H 37, W 29: the shorter side is the width
    want = np.asarray(Image.fromarray(img).resize((20, 26), Image.BILINEAR), dtype=np.float32)  # 37*20/29
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    got = downscale(x.contiguous(memory_format=torch.channels_last), 20)
    assert got.shape == (1, 3, 26, 20) and got.is_contiguous(memory_format=torch.channels_last)
    assert (got[0].permute(1, 2, 0).numpy() - want).__abs__().max() <= 1.0  # PIL rounds to uint8
    half = downscale(x.bfloat16(), 20)  # the fast recipes' batches reach it in bfloat16
    assert half.dtype == torch.bfloat16 and (half.float() - got).abs().max() <= 1.0
    with pytest.raises(ValueError, match="--progressive-size 29 is not smaller than the training images"):
        downscale(x, 29)


def test_random_crop_takes_each_image_s_own_unscaled_window():
    from cnnarch.train.speedrun import random_crop

    x = torch.randn(64, 3, 10, 12).contiguous(memory_format=torch.channels_last)
    got = random_crop(x, 6, torch.Generator().manual_seed(0))
    assert got.shape == (64, 3, 6, 6) and got.is_contiguous(memory_format=torch.channels_last)
    places = set()
    for img, out in zip(x, got, strict=True):  # the naive twin: find the window by trying every place
        found = [
            (i, j)
            for i in range(10 - 6 + 1)
            for j in range(12 - 6 + 1)
            if torch.equal(img[:, i : i + 6, j : j + 6], out)
        ]
        assert len(found) == 1
        places |= set(found)
    assert len(places) > 10  # each image its own place, not one for the batch
    again = random_crop(x.contiguous(), 6, torch.Generator().manual_seed(0))
    assert torch.equal(again, got) and again.is_contiguous()  # seeded; the memory format is the input's
    assert random_crop(x.bfloat16(), 6).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="--progressive-size 10 is not smaller than the training images"):
        random_crop(x, 10)


def test_progressive_crops_train_small_then_full(tree16):
    from cnnarch.train import Trainer, build_data

    cfg = _fast_cfg(tree16, "c", epochs=3, progressive_size=12, progressive_epochs=2, progressive_mode="crop")
    lines, seen = [], []
    trainer = Trainer(cfg, build_data(cfg, progress=False), log=lines.append)
    trainer.model.register_forward_pre_hook(lambda m, a: seen.append((m.training, tuple(a[0].shape[-2:]))))
    trainer.fit()
    assert [s for t, s in seen if t] == [(12, 12)] * 6 + [(16, 16)] * 3
    assert {s for t, s in seen if not t} == {(16, 16)}
    assert "progressive resizing: epochs 1-2 on images cropped to 12x12" in "\n".join(lines)
    with pytest.raises(ValueError, match="--progressive-mode crop has no effect without --progressive-size"):
        resolve_config(progressive_mode="crop")


def test_progressive_resizing_trains_small_then_full_and_resumes_bit_exactly(tree16):
    from cnnarch.train import Trainer, build_data
    from cnnarch.train.checkpoint import load_checkpoint

    def cfg(out):
        return _fast_cfg(tree16, out, epochs=3, progressive_size=12, progressive_epochs=2)

    lines, seen = [], []
    straight = Trainer(cfg("a"), build_data(cfg("a"), progress=False), log=lines.append)
    straight.model.register_forward_pre_hook(lambda m, a: seen.append((m.training, tuple(a[0].shape[-2:]))))
    straight.fit()
    train = [s for t, s in seen if t]
    assert train == [(12, 12)] * 6 + [(16, 16)] * 3  # 3 steps per epoch
    assert {s for t, s in seen if not t} == {(16, 16)}  # every evaluation and the TTA at full size
    assert "progressive resizing: epochs 1-2 on images downscaled to 12 pixels" in "\n".join(lines)

    _crash_then_resume(cfg("b"), "epoch 1/3")
    a, b = load_checkpoint(tree16 / "a/last.pt"), load_checkpoint(tree16 / "b/last.pt")
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k


def test_progressive_stages_follow_one_another_each_with_its_mode(tree16, capsys):
    from cnnarch.train import Trainer, build_data
    from cnnarch.train.speedrun import progressive_stage

    stages = ["--progressive-size", "24", "28", "--progressive-epochs", "6", "3", "--progressive-mode"]
    assert main(["train", "--epochs", "10", *stages, "resize", "crop", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)["speedrun"]
    assert [printed[f"progressive_{k}"] for k in ("size", "epochs", "mode")] == [
        [24, 28],
        [6, 3],
        ["resize", "crop"],
    ]
    two = resolve_config(
        epochs=10, progressive_size=(24, 28), progressive_epochs=(6, 3), progressive_mode=("resize", "crop")
    ).speedrun
    want = [(24, "resize")] * 6 + [(28, "crop")] * 3 + [None]
    assert [progressive_stage(two, e) for e in range(10)] == want
    one_mode = resolve_config(epochs=4, progressive_size=(8, 12), progressive_epochs=(1, 2)).speedrun
    assert [progressive_stage(one_mode, e) for e in range(4)] == [(8, "resize")] + [(12, "resize")] * 2 + [
        None
    ]

    cfg = _fast_cfg(
        tree16,
        "s",
        epochs=3,
        progressive_size=(10, 12),
        progressive_epochs=(1, 1),
        progressive_mode=("crop", "resize"),
    )
    lines, seen = [], []
    trainer = Trainer(cfg, build_data(cfg, progress=False), log=lines.append)
    trainer.model.register_forward_pre_hook(lambda m, a: seen.append((m.training, tuple(a[0].shape[-2:]))))
    trainer.fit()
    assert [s for t, s in seen if t] == [(10, 10)] * 3 + [(12, 12)] * 3 + [(16, 16)] * 3  # 3 steps per epoch
    assert {s for t, s in seen if not t} == {(16, 16)}
    text = "\n".join(lines)
    assert (
        "progressive resizing: epoch 1 on images cropped to 10x10, epoch 2 on images downscaled to 12 pixels "
        "(shorter side), then full size"
    ) in text


def test_progressive_settings_of_earlier_versions_read_as_one_stage():
    from cnnarch.train.config import TrainConfig

    old = resolve_config(epochs=10).to_dict()
    old["speedrun"] |= {"progressive_size": 24, "progressive_epochs": 6, "progressive_mode": "crop"}
    sp = TrainConfig.from_dict(old).speedrun
    assert (sp.progressive_size, sp.progressive_epochs, sp.progressive_mode) == ((24,), (6,), ("crop",))
    old["speedrun"] |= {"progressive_size": None, "progressive_epochs": 0, "progressive_mode": "resize"}
    sp = TrainConfig.from_dict(old).speedrun
    assert (sp.progressive_size, sp.progressive_epochs, sp.progressive_mode) == ((), (), ("resize",))


def test_progressive_resizing_is_refused_where_it_cannot_work(tree16):
    from cnnarch.train import Trainer, build_data

    with pytest.raises(ValueError, match="--progressive-size N and --progressive-epochs E go together"):
        resolve_config(progressive_size=24)
    with pytest.raises(ValueError, match="go together"):
        resolve_config(progressive_epochs=2)
    with pytest.raises(ValueError, match="one E for each N"):
        resolve_config(progressive_size=(24, 28), progressive_epochs=(6,))
    with pytest.raises(ValueError, match="one mode for every stage or one per stage"):
        resolve_config(progressive_size=(24, 28), progressive_epochs=(2, 2), progressive_mode=("crop",) * 3)
    with pytest.raises(ValueError, match="--progressive-mode must be one of resize, crop, got 'shrink'"):
        resolve_config(progressive_size=24, progressive_epochs=2, progressive_mode=("crop", "shrink"))
    with pytest.raises(ValueError, match="must be >= 1"):
        resolve_config(progressive_size=(24, 0), progressive_epochs=(2, 2))
    with pytest.raises(ValueError, match="leaves no epoch at full size"):
        _fast_cfg(tree16, "p", epochs=2, progressive_epochs=2, progressive_size=12)
    with pytest.raises(
        ValueError, match="--progressive-epochs 2 1 of --epochs 3 leaves no epoch at full size"
    ):
        resolve_config(epochs=3, progressive_size=(8, 12), progressive_epochs=(2, 1))
    for kw, message in (
        # 3 steps per epoch: 6 iterations end the run after epoch 2
        (dict(epochs=3, iterations=6, progressive_epochs=2, progressive_size=12), "run's 2 epoch"),
        (dict(epochs=2, progressive_epochs=1, progressive_size=4), r"below the smallest input cifar_fast"),
    ):
        cfg = _fast_cfg(tree16, "p", **kw)
        with pytest.raises(ValueError, match=message):
            Trainer(cfg, build_data(cfg, progress=False), log=lambda s: None)
