"""Ours: Shapley-guided alternating training with cross-modal mapping and memory (Shi, Zhang et al.).

Paper: "Modality Equilibrium Matters: Minor-Modality-Aware Adaptive Alternating for Cross-Modal
Memory Enhancement". Implements Eq. 7-8 (order by Shapley value, weakest first), Eq. 9-11
(:mod:`mmlib.mapping`), Eq. 12-14 (:mod:`mmlib.memory`) and Algorithm 1 (:func:`mmlib.fusion.hybrid_order`).

Training the modality at position k of the order (DESIGN.md §3): build the chain over the prefix
``pi_1 .. pi_k`` with the encoders of ``pi_1 .. pi_{k-1}`` frozen for that step, loss
``CE(g(h_k), y)``; the step updates encoder ``pi_k``, the memory unit and the shared classifier g.
No public code exists; every choice the paper leaves open is an option below and is settled by
experiment in the book's ambiguities chapter.

Options
    mapping        "sample" | "feature" | "none"   reading of Eq. 11; "none" = w/o mapping ablation
    tau            correlation threshold of Eq. 10, in [0, 1]
    row_normalize  divide the alignment weights by their sum (scale independent of batch size)
    memory         "gated" (Eq. 12-14) | "none" (w/o memory ablation)
    order          "shapley" | "random" | "fixed"
    granularity    "epoch" (each prefix gets a full pass) | "batch" (each batch steps through all)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmlib.data.base import Batch
from mmlib.fusion import chain, hybrid_order
from mmlib.mapping import MAPPING_MODES, CrossModalMapping
from mmlib.memory import MEMORY_KINDS, build_memory
from mmlib.methods.base import Method, register_method
from mmlib.scheduler import GRANULARITIES, ORDER_POLICIES, next_order, prefix_plan


@dataclass
class OursOptions:
    mapping: str = "sample"
    tau: float = 0.2
    row_normalize: bool = False
    memory: str = "gated"
    order: str = "shapley"
    granularity: str = "epoch"

    def __post_init__(self) -> None:
        for name, value, valid in (
            ("mapping", self.mapping, MAPPING_MODES), ("memory", self.memory, MEMORY_KINDS),
            ("order", self.order, ORDER_POLICIES), ("granularity", self.granularity, GRANULARITIES),
        ):
            if value not in valid:
                raise ValueError(f"ours: option {name}={value!r} is not valid; choose one of {valid}")
        if not 0.0 <= float(self.tau) <= 1.0:
            raise ValueError(f"ours: tau (the correlation threshold of Eq. 10) must lie in [0, 1], got {self.tau}")


@register_method
class Ours(Method):
    name = "ours"
    Options = OursOptions

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        opts: OursOptions = self.options
        self.mapping = CrossModalMapping(opts.mapping, opts.tau, opts.row_normalize)
        self.memory = build_memory(opts.memory, self.dim)
        self.head = nn.Linear(self.dim, self.num_classes)
        self.order: tuple[str, ...] = self.modalities
        self._shapley: dict[str, float] | None = None

    def epoch_plan(self, epoch: int) -> list[list[tuple[str, ...]]]:
        self.order = next_order(self.options.order, self.modalities, epoch, self._shapley, self.seed)
        return prefix_plan(self.order, self.options.granularity)

    def end_epoch(self, epoch: int, validation: dict) -> None:
        self._shapley = validation["shapley"]

    def describe_epoch(self) -> dict:
        return {"order": list(self.order)}

    def loss(self, batch: Batch, step: tuple[str, ...], epoch: int) -> Tensor:
        *frozen, trained = step
        with torch.no_grad():
            features = self.encode(batch.inputs, frozen) if frozen else {}
        features[trained] = self.encoders[trained](batch.inputs[trained])
        return F.cross_entropy(self.head(chain(features, step, self.mapping, self.memory)), batch.labels)

    def logits_from_features(self, features: dict[str, Tensor], present) -> Tensor:
        present = tuple(m for m in self.modalities if m in present)
        if not present:
            ref = next(iter(features.values()))
            return self.head(torch.zeros(ref.shape[0], self.dim, device=ref.device, dtype=ref.dtype))
        return self.head(hybrid_order(features, present, self.mapping, self.memory))

    def get_extra_state(self) -> dict:
        return {"shapley": self._shapley}

    def set_extra_state(self, state: dict) -> None:
        self._shapley = state["shapley"]
