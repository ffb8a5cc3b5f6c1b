"""Beyond the assignment: the lecture's architectures as NumPy modules that train through ``Solver``.

A module holds no arrays of its own once it is inside a model: ``Sequential`` gathers every parameter
into one flat dict ``params`` with torch's dotted names ("layer1.0.conv1.weight"), and each module
reads its weights from there, so the ``Solver``'s updates (which replace the dict's entries) are what
the next forward pass uses. Each module has

- ``forward(x, mode)`` ('train' or 'test'), which keeps what its backward pass needs, and
- ``backward(dout, grads)``, which returns the gradient of its input and stores the gradients of its
  parameters into ``grads`` under the same names.

The building blocks, each tested against its PyTorch twin from ``cnnarch.models`` (same weights, same
outputs and gradients, float64):

- ``BasicBlock``: He et al. 2015, two 3x3 convolutions with batch norm and a shortcut, the identity or a
  1x1 strided convolution with batch norm (option B); the sum sends ``dout`` down both paths and the
  input's gradient is the sum of the two.
- ``Inception``: Szegedy et al. 2014, four branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1)
  concatenated along channels; the concatenation's backward hands each branch its slice of ``dout``.
- ``vgg_stack``: Simonyan and Zisserman 2014, 3x3 convolutions (pad 1) and 2x2 max pools from a config
  list such as ``[64, 64, "M", 128, 128, "M"]``.
- ``GlobalAvgPool``: the network-in-network head used by GoogLeNet and ResNet.

Parameters use torch's layouts and names (``Linear.weight`` is (out, in)), so
``model.load_state_dict(torch_module.state_dict())`` copies a PyTorch twin's weights and buffers.

Deliberate differences from PyTorch: batch norm updates ``running_var`` with the biased batch variance
(as the assignment's ``batchnorm_forward`` does; torch uses the unbiased one), and its ``momentum`` is
the assignment's (0.9 keeps 90% of the running average; torch's 0.1 means the same).
"""

import numpy as np

from cnnarch.scratch.fast_layers import (
    conv_backward_fast,
    conv_backward_weights,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from cnnarch.scratch.layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)


class Module:
    """Base class: ``init`` maps local parameter names to initial arrays, ``children`` are named
    submodules; ``bind`` moves the arrays into a model's flat dict."""

    def __init__(self):
        self.init = {}
        self.children = []
        self._store = None
        self._prefix = ""

    def bind(self, store, prefix=""):
        self._store, self._prefix = store, prefix
        for k, v in self.init.items():
            store[prefix + k] = v
        self.init = {}
        for name, child in self.children:
            child.bind(store, f"{prefix}{name}.")

    def p(self, name):
        return self._store[self._prefix + name]

    def put(self, grads, name, g):
        grads[self._prefix + name] = g

    def buffers(self):
        """(name, array) of the non-trained state (batch norm's running averages), with full names."""
        for _, child in self.children:
            yield from child.buffers()

    def modules(self):
        yield self
        for _, child in self.children:
            yield from child.modules()

    def forward(self, x, mode):
        raise NotImplementedError

    def backward(self, dout, grads):
        raise NotImplementedError


