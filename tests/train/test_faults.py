"""The trainer under bad input and faults: no run is silently overwritten, nothing non-finite is saved,
labels are never scored against another split's classes, a run that would train nothing is refused, and
every error names a real way out."""

import csv
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from cnnarch.cli import main
from cnnarch.train.checkpoint import load_checkpoint
from cnnarch.train.config import resolve_config
from cnnarch.train.trainer import NonFiniteLossError, Trainer, config_for_resume


def quiet(_):
    pass


def make_cfg(tmp_path, **kw):
    base = dict(model="tiny", epochs=2, batch_size=32, lr=0.05, output=str(tmp_path / "run"), log_interval=0)
    return resolve_config(**{**base, **kw})


def fit(cfg, syn, n=128, **kw):
    x, y = syn.blob_images(n)
    return Trainer(cfg, syn.bundle(x, y, 32, 4, **kw), model=syn.tiny_cnn, log=quiet).fit()


@pytest.fixture
def tree(tmp_path, monkeypatch, colour_tree):
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    return colour_tree(tmp_path / "data")


def train(data, out, *extra):
    args = ["train", "--data", str(data), "--model", "resnet20", "-b", "8", "--lr", "0.05"]
    return main([*args, "--val-split", "0.25", "--log-interval", "0", "--output", str(out), *extra])


# 1. a run folder is never silently overwritten
def test_a_new_run_into_a_run_folder_is_refused_unless_overwrite(tmp_path, syn):
    fit(make_cfg(tmp_path, epochs=1), syn)
    before = (tmp_path / "run/last.pt").read_bytes()
    with pytest.raises(ValueError, match="already holds a run") as e:
        fit(make_cfg(tmp_path, epochs=1, lr=0.01), syn)
    assert (
        "--resume" in str(e.value) and "--overwrite" in str(e.value) and str(tmp_path / "run") in str(e.value)
    )
    assert (tmp_path / "run/last.pt").read_bytes() == before
    fit(make_cfg(tmp_path, epochs=1, lr=0.01, overwrite=True), syn)
    assert load_checkpoint(tmp_path / "run/last.pt")["config"]["optim"]["lr"] == 0.01


def test_the_command_line_refuses_before_loading_data_and_resumes_a_run_folder(tree, tmp_path, capsys):
    assert train(tree, tmp_path / "run", "--epochs", "1") == 0
    capsys.readouterr()
    assert train(tree / "missing", tmp_path / "run", "--epochs", "1") == 2  # the data are never read
    err = capsys.readouterr().err
    assert f"--output {tmp_path / 'run'} already holds a run; continue it with --resume" in err
    assert train(tree, tmp_path / "run", "--epochs", "1", "--seed", "1", "--overwrite") == 0
    assert main(["train", "--resume", str(tmp_path / "run"), "--epochs", "2"]) == 0
    ckpt = load_checkpoint(tmp_path / "run/last.pt")
    assert ckpt["epoch"] == 1 and ckpt["config"]["run"]["seed"] == 1
    assert ckpt["config"]["run"]["overwrite"] is False  # a resume never inherits --overwrite


def test_resume_writes_beside_its_checkpoint_never_to_the_stored_folder(tmp_path, syn):
    fit(make_cfg(tmp_path / "a", epochs=1), syn)
    original = (tmp_path / "a/run/last.pt").read_bytes()
    shutil.copytree(tmp_path / "a/run", tmp_path / "copy")
    cfg = config_for_resume(str(tmp_path / "copy"), {"epochs": 2})  # a run folder: its last.pt
    assert cfg.run.output == str(tmp_path / "copy") and cfg.run.resume == str(tmp_path / "copy/last.pt")
    fit(cfg, syn)
    assert (tmp_path / "a/run/last.pt").read_bytes() == original
    assert load_checkpoint(tmp_path / "copy/last.pt")["epoch"] == 1

    elsewhere = config_for_resume(
        str(tmp_path / "a/run/last.pt"), {"epochs": 2, "output": str(tmp_path / "b")}
    )
    fit(elsewhere, syn)
    assert (tmp_path / "a/run/last.pt").read_bytes() == original
    with open(tmp_path / "b/metrics.csv") as f:  # the earlier epochs' rows came along
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
    into_a_run = config_for_resume(
        str(tmp_path / "b/last.pt"), {"epochs": 3, "output": str(tmp_path / "copy")}
    )
    with pytest.raises(ValueError, match="already holds a run"):
        fit(into_a_run, syn)
    assert load_checkpoint(tmp_path / "copy/last.pt")["epoch"] == 1
    with pytest.raises(FileNotFoundError, match="holds no last.pt"):
        config_for_resume(str(tmp_path), {})


