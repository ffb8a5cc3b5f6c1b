import csv
import json
import math

import pytest
import torch

from cnnarch.train.checkpoint import load_checkpoint
from cnnarch.train.config import resolve_config
from cnnarch.train.trainer import NonFiniteLossError, Trainer, config_for_resume


def quiet(_):
    pass


def make_cfg(tmp_path, **kw):
    base = dict(
        model="tiny",
        epochs=4,
        batch_size=32,
        lr=0.05,
        sched="cosine",
        output=str(tmp_path / "run"),
        log_interval=0,
    )
    base.update(kw)
    return resolve_config(**base)


def test_loss_falls_and_run_directory_is_complete(tmp_path, syn):
    x, y = syn.blob_images(256)
    cfg = make_cfg(tmp_path, epochs=5)
    out = Trainer(cfg, syn.bundle(x, y, 32, 4, test=True), model=syn.tiny_cnn, log=quiet).fit()
    run = tmp_path / "run"
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < 0.5 * losses[0]
    assert float(rows[-1]["val_top1"]) > 90  # 4 bright-square classes: chance is 25%
    assert int(rows[-1]["step"]) == 5 * (192 // 32)
    for name in ("config.json", "last.pt", "best.pt", "curves.png"):
        assert (run / name).stat().st_size > 0, name
    assert out["test_top1"] == pytest.approx(float(rows[-1]["val_top1"]))  # test = val split here


def final_weights(path):
    return load_checkpoint(path)["model"]


def test_resume_is_bit_identical(tmp_path, syn):
    x, y = syn.blob_images(192)
    kw = dict(
        epochs=4, sched="plateau", patience_epochs=0, warmup_epochs=1, warmup_lr=0.01, weight_decay=5e-4
    )
    Trainer(make_cfg(tmp_path / "a", **kw), syn.bundle(x, y, 32, 4), model=syn.tiny_cnn, log=quiet).fit()
    straight = final_weights(tmp_path / "a/run/last.pt")

    Trainer(
        make_cfg(tmp_path / "b", **{**kw, "epochs": 2}),
        syn.bundle(x, y, 32, 4),
        model=syn.tiny_cnn,
        log=quiet,
    ).fit()
    halfway = final_weights(tmp_path / "b/run/last.pt")
    resumed_cfg = config_for_resume(str(tmp_path / "b/run/last.pt"), {"epochs": 4})
    assert resumed_cfg.schedule.epochs == 4 and resumed_cfg.schedule.sched == "plateau"
    Trainer(resumed_cfg, syn.bundle(x, y, 32, 4), model=syn.tiny_cnn, log=quiet).fit()
    resumed = final_weights(tmp_path / "b/run/last.pt")

    assert straight.keys() == resumed.keys()
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k
    with open(tmp_path / "b/run/metrics.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2", "3", "4"]
    assert not torch.equal(straight["6.weight"], halfway["6.weight"])  # the resumed epochs did train


def test_a_paused_cosine_run_resumes_bit_identically(tmp_path, syn):
    """fit(until_epoch=k) stops after epoch k with the cosine still over the whole run: a pause, then a
    resume, equals the straight run; a run stopped with --epochs k would have decayed to 0 at epoch k."""
    x, y = syn.blob_images(192)
    kw = dict(epochs=4, sched="cosine", sched_unit="iter", warmup_epochs=1, nesterov=True, smoothing=0.1)
    Trainer(make_cfg(tmp_path / "a", **kw), syn.bundle(x, y, 32, 4), model=syn.tiny_cnn, log=quiet).fit()
    straight = final_weights(tmp_path / "a/run/last.pt")

    cfg = make_cfg(tmp_path / "b", **kw)
    row = Trainer(cfg, syn.bundle(x, y, 32, 4), model=syn.tiny_cnn, log=quiet).fit(until_epoch=1)
    steps = 192 * 3 // 4 // 32
    assert row["epoch"] == 1 and row["step"] == steps
    with open(tmp_path / "a/run/metrics.csv") as f:
        assert row["lr"] == float(next(csv.DictReader(f))["lr"]) > 0.02  # the 4-epoch cosine's, not decayed
    assert not (tmp_path / "b/run/results.json").exists()
    again = cfg.replace(resume=str(tmp_path / "b/run/last.pt"))
    Trainer(again, syn.bundle(x, y, 32, 4), model=syn.tiny_cnn, log=quiet).fit(until_epoch=3)
    Trainer(again, syn.bundle(x, y, 32, 4), model=syn.tiny_cnn, log=quiet).fit()
    resumed = final_weights(tmp_path / "b/run/last.pt")
    for k in straight:
        assert torch.equal(straight[k], resumed[k]), k
    assert (tmp_path / "b/run/results.json").exists()


def test_resume_refuses_other_model_and_changed_hyperparameters(tmp_path, syn):
    x, y = syn.blob_images(64)
    Trainer(make_cfg(tmp_path, epochs=1), syn.bundle(x, y, 16, 4), model=syn.tiny_cnn, log=quiet).fit()
    last = str(tmp_path / "run/last.pt")
    with pytest.raises(ValueError, match="holds a 'tiny', not 'resnet18'"):
        config_for_resume(last, {"model": "resnet18"})
    with pytest.raises(ValueError, match=r"lr: checkpoint has 0.05, command line gives 0.1"):
        config_for_resume(last, {"lr": 0.1, "epochs": 3})
    assert (
        config_for_resume(last, {"lr": 0.05, "epochs": 3}).schedule.epochs == 3
    )  # same value is no conflict


def test_nonfinite_loss_stops_with_epoch_step_and_keeps_last_checkpoint(tmp_path, syn):
    x, y = syn.blob_images(128)
    data = syn.bundle(x, y, 32, 4)
    cfg = make_cfg(tmp_path, epochs=3)
    trainer = Trainer(cfg, data, model=syn.tiny_cnn, log=quiet)
    good = {}

    def poisoned(batch, g):
        out = syn.to_float(batch)
        if trainer.step == 4:  # epoch 2 (3 steps per epoch), its 2nd batch
            good.update(load_checkpoint(tmp_path / "run/last.pt")["model"])
            out = out * math.inf
        return out

    data.train_transform = poisoned
    with pytest.raises(NonFiniteLossError) as e:
        trainer.fit()
    msg = str(e.value)
    assert "epoch 2, step 5" in msg and "lr " in msg and "--lr" in msg
    after = load_checkpoint(tmp_path / "run/last.pt")
    assert after["epoch"] == 0 and after["step"] == 3
    for k, v in good.items():
        assert torch.equal(v, after["model"][k])
    for p in trainer.model.parameters():  # the bad step was not taken either
        assert torch.isfinite(p).all()


def test_progress_bar_on_a_terminal_plain_lines_otherwise(tmp_path, syn, monkeypatch, capsys):
    x, y = syn.blob_images(64)
    lines = []
    cfg = make_cfg(tmp_path, epochs=1, batch_size=16, log_interval=1)
    Trainer(cfg, syn.bundle(x, y, 16, 4), model=syn.tiny_cnn, log=lines.append).fit()
    assert sum(line.startswith("epoch 1 [") for line in lines) == 3  # one per step: no terminal here

    # dated lines with rate and ETA every progress.INTERVAL seconds (here: at every update)
    monkeypatch.setattr("cnnarch.progress.INTERVAL", 0.0)
    lines.clear()
    cfg0 = cfg.replace(output=str(tmp_path / "log"), log_interval=0)
    Trainer(cfg0, syn.bundle(x, y, 16, 4), model=syn.tiny_cnn, log=lines.append).fit()
    dated = [line[20:] for line in lines if line[:4].isdigit()]
    assert [line.split(":")[0] for line in dated] == ["epoch 1/1"] * 3
    assert dated[0].startswith("epoch 1/1: 16/48 img (33%)") and "ETA" in dated[0]
    assert "batch (100%)" in capsys.readouterr().out  # the evaluation's, printed
    monkeypatch.setattr("cnnarch.progress.INTERVAL", 15.0)

    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    lines.clear()
    Trainer(
        cfg.replace(output=str(tmp_path / "tty")),
        syn.bundle(x, y, 16, 4),
        model=syn.tiny_cnn,
        log=lines.append,
    ).fit()
    assert not any(line.startswith("epoch 1 [") for line in lines)
    assert "epoch 1/1" in capsys.readouterr().err  # tqdm's bar instead


def test_options_the_run_could_not_apply_are_refused(tmp_path, syn):
    x, y = syn.blob_images(64)
    with pytest.raises(ValueError, match="--bn-momentum and --bias-lr-scale act on batch-norm layers"):
        Trainer(make_cfg(tmp_path, bn_momentum=0.4), syn.bundle(x, y, 16, 4), model=syn.tiny_mlp_net)
    no_eval = syn.bundle(x, y, 16, 4, val=False)
    with pytest.raises(ValueError, match="--tta and --target-accuracy need a test set"):
        Trainer(make_cfg(tmp_path, tta="flip"), no_eval, model=syn.tiny_cnn)


def test_tta_and_targets_apply_to_any_run(tmp_path, syn):
    x, y = syn.blob_images(128)
    cfg = make_cfg(tmp_path, epochs=2, tta="flip", target_accuracy=(1.0, 1000.0))
    lines = []
    out = Trainer(cfg, syn.bundle(x, y, 32, 4, test=True), model=syn.tiny_cnn, log=lines.append).fit()
    assert any(s.startswith("test with TTA (flip, 32 images)") for s in lines)
    assert [t["accuracy"] for t in out["targets"]] == [1.0] and out["targets"][0]["epoch"] == 1
    assert "target 1000%: not reached" in lines
    saved = json.loads((tmp_path / "run/results.json").read_text())
    assert saved["tta_top1"] == out["tta_top1"] and saved["test_images"] == 32


def test_drop_is_the_zoo_networks_drop_prob_keyword(tmp_path, syn):
    from torch import nn

    from cnnarch.train.trainer import build_model

    x, y = syn.blob_images(64)
    cfg = make_cfg(tmp_path, model="wrn16_4", drop=0.3)
    model = Trainer(cfg, syn.bundle(x, y, 32, 4), log=quiet).model
    drops = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 6 and set(drops) == {0.3}  # one between the convolutions of each of 6 blocks
    assert not any(isinstance(m, nn.Dropout) for m in build_model("resnet20", 4, drop_prob=0.0).modules())
    with pytest.raises(ValueError, match="resnet20 has no dropout"):
        build_model("resnet20", 4, drop_prob=0.5)
    with pytest.raises(ValueError, match="build the given model"):
        Trainer(cfg.replace(model="tiny"), syn.bundle(x, y, 32, 4), model=syn.tiny_cnn, log=quiet)
