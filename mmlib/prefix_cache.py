"""The frozen-prefix feature cache of Ours (epoch granularity): one table per frozen encoder.

In an epoch Ours makes one pass per modality of its order; the pass at position k trains encoder
``pi_k`` through the chain over ``pi_1 .. pi_k`` with the encoders of ``pi_1 .. pi_{k-1}`` frozen.
A frozen encoder does not change during a pass, so its training-split features can be computed
once (a table indexed by dataset row) and looked up per batch instead of recomputed.

**Invariant.** A table for modality m holds the features m's encoder gives with its weights as
they are now, for every row written. An encoder's weights change only in the pass that trains
it, so the one rule that keeps the invariant is: *when a pass starts, the table of the encoder
trained in the previous pass is dropped*. Everything else stays valid.

``recorded`` mode relaxes the invariant on purpose: the features an encoder produced while it was
trained (training mode, detached, one pass stale by the end of it) are written during its pass
and serve as its frozen features later in the epoch; nothing is dropped, the tables are only
overwritten (a memory bank, Wu et al., CVPR 2018).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

# computes the current features of ``modalities`` for the whole training split: (rows, {m: (rows, d)})
ComputeFeatures = Callable[[list[str]], tuple[Tensor, dict[str, Tensor]]]


class FrozenPrefixCache:
    """Per-modality feature tables that stay valid while their encoders stay frozen."""

    def __init__(self, recorded: bool = False) -> None:
        self.recorded = recorded
        self._tables: dict[str, Tensor] = {}
        self._training: str | None = None
        self._rows: int | None = None

    def start_pass(self, frozen: Sequence[str], trained: str, compute: ComputeFeatures, rows: int) -> list[str]:
        """Before a pass that trains ``trained`` with ``frozen`` fixed; returns the modalities it computed.

        ``rows``: the dataset's rows (its highest row index + 1), the length of every table, which
        is made whole when its first features are written: a write never reads the rows it is given
        back to the host (on a GPU, ``int(rows.max())`` would wait for the step at every write).
        Drops the table of the encoder the previous pass trained (unless ``recorded``), then
        computes, in one call, every frozen modality that has no table.
        """
        if self._training is not None and not self.recorded:
            self._tables.pop(self._training, None)
        self._training, self._rows = trained, rows
        missing = [m for m in frozen if m not in self._tables]
        if missing:
            computed_rows, features = compute(missing)
            for m in missing:
                self.write(m, computed_rows, features[m])
        return missing

    def write(self, modality: str, rows: Tensor, features: Tensor) -> None:
        """Store ``features`` ``(len(rows), d)`` at dataset ``rows`` of the modality's table (float32,
        the length :meth:`start_pass` was given; rows never written hold zeros)."""
        if self._rows is None:
            raise ValueError("FrozenPrefixCache.write before start_pass: the tables' length is not known yet")
        table = self._tables.get(modality)
        if table is None:
            table = self._tables[modality] = features.new_zeros(self._rows, features.shape[1], dtype=torch.float32)
        table[rows] = features.float()

    def lookup(self, modalities: Sequence[str], rows: Tensor | None) -> dict[str, Tensor] | None:
        """The tabulated features of ``modalities`` at ``rows``, or None unless every one is tabulated."""
        if rows is None or not all(m in self._tables for m in modalities):
            return None
        return {m: self._tables[m][rows] for m in modalities}

    def clear(self) -> None:
        """Forget every table (new weights were loaded, or encoders change every step)."""
        self._tables.clear()
        self._training = None

    def __contains__(self, modality: str) -> bool:
        return modality in self._tables
