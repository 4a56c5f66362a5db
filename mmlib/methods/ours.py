"""Ours: Shapley-guided alternating training with cross-modal mapping and memory (Shi, Zhang et al.).

Paper: "Modality Equilibrium Matters: Minor-Modality-Aware Adaptive Alternating for Cross-Modal
Memory Enhancement". Implements Eq. 7-8 (order by Shapley value, weakest first), Eq. 9-11
(:mod:`mmlib.mapping`), Eq. 12-14 (:mod:`mmlib.memory`) and Algorithm 1 (:func:`mmlib.fusion.hybrid_order`).
No public code exists. ``tests/test_paper_reimplementation.py`` writes Eq. 7-14 and Algorithm 1
again from the paper's text alone and checks every piece against this one on the same weights.

Training the modality at position k of the order: build the chain over the prefix
``pi_1 .. pi_k`` with the encoders of ``pi_1 .. pi_{k-1}`` frozen for that step, loss
``CE(g(h_k), y)``; the step updates encoder ``pi_k``, the memory unit and the shared classifier g.
With granularity "epoch" a frozen encoder does not change during a pass, so its features are
computed once for the whole training split at the start of the pass (``begin_pass``) and looked up
per batch; they stay valid until that encoder is trained again. Each epoch then costs n trained
encoder passes plus n - 1 frozen forward passes (instead of n (n - 1) / 2 forward passes per batch).
``prefix_features="recorded"`` drops those n - 1 forward passes: the features pi_k's encoder
produced for each sample while it was trained in pass k (training mode, detached) serve as its
frozen features in the later passes of the epoch. They are up to one pass stale, as in a memory
bank (Wu et al., CVPR 2018).
Several processes (``torchrun``; :mod:`mmlib.distributed`), each step on a shard of the batch:
the cross-modal mapping gathers the global batch's features from every rank (differentiably) and
maps them as one process does (:class:`mmlib.mapping.CrossModalMapping`); the Shapley order comes
from validation, which every rank evaluates identically; the frozen-prefix tables are computed on
the whole training split (sharded, then gathered: identical on every rank), and recorded prefix
features are gathered from every rank's shard before they are written.

Two registered forms (both selectable by name wherever methods are listed):

``ours``          the literal Eq. 11: with sample-level mapping x_hat_q = sum_r C[r, q] x_r, the
                  neighbour weights summed raw. This is the form the paper's text describes.
``ours_rownorm``  the same method with the weights of each output row divided by their sum
                  (``row_normalize=True``), so x_hat is a weighted mean of batch neighbours and stays
                  on the scale of x whatever the batch size. This is the form to run: the raw sum
                  inflates x_hat with the batch (ambiguities chapter, section 5); the two forms'
                  accuracies are paired in the main_comparison chapter (two views) and the
                  ambiguities chapter (three views).

Where the paper is silent, and what the code chose
(chapter = the book chapter that measures the choice against its alternative; "not measured"
where only ``tests/test_paper_reimplementation.py`` pins the reading)

- Eq. 6 trains "each modality" with ``g(Fusion(f_i(M_i)))`` and says no more about the step. Here
  the step for pi_k runs the chain over the prefix pi_1 .. pi_k, with the prefix encoders frozen:
  no gradient, and in inference mode (dropout off, BatchNorm running statistics). Not measured
  against training them too.
- The frozen prefix's features are recomputed from the frozen encoder (``prefix_features``;
  "recorded" is the cheaper alternative). Chapter: ambiguities.
- Eq. 8's order comes from the Shapley values of the last validation (P(S) = validation accuracy
  in %, the hybrid order over S), the weakest first; the first epoch, with no values yet, takes the
  dataset's listed order, and equal values keep the listed order (:mod:`mmlib.scheduler`).
  ``order="random"`` / ``"fixed"`` / ``"reverse"`` are the controls. Chapter: component_ablation.
- P(empty set), which Eq. 7 needs, is the accuracy of g on a zero feature
  (``TrainConfig.empty_value``; "chance" the alternative). Not measured here.
- "Each epoch" trains every prefix for a full pass in turn (``granularity="epoch"``);
  ``"batch"`` steps each batch through all prefixes, as MLA. Chapter: ambiguities.
- Eq. 9-11: which axis C runs over (``mapping``), whether its weights are summed raw or
  normalised (``row_normalize``), Eq. 11 read literally as ``X C`` and Eq. 10 applied to signed
  cosines: :mod:`mmlib.mapping` lists each. Chapter: ambiguities.
- Whether gradient flows through C (``correlation_gradient``, default True) and whether
  evaluation maps a batch together or, as Algorithm 1's loop reads, one instance at a time, where
  C = [1] and the mapping does nothing (``mapping_batch``, default "batch"). Chapter: ambiguities,
  which also measures how much holding C constant changes the trained encoder's gradient.
- The memory gates carry a bias (Eq. 12 has none); one unit serves every step of the chain; the
  chain passes on the memory's output X~ (Eq. 14), not its cell (Eq. 13): :mod:`mmlib.memory`,
  :mod:`mmlib.fusion`. Not measured.
- Sample-level mapping makes a prediction depend on its batch: every evaluation cuts its chunks
  of a fixed size (256) in a seeded shuffled order (:func:`mmlib.evaluate.encode_split`). Chapter:
  ambiguities (the batch-size dependence and the label leak of class-sorted chunks).
- EDM's scale of phi: :mod:`mmlib.shapley`. Chapter: ambiguities.

Options
    mapping        "sample" | "feature" | "none"   reading of Eq. 11; "none" = w/o mapping ablation
    tau            correlation threshold of Eq. 10, in [0, 1]
    row_normalize  divide the alignment weights by their sum (scale independent of batch size);
                   False for ``ours``, True (and fixed) for ``ours_rownorm``
    memory         "gated" (Eq. 12-14) | "none" (w/o memory ablation)
    order          "shapley" | "reverse" | "random" | "fixed"
    granularity    "epoch" (each prefix gets a full pass) | "batch" (each batch steps through all)
    prefix_features  "recompute" (frozen features from the encoder as it is, once per pass) |
                   "recorded" (the features recorded while that encoder trained; epoch granularity)
    correlation_gradient  True: gradient flows through C of Eq. 9-10 | False: C held constant
    mapping_batch  "batch" (evaluation maps its chunk together) | "instance" (each sample alone, as
                   Algorithm 1's loop; training always maps the batch, as Eq. 9 says)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmlib.data.base import Batch
from mmlib.fusion import chain, chain_orders, hybrid_order
from mmlib.mapping import MAPPING_BATCHES, MAPPING_MODES, CrossModalMapping
from mmlib.memory import MEMORY_KINDS, build_memory
from mmlib.methods.base import Method, PassContext, Step, eval_mode, register_method
from mmlib.prefix_cache import FrozenPrefixCache
from mmlib.scheduler import GRANULARITIES, ORDER_POLICIES, next_order, prefix_plan
from mmlib.tuning.space import Choice, Float, SearchSpace

PREFIX_FEATURES = ("recompute", "recorded")


@dataclass
class OursOptions:
    mapping: str = "sample"
    tau: float = 0.2
    row_normalize: bool = False
    memory: str = "gated"
    order: str = "shapley"
    granularity: str = "epoch"
    prefix_features: str = "recompute"
    # "when set": the two readings added after runs were stored keep those runs' ids (options_identity)
    correlation_gradient: bool = field(default=True, metadata={
        "identity": "when set",
        "help": "gradient flows through the correlation matrix C of Eq. 9-10 (False: C held constant in each step)"})
    mapping_batch: str = field(default="batch", metadata={
        "identity": "when set",
        "help": "evaluation maps each chunk together (batch) or each sample alone, as Algorithm 1's loop (instance)"})

    def __post_init__(self) -> None:
        for name, value, valid in (
            ("mapping", self.mapping, MAPPING_MODES), ("memory", self.memory, MEMORY_KINDS),
            ("order", self.order, ORDER_POLICIES), ("granularity", self.granularity, GRANULARITIES),
            ("prefix_features", self.prefix_features, PREFIX_FEATURES),
            ("mapping_batch", self.mapping_batch, MAPPING_BATCHES),
        ):
            if value not in valid:
                raise ValueError(f"ours: option {name}={value!r} is not valid; choose one of {valid}")
        if self.prefix_features == "recorded" and self.granularity != "epoch":
            raise ValueError("ours: prefix_features='recorded' needs granularity='epoch' (with 'batch' the encoders "
                             "change every step)")
        if not 0.0 <= float(self.tau) <= 1.0:
            raise ValueError(f"ours: tau (the correlation threshold of Eq. 10) must lie in [0, 1], got {self.tau}")


# What `python -m mmlib tune` may change (mmlib.tuning.space), for ours and ours_rownorm alike
# (row_normalize is what tells them apart, so it is not tuned).
SEARCH_SPACE = SearchSpace(
    tau=Float(0.05, 0.5, source="paper Sec. 5, implementation details: tau from {0.1, 0.2, 0.3}"),
    memory=Choice(("gated", "none"), source="paper Eq. 12-14 (gated) and Table 2's w/o memory (none)"),
)


@register_method
class Ours(Method):
    name = "ours"
    display_name = "Ours"
    Options = OursOptions

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        opts: OursOptions = self.options
        self.mapping = CrossModalMapping(opts.mapping, opts.tau, opts.row_normalize, opts.correlation_gradient,
                                         opts.mapping_batch)
        self.memory = build_memory(opts.memory, self.dim)
        self.head = nn.Linear(self.dim, self.num_classes)
        self.order: tuple[str, ...] = self.modalities
        self._shapley: dict[str, float] | None = None
        self.prefix_cache = FrozenPrefixCache(recorded=opts.prefix_features == "recorded")

    def begin_epoch(self, epoch: int) -> list[list[Step]]:
        """The epoch's order (Eq. 7-8, from the last validation's Shapley values), and its prefix steps."""
        self.order = next_order(self.options.order, self.modalities, epoch, self._shapley, self.seed)
        return [[Step("prefix", prefix) for prefix in steps]
                for steps in prefix_plan(self.order, self.options.granularity)]

    def distribute(self, world) -> None:
        """Map the global batch on every rank (module docstring)."""
        super().distribute(world)
        self.mapping.world = world

    def end_epoch(self, epoch: int, validation: dict) -> None:
        self._shapley = validation["shapley"]

    def describe_epoch(self) -> dict:
        return {"order": list(self.order)}

    def begin_pass(self, context: PassContext) -> None:
        """Epoch granularity: the frozen prefix's training features for this pass (:mod:`mmlib.prefix_cache`)."""
        if self.options.granularity != "epoch":
            self.prefix_cache.clear()
            return
        (step,) = context.steps
        *frozen, trained = step.modalities
        self.prefix_cache.start_pass(frozen, trained, context.train_features, context.dataset_rows)

    def pass_inputs(self, steps: Sequence[Step]) -> tuple[str, ...]:
        """The modalities of the pass's chains, the only inputs :meth:`loss` reads: the pass that trains
        pi_1 alone gathers no other modality (on CREMA-D, no video frames while audio trains)."""
        chained = {m for step in steps for m in step.modalities}
        return tuple(m for m in self.modalities if m in chained)

    def frozen_features(self, batch: Batch, frozen: Sequence[str]) -> dict[str, Tensor]:
        """Features of the frozen encoders for ``batch``: from the pass's tables, else computed in eval mode."""
        tabulated = self.prefix_cache.lookup(frozen, batch.index)
        if tabulated is not None:
            return tabulated
        with torch.no_grad(), eval_mode(*(self.encoders[m] for m in frozen)):
            return self.encode(batch.inputs, frozen)

    def loss(self, batch: Batch, step: Step, epoch: int) -> Tensor:
        *frozen, trained = step.modalities
        features = self.frozen_features(batch, frozen)
        features[trained] = self.encoders[trained](batch.inputs[trained])
        if self.prefix_cache.recorded and batch.index is not None:
            rows, recorded = batch.index, features[trained].detach()
            if self.in_sharded_step():  # every rank's table holds the rows of every shard
                rows, recorded = self.world.gather(rows), self.world.gather(recorded)
            self.prefix_cache.write(trained, rows, recorded)
        return F.cross_entropy(self.head(chain(features, step.modalities, self.mapping, self.memory)), batch.labels)

    def fused_representation(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        """The hybrid-order chain output over the present modalities (Algorithm 1), ``(B, d)``; zeros when none is."""
        present = tuple(m for m in self.modalities if m in present)
        if not present:
            ref = next(iter(features.values()))
            return torch.zeros(ref.shape[0], self.dim, device=ref.device, dtype=ref.dtype)
        return hybrid_order(features, present, self.mapping, self.memory)

    def fused_by_orders(self, features: dict[str, Tensor], orders: Sequence[Sequence[str]]) -> Tensor:
        """The chain output of each fixed order in ``orders``, ``(K, B, d)`` (paper Fig. 5)."""
        return chain_orders(features, orders, self.mapping, self.memory)

    def logits_from_features(self, features: dict[str, Tensor], present) -> Tensor:
        return self.head(self.fused_representation(features, present))

    def get_extra_state(self) -> dict:
        return {"shapley": self._shapley}

    def set_extra_state(self, state: dict) -> None:
        self._shapley = state["shapley"]
        self.prefix_cache.clear()  # new weights: tabulated features are stale


@dataclass
class OursRowNormOptions(OursOptions):
    """Ours with row-normalised alignment weights: ``row_normalize`` is this variant's definition."""

    row_normalize: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.row_normalize:
            raise ValueError("ours_rownorm: row_normalize=False is the method 'ours' (the literal Eq. 11); run that "
                             "instead")


@register_method
class OursRowNorm(Ours):
    """Ours with each output row of the alignment weights divided by its sum (see the module docstring)."""

    name = "ours_rownorm"
    display_name = "Ours (row-normalised)"
    Options = OursRowNormOptions
