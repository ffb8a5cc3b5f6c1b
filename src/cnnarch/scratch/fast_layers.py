"""Fast convolution and max pooling in pure NumPy: strided views and one BLAS matrix product.

Same signatures as the naive layers in ``cnnarch.scratch.layers``. The assignment's fast layers are
Cython; these need nothing compiled.

How the convolution works: the padded input is moved to channels-last layout (N, H, W, C), so each
receptive field is a block of contiguous C-vectors; ``as_strided`` exposes all of them as a
(N, H', W', HH, WW, C) view without copying, one copy turns it into the im2col matrix
(N * H' * W', HH * WW * C), and a single matrix product with the filters gives the output. The
backward pass multiplies by the same matrix (kept in the cache) for ``dw`` and scatters ``dcols`` back
with HH * WW strided additions, which add up where receptive fields overlap.

Caches: ``conv_forward_fast`` returns ``(x, w, b, conv_param, cols)``, whose first four entries are the
naive cache, so ``conv_backward_naive`` accepts it; ``conv_backward_fast`` also accepts a naive cache
and rebuilds the matrix. ``max_pool_forward_fast`` returns ``(x, pool_param, argmax)``, likewise.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnnarch.scratch.layers import _check_tiles


def _windows_nhwc(xp_nhwc, kh, kw, stride, Ho, Wo):
    """(N, Hp, Wp, C) -> read-only view (N, Ho, Wo, kh, kw, C) of every receptive field."""
    sN, sH, sW, sC = xp_nhwc.strides
    N, _, _, C = xp_nhwc.shape
    return as_strided(
        xp_nhwc,
        shape=(N, Ho, Wo, kh, kw, C),
        strides=(sN, sH * stride, sW * stride, sH, sW, sC),
        writeable=False,
    )


def _im2col(x, HH, WW, stride, pad, Ho, Wo):
    N, C = x.shape[:2]
    xp = np.zeros((N, x.shape[2] + 2 * pad, x.shape[3] + 2 * pad, C), dtype=x.dtype)
    xp[:, pad : pad + x.shape[2], pad : pad + x.shape[3], :] = x.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(_windows_nhwc(xp, HH, WW, stride, Ho, Wo)).reshape(N * Ho * Wo, -1)


def conv_forward_fast(x, w, b, conv_param):
    """Convolution; inputs, output and shape rules as ``conv_forward_naive``.

    Returns (out, cache): out (N, F, H', W') C-contiguous; cache (x, w, b, conv_param, cols).
    """
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    s, pad = conv_param["stride"], conv_param["pad"]
    Ho = _check_tiles(H, HH, s, pad, "conv height")
    Wo = _check_tiles(W, WW, s, pad, "conv width")
    cols = _im2col(x, HH, WW, s, pad, Ho, Wo)
    w_mat = w.transpose(0, 2, 3, 1).reshape(F, -1)
    out = cols @ w_mat.T
    out += b
    out = np.ascontiguousarray(out.reshape(N, Ho, Wo, F).transpose(0, 3, 1, 2))
    return out, (x, w, b, conv_param, cols)


def conv_backward_fast(dout, cache):
    """Backward of ``conv_forward_fast`` (or of ``conv_forward_naive``): returns dx, dw, db."""
    x, w, b, conv_param = cache[:4]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    s, pad = conv_param["stride"], conv_param["pad"]
    _, _, Ho, Wo = dout.shape
    cols = cache[4] if len(cache) > 4 else _im2col(x, HH, WW, s, pad, Ho, Wo)

    dout_mat = dout.transpose(0, 2, 3, 1).reshape(-1, F)
    db = dout_mat.sum(axis=0)
    dw = (dout_mat.T @ cols).reshape(F, HH, WW, C).transpose(0, 3, 1, 2)
    w_mat = w.transpose(0, 2, 3, 1).reshape(F, -1)
    dcols = (dout_mat @ w_mat).reshape(N, Ho, Wo, HH, WW, C)

    dxp = np.zeros((N, H + 2 * pad, W + 2 * pad, C), dtype=dcols.dtype)
    for i in range(HH):
        for j in range(WW):
            dxp[:, i : i + s * (Ho - 1) + 1 : s, j : j + s * (Wo - 1) + 1 : s, :] += dcols[:, :, :, i, j, :]
    dx = np.ascontiguousarray(dxp[:, pad : pad + H, pad : pad + W, :].transpose(0, 3, 1, 2))
    return dx, np.ascontiguousarray(dw), db


def _pool_argmax(x, ph, pw, s, Ho, Wo):
    """Index (row-major within the window) of each window's first maximum, shape (N, C, Ho, Wo)."""
    sN, sC, sH, sW = x.strides
    win = as_strided(
        x,
        shape=(*x.shape[:2], Ho, Wo, ph, pw),
        strides=(sN, sC, sH * s, sW * s, sH, sW),
        writeable=False,
    )
    return win.reshape(*x.shape[:2], Ho, Wo, ph * pw).argmax(axis=-1), win


def max_pool_forward_fast(x, pool_param):
    """Max pooling; inputs, output and shape rules as ``max_pool_forward_naive``.

    Returns (out, cache): cache (x, pool_param, argmax) with argmax (N, C, H', W').
    """
    x = np.ascontiguousarray(x)
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    Ho = _check_tiles(x.shape[2], ph, s, 0, "max pool height")
    Wo = _check_tiles(x.shape[3], pw, s, 0, "max pool width")
    arg, win = _pool_argmax(x, ph, pw, s, Ho, Wo)
    out = win.max(axis=(-2, -1))
    return out, (x, pool_param, arg)


def max_pool_backward_fast(dout, cache):
    """Backward of ``max_pool_forward_fast`` (or of the naive one): the gradient goes to the first
    maximum of each window, and adds where overlapping windows share it."""
    x, pool_param = cache[:2]
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    _, _, Ho, Wo = dout.shape
    arg = cache[2] if len(cache) > 2 else _pool_argmax(np.ascontiguousarray(x), ph, pw, s, Ho, Wo)[0]
    dx = np.zeros_like(x, dtype=dout.dtype)
    for i in range(ph):
        for j in range(pw):
            dx[:, :, i : i + s * (Ho - 1) + 1 : s, j : j + s * (Wo - 1) + 1 : s] += dout * (arg == i * pw + j)
    return dx
