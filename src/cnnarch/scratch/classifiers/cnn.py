"""The three-layer convolutional network of CS231n assignment 2:
conv - relu - 2x2 max pool - affine - relu - affine - softmax.

The convolution keeps the spatial size (stride 1, pad (filter_size - 1) // 2) and the pool halves it.
Uses the fast convolution and pooling of ``cnnarch.scratch.fast_layers``.
"""

import numpy as np

from cnnarch.scratch.layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from cnnarch.scratch.layers import affine_backward, affine_forward, softmax_loss


class ThreeLayerConvNet:
    """Parameters W1 (num_filters, C, filter_size, filter_size), b1, W2 (num_filters * H/2 * W/2,
    hidden_dim), b2, W3 (hidden_dim, num_classes), b3; weights from N(0, weight_scale^2), biases zero.

    ``loss(X, y=None)`` returns scores (N, C) without labels, else ``(loss, grads)`` with
    ``0.5 * reg * sum(W ** 2)`` added for W1, W2, W3.
    """

    def __init__(
        self,
        input_dim=(3, 32, 32),
        num_filters=32,
        filter_size=7,
        hidden_dim=100,
        num_classes=10,
        weight_scale=1e-3,
        reg=0.0,
        dtype=np.float32,
    ):
        C, H, W = input_dim
        if filter_size % 2 == 0:
            raise ValueError(f"filter_size must be odd to keep the spatial size, got {filter_size}")
        if H % 2 or W % 2:
            raise ValueError(f"input height and width must be even for the 2x2 pool, got {H}x{W}")
        self.reg = reg
        self.dtype = dtype
        self.filter_size = filter_size
        self.params = {}
        # >>> exercise
        F, HH = num_filters, filter_size
        self.params["W1"] = weight_scale * np.random.randn(F, C, HH, HH)
        self.params["b1"] = np.zeros(F)
        # the pool halves the height and the width of the convolution's output (of the input's size)
        self.params["W2"] = weight_scale * np.random.randn(F * (H // 2) * (W // 2), hidden_dim)
        self.params["b2"] = np.zeros(hidden_dim)
        self.params["W3"] = weight_scale * np.random.randn(hidden_dim, num_classes)
        self.params["b3"] = np.zeros(num_classes)
        # <<< exercise
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X, y=None):
        """Scores (N, C) if ``y`` is None, else ``(loss, grads)``."""
        X = X.astype(self.dtype)
        p = self.params
        conv_param = {"stride": 1, "pad": (self.filter_size - 1) // 2}
        pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        h1, cache1 = conv_relu_pool_forward(X, p["W1"], p["b1"], conv_param, pool_param)
        h2, cache2 = affine_relu_forward(h1, p["W2"], p["b2"])
        scores, cache3 = affine_forward(h2, p["W3"], p["b3"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dh2, grads["W3"], grads["b3"] = affine_backward(dscores, cache3)
        dh1, grads["W2"], grads["b2"] = affine_relu_backward(dh2, cache2)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dh1, cache1)
        for k in ("W1", "W2", "W3"):
            loss += 0.5 * self.reg * np.sum(p[k] * p[k])
            grads[k] += self.reg * p[k]
        return loss, grads
