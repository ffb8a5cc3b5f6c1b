"""Lookahead weight averaging as in airbench (Jordan 2024, arXiv:2404.00498), after Zhang et al. 2019
("Lookahead optimizer: k steps forward, 1 step back").

A slow copy of the model's floating-point state (weights and batch-norm running statistics) is kept.
Every ``every`` optimizer steps the slow copy moves towards the trained ("fast") state and the fast
state jumps back to it::

    slow <- slow + alpha * (fast - slow);   fast <- slow

airbench writes it with ``decay = 1 - alpha`` growing over the run, ``decay(t) = 0.95**5 * (t / T)**3``
at step ``t`` of ``T``: early on (``decay`` near 0) the slow copy simply follows, late in training it
averages the last few hundred steps. After the last step the model takes the slow weights.

Deliberate difference: the slow copy is taken when :class:`Lookahead` is built (build it after the
whitening initialisation); airbench takes it before, so its frozen whitening filters get a
``decay(5)`` (about 1e-4) share of their random initialisation at the first update.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Lookahead"]

EVERY = 5  # airbench: an update every 5 steps
DECAY = 0.95**5
POWER = 3


class Lookahead:
    """airbench's lookahead over ``model``'s floating-point ``state_dict`` entries.

    Call :meth:`update` after every optimizer step with the number of steps done so far
    (1, 2, ..., ``total_steps``); it acts on multiples of ``every`` and, at ``total_steps``, loads the
    slow weights into the model.
    """

    def __init__(
        self,
        model: nn.Module,
        total_steps: int,
        every: int = EVERY,
        decay: float = DECAY,
        power: float = POWER,
    ):
        if total_steps < 1 or every < 1:
            raise ValueError(
                f"lookahead needs total_steps >= 1 and every >= 1, got {total_steps} and {every}"
            )
        if not 0 <= decay <= 1:
            raise ValueError(f"lookahead decay must be in [0, 1], got {decay}")
        self.model, self.total_steps, self.every = model, total_steps, every
        self.decay_max, self.power = decay, power
        self.slow = {k: v.detach().clone() for k, v in self._fast().items()}

    def _fast(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.model.state_dict().items() if v.is_floating_point()}

    def decay(self, step: int) -> float:
        """``1 - alpha`` at ``step``: ``decay * (step / total_steps) ** power``."""
        return self.decay_max * (step / self.total_steps) ** self.power

    @torch.no_grad()
    def update(self, step: int) -> None:
        """After optimizer step number ``step``: average on multiples of ``every``, and at the last step
        put the slow weights into the model."""
        if step % self.every == 0:
            alpha = 1 - self.decay(step)
            for k, fast in self._fast().items():
                self.slow[k].lerp_(fast, alpha)
                fast.copy_(self.slow[k])
        if step == self.total_steps:
            for k, fast in self._fast().items():
                fast.copy_(self.slow[k])

    def state_dict(self) -> dict:
        return {"slow": dict(self.slow), "total_steps": self.total_steps, "every": self.every}

    def load_state_dict(self, state: dict) -> None:
        if (state["total_steps"], state["every"]) != (self.total_steps, self.every):
            raise ValueError(
                f"lookahead state for {state['total_steps']} steps (every {state['every']}) does not fit "
                f"this run's {self.total_steps} (every {self.every}); resume with the same schedule"
            )
        if state["slow"].keys() != self.slow.keys():
            raise ValueError("lookahead state was saved for a different model (its tensors differ)")
        for k, v in state["slow"].items():
            self.slow[k].copy_(v)
