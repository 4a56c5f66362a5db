"""Measurements of two of the paper's open readings on a trained Ours model (the ambiguities chapter).

``correlation_gradient_change``: Eq. 9-10 do not say whether the correlation matrix C is a
constant of the training step. For the step that trains pi_k (the chain over the prefix
pi_1 .. pi_k, :class:`mmlib.methods.ours.Ours`), the relative change of the trained encoder's
gradient when C is held constant: ``||g_C - g_const|| / ||g_C||``, on the same batch and the same
dropout draw.

``mapped_scale``: how large the mapped strong features are against the features themselves,
``mean ||x_hat_q|| / mean ||x_q||`` for the first mapping of an order, in chunks of a given size.
The raw sum of Eq. 11 grows with the chunk; row-normalised weights keep it near 1.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from mmlib.data.base import MultimodalDataset
from mmlib.evaluate import feature_chunks
from mmlib.methods.base import Step
from mmlib.methods.ours import Ours


def _encoder_gradient(model: Ours, batch, prefix: tuple[str, ...], dropout_seed: int) -> Tensor:
    model.zero_grad()
    torch.manual_seed(dropout_seed)
    model.loss(batch, Step("prefix", prefix), epoch=0).backward()
    return torch.cat([p.grad.flatten() for p in model.encoders[prefix[-1]].parameters() if p.grad is not None])


def correlation_gradient_change(model: Ours, dataset: MultimodalDataset, order: Sequence[str], k: int,
                                batch_size: int = 64, batches: int = 5, seed: int = 0) -> float:
    """Mean over ``batches`` training batches of ``||g_C - g_const|| / ||g_C||`` for the step training ``order[k - 1]``.

    ``g_C``: the gradient of encoder ``order[k - 1]`` with gradient through C (the default reading),
    ``g_const``: with C detached. The model is left in training mode, its gradients zeroed and its
    ``correlation_gradient`` as it was. The prefix cache is not used (the frozen encoders run in eval mode).
    """
    if not 2 <= k <= len(order):
        raise ValueError(f"k must lie in [2, {len(order)}] (k = 1 maps nothing), got {k}")
    prefix, mapping = tuple(order[:k]), model.mapping
    kept, changes = mapping.correlation_gradient, []
    model.train()
    model.prefix_cache.clear()
    generator = torch.Generator().manual_seed(seed)
    try:
        for number, batch in enumerate(dataset.batches("train", batch_size, shuffle=True, generator=generator)):
            if number == batches:
                break
            mapping.correlation_gradient = True
            with_c = _encoder_gradient(model, batch, prefix, seed + number)
            mapping.correlation_gradient = False
            constant = _encoder_gradient(model, batch, prefix, seed + number)
            changes.append(float((with_c - constant).norm() / with_c.norm().clamp_min(1e-12)))
    finally:
        mapping.correlation_gradient = kept
        model.zero_grad()
    return sum(changes) / len(changes)


@torch.no_grad()
def mapped_scale(model: Ours, features: dict[str, Tensor], order: Sequence[str], batch_size: int) -> float:
    """``mean ||x_hat|| / mean ||x||`` of the first mapping step of ``order`` (h = X_pi1, x = X_pi2),
    in chunks of ``batch_size`` cut in the order given."""
    if len(order) < 2:
        raise ValueError(f"an order needs two modalities to map one onto the other, got {list(order)}")
    mapped, plain = [], []
    for _, chunk in feature_chunks(features, batch_size):
        plain.append(chunk[order[1]].norm(dim=-1))
        mapped.append(model.mapping(chunk[order[0]], chunk[order[1]]).norm(dim=-1))
    return float(torch.cat(mapped).mean() / torch.cat(plain).mean())