# 2. non-finite weights never reach a checkpoint
def test_weights_that_overflow_with_a_finite_loss_are_never_saved(tmp_path, syn):
    x, y = syn.blob_images(128)
    trainer = Trainer(make_cfg(tmp_path, epochs=3), syn.bundle(x, y, 32, 4), model=syn.tiny_cnn, log=quiet)
    step = trainer.scaler.step
    good = {}

    def overflow(opt):  # the last step of epoch 2 (3 steps per epoch): no loss sees these weights
        step(opt)
        if trainer.step == 5:
            good.update(load_checkpoint(tmp_path / "run/last.pt")["model"])
            trainer.model[0].weight.data.fill_(math.inf)

    trainer.scaler.step = overflow
    with pytest.raises(NonFiniteLossError) as e:
        trainer.fit()
    msg = str(e.value)
    assert "1 weight tensor(s) became non-finite (0.weight)" in msg
    assert "after epoch 2, step 6" in msg and "--lr" in msg and "untouched" in msg
    assert f"lr {0.05 * (1 + math.cos(math.pi / 3)) / 2:.4g};" in msg  # epoch 2's, of a 3-epoch cosine
    for name in ("last.pt", "best.pt"):
        after = load_checkpoint(tmp_path / "run" / name)
        assert after["epoch"] == 0
        assert all(torch.equal(v, after["model"][k]) for k, v in good.items())


def test_a_huge_learning_rate_stops_with_exit_3_and_finite_checkpoints(tree, tmp_path, capsys):
    assert train(tree, tmp_path / "run", "--epochs", "3", "--lr", "1e6") == 3
    out = capsys.readouterr().out
    assert "stopped: " in out and "non-finite" in out and "Try a lower --lr" in out
    for path in (tmp_path / "run").glob("*.pt"):
        for k, v in load_checkpoint(path)["model"].items():
            assert not v.is_floating_point() or torch.isfinite(v).all(), (path.name, k)


# 3. the test split is checked against the training classes
def test_a_test_split_missing_a_class_is_refused_by_train_and_eval(
    tmp_path, monkeypatch, capsys, colour_tree
):
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    good = colour_tree(tmp_path / "good")
    bad = colour_tree(tmp_path / "bad", test_classes=("blue", "red"))
    assert train(bad, tmp_path / "run", "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert "test set's classes differ from the training classes (missing ['green']" in err
    assert not (tmp_path / "run").exists()
    assert train(good, tmp_path / "run", "--epochs", "1") == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run/last.pt"), "--data", str(bad)]) == 2
    assert "test set's classes differ from the training classes (missing ['green']" in capsys.readouterr().err


# 4. a run that would train nothing is refused
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--iterations", "0"], "--iterations must be >= 1"),
        (["--iterations", "-5"], "--iterations must be >= 1"),
        (["--limit-train", "0"], "--limit-train must be >= 1"),
        (["--limit-val", "-1"], "--limit-val must be >= 1"),
        (["--val-split", "-0.2"], "--val-split must be in [0, 1)"),
        (["--val-split", "1"], "--val-split must be in [0, 1)"),
        (["-b", "64"], "-b 64 is more than the training images"),
        (["--val-split", "0.01"], "--val-split 0.01 of 36 training images holds out 0: no validation"),
    ],
)
def test_a_run_that_would_train_nothing_is_refused(tree, tmp_path, capsys, flags, message):
    assert train(tree, tmp_path / "run", "--epochs", "1", *flags) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# 5. extending a finished run
def test_extending_a_finished_cosine_run_continues_over_the_new_length(tmp_path, syn):
    def cosine(e, length):  # the rate of (0-based) epoch e: 0.05 * (1 + cos(pi e / length)) / 2
        return 0.05 * (1 + math.cos(math.pi * e / length)) / 2

    fit(make_cfg(tmp_path, epochs=3, sched="cosine"), syn)
    x, y = syn.blob_images(128)
    cfg = config_for_resume(str(tmp_path / "run"), {"epochs": 6})
    resumed = Trainer(cfg, syn.bundle(x, y, 32, 4), model=syn.tiny_cnn, log=quiet)
    assert resumed.lr() == pytest.approx(cosine(3, 6)) and resumed.lr() > 0.005  # not the 3 epochs' 0
    resumed.fit()
    with open(tmp_path / "run/metrics.csv") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    # a row's lr is the rate in force at its epoch's end: the next epoch's
    assert lrs == pytest.approx([cosine(e, 3) for e in (1, 2, 3)] + [cosine(e, 6) for e in (4, 5, 6)])


def test_a_shorter_epochs_says_nothing_to_do_and_rewrites_nothing(tmp_path, syn):
    fit(make_cfg(tmp_path, epochs=2), syn)
    files = {n: (tmp_path / "run" / n).read_bytes() for n in ("config.json", "metrics.csv", "last.pt")}
    for epochs in (1, 2):
        with pytest.raises(ValueError, match=r"already trained 2 epoch\(s\).*nothing to do.*larger --epochs"):
            fit(config_for_resume(str(tmp_path / "run/last.pt"), {"epochs": epochs}), syn)
    assert files == {n: (tmp_path / "run" / n).read_bytes() for n in files}


