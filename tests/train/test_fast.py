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
from cnnarch.train.evaluate import tta_logits
from cnnarch.train.fast import init_whitening
from cnnarch.train.optim import one_cycle, param_groups


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


def test_bn_shifts_get_their_own_learning_rate_and_weight_decay():
    cfg = resolve_config("cifar-fast")
    model = create_model("cifar_fast")
    model.whiten.weight.requires_grad_(False)
    groups = param_groups(model, cfg)
    shifts = [m.bias for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [id(p) for p in groups[1]["params"]] == [id(p) for p in shifts]
    assert groups[1]["lr"] == pytest.approx(64 * cfg.lr)
    assert groups[1]["weight_decay"] == pytest.approx(cfg.weight_decay / 64)
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
def tree16(tmp_path, monkeypatch):
    """A 3-class ImageFolder tree of 16x16 PNGs whose class is their dominant colour."""
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("test", 6)):
        for c, name in enumerate(["blue", "green", "red"]):
            d = tmp_path / "data" / split / name
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 80, (16, 16, 3), dtype=np.uint8)
                img[..., 2 - c] += 150
                Image.fromarray(img).save(d / f"{i}.png")
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


def test_a_process_that_loaded_torch_restarts_itself_with_a_passive_wait_policy():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "CNNARCH_RESTARTED_FOR_OMP")}
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in sys.path if p])
    code = (
        "import os, torch; from cnnarch.train.threads import ensure_passive_wait; "
        "print('start', os.environ.get('OMP_WAIT_POLICY')); print(ensure_passive_wait(restart=True))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "start None",
        "start PASSIVE",
        "OMP_WAIT_POLICY=PASSIVE (this process was restarted so that OpenMP reads it)",
    ]


class _Crash(Exception):
    pass


def test_a_fast_run_resumes_bit_exactly(tree16):
    """Whitening, BN-shift lr, BN momentum, one cycle, TTA and target timing under a crash and a resume:
    the weights equal those of the straight run."""
    from cnnarch.train import Trainer, build_data, config_for_resume, resolve_config
    from cnnarch.train.checkpoint import load_checkpoint

    def cfg(out):
        return resolve_config(
            "cifar-fast", data=str(tree16 / "data"), batch_size=24, epochs=3, amp=False, output=str(out)
        )

    straight = cfg(tree16 / "a")
    Trainer(straight, build_data(straight, progress=False), log=lambda s: None).fit()

    def crash_after_epoch_1(msg):
        if msg.startswith("epoch 1/3"):  # logged once epoch 1's checkpoint is written
            raise _Crash

    crashed = cfg(tree16 / "b")
    with pytest.raises(_Crash):
        Trainer(crashed, build_data(crashed, progress=False), log=crash_after_epoch_1).fit()
    assert load_checkpoint(tree16 / "b/last.pt")["epoch"] == 0
    resumed = config_for_resume(str(tree16 / "b/last.pt"), {})
    row = Trainer(resumed, build_data(resumed, progress=False), log=lambda s: None).fit()

    a, b = load_checkpoint(tree16 / "a/last.pt"), load_checkpoint(tree16 / "b/last.pt")
    assert a["step"] == b["step"] == 3 * 3
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert not b["model"]["whiten.weight"].equal(create_model("cifar_fast", num_classes=3).whiten.weight)
    with (tree16 / "b/metrics.csv").open() as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]
    results = json.loads((tree16 / "b/results.json").read_text())
    assert results["test_images"] == 18 and results["tta_top1"] == row["tta_top1"]
    assert results["train_seconds"] > results["tta_seconds"] > 0