class Conv2d(Module):
    """Convolution via ``conv_forward_fast``; weight (out, in, k, k) He-initialized, optional bias."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        fan_in = in_channels * kernel_size * kernel_size
        self.init["weight"] = np.random.randn(out_channels, in_channels, kernel_size, kernel_size) * np.sqrt(
            2.0 / fan_in
        )
        self.has_bias = bias
        if bias:
            self.init["bias"] = np.zeros(out_channels)
        self.conv_param = {"stride": stride, "pad": padding}
        self.input_grad = True  # Model turns it off for a first layer that sees only data

    def forward(self, x, mode):
        w = self.p("weight")
        b = self.p("bias") if self.has_bias else np.zeros(w.shape[0], dtype=w.dtype)
        out, self.cache = conv_forward_fast(x, w, b, self.conv_param)
        return out

    def backward(self, dout, grads):
        if self.input_grad:
            dx, dw, db = conv_backward_fast(dout, self.cache)
        else:
            dx, (dw, db) = None, conv_backward_weights(dout, self.cache)
        self.put(grads, "weight", dw)
        if self.has_bias:
            self.put(grads, "bias", db)
        self.cache = None
        return dx


class BatchNorm(Module):
    """Batch norm over channels of (N, C, H, W) or features of (N, D); weight = gamma, bias = beta."""

    def __init__(self, num_features, eps=1e-5, momentum=0.9):
        super().__init__()
        self.init["weight"] = np.ones(num_features)
        self.init["bias"] = np.zeros(num_features)
        self.bn_param = {"eps": eps, "momentum": momentum}
        self.bn_param["running_mean"] = np.zeros(num_features)
        self.bn_param["running_var"] = np.ones(num_features)

    def forward(self, x, mode):
        self.bn_param["mode"] = mode
        fn = spatial_batchnorm_forward if x.ndim == 4 else batchnorm_forward
        out, self.cache = fn(x, self.p("weight"), self.p("bias"), self.bn_param)
        return out

    def backward(self, dout, grads):
        fn = spatial_batchnorm_backward if dout.ndim == 4 else batchnorm_backward_alt
        dx, dgamma, dbeta = fn(dout, self.cache)
        self.put(grads, "weight", dgamma)
        self.put(grads, "bias", dbeta)
        self.cache = None
        return dx

    def buffers(self):
        yield self._prefix + "running_mean", self.bn_param["running_mean"]
        yield self._prefix + "running_var", self.bn_param["running_var"]


class ReLU(Module):
    def forward(self, x, mode):
        out, self.cache = relu_forward(x)
        return out

    def backward(self, dout, grads):
        return relu_backward(dout, self.cache)


class MaxPool2d(Module):
    """Max pooling; ``padding`` pads with -inf, so padded positions never win."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        k = kernel_size
        self.pool_param = {"pool_height": k, "pool_width": k, "stride": stride or k}
        self.padding = padding

    def forward(self, x, mode):
        p = self.padding
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
        out, self.cache = max_pool_forward_fast(x, self.pool_param)
        return out

    def backward(self, dout, grads):
        dx = max_pool_backward_fast(dout, self.cache)
        p = self.padding
        return dx[:, :, p:-p, p:-p] if p else dx


