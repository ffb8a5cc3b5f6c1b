"""Muon: momentum whose update is orthogonalised by a Newton-Schulz iteration, for convolution filters.

Keller Jordan, "Muon: An optimizer for hidden layers in neural networks" (blog post, 2024), as used in
the CIFAR-10 speedrun record ``airbench94_muon.py`` (github.com/KellerJordan/cifar10-airbench; 94 % in
8 epochs, where airbench94 takes 9.9 with SGD). For every parameter ``p`` (a 2-D weight, or a conv
filter bank flattened to ``(out_channels, in_channels * kh * kw)``) one step is:

1. ``buf = momentum * buf + grad``; the update direction ``g`` is ``grad + momentum * buf`` (Nesterov)
   or ``buf``;
2. ``p *= sqrt(out_channels) / ||p||_F``: the weight is renormalised to a fixed norm, so that the
   step size is relative (airbench94_muon has no weight decay on filters);
3. ``p -= lr * NS(g)``, where ``NS(g)`` is :func:`newton_schulz5`: ``steps`` iterations of the quintic
   ``X <- a X + (b A + c A^2) X``, ``A = X X^T``, ``(a, b, c) = (3.4445, -4.7750, 2.0315)``, started
   from ``g / ||g||_F``. It maps ``g = U S V^T`` to about ``U V^T``; the coefficients trade exactness
   for speed, leaving singular values spread over roughly (0.5, 1.5) rather than equal to 1.

airbench94_muon gives Muon the filters (lr 0.24, momentum 0.6, Nesterov, 3 iterations; the defaults
here) and SGD everything else (batch-norm shifts, the whitening bias, the classifier);
:func:`filter_params` makes that split.

Deliberate difference: the iteration runs in float32 by default (``ns_dtype``); airbench runs it in
bfloat16, which on a CPU without bf16 units (AVX2) is several times slower. Pass
``ns_dtype=torch.bfloat16`` on a GPU.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Muon", "filter_params", "newton_schulz5"]

NS_COEFFS = (3.4445, -4.7750, 2.0315)


def newton_schulz5(g: torch.Tensor, steps: int = 5, eps: float = 1e-7, dtype=torch.float32) -> torch.Tensor:
    """Approximately orthogonalise the matrix ``g (m, n)``: about ``U V^T`` for ``g = U S V^T``.

    Keller Jordan's quintic Newton-Schulz iteration (see the module docstring); it works on the wider
    orientation (``X X^T`` the smaller Gram matrix) and returns ``dtype``.
    """
    if g.dim() != 2:
        raise ValueError(f"Newton-Schulz orthogonalises matrices, got a tensor of shape {tuple(g.shape)}")
    a, b, c = NS_COEFFS
    x = g.to(dtype)
    x = x / (x.norm() + eps)  # the largest singular value at most 1, where the iteration converges
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


def filter_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(filters, others)``: the trainable convolution filters (4-D parameters) for :class:`Muon`, and
    every other trainable parameter, for SGD (airbench94_muon's split)."""
    filters, others = [], []
    for p in model.parameters():
        if p.requires_grad:
            (filters if p.dim() == 4 else others).append(p)
    return filters, others


class Muon(torch.optim.Optimizer):
    """Muon (Jordan 2024) as in airbench94_muon: momentum, weight renormalisation, and a
    Newton-Schulz-orthogonalised step, for parameters of two or more dimensions.

    Args:
        params: the parameters (conv filters; see :func:`filter_params`) or parameter groups.
        lr: step size (airbench94_muon: 0.24, scaled by its schedule).
        momentum: momentum coefficient (0.6).
        nesterov: Nesterov momentum (True).
        ns_steps: Newton-Schulz iterations (3 in airbench94_muon; 5 in the Muon reference code).
        normalize_weights: renormalise every weight to Frobenius norm ``sqrt(out_channels)`` before
            its step (True, as airbench94_muon).
        ns_dtype: precision of the iteration (not saved in ``state_dict``: a matter of the machine).

    The state is one momentum buffer per parameter; ``state_dict``/``load_state_dict`` are torch's, so a
    run resumed from them continues bit for bit.
    """

    def __init__(
        self,
        params,
        lr: float = 0.24,
        momentum: float = 0.6,
        nesterov: bool = True,
        ns_steps: int = 3,
        normalize_weights: bool = True,
        ns_dtype: torch.dtype = torch.float32,
    ):
        if lr < 0:
            raise ValueError(f"Muon: learning rate must be >= 0, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"Muon: momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("Muon: Nesterov momentum needs momentum > 0")
        if ns_steps < 1:
            raise ValueError(f"Muon: ns_steps must be at least 1, got {ns_steps}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            ns_steps=ns_steps,
            normalize_weights=normalize_weights,
        )
        super().__init__(params, defaults)
        self.ns_dtype = ns_dtype
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() < 2:
                    raise ValueError(
                        f"Muon orthogonalises matrices and filter banks, got a parameter of shape "
                        f"{tuple(p.shape)}; give biases and norm parameters to SGD "
                        "(cnnarch.train.muon.filter_params splits a model's parameters)"
                    )

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            momentum = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grad)
                buf = state["momentum_buffer"]
                buf.mul_(momentum).add_(grad)
                g = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
                if group["normalize_weights"]:
                    p.mul_(len(p) ** 0.5 / p.norm().clamp_min(torch.finfo(p.dtype).tiny))
                update = newton_schulz5(g.reshape(len(g), -1), group["ns_steps"], dtype=self.ns_dtype)
                p.add_(update.view(p.shape).to(p.dtype), alpha=-group["lr"])
        return loss
