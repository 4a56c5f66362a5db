"""Fixed, hybrid and oracle fusion orders of a trained Ours model (paper Fig. 5).

Ours fuses by chaining the modalities in an order (Eq. 9-14); at test time it averages the chain
outputs of all ``k!`` orders (the hybrid order, Algorithm 1). These functions score every fixed
order, the hybrid order and the per-sample oracle (any fixed order correct) on cached features.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np
import torch
from torch import Tensor

from mmlib.evaluate import feature_chunks
from mmlib.methods.ours import Ours


@torch.no_grad()
def order_correct(model: Ours, features: dict[str, Tensor], labels: Tensor, batch_size: int) -> dict[str, np.ndarray]:
    """Per-sample correctness of every fixed order and of the hybrid order (paper Fig. 5).

    For an ``Ours`` model and features ``(N, d)``: returns
    ``{"a>b>c": (N,) bool for each of the k! orders, "hybrid": (N,) bool, "oracle": (N,) bool}``.
    ``oracle`` is the per-sample upper bound: correct when any fixed order is correct. Samples are
    taken in chunks of ``batch_size`` in split order (sample-level mapping depends on the batch).
    """
    orders = list(permutations(model.modalities))
    names = [">".join(o) for o in orders]
    n = len(labels)
    out = {name: np.zeros(n, dtype=bool) for name in names}
    out["hybrid"] = np.zeros(n, dtype=bool)
    for rows, chunk in feature_chunks(features, batch_size):
        y = labels[rows]
        fused = model.fused_by_orders(chunk, orders)  # (K, B, d)
        for name, h in zip(names, fused):
            out[name][rows] = (model.head(h).argmax(-1) == y).numpy()
        out["hybrid"][rows] = (model.head(fused.mean(0)).argmax(-1) == y).numpy()
    out["oracle"] = np.any([out[name] for name in names], axis=0)
    return out


def order_accuracies(correct: dict[str, np.ndarray]) -> dict[str, float]:
    """Accuracy (%) of each entry of :func:`order_correct`."""
    return {k: 100.0 * float(v.mean()) for k, v in correct.items()}
