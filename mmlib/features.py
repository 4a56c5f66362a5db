"""Encoded features ``{modality: (N, d)}`` cut into consecutive chunks, the unit every evaluation,
decision-layer statistic and embedding classifies at a time (:mod:`mmlib.evaluate`, :mod:`mmlib.decision`)."""

from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor


@torch.no_grad()
def feature_chunks(features: dict[str, Tensor], batch_size: int) -> Iterator[tuple[slice, dict[str, Tensor]]]:
    """``(rows, chunk)`` for consecutive chunks of ``batch_size`` samples of encoded ``features``, in the
    order given."""
    n = len(next(iter(features.values())))
    for start in range(0, n, batch_size):
        rows = slice(start, start + batch_size)
        yield rows, {m: f[rows] for m, f in features.items()}