class Linear(Module):
    """Fully connected layer with torch's layout: weight (out, in), bias (out,); flattens its input."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.init["weight"] = np.random.randn(out_features, in_features) * np.sqrt(1.0 / in_features)
        self.init["bias"] = np.zeros(out_features)

    def forward(self, x, mode):
        out, self.cache = affine_forward(x, self.p("weight").T, self.p("bias"))
        return out

    def backward(self, dout, grads):
        dx, dw, db = affine_backward(dout, self.cache)
        self.put(grads, "weight", dw.T)
        self.put(grads, "bias", db)
        return dx


class Flatten(Module):
    def forward(self, x, mode):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout, grads):
        return dout.reshape(self.shape)


class GlobalAvgPool(Module):
    """(N, C, H, W) -> (N, C): the mean of each feature map."""

    def forward(self, x, mode):
        self.shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout, grads):
        N, C, H, W = self.shape
        return np.broadcast_to((dout / (H * W))[:, :, None, None], self.shape).copy()


class Dropout(Module):
    """Inverted dropout; ``keep`` is the probability of keeping a unit (the assignment's ``p``)."""

    def __init__(self, keep):
        super().__init__()
        self.dropout_param = {"p": keep}

    def forward(self, x, mode):
        self.dropout_param["mode"] = mode
        out, self.cache = dropout_forward(x, self.dropout_param)
        return out

    def backward(self, dout, grads):
        return dropout_backward(dout, self.cache)


class RandomCropFlip(Module):
    """Training-time augmentation as a layer: a random crop of the image padded with ``padding`` zeros
    and a horizontal flip with probability 1/2; the identity in test mode. Its backward pass returns
    None: no gradient flows to the data."""

    def __init__(self, padding=4):
        super().__init__()
        self.padding = padding

    def forward(self, x, mode):
        if mode != "train":
            return x
        N, C, H, W = x.shape
        p = self.padding
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        dy, dx = np.random.randint(0, 2 * p + 1, size=(2, N))
        flip = np.random.rand(N) < 0.5
        rows = dy[:, None] + np.arange(H)
        cols = dx[:, None] + np.arange(W)
        cols = np.where(flip[:, None], cols[:, ::-1], cols)
        n = np.arange(N)[:, None, None, None]
        c = np.arange(C)[None, :, None, None]
        return xp[n, c, rows[:, None, :, None], cols[:, None, None, :]]

    def backward(self, dout, grads):
        return None


class Sequential(Module):
    """Modules applied in order, named "0", "1", ... as in ``torch.nn.Sequential``."""

    def __init__(self, *layers):
        super().__init__()
        self.children = [(str(i), m) for i, m in enumerate(layers)]

    def forward(self, x, mode):
        for _, m in self.children:
            x = m.forward(x, mode)
        return x

    def backward(self, dout, grads):
        for _, m in reversed(self.children):
            dout = m.backward(dout, grads)
        return dout


class ConvBNReLU(Sequential):
    """Convolution without bias, batch norm, ReLU (torchvision's ``BasicConv2d`` in GoogLeNet)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, eps=1e-3):
        super().__init__()
        self.children = [
            ("conv", Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)),
            ("bn", BatchNorm(out_channels, eps=eps)),
            ("relu", ReLU()),
        ]


class BasicBlock(Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``; the shortcut is the identity, or, when
    ``stride != 1`` or the channels change, ``downsample`` = 1x1 strided convolution + batch norm."""

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.children = [
            ("conv1", Conv2d(in_channels, channels, 3, stride, 1, bias=False)),
            ("bn1", BatchNorm(channels)),
            ("relu", ReLU()),
            ("conv2", Conv2d(channels, channels, 3, 1, 1, bias=False)),
            ("bn2", BatchNorm(channels)),
        ]
        self.main = Sequential()
        self.main.children = self.children[:]
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = Sequential(
                Conv2d(in_channels, channels, 1, stride, bias=False), BatchNorm(channels)
            )
            self.children.append(("downsample", self.downsample))
        self.out_relu = ReLU()

    def forward(self, x, mode):
        identity = x if self.downsample is None else self.downsample.forward(x, mode)
        return self.out_relu.forward(self.main.forward(x, mode) + identity, mode)

    def backward(self, dout, grads):
        dsum = self.out_relu.backward(dout, grads)
        # the sum passes dsum unchanged to both paths; x fans out, so its gradients add
        dx = self.main.backward(dsum, grads)
        return dx + (dsum if self.downsample is None else self.downsample.backward(dsum, grads))


class ConvReLU(Sequential):
    """The GoogLeNet paper's convolution: with bias, then ReLU (``cnnarch.models.googlenet.ConvReLU``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.children = [
            ("conv", Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=True)),
            ("relu", ReLU()),
        ]


class Inception(Module):
    """GoogLeNet's module with the names of ``cnnarch.models.googlenet.Inception``: branch1 1x1;
    branch2 1x1 -> 3x3; branch3 1x1 -> ``kernel_5x5`` (5 in the paper; 3 in torchvision's GoogLeNet);
    branch4 3x3/1 max pool -> 1x1. ``conv_block`` builds each convolution: ``ConvReLU`` (the paper) or
    ``ConvBNReLU`` (torchvision's ``BasicConv2d``). Output channels: ch1x1 + ch3x3 + ch5x5 + pool_proj."""

    def __init__(
        self,
        in_channels,
        ch1x1,
        ch3x3red,
        ch3x3,
        ch5x5red,
        ch5x5,
        pool_proj,
        *,
        conv_block=ConvReLU,
        kernel_5x5=5,
    ):
        super().__init__()
        k, conv = kernel_5x5, conv_block
        self.children = [
            ("branch1", conv(in_channels, ch1x1, 1)),
            ("branch2", Sequential(conv(in_channels, ch3x3red, 1), conv(ch3x3red, ch3x3, 3, padding=1))),
            ("branch3", Sequential(conv(in_channels, ch5x5red, 1), conv(ch5x5red, ch5x5, k, padding=k // 2))),
            ("branch4", Sequential(MaxPool2d(3, 1, padding=1), conv(in_channels, pool_proj, 1))),
        ]

    def forward(self, x, mode):
        outs = [branch.forward(x, mode) for _, branch in self.children]
        self.splits = np.cumsum([o.shape[1] for o in outs])[:-1]
        return np.concatenate(outs, axis=1)

    def backward(self, dout, grads):
        # the concatenation's backward: each branch gets its channels of dout; x fans out to all four
        parts = np.split(dout, self.splits, axis=1)
        dx = None
        for (_, branch), d in zip(self.children, parts, strict=True):
            g = branch.backward(np.ascontiguousarray(d), grads)
            dx = g if dx is None else dx + g
        return dx


def vgg_stack(in_channels, config, batch_norm=True):
    """VGG's feature extractor as a list of modules: an int is a 3x3 convolution (pad 1) with that many
    output channels, then batch norm (if ``batch_norm``) and ReLU; "M" is a 2x2 max pool."""
    layers = []
    for v in config:
        if v == "M":
            layers.append(MaxPool2d(2))
            continue
        layers.append(Conv2d(in_channels, v, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(BatchNorm(v))
        layers.append(ReLU())
        in_channels = v
    return layers


class Model:
    """A classifier from modules, with the assignment's model interface: ``params``, and
    ``loss(X, y=None)`` returning scores, or ``(loss, grads)`` with the softmax loss plus
    ``0.5 * reg * sum(W ** 2)`` over the convolution and linear weights.

    ``dtype`` is that of every parameter and computation (float32 to train, float64 to check).
    Unless ``input_grad``, a first convolution skips the gradient of its input (the images).
    """

    def __init__(self, *layers, reg=0.0, dtype=np.float32, input_grad=False):
        self.net = Sequential(*layers)
        self.reg = reg
        self.dtype = dtype
        self._params = {}
        self.net.bind(self._params)
        for k, v in self._params.items():
            self._params[k] = v.astype(dtype)
        for m in self.net.modules():
            if isinstance(m, BatchNorm):
                for key in ("running_mean", "running_var"):
                    m.bn_param[key] = m.bn_param[key].astype(dtype)
        self.decayed = [k for k, v in self._params.items() if k.endswith("weight") and v.ndim > 1]
        first = next((m for _, m in self.net.children if not isinstance(m, RandomCropFlip)), None)
        if isinstance(first, Conv2d) and not input_grad:
            first.input_grad = False  # nothing upstream needs the gradient of the images

    @property
    def params(self):
        return self._params

    @params.setter
    def params(self, new):
        # the Solver assigns best_params at the end; modules keep reading this same dict
        new = dict(new)
        self._params.clear()
        self._params.update(new)

    def forward(self, X, mode="test"):
        return self.net.forward(X.astype(self.dtype, copy=False), mode)

    def loss(self, X, y=None):
        if y is None:
            return self.forward(X, "test")
        scores = self.forward(X, "train")
        loss, dscores = softmax_loss(scores, y)
        grads = {}
        self.net.backward(dscores, grads)
        for k in self.decayed:
            w = self._params[k]
            loss += 0.5 * self.reg * np.sum(w * w)
            grads[k] = grads[k] + self.reg * w
        return loss, grads

    def state_dict(self):
        """Parameters and batch-norm running averages under torch's names."""
        return {**self._params, **dict(self.net.buffers())}

    def load_state_dict(self, state_dict):
        """Copy weights and running averages from a dict of arrays or tensors with the same names and
        shapes (e.g. a PyTorch twin's ``state_dict()``); ``num_batches_tracked`` entries are ignored."""
        ours = self.state_dict()
        theirs = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
        missing, unexpected = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
        if missing or unexpected:
            raise KeyError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")
        bns = {m._prefix: m for m in self.net.modules() if isinstance(m, BatchNorm)}
        for k, v in theirs.items():
            arr = np.array(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=self.dtype)
            if arr.shape != ours[k].shape:
                raise ValueError(f"{k}: shape {arr.shape} does not match {ours[k].shape}")
            if k in self._params:
                self._params[k] = arr
            else:
                prefix, buf = k.rsplit(".", 1)
                bns[prefix + "."].bn_param[buf] = arr


def mini_vgg(num_classes=10, reg=0.0, dtype=np.float32, augment=True):
    """Mini-VGG for 32x32 images: [32, 32, M, 64, 64, M, 128, M] with batch norm, global average pool,
    one linear layer."""
    layers = [RandomCropFlip()] if augment else []
    layers += vgg_stack(3, [32, 32, "M", 64, 64, "M", 128, "M"])
    return Model(*layers, GlobalAvgPool(), Linear(128, num_classes), reg=reg, dtype=dtype)


def mini_resnet(num_classes=10, widths=(32, 64, 128), blocks=1, reg=0.0, dtype=np.float32, augment=True):
    """Mini-ResNet for 32x32 images, CIFAR-style (He et al. 2015, section 4.2) but cheaper: a 3x3
    stride-2 convolution stem to 16x16 (a quarter of the work of every later layer), three stages of
    ``blocks`` basic blocks with ``widths`` channels (the 2nd and 3rd start with stride 2 and a
    projection shortcut), global average pool, one linear layer."""
    layers = [RandomCropFlip()] if augment else []
    layers += [Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False), BatchNorm(widths[0]), ReLU()]
    in_c = widths[0]
    for i, w in enumerate(widths):
        for j in range(blocks):
            layers.append(BasicBlock(in_c, w, stride=2 if i > 0 and j == 0 else 1))
            in_c = w
    return Model(*layers, GlobalAvgPool(), Linear(in_c, num_classes), reg=reg, dtype=dtype)


# Inception rows for 32x32 images, columns as in the paper's Table 1:
# (in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); "M" is a 2x2 max pool.
MINI_GOOGLENET = (
    (32, 16, 16, 24, 4, 8, 8),
    (56, 24, 24, 32, 6, 12, 12),
    "M",
    (80, 32, 24, 48, 8, 16, 16),
    (112, 40, 32, 56, 8, 16, 16),
)


def mini_googlenet(num_classes=10, rows=MINI_GOOGLENET, reg=0.0, dtype=np.float32, augment=True):
    """Mini-GoogLeNet for 32x32 images: a 3x3 stem to ``rows[0][0]`` channels, the Inception ``rows``
    (tuples in Table 1's columns, "M" for a 2x2 max pool) with batch norm in every convolution, as in
    torchvision's GoogLeNet, global average pool, one linear layer."""
    layers = [RandomCropFlip()] if augment else []
    layers.append(ConvBNReLU(3, rows[0][0], 3, padding=1))
    out_c = rows[0][0]
    for row in rows:
        if row == "M":
            layers.append(MaxPool2d(2))
            continue
        if row[0] != out_c:
            raise ValueError(f"Inception row {row} takes {row[0]} channels but receives {out_c}")
        layers.append(Inception(*row, conv_block=ConvBNReLU))
        out_c = row[1] + row[3] + row[5] + row[6]
    return Model(*layers, GlobalAvgPool(), Linear(out_c, num_classes), reg=reg, dtype=dtype)
