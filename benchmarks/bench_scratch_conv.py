"""Speed of the NumPy engine's fast convolution, measured side by side with its references.

1. conv_forward_fast + conv_backward_fast against torch.nn.functional.conv2d forward + backward on the
   CPU: same input, dtype and thread count, same process, runs interleaved, medians reported.
   x (64, 64, 32, 32), w (64, 64, 3, 3), stride 1, pad 1. Target: within 3x of torch.
2. The fast layers against the naive loops on the assignment's benchmark: x (100, 3, 31, 31),
   w (25, 3, 3, 3), stride 2, pad 1. Target: at least 100x, forward and backward.

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_scratch_conv.py [--threads 1] [--repeats 7]
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from cnnarch.scratch.fast_layers import conv_backward_fast, conv_forward_fast
from cnnarch.scratch.layers import conv_backward_naive, conv_forward_naive


def scaled_error(a, b):
    """Largest difference relative to the largest magnitude (elementwise relative error is meaningless
    for float32 entries near zero)."""
    return float(np.abs(a - b).max() / np.abs(b).max())


def timed(fn):
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def vs_torch(dtype, repeats):
    rng = np.random.RandomState(0)
    x = rng.randn(64, 64, 32, 32).astype(dtype)
    w = (rng.randn(64, 64, 3, 3) * 0.05).astype(dtype)
    b = rng.randn(64).astype(dtype)
    dout = rng.randn(64, 64, 32, 32).astype(dtype)
    cp = {"stride": 1, "pad": 1}

    def ours():
        out, cache = conv_forward_fast(x, w, b, cp)
        return out, conv_backward_fast(dout, cache)

    def theirs():
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        out = F.conv2d(tx, tw, tb, stride=1, padding=1)
        out.backward(torch.from_numpy(dout))
        return out.detach().numpy(), (tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy())

    (o1, g1), (o2, g2) = ours(), theirs()  # warm-up, and the two must agree
    tol = 1e-4 if dtype == np.float32 else 1e-12
    assert all(scaled_error(a, c) < tol for a, c in zip((o1, *g1), (o2, *g2), strict=True))
    t_ours, t_torch = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine load
        t_ours.append(timed(ours)[0])
        t_torch.append(timed(theirs)[0])
    mo, mt = statistics.median(t_ours), statistics.median(t_torch)
    print(
        f"{np.dtype(dtype).name}: numpy fast fwd+bwd {mo * 1e3:.0f} ms, "
        f"torch conv2d fwd+bwd {mt * 1e3:.0f} ms, ratio {mo / mt:.2f}x (target <= 3x)"
    )
    return mo / mt


def vs_naive(repeats):
    rng = np.random.RandomState(0)
    x, w, b = rng.randn(100, 3, 31, 31), rng.randn(25, 3, 3, 3), rng.randn(25)
    cp = {"stride": 2, "pad": 1}
    t_nf, (out_n, cache_n) = timed(lambda: conv_forward_naive(x, w, b, cp))
    t_nb, grads_n = timed(lambda: conv_backward_naive(np.ones_like(out_n), cache_n))
    dout = rng.randn(*out_n.shape)
    grads_n = conv_backward_naive(dout, cache_n)
    fwd, bwd = [], []
    for _ in range(repeats):
        t, (out_f, cache_f) = timed(lambda: conv_forward_fast(x, w, b, cp))
        fwd.append(t)
        t, grads_f = timed(lambda c=cache_f: conv_backward_fast(dout, c))
        bwd.append(t)
    pairs = zip((out_n, *grads_n), (out_f, *grads_f), strict=True)
    assert all(scaled_error(a, c) < 1e-12 for a, c in pairs)
    mf, mb = statistics.median(fwd), statistics.median(bwd)
    print(
        f"naive vs fast, x (100,3,31,31) w (25,3,3,3) s2 p1, float64: forward naive {t_nf:.2f} s, fast "
        f"{mf * 1e3:.2f} ms, {t_nf / mf:.0f}x; backward naive {t_nb:.2f} s, fast {mb * 1e3:.2f} ms, "
        f"{t_nb / mb:.0f}x (target >= 100x)"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
        f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
        f"numpy {np.__version__}, torch {torch.__version__}"
    )
    for dtype in (np.float32, np.float64):
        vs_torch(dtype, args.repeats)
    vs_naive(args.repeats)


if __name__ == "__main__":
    main()
