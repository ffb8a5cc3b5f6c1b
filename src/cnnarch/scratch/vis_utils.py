"""Image grids of CS231n assignment 2's ``vis_utils``: filters or images tiled into one picture.

Inputs are channels last, (N, H, W, C), as the assignment's notebooks pass them (for first-layer
filters: ``W1.transpose(0, 2, 3, 1)``).
"""

from math import ceil, sqrt

import numpy as np


def _rescale(img, ubound):
    low, high = img.min(), img.max()
    if high == low:  # a constant tile carries no pattern; show it black instead of dividing by zero
        return np.zeros_like(img, dtype=np.float64)
    return ubound * (img - low) / (high - low)


def visualize_grid(Xs, ubound=255.0, padding=1):
    """(N, H, W, C) -> one (A * H + (A - 1) * padding, A * W + (A - 1) * padding, C) grid,
    A = ceil(sqrt(N)), row by row; each image rescaled to [0, ubound], the padding 0."""
    N, H, W, C = Xs.shape
    A = int(ceil(sqrt(N)))
    grid = np.zeros((A * H + padding * (A - 1), A * W + padding * (A - 1), C))
    for k in range(N):
        y0, x0 = (k // A) * (H + padding), (k % A) * (W + padding)
        grid[y0 : y0 + H, x0 : x0 + W] = _rescale(Xs[k], ubound)
    return grid


def vis_grid(Xs):
    """(N, H, W, C) -> a square grid with a one-pixel border after each tile, the images unscaled
    on a background of their minimum, and the whole grid rescaled to [0, 1]."""
    N, H, W, C = Xs.shape
    A = int(ceil(sqrt(N)))
    G = np.full((A * H + A, A * W + A, C), np.min(Xs), dtype=np.float64)
    for k in range(N):
        y0, x0 = (k // A) * (H + 1), (k % A) * (W + 1)
        G[y0 : y0 + H, x0 : x0 + W] = Xs[k]
    return _rescale(G, 1.0)


def vis_nn(rows):
    """A list of rows, each a list of (H, W, C) images, -> one grid with one-pixel borders, rescaled
    to [0, 1] as a whole."""
    D = len(rows)
    A = len(rows[0])
    H, W, C = rows[0][0].shape
    Xs = rows[0][0]
    G = np.full((D * H + D, A * W + A, C), np.min(Xs), dtype=np.float64)
    for y, row in enumerate(rows):
        for x, img in enumerate(row):
            G[y * (H + 1) : y * (H + 1) + H, x * (W + 1) : x * (W + 1) + W] = img
    return _rescale(G, 1.0)
