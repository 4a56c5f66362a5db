"""Modality memory unit (paper Eq. 12-14): a gated, LSTM-like update of the running representation.

``[f; i; o] = sigmoid(W [h; x_hat] + b)``, ``memory = f * h + i * x_hat``, ``h' = o * tanh(memory)``.

``MEMORY_KINDS``: ``gated`` (the unit above) or ``none`` (the "w/o memory" ablation:
``h' = (h + x_hat) / 2``, an ungated average that keeps both sides on the same scale; chapter:
component_ablation).

Where the paper is silent, and what the code chose

- The gates carry a bias ``b`` (``nn.Linear``'s default, as an LSTM's gates have); Eq. 12 writes
  ``sigma(W [X_i; X_hat_j])`` without one. ``b = 0`` gives the printed form. Not measured.
- ``x_hat`` enters the memory directly, as Eq. 13 prints it: there is no candidate-cell tanh as in
  an LSTM.
- One unit (one W, b) is shared by every step of the chain and every order, the way one LSTM cell
  is shared by every time step; the paper speaks of "a modality memory unit". Not measured.
- The step's output is ``h'`` of Eq. 14, and that, not the cell ``memory`` of Eq. 13, is what the
  chain passes on to the next step (:mod:`mmlib.fusion`). Not measured.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

MEMORY_KINDS = ("gated", "none")


class MemoryUnit(nn.Module):
    """``(h, x_hat) -> h'``, ``(..., d), (..., d) -> (..., d)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gates = nn.Linear(2 * dim, 3 * dim)

    def forward(self, h: Tensor, x_hat: Tensor) -> Tensor:
        forget, inp, out = torch.sigmoid(self.gates(torch.cat([h, x_hat], dim=-1))).chunk(3, dim=-1)
        memory = forget * h + inp * x_hat
        return out * torch.tanh(memory)


class AverageUnit(nn.Module):
    """The ablation without memory: ``(h + x_hat) / 2``."""

    def forward(self, h: Tensor, x_hat: Tensor) -> Tensor:
        return 0.5 * (h + x_hat)


def build_memory(kind: str, dim: int) -> nn.Module:
    if kind == "gated":
        return MemoryUnit(dim)
    if kind == "none":
        return AverageUnit()
    raise ValueError(f"memory must be one of {MEMORY_KINDS}, got {kind!r}")
