"""Fusion: the memory chain over an order of modalities, hybrid-order inference, concat and sum heads.

Chain (paper Sec. 4.2): for an order ``pi = (pi_1, ..., pi_k)``, ``h = X_pi1`` and, for every next
modality, ``h = memory(h, mapping(h, X_next))``; the last ``h`` is the fused representation.

Hybrid order (paper Algorithm 1): average the final ``h`` over all ``k!`` orders of the present
modalities, then classify. The orders run batched, as a leading dimension ``K`` over features that
the encoders computed once.

Where the paper is silent, and what the code chose (Ours' full list: :mod:`mmlib.methods.ours`)

- The chain carries the memory's output ``X~`` (Eq. 14) from one step to the next, as the weak side
  of the next mapping and memory update; the cell of Eq. 13 is not passed on. Not measured.
- Algorithm 1 averages the features of the k! orders, then applies g (lines 8-9), on a whole
  evaluation chunk at once rather than instance by instance (``mapping_batch`` in
  :mod:`mmlib.methods.ours`). Chapter: ambiguities.
"""

from __future__ import annotations

from itertools import permutations
from typing import Sequence

import torch
from torch import Tensor, nn


def chain_orders(features: dict[str, Tensor], orders: Sequence[Sequence[str]], mapping: nn.Module,
                 memory: nn.Module) -> Tensor:
    """Fused representation for each order. ``features[m]: (B, d)``; returns ``(K, B, d)``, K = len(orders)."""
    if not orders:
        raise ValueError("chain_orders needs at least one order")
    length = len(orders[0])
    if length == 0 or any(len(o) != length for o in orders):
        raise ValueError(f"orders must be non-empty and of equal length, got {list(orders)}")
    return _fold([torch.stack([features[o[step]] for o in orders]) for step in range(length)], mapping, memory)


def chain(features: dict[str, Tensor], order: Sequence[str], mapping: nn.Module, memory: nn.Module) -> Tensor:
    """Fused representation for one order, ``(B, d)``."""
    if not order:
        raise ValueError("chain needs a non-empty order")
    return _fold([features[m] for m in order], mapping, memory)


def _fold(steps: list[Tensor], mapping: nn.Module, memory: nn.Module) -> Tensor:
    """``h = steps[0]``, then ``h = memory(h, mapping(h, x))`` for each next ``x``."""
    h = steps[0]
    for x in steps[1:]:
        h = memory(h, mapping(h, x))
    return h


def hybrid_order(features: dict[str, Tensor], modalities: Sequence[str], mapping: nn.Module,
                 memory: nn.Module) -> Tensor:
    """Algorithm 1: mean over all ``k!`` orders of ``modalities`` of the chain's output, ``(B, d)``."""
    return chain_orders(features, list(permutations(modalities)), mapping, memory).mean(dim=0)


class ConcatHead(nn.Module):
    """``g([X_1; ...; X_n])`` with one linear layer; an absent modality enters as zeros. ``(B, n*d) -> (B, C)``."""

    def __init__(self, modalities: Sequence[str], dim: int, num_classes: int) -> None:
        super().__init__()
        self.modalities, self.dim = tuple(modalities), dim
        self.linear = nn.Linear(len(self.modalities) * dim, num_classes)

    def forward(self, features: dict[str, Tensor], present: Sequence[str] | None = None) -> Tensor:
        present = self.modalities if present is None else present
        ref = next(iter(features.values()))
        parts = [features[m] if m in present else torch.zeros_like(ref) for m in self.modalities]
        return self.linear(torch.cat(parts, dim=-1))

    def slice_logits(self, modality: str, feature: Tensor) -> Tensor:
        """The head's contribution from one modality's slice alone (no bias): ``W_m X_m``."""
        k = self.modalities.index(modality)
        return feature @ self.linear.weight[:, k * self.dim : (k + 1) * self.dim].T


class SumHead(nn.Module):
    """``sum_m g_m(X_m)``, one linear head per modality; absent modalities are left out. ``-> (B, C)``."""

    def __init__(self, modalities: Sequence[str], dim: int, num_classes: int) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.heads = nn.ModuleDict({m: nn.Linear(dim, num_classes) for m in self.modalities})

    def forward(self, features: dict[str, Tensor], present: Sequence[str] | None = None) -> Tensor:
        present = self.modalities if present is None else present
        ref = next(iter(features.values()))
        logits = torch.zeros(ref.shape[0], self.heads[self.modalities[0]].out_features, device=ref.device,
                             dtype=ref.dtype)
        for m in self.modalities:
            if m in present:
                logits = logits + self.heads[m](features[m])
        return logits
