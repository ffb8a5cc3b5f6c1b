"""The precision of a trained network's inference (``--precision auto|bf16|fp32`` of ``cnnarch eval`` and
``cnnarch predict``) and of training's evaluation: the choice follows the CPU, fp32 really computes in
fp32, and bf16 with channels-last agrees with a plain fp32 forward pass."""

import json
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnarch.train.config as C
from cnnarch.cli import main
from cnnarch.data import TensorLoader
from cnnarch.inference import weights_transform
from cnnarch.models import create_model
from cnnarch.models.weights import SHIPPED_DIR
from cnnarch.train.data import load_split, locate
from cnnarch.train.device import choose_precision
from cnnarch.train.evaluate import predict_probs

# A Zen 4 EPYC's flags (abridged) and those of an AVX2-only EPYC
ZEN4 = "flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni\n"
AVX2 = "flags\t\t: fpu sse2 avx avx2 fma\n"
SPR = "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"  # Sapphire Rapids


@contextmanager
def convolutions():
    """``(training, output dtype, input channels-last)`` of every ``nn.Conv2d`` call inside."""
    seen = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            x = inputs[0]
            seen.append((module.training, output.dtype, x.is_contiguous(memory_format=torch.channels_last)))

    handle = nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


@pytest.mark.parametrize(("cpuinfo", "fast"), [(ZEN4, True), (SPR, True), (AVX2, False)])
def test_the_probe_reads_the_cpus_bf16_units(monkeypatch, cpuinfo, fast):
    class CpuInfo:
        def __init__(self, path):
            assert str(path) == "/proc/cpuinfo"

        def read_text(self):
            return cpuinfo

    monkeypatch.setattr(C, "Path", CpuInfo)
    assert C.cpu_has_fast_bf16() is fast
    assert choose_precision("auto", "cpu").bf16 is fast
    # training's --amp left unset follows the same probe
    assert C.resolve_config("cifar-fast").validate("cpu").run.amp is fast


def test_every_choice_of_precision(monkeypatch):
    monkeypatch.setattr(C, "cpu_has_fast_bf16", lambda: False)
    assert not choose_precision("auto", "cpu").bf16
    assert "no AMX or AVX512-BF16" in str(choose_precision("auto", "cpu"))
    assert choose_precision("bf16", "cpu").bf16  # asked for: run, with the warning that it is slower
    assert "slower than fp32" in str(choose_precision("bf16", "cpu"))
    assert choose_precision("auto", "cuda").bf16  # a GPU computes bf16 fast
    monkeypatch.setattr(C, "cpu_has_fast_bf16", lambda: True)
    assert choose_precision("auto", "cpu").bf16 and not choose_precision("fp32", "cpu").bf16
    with pytest.raises(ValueError, match="--precision must be one of auto, bf16, fp32"):
        choose_precision("fp16", "cpu")


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    return tmp_path


@pytest.mark.parametrize(
    ("fast", "precision", "bf16"),
    [(True, "auto", True), (False, "auto", False), (True, "fp32", False), (False, "bf16", True)],
)
def test_predict_computes_in_the_precision_chosen(photos, capsys, monkeypatch, fast, precision, bf16):
    monkeypatch.setattr(C, "cpu_has_fast_bf16", lambda: fast)
    with convolutions() as seen:
        args = ["predict", "resnet20", str(photos), "--weights", "cifar10", "--precision", precision]
        assert main([*args, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)) == 3 * 5
    (line,) = [ln for ln in err.splitlines() if ln.startswith("precision: ")]  # one line
    assert line.startswith(f"precision: {'bf16 autocast, channels-last' if bf16 else 'fp32'} (")
    assert ("(auto: " in line) is (precision == "auto")
    assert len(seen) == 19  # resnet20: 19 convolutions (1 + 3 stages x 3 blocks x 2), one batch
    dtype = torch.bfloat16 if bf16 else torch.float32
    assert {(d, last) for _, d, last in seen} == {(dtype, bf16)}