# 6. resume checks its data
def test_resume_refuses_other_data_and_accepts_the_same_data_moved(tree, tmp_path, capsys, colour_tree):
    assert train(tree, tmp_path / "run", "--epochs", "1") == 0
    fewer = shutil.copytree(tree, tmp_path / "fewer")
    (fewer / "train/red/0.png").unlink()
    other = colour_tree(tmp_path / "other", classes=("blue", "green"))
    resume = ["train", "--resume", str(tmp_path / "run"), "--epochs", "2", "--data"]
    capsys.readouterr()
    assert main([*resume, str(fewer)]) == 2
    assert "the data differ from the checkpoint's run" in capsys.readouterr().err
    assert main([*resume, str(other)]) == 2
    assert "classes: 3 then, 2 now (missing ['red']" in capsys.readouterr().err
    moved = tree.rename(tmp_path / "moved")
    assert main([*resume, str(moved)]) == 0
    assert load_checkpoint(tmp_path / "run/last.pt")["epoch"] == 1


def test_a_relative_data_path_is_stored_so_eval_works_from_anywhere(tree, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train("data", "run", "--epochs", "1") == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    assert main(["eval", "../run/last.pt", "--format", "json"]) == 0
    assert '"images": 9' in capsys.readouterr().out


# 7. every message names a real way out
def test_corrupt_images_can_be_skipped_with_the_flag_the_error_names(tree, tmp_path, capsys):
    (tree / "train/red/5.png").write_bytes(b"not a png")
    assert train(tree, tmp_path / "run", "--epochs", "1") == 2
    assert "(--skip-corrupt)" in capsys.readouterr().err
    assert train(tree, tmp_path / "run", "--epochs", "1", "--skip-corrupt") == 0
    (tree / "test/red/1.png").write_bytes(b"not a png")
    assert main(["eval", str(tmp_path / "run/last.pt")]) == 2
    assert main(["eval", str(tmp_path / "run/last.pt"), "--skip-corrupt", "--format", "json"]) == 0
    assert '"images": 8' in capsys.readouterr().out


def test_an_unwritable_output_and_a_missing_gpu_are_one_line_and_exit_2(tree, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert train(tree, tmp_path / "file/run", "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert f"--output {tmp_path / 'file/run'} cannot be written" in err and len(err.splitlines()) == 1
    if not torch.cuda.is_available():
        assert train(tree, tmp_path / "run", "--epochs", "1", "--device", "cuda") == 2
        err = capsys.readouterr().err
        assert "--device cuda: no CUDA GPU is available here; use --device cpu" in err
        assert len(err.splitlines()) == 1
    assert train(tree, tmp_path / "run", "--epochs", "1", "--device", "gpu") == 2
    assert "--device gpu: not a device name" in capsys.readouterr().err


def test_ctrl_c_stops_cleanly_naming_the_last_checkpoint(tree, tmp_path, capsys, monkeypatch):
    epoch = Trainer.train_epoch

    def interrupted(self, e):
        if e == 1:
            raise KeyboardInterrupt
        return epoch(self, e)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    assert train(tree, tmp_path / "run", "--epochs", "3") == 130
    err = capsys.readouterr().err
    assert err == f"cnnarch train: interrupted; continue from {tmp_path / 'run/last.pt'} with --resume " + (
        f"{tmp_path / 'run'}\n"
    )
    assert load_checkpoint(tmp_path / "run/last.pt")["epoch"] == 0


def test_orphan_temporary_files_of_a_killed_save_are_removed_on_the_next_save(tmp_path, syn):
    fit(make_cfg(tmp_path, epochs=1), syn)
    orphans = [tmp_path / "run/last.pt.k1ll3d.tmp", tmp_path / "run/best.pt.x.tmp"]
    for p in orphans:
        p.write_bytes(b"half a checkpoint")
    keep = tmp_path / "run/notes.tmp"
    keep.write_text("the user's")
    fit(config_for_resume(str(tmp_path / "run"), {"epochs": 2}), syn)
    assert not any(p.exists() for p in orphans) and keep.exists()


def test_images_of_differing_sizes_name_the_flag_that_resizes_them(tree, tmp_path, capsys):
    Image.fromarray(np.zeros((10, 12, 3), dtype=np.uint8)).save(tree / "train/red/3.png")
    assert train(tree, tmp_path / "run", "--epochs", "1") == 2
    assert "(--image-size N) to resize them all" in capsys.readouterr().err
    assert train(tree, tmp_path / "run", "--epochs", "1", "--image-size", "6") == 0
    assert load_checkpoint(tmp_path / "run/last.pt")["data_info"]["image_shape"] == [3, 6, 6]
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run/last.pt"), "--format", "json"]) == 0  # resized as trained
    assert '"images": 9' in capsys.readouterr().out
