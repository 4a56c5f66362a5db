"""TATE: tag-assisted transformer encoder for uncertain missing modalities (Zeng, Liu, Zhou; SIGIR 2022).

Paper: "Tag-assisted Multimodal Sentiment Analysis under Uncertain Missing Modalities" (Jiandian
Zeng, Tianyi Liu, Jiantao Zhou; SIGIR 2022). Public code (TensorFlow 1): ``JaydenZeng/TATE`` at
21272cc, ``network.py`` (model and losses) and ``Dataset.py`` (missing patterns).

Model, per sample with present mask m (absent features are zero):

1. Common space: each modality's feature is projected to the common width d (the code projects
   each pair of modalities through shared matrices ``wei_va``, ``wei_vt``, ``wei_ta``, l. 82-84).
2. Tag: :func:`mmlib.missing.missing_tag`, one bit "complete" and one bit per missing modality
   (l. 89-105), appended to the concatenation: ``e = [P_1 X_1; ...; P_n X_n; tag]``. This is the
   table the code intends; as it runs under TensorFlow 1.x it gives every sample the same tag, the
   else branch's (l. 104-105), because ``self.flag[i] == -1`` compares a placeholder slice with an
   int inside a Python ``if`` (l. 92-103), which in graph mode is object identity and never true.
3. Encoder E (the code: multi-head self-attention + feed-forward, l. 109-117; here a two-layer
   MLP, the samples being vectors, not sequences) keeps the width: ``u = E(e)``.
4. Losses (``total_loss``, l. 165): ``CE(W (D u), y) + 0.1 (L_kl + L_de) + 0.1 L_tag / B`` with
   - ``L_tag = mean |tag - sigmoid(u[-(n+1):])|`` (l. 151): the last n + 1 outputs must recall the tag;
   - ``L_de`` the symmetric KL between ``softmax(Dec(u))`` and ``softmax(e)`` (l. 130-142): a decoder
     reconstructs the encoder's input;
   - ``L_kl`` the symmetric KL between ``softmax(u)`` and ``softmax(u_full)`` (l. 121-125), where the
     code's ``u_full`` is the output of a model pretrained on complete data.

   Reductions (``reduction``): the code *sums* CE, L_kl and L_de over the batch (``reduce_sum``,
   l. 161, 125, 142) and *averages* L_tag over it (``reduce_mean``, l. 151), so relative to the other
   terms the tag term weighs 0.1 / B (B = 32, ``Settings.py`` l. 3). ``"code"`` (the default) keeps
   these relative weights and divides the whole loss by B, so that every term is a per-sample mean
   and the shared loop's learning rate keeps its meaning (the code's optimizer is Adam, ``train.py``
   l. 44, on which a common factor has almost no effect). ``"mean"`` averages every term over the
   batch, the tag term weighing ``tag_weight`` (the paper gives weights, not reductions). In the
   missing-modality chapter's setting the two do not differ significantly (rerun: ``python -m mmlib
   sweep`` with ``--option tate.reduction=mean``).

Training patterns: a fraction ``train_missing`` of each batch loses a random proper non-empty
subset of its modalities (the code: ``Dataset.miss_modality``, l. 42-70, the first
``lost_rate`` of every 100 samples).

Deliberate differences from the public code
- ``u_full`` is this model's own encoding of the complete sample, detached (self-distillation), not
  a separately pretrained model's; the book trains one model per run.
- Encoder and decoder are MLPs on vectors; the code's attention runs over time steps, and its
  ``SigmoidAtt`` pooling over them (l. 146) has nothing to pool here.
- The missing pattern is uniform over every proper non-empty subset: the code's ``random.randint(0, 3)``
  draws 4 of its 6 patterns (visual and text, visual and audio never go missing together).
- The code's L2 penalty on the classifier (1e-4, l. 163) is the run's weight decay here.

Several processes (``torchrun``): refused, because its missing-modality masks are drawn per shard,
so they would not be the masks one process draws for the batch
(``distributed_refusal``; ``python -m mmlib sweep`` runs several runs at
once).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmlib.data.base import Batch
from mmlib.methods.base import Method, Step, register_method
from mmlib.missing import mask_features, missing_tag, present_mask, training_mask
from mmlib.tuning.space import Float, SearchSpace

REDUCTIONS = ("code", "mean")


def symmetric_kl(a: Tensor, b: Tensor) -> Tensor:
    """``KL(softmax a || softmax b) + KL(softmax b || softmax a)``, mean over samples (rows of ``(B, D)``)."""
    log_a, log_b = F.log_softmax(a, dim=-1), F.log_softmax(b, dim=-1)
    return ((log_a.exp() * (log_a - log_b)).sum(-1) + (log_b.exp() * (log_b - log_a)).sum(-1)).mean()


# What `python -m mmlib tune` may change (mmlib.tuning.space): the three loss weights.
SEARCH_SPACE = SearchSpace(
    kl_weight=Float(0.01, 1.0, log=True, source="TATE code network.py l. 165: 0.1"),
    de_weight=Float(0.01, 1.0, log=True, source="TATE code network.py l. 165: 0.1"),
    tag_weight=Float(0.01, 1.0, log=True, source="TATE code network.py l. 165: 0.1"),
)


@register_method
class TATE(Method):
    name = "tate"
    display_name = "TATE"
    distributed_refusal = ('its missing-modality masks are drawn per shard, so they would not be the masks one '
                           'process draws for the batch')

    @dataclasses.dataclass
    class Options:
        """TATE's hyperparameters (loss weights: the code's ``network.py`` l. 165)."""

        kl_weight: float = 0.1  # weight of L_kl (agreement with the complete sample's encoding)
        de_weight: float = 0.1  # weight of L_de (decoder reconstruction)
        tag_weight: float = 0.1  # weight of L_tag (the tag recalled from the encoding)
        train_missing: float = 0.5  # fraction of each training batch given a random missing pattern
        reduction: str = "code"  # "code": tag term / B, as the code's sums and means; "mean": every term a mean

        def __post_init__(self) -> None:
            if self.reduction not in REDUCTIONS:
                raise ValueError(f"tate: reduction={self.reduction!r} is not valid; choose one of {REDUCTIONS}")
            if min(self.kl_weight, self.de_weight, self.tag_weight) < 0 or not 0.0 <= self.train_missing <= 1.0:
                raise ValueError("kl_weight, de_weight and tag_weight must be non-negative and train_missing lie in "
                                 f"[0, 1]; got {self.kl_weight}, {self.de_weight}, {self.tag_weight}, "
                                 f"{self.train_missing}")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        n = len(self.modalities)
        width = n * self.dim + n + 1
        self.common = nn.ModuleDict({m: nn.Linear(self.dim, self.dim, bias=False) for m in self.modalities})
        self.encoder = nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, width))
        self.decoder = nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, width))
        self.head = nn.Sequential(nn.Linear(width, self.dim, bias=False), nn.Linear(self.dim, self.num_classes))

    def tagged_input(self, features: dict[str, Tensor], mask: Tensor) -> Tensor:
        """``e = [P_1 X_1 m_1; ...; P_n X_n m_n; tag(m)]``, ``(B, n d + n + 1)``."""
        masked = mask_features(features, self.modalities, mask)
        return torch.cat([self.common[m](masked[m]) for m in self.modalities] + [missing_tag(mask)], dim=-1)

    def loss(self, batch: Batch, step: Step, epoch: int) -> Tensor:
        features = self.encode(batch.inputs)
        b, n, device = len(batch), len(self.modalities), batch.labels.device
        mask = torch.ones(b, n, dtype=torch.bool, device=device)
        dropped = torch.rand(b, device=device) < self.options.train_missing
        mask[dropped] = training_mask(int(dropped.sum()), n, include_full=False, device=device)
        tagged = self.tagged_input(features, mask)
        encoded = self.encoder(tagged)
        with torch.no_grad():
            complete = self.encoder(self.tagged_input(features, torch.ones_like(mask)))
        tag = missing_tag(mask)
        tag_loss = (tag - torch.sigmoid(encoded[:, -(n + 1):])).abs().mean()
        return (F.cross_entropy(self.head(encoded), batch.labels)
                + self.options.kl_weight * symmetric_kl(encoded, complete)
                + self.options.de_weight * symmetric_kl(self.decoder(encoded), tagged)
                + self.tag_weight(b) * tag_loss)

    def tag_weight(self, batch_size: int) -> float:
        """The tag term's weight beside per-sample means of the others: ``tag_weight / B`` for ``"code"``
        (the code sums CE, KL and decoder terms over the batch but averages the tag term, ``network.py``
        l. 125, 142, 151, 161), ``tag_weight`` for ``"mean"``."""
        return self.options.tag_weight / (batch_size if self.options.reduction == "code" else 1)

    def logits_from_features(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        ref = next(iter(features.values()))
        full = {m: features.get(m, torch.zeros_like(ref)) for m in self.modalities}
        mask = present_mask(present, self.modalities, ref.shape[0], ref.device)
        return self.head(self.encoder(self.tagged_input(full, mask)))
