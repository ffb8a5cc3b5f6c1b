"""Fast convolution and max pooling in pure NumPy: strided views and one BLAS matrix product.

Same signatures as the naive layers in ``cnnarch.scratch.layers``. The assignment's fast layers are
Cython; these need nothing compiled.

How the convolution works: the padded input is moved to channels-last layout (N, H, W, C), so each
receptive field is a block of contiguous C-vectors; ``as_strided`` exposes all of them as a
(N, H', W', HH, WW, C) view without copying, one copy turns it into the im2col matrix
(N * H' * W', HH * WW * C), and a single matrix product with the filters gives the output. The
backward pass multiplies by the same matrix (kept in the cache) for ``dw``; for ``dx`` it multiplies
``dout`` by the filters' slice at each of the HH * WW kernel offsets and adds the result into the
shifted positions, so gradients add up where receptive fields overlap.

Caches: ``conv_forward_fast`` returns ``(x, w, b, conv_param, cols)``, whose first four entries are the
naive cache, so ``conv_backward_naive`` accepts it; ``conv_backward_fast`` also accepts a naive cache
and rebuilds the matrix. ``max_pool_forward_fast`` returns ``(x, pool_param, argmax)``, likewise.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided


def _check_tiles(size, kernel, stride, pad, what):
    """Output size ``1 + (size + 2 * pad - kernel) // stride``, as torch computes it (rows and columns
    that no window reaches at the end are skipped)."""
    span = size + 2 * pad - kernel
    if span < 0:
        raise ValueError(
            f"{what}: input size {size} with padding {pad} is smaller than the kernel {kernel}; "
            "use a larger input or more padding"
        )
    return 1 + span // stride


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


def _weight_grads(dout_mat, cache):
    x, w, b, conv_param = cache[:4]
    F, C, HH, WW = w.shape
    s, pad = conv_param["stride"], conv_param["pad"]
    Ho, Wo = (
        _check_tiles(x.shape[2], HH, s, pad, "conv height"),
        _check_tiles(x.shape[3], WW, s, pad, "conv width"),
    )
    cols = cache[4] if len(cache) > 4 else _im2col(x, HH, WW, s, pad, Ho, Wo)
    db = dout_mat.sum(axis=0)
    dw = np.ascontiguousarray((dout_mat.T @ cols).reshape(F, HH, WW, C).transpose(0, 3, 1, 2))
    return dw, db


def conv_backward_weights(dout, cache):
    """Only (dw, db) of ``conv_backward_fast``: for a first layer, whose input needs no gradient."""
    return _weight_grads(dout.transpose(0, 2, 3, 1).reshape(-1, dout.shape[1]), cache)


def conv_backward_fast(dout, cache):
    """Backward of ``conv_forward_fast`` (or of ``conv_forward_naive``): returns dx, dw, db."""
    x, w, b, conv_param = cache[:4]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    s, pad = conv_param["stride"], conv_param["pad"]
    _, _, Ho, Wo = dout.shape
    dout_mat = dout.transpose(0, 2, 3, 1).reshape(-1, F)
    dw, db = _weight_grads(dout_mat, cache)
    # dx: one (N*H'*W', F) @ (F, C) product per kernel offset, added into the receptive fields'
    # positions; contiguous blocks instead of one big strided col2im
    dxp = np.zeros((N, H + 2 * pad, W + 2 * pad, C), dtype=np.result_type(dout, w))
    for i in range(HH):
        for j in range(WW):
            block = (dout_mat @ w[:, :, i, j]).reshape(N, Ho, Wo, C)
            dxp[:, i : i + s * (Ho - 1) + 1 : s, j : j + s * (Wo - 1) + 1 : s, :] += block
    dx = np.ascontiguousarray(dxp[:, pad : pad + H, pad : pad + W, :].transpose(0, 3, 1, 2))
    return dx, dw, db


def _pool_argmax(x, ph, pw, s, Ho, Wo):
    """Each window's maximum and the index (row-major within the window) of its first maximum, both
    (N, C, Ho, Wo): one elementwise pass per kernel offset, over all windows at once."""
    out = x[:, :, : s * (Ho - 1) + 1 : s, : s * (Wo - 1) + 1 : s].copy()
    arg = np.zeros(out.shape, dtype=np.intp)
    for i in range(ph):
        for j in range(pw):
            if i == j == 0:
                continue
            shifted = x[:, :, i : i + s * (Ho - 1) + 1 : s, j : j + s * (Wo - 1) + 1 : s]
            better = shifted > out  # strictly: ties keep the earlier offset, as the naive loop does
            np.copyto(out, shifted, where=better)
            np.copyto(arg, i * pw + j, where=better)
    return out, arg


def max_pool_forward_fast(x, pool_param):
    """Max pooling; inputs, output and shape rules as ``max_pool_forward_naive``.

    Returns (out, cache): cache (x, pool_param, argmax) with argmax (N, C, H', W').
    """
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    Ho = _check_tiles(x.shape[2], ph, s, 0, "max pool height")
    Wo = _check_tiles(x.shape[3], pw, s, 0, "max pool width")
    out, arg = _pool_argmax(x, ph, pw, s, Ho, Wo)
    return out, (x, pool_param, arg)


def max_pool_backward_fast(dout, cache):
    """Backward of ``max_pool_forward_fast`` (or of the naive one): the gradient goes to the first
    maximum of each window, and adds where overlapping windows share it."""
    x, pool_param = cache[:2]
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    _, _, Ho, Wo = dout.shape
    arg = cache[2] if len(cache) > 2 else _pool_argmax(x, ph, pw, s, Ho, Wo)[1]
    dx = np.zeros_like(x, dtype=dout.dtype)
    for i in range(ph):
        for j in range(pw):
            dx[:, :, i : i + s * (Ho - 1) + 1 : s, j : j + s * (Wo - 1) + 1 : s] += dout * (arg == i * pw + j)
    return dx


# The assignment's names for its Cython and reshape variants: here one implementation serves them all,
# with interchangeable caches and no requirement that the stride tile the input.
conv_forward_im2col = conv_forward_strides = conv_forward_fast
conv_backward_im2col = conv_backward_strides = conv_backward_fast
max_pool_forward_im2col = max_pool_forward_reshape = max_pool_forward_fast
max_pool_backward_im2col = max_pool_backward_reshape = max_pool_backward_fast
