"""QMF: quality-aware multimodal fusion (Zhang, Wu, Fu et al., ICML 2023).

Paper: "Provable Dynamic Fusion for Low-Quality Multimodal Data" (Qingyang Zhang, Haitao Wu,
Changqing Zhang, Qinghua Hu, Huazhu Fu, Joey Tianyi Zhou, Xi Peng; ICML 2023). Public code:
``QingyangZhang/QMF`` at fe6c4c6, ``text-image-classification/src/models/late_fusion.py`` (the
fusion) and ``text-image-classification/train_qmf.py`` (the losses).

Model: one encoder f_m and one linear head g_m per modality (late fusion). Each modality's
confidence is its energy score divided by a temperature (``late_fusion.py`` l. 30-36),

    E_m = log sum_c exp(g_m(f_m(x_m))_c),        w_m = E_m / T  (T = 10),

and the fused logits weight each modality's logits by its detached confidence (l. 38-39),

    z = sum_{m present} w_m.detach() * g_m(f_m(x_m)).

Loss (``train_qmf.py`` l. 245-268): the fused and every unimodal cross-entropy, plus a ranking
loss per modality that teaches w_m to rank samples by their history of losses: the per-sample
unimodal CE is accumulated over training (``History.correctness_update``, ``src/utils/utils.py`` l. 118-124,
fed the loss, l. 258-259), normalised to [0, 1] over the whole history (l. 132-137), and each
sample is paired with its batch neighbour (``torch.roll(., -1)``, ``rank_loss`` l. 168-190):

    target = sign(c_i - c_j),  margin = |c_i - c_j|,
    L_rank = mean_i max(0, target * (w_i - w_j) - margin)

(``MarginRankingLoss(margin=0)(w_i, w_j + margin / target, -target)``, l. 183-190): a sample that
has lost more so far may not be more confident than its neighbour by more than the history gap.

The history holds one entry per *training* sample, as the code's ``History(len(train_loader.dataset))``
(``train_qmf.py`` l. 316-317), zero until the sample is first trained: its minimum and maximum are
taken over the training split only (an earlier form also held validation and test rows, which kept
the minimum at 0; in the missing-modality chapter's setting that moved no accuracy). The training
rows are read from the loop once, before the first pass (:meth:`QMF.begin_pass`).

Missing modalities: an absent modality's term is left out of the sum (as Late Fusion, Sum). With
no modality present the logits are zero.

Deliberate differences from the public code
- Any number of modalities (the code: text and image).
- The history is a buffer saved in checkpoints, with the dataset row of each entry (the code's
  ``History`` is a NumPy array outside the model, indexed by the training set's own positions); its
  normalisation guards max = min (the code divides by zero there).
- The code's optimiser steps every 24 batches (gradient accumulation) and uses ReduceLROnPlateau;
  here the shared loop's optimiser steps every batch.

Several processes (``torchrun``): refused, because its per-sample loss history is written at the
rows of each batch, so each process would hold only its shard's rows
(``distributed_refusal``; ``python -m mmlib sweep`` runs several runs at
once).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmlib.data.base import Batch
from mmlib.fusion import SumHead
from mmlib.methods.base import Method, PassContext, Step, register_method
from mmlib.tuning.space import Float, SearchSpace


def energy_confidence(logits: Tensor, temperature: float = 10.0) -> Tensor:
    """``(B, C) -> (B,)``: the energy score ``log sum_c exp(logits_c)`` divided by ``temperature``."""
    return torch.logsumexp(logits, dim=-1) / temperature


def confidence_rank_loss(confidence: Tensor, history: Tensor) -> Tensor:
    """QMF's ranking loss for one modality: ``confidence (B,)``, normalised loss history ``(B,)``.

    Each sample i is paired with sample i + 1 (cyclically): ``mean max(0, sign(c_i - c_j) (w_i - w_j) - |c_i - c_j|)``.
    """
    other, other_history = torch.roll(confidence, -1), torch.roll(history, -1)
    target = torch.sign(history - other_history)
    margin = (history - other_history).abs()
    return torch.clamp(target * (confidence - other) - margin, min=0).mean()


# What `python -m mmlib tune` may change (mmlib.tuning.space): the energy temperature and the rank weight.
SEARCH_SPACE = SearchSpace(
    temperature=Float(1.0, 100.0, log=True, source="QMF code: T = 10"),
    rank_weight=Float(0.1, 10.0, log=True, source="QMF code: ranking loss weight 1"),
)


@register_method
class QMF(Method):
    name = "qmf"
    display_name = "QMF"
    distributed_refusal = ('its per-sample loss history is written at the rows of each batch, so each process would '
                           "hold only its shard's rows")

    @dataclasses.dataclass
    class Options:
        """QMF's hyperparameters."""

        temperature: float = 10.0  # T: the energy score is divided by it (the code: 10)
        rank_weight: float = 1.0  # weight of the ranking loss (the code: 1)

        def __post_init__(self) -> None:
            if self.temperature <= 0:
                raise ValueError(f"temperature must be positive, got {self.temperature}")
            if self.rank_weight < 0:
                raise ValueError(f"rank_weight must be non-negative, got {self.rank_weight}")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = SumHead(self.modalities, self.dim, self.num_classes)  # g_m, one per modality
        self.register_buffer("history_rows", torch.zeros(0, dtype=torch.long))  # dataset row of each entry, ascending
        self.register_buffer("loss_history", torch.zeros(0, len(self.modalities)))  # (N train, n) summed losses

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        for name in ("history_rows", "loss_history"):  # sized by the training split; take the saved size
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, torch.zeros_like(saved, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def begin_pass(self, context: PassContext) -> None:
        """Before the first pass: one history entry per training row (``train_qmf.py`` l. 316-317)."""
        if not len(self.history_rows):
            rows, _ = context.train_features(())
            self.start_history(rows)

    def start_history(self, rows: Tensor) -> None:
        """An all-zero history with one entry per dataset row in ``rows`` ``(N,)``, the training split."""
        self.history_rows = torch.sort(rows.to(self.history_rows.device)).values
        self.loss_history = torch.zeros(len(rows), len(self.modalities), device=self.loss_history.device)

    def unimodal_logits(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        return {m: self.head.heads[m](features[m]) for m in features}

    def fuse(self, logits: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        """``z = sum_m w_m.detach() * logits_m`` over the present modalities."""
        ref = next(iter(logits.values()))
        fused = torch.zeros_like(ref)
        for m in self.modalities:
            if m in present:
                weight = energy_confidence(logits[m], self.options.temperature).detach()
                fused = fused + weight.unsqueeze(-1) * logits[m]
        return fused

    def _positions(self, index: Tensor) -> Tensor:
        """History entries of the dataset rows ``index`` ``(B,)``; a clear error for a row outside the training
        split."""
        if not len(self.history_rows):
            raise ValueError("qmf: the loss history has no training rows yet; the training loop sets them before the "
                             "first pass (begin_pass), or call start_history(rows) with the training split's rows")
        positions = torch.searchsorted(self.history_rows, index).clamp_max(len(self.history_rows) - 1)
        if not torch.equal(self.history_rows[positions], index):
            raise ValueError("qmf: a batch holds dataset rows outside the training split the loss history was built "
                             "for; the ranking loss is defined on training samples only")
        return positions

    def record_history(self, index: Tensor, losses: Tensor) -> Tensor:
        """Add this batch's per-sample losses ``(B, n)`` to the history; return its rows, normalised to [0, 1]
        by the minimum and maximum over every training sample (``utils.py`` l. 132-137)."""
        positions = self._positions(index)
        self.loss_history.index_add_(0, positions, losses.detach().float())
        low, high = self.loss_history.amin(dim=0), self.loss_history.amax(dim=0)
        return (self.loss_history[positions] - low) / (high - low).clamp_min(1e-12)

    def loss(self, batch: Batch, step: Step, epoch: int) -> Tensor:
        logits = self.unimodal_logits(self.encode(batch.inputs))
        ce = {m: F.cross_entropy(logits[m], batch.labels, reduction="none") for m in self.modalities}
        total = F.cross_entropy(self.fuse(logits, self.modalities), batch.labels) + sum(c.mean() for c in ce.values())
        if batch.index is None or self.options.rank_weight == 0:
            return total
        history = self.record_history(batch.index, torch.stack([ce[m] for m in self.modalities], dim=1))
        rank = sum(confidence_rank_loss(energy_confidence(logits[m], self.options.temperature), history[:, k])
                   for k, m in enumerate(self.modalities))
        return total + self.options.rank_weight * rank

    def logits_from_features(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        present = [m for m in self.modalities if m in present]
        if not present:
            ref = next(iter(features.values()))
            return torch.zeros(ref.shape[0], self.num_classes, device=ref.device, dtype=ref.dtype)
        return self.fuse(self.unimodal_logits({m: features[m] for m in present}), present)
