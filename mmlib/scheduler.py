"""Training-order policies for alternating training (paper Eq. 8) and how an order becomes steps.

``shapley``  weakest first: ascending Shapley value measured on the validation split after the
             previous epoch (ties keep the listed order). Epoch 1 uses the dataset's listed order.
``reverse``  strongest first: the ``shapley`` order reversed (descending Shapley value; on a tie the
             later-listed modality comes first). Epoch 1 uses the listed order reversed. The
             control for the claim of the paper's second version (arXiv 2506.00030v2) that the
             weak-to-strong order has the tightest convergence bound of all orders.
``random``   a fresh random order every epoch, drawn from ``(seed, epoch)`` so a resumed run
             draws the same orders as an uninterrupted one.
``fixed``    always the listed order.

Granularity: ``epoch`` gives every prefix of the order a full pass over the training data in turn;
``batch`` steps each batch through all prefixes, in order (MLA-style alternation).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

ORDER_POLICIES = ("shapley", "reverse", "random", "fixed")
GRANULARITIES = ("epoch", "batch")


def next_order(policy: str, modalities: Sequence[str], epoch: int, shapley: dict[str, float] | None,
               seed: int) -> tuple[str, ...]:
    """The training order for ``epoch`` (1-based) under ``policy``."""
    modalities = tuple(modalities)
    if policy == "fixed":
        return modalities
    if policy == "random":
        rng = np.random.default_rng([seed, epoch])
        return tuple(modalities[i] for i in rng.permutation(len(modalities)))
    if policy == "reverse":
        return next_order("shapley", modalities, epoch, shapley, seed)[::-1]
    if policy == "shapley":
        if epoch <= 1 or shapley is None:
            return modalities
        missing = [m for m in modalities if m not in shapley]
        if missing:
            raise ValueError(f"Shapley values lack modality {missing[0]!r}; have {sorted(shapley)}")
        return tuple(sorted(modalities, key=lambda m: (shapley[m], modalities.index(m))))
    raise ValueError(f"unknown order policy {policy!r}; choose one of {ORDER_POLICIES}")


def prefix_plan(order: Sequence[str], granularity: str) -> list[list[tuple[str, ...]]]:
    """Passes over the data, each a list of per-batch steps; a step is the prefix of the order trained.

    >>> prefix_plan(("a", "b"), "epoch")
    [[('a',)], [('a', 'b')]]
    >>> prefix_plan(("a", "b"), "batch")
    [[('a',), ('a', 'b')]]
    """
    prefixes = [tuple(order[: k + 1]) for k in range(len(order))]
    if granularity == "epoch":
        return [[p] for p in prefixes]
    if granularity == "batch":
        return [prefixes]
    raise ValueError(f"unknown granularity {granularity!r}; choose one of {GRANULARITIES}")
