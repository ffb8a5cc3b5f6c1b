"""Fully connected networks of CS231n assignment 2.

Both models keep their weights in ``self.params`` (a dict the ``Solver`` updates) and have
``loss(X, y=None)``: without labels it returns class scores (N, C); with labels it returns
``(loss, grads)`` with the softmax loss plus ``0.5 * reg * sum(W ** 2)`` over the weight matrices (not
the biases, gammas or betas) and ``grads`` keyed like ``params``.
"""

import numpy as np

from cnnarch.scratch.layer_utils import affine_relu_backward, affine_relu_forward
from cnnarch.scratch.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
)


class TwoLayerNet:
    """affine - relu - affine - softmax, weights drawn from N(0, weight_scale^2), biases zero.

    Parameters W1 (D, H), b1 (H,), W2 (H, C), b2 (C,).
    """

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10, weight_scale=1e-3, reg=0.0):
        self.reg = reg
        self.params = {}
        # >>> exercise
        self.params["W1"] = weight_scale * np.random.randn(input_dim, hidden_dim)
        self.params["b1"] = np.zeros(hidden_dim)
        self.params["W2"] = weight_scale * np.random.randn(hidden_dim, num_classes)
        self.params["b2"] = np.zeros(num_classes)
        # <<< exercise

    def loss(self, X, y=None):
        """Scores (N, C) if ``y`` is None, else ``(loss, grads)``."""
        p = self.params
        h, cache1 = affine_relu_forward(X, p["W1"], p["b1"])
        scores, cache2 = affine_forward(h, p["W2"], p["b2"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        loss += 0.5 * self.reg * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        grads = {}
        dh, grads["W2"], grads["b2"] = affine_backward(dscores, cache2)
        _, grads["W1"], grads["b1"] = affine_relu_backward(dh, cache1)
        grads["W1"] += self.reg * p["W1"]
        grads["W2"] += self.reg * p["W2"]
        return loss, grads


class FullyConnectedNet:
    """{affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax.

    Inputs:
    - hidden_dims: sizes of the L - 1 hidden layers
    - input_dim, num_classes: input size D and number of classes C
    - dropout_keep_ratio: probability of keeping a unit; 1 means no dropout (``dropout=`` is accepted
      as the 2019 edition's name for it)
    - normalization: None, 'batchnorm' or 'layernorm' after every hidden affine layer
    - reg: L2 strength; weight_scale: std of the Gaussian initial weights
    - dtype: dtype of every parameter and computation (float64 for gradient checks)
    - seed: if given, fixes the dropout masks (for gradient checks)

    Parameters W1..WL, b1..bL, and gamma1..beta(L-1) with normalization (gammas one, betas zero).
    """

    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        dropout_keep_ratio=1,
        normalization=None,
        reg=0.0,
        weight_scale=1e-2,
        dtype=np.float32,
        seed=None,
        *,
        dropout=None,
    ):
        if dropout is not None:  # the 2019 notebooks' name for the same keep probability
            if dropout_keep_ratio != 1:
                raise ValueError("give dropout_keep_ratio or its 2019 name dropout, not both")
            dropout_keep_ratio = dropout
        if normalization not in (None, "batchnorm", "layernorm"):
            raise ValueError(f"normalization must be None, 'batchnorm' or 'layernorm', got {normalization!r}")
        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.params = {}
        # >>> exercise
        dims = [input_dim, *hidden_dims, num_classes]
        for i in range(self.num_layers):
            self.params[f"W{i + 1}"] = weight_scale * np.random.randn(dims[i], dims[i + 1])
            self.params[f"b{i + 1}"] = np.zeros(dims[i + 1])
            if normalization and i < self.num_layers - 1:
                self.params[f"gamma{i + 1}"] = np.ones(dims[i + 1])
                self.params[f"beta{i + 1}"] = np.zeros(dims[i + 1])
        # <<< exercise

        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed
        self.bn_params = []
        if normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]
        if normalization == "layernorm":
            self.bn_params = [{} for _ in range(self.num_layers - 1)]

        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X, y=None):
        """Scores (N, C) if ``y`` is None (test mode), else ``(loss, grads)`` (train mode)."""
        X = X.astype(self.dtype)
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode

        p = self.params
        caches = []
        h = X
        for i in range(1, self.num_layers):
            a, fc_cache = affine_forward(h, p[f"W{i}"], p[f"b{i}"])
            norm_cache = None
            if self.normalization == "batchnorm":
                a, norm_cache = batchnorm_forward(a, p[f"gamma{i}"], p[f"beta{i}"], self.bn_params[i - 1])
            elif self.normalization == "layernorm":
                a, norm_cache = layernorm_forward(a, p[f"gamma{i}"], p[f"beta{i}"], self.bn_params[i - 1])
            h, relu_cache = relu_forward(a)
            drop_cache = None
            if self.use_dropout:
                h, drop_cache = dropout_forward(h, self.dropout_param)
            caches.append((fc_cache, norm_cache, relu_cache, drop_cache))
        L = self.num_layers
        scores, last_cache = affine_forward(h, p[f"W{L}"], p[f"b{L}"])
        if mode == "test":
            return scores

        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dh, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, last_cache)
        for i in range(L - 1, 0, -1):
            fc_cache, norm_cache, relu_cache, drop_cache = caches[i - 1]
            if self.use_dropout:
                dh = dropout_backward(dh, drop_cache)
            da = relu_backward(dh, relu_cache)
            if self.normalization == "batchnorm":
                da, grads[f"gamma{i}"], grads[f"beta{i}"] = batchnorm_backward_alt(da, norm_cache)
            elif self.normalization == "layernorm":
                da, grads[f"gamma{i}"], grads[f"beta{i}"] = layernorm_backward(da, norm_cache)
            dh, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(da, fc_cache)
        for i in range(1, L + 1):
            W = p[f"W{i}"]
            loss += 0.5 * self.reg * np.sum(W * W)
            grads[f"W{i}"] += self.reg * W
        return loss, grads
