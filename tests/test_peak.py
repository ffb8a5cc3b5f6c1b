"""benchmarks/peak.py: its FLOP counts against arithmetic written out here, and a --quick run end to end."""

import importlib.util
import platform
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "peak.py"


@pytest.fixture(scope="module")
def peak():
    spec = importlib.util.spec_from_file_location("benchmark_peak", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("input_grad", [False, True])
def test_step_flops_of_one_convolution_match_the_arithmetic(peak, input_grad):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 8, 8, requires_grad=input_grad)
    # forward: 2 FLOPs per multiply-add, for each of N * C_out * H_out * W_out outputs, C_in * 3 * 3 terms
    forward = 2 * 2 * 8 * (8 * 8) * (3 * 3 * 3)
    # backward: the weight gradient costs one forward, the input gradient (only when needed) another
    assert peak.step_flops(conv, x) == forward * (3 if input_grad else 2)


def test_step_flops_with_stride_and_no_padding(peak):
    conv = nn.Conv2d(4, 6, 3, stride=2, bias=False)
    x = torch.randn(1, 4, 9, 9)
    # output 4x4: (9 - 3) // 2 + 1
    assert peak.step_flops(conv, x) == 2 * (2 * 1 * 6 * (4 * 4) * (4 * 3 * 3))


def test_conv_table_counts_cifar_fast_layers_and_their_gradients(peak):
    rows = {row[0]: row for row in peak.conv_table("cifar_fast", batch=2, amp=False, rounds=1)}
    assert "whiten" not in rows  # frozen: no gradient to time
    name, shape, out_c, flops, needs_dx, *times = rows["layer1.conv1"]
    assert shape == (24, 31, 31) and out_c == 64
    assert flops == 2 * 2 * 64 * (31 * 31) * (24 * 3 * 3)
    assert not needs_dx  # its input comes from the frozen whitening layer
    assert rows["layer2.conv2"][3] == 2 * 2 * 256 * (7 * 7) * (256 * 3 * 3)
    assert rows["layer2.conv2"][4]
    assert all(t > 0 for t in times)


@pytest.mark.parametrize(
    ("c", "k", "size", "kernel", "padding"),
    [
        (3, 8, (9, 7), 3, 1),
        (5, 4, (6, 6), 1, 0),
        (4, 6, (8, 5), 5, 2),
        (2, 3, (7, 7), 3, 0),
        (3, 2, (5, 6), 2, 1),
    ],
)
def test_im2col_weight_grad_matches_autograd(peak, c, k, size, kernel, padding):
    torch.manual_seed(0)
    x = torch.randn(3, c, *size, dtype=torch.float64)
    w = torch.randn(k, c, kernel, kernel, dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.conv2d(x, w, padding=padding)
    g = torch.randn_like(out)
    (expected,) = torch.autograd.grad(out, w, g)
    got = peak.im2col_weight_grad(g, x, (kernel, kernel), (padding, padding))
    assert got.shape == w.shape
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_matmul_weight_grads_give_cifar_fast_the_gradients_of_autograd(peak):
    torch.manual_seed(0)
    ref = peak.build("cifar_fast")
    ours = peak.build("cifar_fast")
    ours.load_state_dict(ref.state_dict())
    peak.matmul_weight_grads(ours)
    # the frozen whitening layer keeps torch's convolution; the six trainable 3x3 ones are replaced
    replaced = [n for n, m in ours.named_modules() if "forward" in vars(m)]
    assert replaced == [f"layer{i}.conv{j}" for i in (1, 2, 3) for j in (1, 2)]
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    for model in (ref, ours):
        model(x).square().sum().backward()
    for (name, a), b in zip(ref.named_parameters(), ours.parameters(), strict=True):
        if a.requires_grad:
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_matmul_weight_grads_under_bf16_autocast_compute_in_bf16(peak):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 16, 3, padding=1, bias=False)
    x = torch.randn(4, 8, 6, 6, requires_grad=True)
    with torch.autocast("cpu", torch.bfloat16):
        expected_out = conv(x)
    (expected_dx, expected_dw) = torch.autograd.grad(expected_out.float().sum(), (x, conv.weight))
    peak.matmul_weight_grads(conv)
    with torch.autocast("cpu", torch.bfloat16):
        out = conv(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, expected_out, rtol=0, atol=0)  # the same oneDNN forward
    dx, dw = torch.autograd.grad(out.float().sum(), (x, conv.weight))
    assert dw.dtype == torch.float32 and dx.dtype == torch.float32
    torch.testing.assert_close(dx, expected_dx, rtol=0, atol=0)  # the same oneDNN input gradient
    torch.testing.assert_close(dw, expected_dw, rtol=2e-2, atol=1e-2)  # bf16 sums in another order