def test_eval_states_its_precision_and_fp32_is_fp32(cifar_jpeg_root, capsys, monkeypatch):
    monkeypatch.setattr(C, "cpu_has_fast_bf16", lambda: True)
    args = ["eval", "resnet20", "--weights", "cifar10", "--data", str(cifar_jpeg_root), "--limit-val", "20"]
    rows = {}
    for precision in ("fp32", "auto"):
        with convolutions() as seen:
            assert main([*args, "--precision", precision, "--format", "json"]) == 0
        out, err = capsys.readouterr()
        (rows[precision],) = json.loads(out)
        dtype = torch.float32 if precision == "fp32" else torch.bfloat16
        assert {d for _, d, _ in seen} == {dtype}
        assert f"precision: {'fp32' if precision == 'fp32' else 'bf16 autocast'}" in err
    assert rows["fp32"]["precision"] == "fp32" and rows["auto"]["precision"] == "bf16"


SHIPPED = sorted(SHIPPED_DIR.glob("*-cifar10.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_bf16_agrees_with_an_fp32_forward_pass(path, cifar_jpeg_root):
    """Trained weights on 128 test images, against the network run plainly in fp32 on the images
    normalised by hand. bf16 keeps 8 significant bits (each rounding errs by up to 2^-9, 0.2 %), so
    probabilities move by a few hundredths at most and only near-ties change their top-1 class; the
    fp32 path is the oracle's computation, equal to rounding."""
    name = path.name.removesuffix("-cifar10.safetensors")
    net = create_model(name, weights="cifar10").eval()
    meta = net.weights_meta
    data = load_split(*locate(str(cifar_jpeg_root)), "test", 128)
    x = (data.images.float() / 255 - torch.tensor(meta.mean).view(1, 3, 1, 1)) / torch.tensor(meta.std).view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        oracle = net(x).softmax(1)
    probs = {}
    for precision in ("fp32", "bf16"):
        batches = TensorLoader(data, 64, shuffle=False)
        probs[precision], labels = predict_probs(
            net,
            batches,
            weights_transform(meta),
            "cpu",
            desc=None,
            precision=choose_precision(precision, "cpu"),
        )
        assert torch.equal(labels, data.labels)
    assert torch.allclose(probs["fp32"], oracle, atol=1e-5)
    bf16 = probs["bf16"]
    assert (bf16 - oracle).abs().max() < 0.05 and (bf16 - oracle).abs().mean() < 0.005
    flipped = bf16.argmax(1) != oracle.argmax(1)
    assert flipped.sum() <= 128 // 50  # top-1 agrees on at least 98 % of the images
    top2 = oracle[flipped].topk(2, dim=1).values
    assert bool(((top2[:, 0] - top2[:, 1]) < 0.1).all())  # ... and differs only where fp32 nearly tied


@pytest.mark.slow
@pytest.mark.parametrize("fast", [True, False])
def test_trainings_evaluation_and_final_tta_run_at_the_cpus_fast_path(
    tmp_path, monkeypatch, colour_tree, fast
):
    """The cifar-fast recipe leaves the precision to the device: its test evaluation and final TTA run
    in bf16 with channels-last inputs (the shifted TTA copies included) where the CPU has bf16 units,
    and in fp32 on an AVX2-only CPU."""
    from cnnarch.train import Trainer, build_data, resolve_config

    monkeypatch.setattr(C, "cpu_has_fast_bf16", lambda: fast)
    monkeypatch.setenv("CNNARCH_CACHE", str(tmp_path / "cache"))
    colour_tree(tmp_path / "data", size=16, n_train=8, n_test=4)
    cfg = resolve_config(
        "cifar-fast",
        data=str(tmp_path / "data"),
        batch_size=24,
        epochs=1,
        threads=1,
        output=str(tmp_path / "run"),
    )
    assert cfg.speedrun.tta == "flip-translate"
    with convolutions() as seen:
        results = Trainer(cfg, build_data(cfg, progress=False), log=lambda s: None).fit()
    assert results["tta_top1"] >= 0
    evaluation = {(d, last) for training, d, last in seen if not training}
    if fast:
        assert evaluation == {(torch.bfloat16, True)}
    else:
        assert {d for d, _ in evaluation} == {torch.float32}
