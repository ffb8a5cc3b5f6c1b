"""Layers of CS231n assignment 2 (2019 edition): each ``foo_forward`` returns ``(out, cache)`` and the
``foo_backward`` right below it takes ``(dout, cache)`` and returns the gradients of its inputs.

These are the reference implementations: written for clarity, with explicit loops where the assignment
asks for "naive" versions. ``cnnarch.scratch.fast_layers`` holds the vectorized convolution and pooling,
tested against the loops here.

Deliberate differences from the assignment's starter code:
- ``dropout_forward`` with a ``seed`` draws its mask from a private ``np.random.RandomState(seed)``
  instead of reseeding NumPy's global generator, so a seeded dropout layer does not change the
  minibatches the ``Solver`` samples afterwards. The mask is still the same for the same seed.
- Output sizes are ``1 + (H + 2 * pad - HH) // stride`` as in torch, also when the stride does not
  tile the padded input exactly (the starter code's fast layers assert that it does); an input smaller
  than the kernel raises ``ValueError``.
- Backward functions never modify ``dout`` in place.
"""

import numpy as np

from cnnarch.scratch.fast_layers import _check_tiles


def affine_forward(x, w, b):
    """Fully connected layer ``out = x.reshape(N, D) @ w + b``.

    Inputs:
    - x: (N, d_1, ..., d_k), flattened to (N, D) with D = d_1 * ... * d_k
    - w: (D, M)
    - b: (M,)

    Returns (out, cache): out (N, M); cache (x, w, b).
    """
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    """Backward of ``affine_forward``: dout (N, M) -> dx (N, d_1, ..., d_k), dw (D, M), db (M,)."""
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """Rectified linear unit ``max(0, x)``, any shape. Returns (out, cache = x)."""
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """Backward of ``relu_forward``: the gradient passes where the input was positive."""
    x = cache
    return dout * (x > 0)


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalization over the batch axis (Ioffe and Szegedy, 2015).

    In 'train' mode the minibatch mean and (biased) variance normalize the input and update the running
    averages ``running = momentum * running + (1 - momentum) * batch``; in 'test' mode the running
    averages normalize it.

    Inputs:
    - x: (N, D)
    - gamma, beta: (D,) scale and shift
    - bn_param: dict with 'mode' ('train' or 'test'), optional 'eps' (1e-5), 'momentum' (0.9),
      'running_mean' and 'running_var' (D,), created as zeros on the first call and stored back.

    Returns (out, cache): out (N, D).
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    if mode == "train":
        mu = x.mean(axis=0)
        xc = x - mu
        var = (xc**2).mean(axis=0)
        std = np.sqrt(var + eps)
        x_hat = xc / std
        out = gamma * x_hat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
        cache = (x_hat, xc, std, gamma)
    elif mode == "test":
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        cache = None
    else:
        raise ValueError(f'Invalid forward batchnorm mode "{mode}"; use "train" or "test"')

    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    """Backward of ``batchnorm_forward`` (train mode), step by step along its computational graph.

    Returns dx (N, D), dgamma (D,), dbeta (D,).
    """
    x_hat, xc, std, gamma = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    # x_hat = xc * inv_std: two paths lead back to xc.
    inv_std = 1.0 / std
    dxc = dx_hat * inv_std
    dinv_std = (dx_hat * xc).sum(axis=0)
    dstd = -dinv_std / std**2
    dvar = dstd * 0.5 / std
    # var = mean(xc ** 2)
    dxc = dxc + 2.0 * xc * dvar / N
    # xc = x - mean(x)
    dmu = -dxc.sum(axis=0)
    dx = dxc + dmu / N
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """Backward of ``batchnorm_forward`` in one simplified expression:
    ``dx = (gamma / std) * (dout - mean(dout) - x_hat * mean(dout * x_hat))``.
    """
    x_hat, xc, std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = (gamma / std) * (dout - dout.mean(axis=0) - x_hat * (dout * x_hat).mean(axis=0))
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalization (Ba, Kiros and Hinton, 2016): every sample normalized over its D features;
    the same in train and test.

    Inputs: x (N, D); gamma, beta (D,); ln_param dict with optional 'eps' (1e-5).
    Returns (out, cache): out (N, D).
    """
    eps = ln_param.get("eps", 1e-5)
    mu = x.mean(axis=1, keepdims=True)
    xc = x - mu
    std = np.sqrt((xc**2).mean(axis=1, keepdims=True) + eps)
    x_hat = xc / std
    return gamma * x_hat + beta, (x_hat, std, gamma)


def _normalize_backward(dx_hat, x_hat, std, axis):
    """Gradient through ``x_hat = (x - mean) / std`` with statistics taken along ``axis``."""
    return (
        dx_hat
        - dx_hat.mean(axis=axis, keepdims=True)
        - x_hat * (dx_hat * x_hat).mean(axis=axis, keepdims=True)
    ) / std


def layernorm_backward(dout, cache):
    """Backward of ``layernorm_forward``: returns dx (N, D), dgamma (D,), dbeta (D,)."""
    x_hat, std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = _normalize_backward(dout * gamma, x_hat, std, axis=1)
    return dx, dgamma, dbeta


def dropout_forward(x, dropout_param):
    """Inverted dropout (Srivastava et al., 2014) as in the 2019 assignment.

    Inputs:
    - x: any shape
    - dropout_param: dict with 'p' (the probability of KEEPING each unit), 'mode' ('train' or 'test'),
      optional 'seed' (the same seed gives the same mask; meant for gradient checks).

    In train mode every unit is kept with probability p and the kept ones are divided by p, so the
    expected output equals the input; test mode is the identity.
    Returns (out, cache = (dropout_param, mask)).
    """
    p, mode = dropout_param["p"], dropout_param["mode"]
    if not 0 < p <= 1:
        raise ValueError(f"dropout p is the probability of keeping a unit and must be in (0, 1], got {p}")
    if mode == "train":
        rng = np.random.RandomState(dropout_param["seed"]) if "seed" in dropout_param else np.random
        mask = (rng.rand(*x.shape) < p) / p
        out = (x * mask).astype(x.dtype, copy=False)
    elif mode == "test":
        mask = None
        out = x
    else:
        raise ValueError(f'Invalid dropout mode "{mode}"; use "train" or "test"')
    return out, (dropout_param, mask)


def dropout_backward(dout, cache):
    """Backward of ``dropout_forward``: the same mask scales the gradient."""
    dropout_param, mask = cache
    if dropout_param["mode"] == "train":
        return (dout * mask).astype(dout.dtype, copy=False)
    return dout


def conv_forward_naive(x, w, b, conv_param):
    """Convolution (cross-correlation, as in every deep learning library) with explicit loops.

    Inputs:
    - x: (N, C, H, W)
    - w: (F, C, HH, WW)
    - b: (F,)
    - conv_param: dict with 'stride' and 'pad' (zeros added on every side of H and W)

    Returns (out, cache): out (N, F, H', W') with H' = 1 + (H + 2 * pad - HH) / stride and
    W' = 1 + (W + 2 * pad - WW) / stride; cache (x, w, b, conv_param).
    """
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    s, pad = conv_param["stride"], conv_param["pad"]
    Ho = _check_tiles(H, HH, s, pad, "conv height")
    Wo = _check_tiles(W, WW, s, pad, "conv width")
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, w))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * s : i * s + HH, j * s : j * s + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    """Backward of ``conv_forward_naive`` with explicit loops: returns dx, dw, db.

    Also accepts the cache of ``conv_forward_fast`` (whose first four entries are the same).
    """
    x, w, b, conv_param = cache[:4]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    s, pad = conv_param["stride"], conv_param["pad"]
    _, _, Ho, Wo = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    g = dout[n, f, i, j]
                    dxp[n, :, i * s : i * s + HH, j * s : j * s + WW] += g * w[f]
                    dw[f] += g * xp[n, :, i * s : i * s + HH, j * s : j * s + WW]
    db = dout.sum(axis=(0, 2, 3))
    dx = dxp[:, :, pad : pad + H, pad : pad + W]
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    """Max pooling with explicit loops.

    Inputs: x (N, C, H, W); pool_param dict with 'pool_height', 'pool_width', 'stride' (no padding).
    Returns (out, cache): out (N, C, H', W') with H' = 1 + (H - pool_height) / stride; cache (x, pool_param).
    """
    N, C, H, W = x.shape
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    Ho = _check_tiles(H, ph, s, 0, "max pool height")
    Wo = _check_tiles(W, pw, s, 0, "max pool width")
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, c, i, j] = x[n, c, i * s : i * s + ph, j * s : j * s + pw].max()
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    """Backward of ``max_pool_forward_naive``: each window's gradient goes to its maximum (the first
    one in row-major order when several elements tie)."""
    x, pool_param = cache[:2]
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, Ho, Wo = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = x[n, c, i * s : i * s + ph, j * s : j * s + pw]
                    a, bb = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * s + a, j * s + bb] += dout[n, c, i, j]
    return dx


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalization for convolutional features: statistics per channel over (N, H, W).

    Inputs: x (N, C, H, W); gamma, beta (C,); bn_param as for ``batchnorm_forward``.
    Returns (out, cache): out (N, C, H, W).

    The same computation as ``batchnorm_forward`` on x viewed as (N * H * W, C), written directly on
    the (N, C, H, W) layout, whose per-channel reductions run several times faster than column sums.
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    C = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(C, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(C, dtype=x.dtype))
    if mode == "train":
        mu = x.mean(axis=(0, 2, 3))
        xc = x - mu[:, None, None]
        var = np.mean(xc * xc, axis=(0, 2, 3))
        std = np.sqrt(var + eps)
        x_hat = xc
        x_hat /= std[:, None, None]
        out = gamma[:, None, None] * x_hat + beta[:, None, None]
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
        cache = (x_hat, std, gamma)
    elif mode == "test":
        scale = gamma / np.sqrt(running_var + eps)
        out = x * scale[:, None, None] + (beta - running_mean * scale)[:, None, None]
        cache = None
    else:
        raise ValueError(f'Invalid forward batchnorm mode "{mode}"; use "train" or "test"')
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def spatial_batchnorm_backward(dout, cache):
    """Backward of ``spatial_batchnorm_forward``: returns dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
    x_hat, std, gamma = cache
    N, C, H, W = dout.shape
    M = N * H * W
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = np.sum(dout * x_hat, axis=(0, 2, 3))
    dx = dout - (dbeta / M)[:, None, None] - x_hat * (dgamma / M)[:, None, None]
    dx *= (gamma / std)[:, None, None]
    return dx, dgamma, dbeta


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Group normalization (Wu and He, 2018): every sample's C channels split into G groups, each
    normalized over its channels and positions; the same in train and test.

    Inputs: x (N, C, H, W); gamma, beta (1, C, 1, 1); G groups dividing C; gn_param dict with optional
    'eps' (1e-5).
    Returns (out, cache): out (N, C, H, W).
    """
    N, C, H, W = x.shape
    if C % G != 0:
        raise ValueError(
            f"group norm: {C} channels cannot be split into G={G} equal groups; pick G dividing C"
        )
    eps = gn_param.get("eps", 1e-5)
    xg = x.reshape(N, G, -1)
    xc = xg - xg.mean(axis=2, keepdims=True)
    std = np.sqrt((xc**2).mean(axis=2, keepdims=True) + eps)
    x_hat = (xc / std).reshape(N, C, H, W)
    return gamma * x_hat + beta, (x_hat, std, gamma, G)


def spatial_groupnorm_backward(dout, cache):
    """Backward of ``spatial_groupnorm_forward``: returns dx (N, C, H, W), dgamma and dbeta (1, C, 1, 1)."""
    x_hat, std, gamma, G = cache
    N, C, H, W = dout.shape
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3), keepdims=True)
    dx_hat = (dout * gamma).reshape(N, G, -1)
    dx = _normalize_backward(dx_hat, x_hat.reshape(N, G, -1), std, axis=2)
    return dx.reshape(N, C, H, W), dgamma, dbeta


def svm_loss(x, y):
    """Multiclass SVM (hinge) loss with margin 1, averaged over the batch.

    Inputs: x (N, C) scores; y (N,) labels in [0, C).
    Returns (loss, dx): scalar loss, dx (N, C).
    """
    N = x.shape[0]
    correct = x[np.arange(N), y][:, None]
    margins = np.maximum(0, x - correct + 1.0)
    margins[np.arange(N), y] = 0
    loss = margins.sum() / N
    positive = (margins > 0).astype(x.dtype)
    positive[np.arange(N), y] = -positive.sum(axis=1)
    return loss, positive / N


def softmax_loss(x, y):
    """Softmax cross-entropy loss, averaged over the batch.

    Inputs: x (N, C) scores; y (N,) labels in [0, C).
    Returns (loss, dx): scalar loss, dx (N, C).
    """
    N = x.shape[0]
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), y].sum() / N
    dx = np.exp(log_probs)
    dx[np.arange(N), y] -= 1
    return loss, dx / N