def test_matmul_weight_grads_leave_convolutions_it_cannot_compute(peak):
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=2, bias=False),
        torch.nn.Conv2d(4, 4, 3, padding=1),  # a bias
        torch.nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False),
        torch.nn.Conv2d(4, 4, 3, padding="same", bias=False),
        torch.nn.Conv2d(4, 4, 3, padding=1, bias=False),
    )
    peak.matmul_weight_grads(model)
    assert ["forward" in vars(m) for m in model] == [False, False, False, False, True]


@pytest.mark.slow
def test_quick_run_measures_peak_step_and_breakdown(peak, capsys):
    threads = torch.get_num_threads()
    try:
        assert peak.main(["--quick", "--no-keep-memory"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "peak of one core, bf16:" in out and "peak of one core, fp32:" in out
    assert "| bf16, channels-last | " in out and "| fp32, channels-last | " in out
    assert "| convolution backward (input + weight gradients) | " in out
    assert "| layer2.conv2 | 256x7x7 | 256 |" in out


def test_bad_arguments_are_refused(peak, capsys):
    with pytest.raises(SystemExit):
        peak.main(["--batch", "0"])
    assert "must be positive" in capsys.readouterr().err


needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")


@needs_gcc
@pytest.mark.parametrize(
    ("march", "kernels"),
    [
        ("sapphirerapids", ["amx_bf16", "avx512_bf16", "avx512_fp32", "avx2_fp32", "clock"]),
        ("cooperlake", ["avx512_bf16", "avx512_fp32", "avx2_fp32", "clock"]),
        ("x86-64-v3", ["avx2_fp32", "clock"]),
    ],
)
def test_kernels_built_follow_the_instruction_sets(peak, tmp_path, march, kernels):
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("x86 kernels")
    binary = tmp_path / "peak"
    subprocess.run(["gcc", "-O2", f"-march={march}", "-o", str(binary), str(peak.KERNELS_C)], check=True)
    assert peak.kernel_names(binary) == kernels  # "list" runs no vector instruction


@needs_gcc
def test_fp32_kernel_stays_under_two_fma_units_per_cycle(peak, tmp_path):
    binary = peak.build_kernels(tmp_path)
    if binary is None or "avx2_fp32" not in peak.kernel_names(binary):
        pytest.skip("no AVX2 FMA on this CPU")
    # no x86 core issues more than two 256-bit FMAs a cycle: 2 units x 8 lanes x 2 FLOPs = 32 FLOP/cycle,
    # so a kernel that miscounted its FLOPs (or lost its work to the optimiser) would show more
    flops, _, cpu = peak.run_kernel(binary, "avx2_fp32", 0.05)[0]
    adds, _, clock_cpu = peak.run_kernel(binary, "clock", 0.05)[0]
    per_cycle = (flops / cpu) / (adds / clock_cpu)
    assert 4 < per_cycle <= 32 * 1.15


@needs_gcc
def test_a_failing_kernel_is_reported_not_parsed(peak, tmp_path):
    binary = peak.build_kernels(tmp_path)
    with pytest.raises(RuntimeError, match="no_such_kernel failed with exit code 2"):
        peak.run_kernel(binary, "no_such_kernel", 0.01)


def test_without_a_compiler_the_peak_falls_back_to_torch_mm(peak, monkeypatch, capsys):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    args = peak.argparse.Namespace(quick=True, burst=0.01)
    peaks = peak.measure_peaks(args)
    out = capsys.readouterr().out
    assert "did not run" in out and "torch.mm" in out
    assert peaks[True][1] == "torch.mm bf16" and peaks[False][1] == "torch.mm fp32"
    assert peaks[True][0] > 0 and peaks[False][0] > 0
