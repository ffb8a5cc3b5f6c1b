"""The PyTorch part of CS231n assignment 2: one small convolutional network written three ways.

``three_layer_convnet`` on bare tensors with ``torch.nn.functional``, ``ThreeLayerConvNetModule`` as
an ``nn.Module``, and ``make_model`` as an ``nn.Sequential``, the network the student then trains to
a CIFAR-10 target. The first two compute the same function: conv 5x5 (zero padding 2) - ReLU - conv
3x3 (zero padding 1) - ReLU - fully connected; the spatial size is kept, so the classifier sees
``channel_2 * H * W`` numbers per image. ``train`` and ``accuracy`` are given.
"""

import torch
import torch.nn.functional as F
from torch import nn


def three_layer_convnet(x, params):
    """Scores (N, K) of conv 5x5 (pad 2) - ReLU - conv 3x3 (pad 1) - ReLU - fully connected.

    x: (N, C, H, W); params: [conv_w1 (C1, C, 5, 5), conv_b1 (C1,), conv_w2 (C2, C1, 3, 3),
    conv_b2 (C2,), fc_w (C2 * H * W, K), fc_b (K,)]. The fully connected weight is (in, out), as in
    the NumPy part: ``scores = h @ fc_w + fc_b`` on each image's activations flattened in
    channel, row, column order.
    """
    conv_w1, conv_b1, conv_w2, conv_b2, fc_w, fc_b = params
    h = F.relu(F.conv2d(x, conv_w1, conv_b1, padding=2))
    h = F.relu(F.conv2d(h, conv_w2, conv_b2, padding=1))
    return h.flatten(1) @ fc_w + fc_b


class ThreeLayerConvNetModule(nn.Module):
    """The network of :func:`three_layer_convnet` as an ``nn.Module``, for images of ``size`` x
    ``size`` pixels (or ``size=(height, width)``): an ``nn.Conv2d`` with 5x5 filters and zero
    padding 2, an ``nn.Conv2d`` with 3x3 filters and zero padding 1, and an ``nn.Linear`` on the
    flattened activations. The convolutions' weights come from Kaiming's normal initialization (He
    et al., 2015, made for the ReLU that follows), their biases are zero. (The NumPy part has its
    own ``ThreeLayerConvNet``, a different network.)"""

    def __init__(self, in_channel, channel_1, channel_2, num_classes, size=32):
        super().__init__()
        height, width = (size, size) if isinstance(size, int) else size
        # >>> exercise
        self.conv1 = nn.Conv2d(in_channel, channel_1, 5, padding=2)
        self.conv2 = nn.Conv2d(channel_1, channel_2, 3, padding=1)
        self.fc = nn.Linear(channel_2 * height * width, num_classes)
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        # <<< exercise

    def forward(self, x):
        """Scores (N, num_classes) of images x (N, in_channel, height, width)."""
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return self.fc(x.flatten(1))


def make_model():
    """A network for CIFAR-10 as an ``nn.Sequential``: images (N, 3, 32, 32) to scores (N, 10).

    Any layers will do, as long as the network reaches the notebook's target when trained with
    :func:`train`: for instance a few stages of ``nn.Conv2d`` - ``nn.ReLU`` - ``nn.MaxPool2d``
    (``nn.BatchNorm2d`` helps), then ``nn.Flatten`` and an ``nn.Linear``.
    """
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 10),
    )


def accuracy(model, X, y, batch_size=500) -> float:
    """The fraction of images ``X`` (N, 3, H, W) that ``model`` classifies right, in eval mode."""
    model.eval()
    with torch.no_grad():
        right = sum(
            int((model(X[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
            for i in range(0, len(X), batch_size)
        )
    return right / len(X)


def train(model, X, y, epochs=1, batch_size=64, lr=1e-3, seed=0):
    """Train ``model`` on images ``X`` (float tensor) and labels ``y`` with Adam and the cross-entropy
    loss, in shuffled minibatches; returns the loss of every step. Given, not an exercise (the
    original's ``train_part34``)."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(X)).split(batch_size):
            loss = F.cross_entropy(model(X[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses
