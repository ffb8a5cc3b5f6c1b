"""Layers shared by several families."""

from __future__ import annotations

import warnings

from torch import nn


class LocalResponseNorm(nn.LocalResponseNorm):
    """Local response normalization with the paper's parameters (Krizhevsky et al. 2012, Section 3.3):

        b[c] = a[c] / (k + alpha * sum(a[j]**2 for j in c - size//2 .. c + size//2, inside 0..C-1)) ** beta

    ``alpha`` weighs each squared term. torch's ``nn.LocalResponseNorm`` (like Caffe's LRN layer)
    divides its ``alpha`` by ``size`` first, so this class hands it ``alpha * size``: the paper's
    alpha = 1e-4 means ``nn.LocalResponseNorm(5, alpha=5e-4, ...)``. Input (N, C, H, W), same output
    shape; no parameters.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
        super().__init__(size, alpha=alpha * size, beta=beta, k=k)
        self.alpha_per_term = alpha

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha_per_term} per term, beta={self.beta}, k={self.k}"


# Older names of the dropout keyword; the zoo has one, ``drop_prob``
DROP_NAMES = {"dropout": "drop_prob", "drop": "drop_prob"}


def renamed(deprecated: dict, renames: dict[str, str] = DROP_NAMES) -> dict:
    """Keyword arguments given under an old name, under their new one, each with a DeprecationWarning
    that names the new keyword; an unknown keyword is refused as Python refuses it."""
    for old in deprecated:
        if old not in renames:
            raise TypeError(f"unexpected keyword argument {old!r}")
        warnings.warn(f"{old}= is deprecated, use {renames[old]}=", DeprecationWarning, stacklevel=3)
    return {renames[old]: value for old, value in deprecated.items()}
