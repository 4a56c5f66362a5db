"""Late Fusion: one model per modality, each trained alone; test-time mean of their softmax outputs.

The classic late-fusion baseline of the paper's Table 1: modality m has its own encoder f_m and
linear head g_m, trained on its own loss CE(g_m(f_m(x_m)), y) and on nothing else. At test time
the prediction is the average of the unimodal class posteriors over the present modalities,

    p(y | x_S) = (1/|S|) sum_{m in S} softmax(g_m(f_m(x_m))),

and ``logits_from_features`` returns ``log p`` (so argmax and softmax match the averaged posterior).

Training: one step per batch on the sum of the unimodal losses. The losses share no parameter,
so each parameter's gradient is the gradient of its own modality's loss alone, and Adam (or SGD
with momentum and weight decay) keeps state per parameter: the updates are exactly those of n
separate trainings with n optimizers (checked in ``tests/test_methods_baselines.py``). The only
coupling is the shared shuffling and the best-epoch choice on validation *fused* accuracy.

Where the paper is silent, and what the code chose

- Fusion rule: the paper names Late Fusion [8] without its rule; the mean of the softmax
  outputs is the one here (not a mean of logits, not a learned weighting). Not measured.
- Unimodal accuracy: ``present=(m,)`` is modality m's own model. No modality present: the
  uniform distribution (log 1/C for every class).
- The best epoch is chosen on validation *fused* accuracy, for all n models together.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmlib.data.base import Batch
from mmlib.fusion import SumHead
from mmlib.methods.base import Method, Step, register_method
from mmlib.tuning.space import SearchSpace

SEARCH_SPACE = SearchSpace()  # no options of its own: lr and weight decay (mmlib.tuning.space.COMMON)


@register_method
class LateFusion(Method):
    name = "late_fusion"
    display_name = "Late Fusion"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = SumHead(self.modalities, self.dim, self.num_classes)  # used per modality, never summed

    def unimodal_logits(self, modality: str, feature: Tensor) -> Tensor:
        return self.head.heads[modality](feature)

    def loss(self, batch: Batch, step: Step, epoch: int) -> Tensor:
        features = self.encode(batch.inputs)
        return sum(F.cross_entropy(self.unimodal_logits(m, features[m]), batch.labels) for m in self.modalities)

    def logits_from_features(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        present = [m for m in self.modalities if m in present]
        if not present:
            ref = next(iter(features.values()))
            return torch.full((ref.shape[0], self.num_classes), -math.log(self.num_classes), device=ref.device,
                              dtype=ref.dtype)
        log_p = torch.stack([F.log_softmax(self.unimodal_logits(m, features[m]), dim=-1) for m in present])
        return torch.logsumexp(log_p, dim=0) - math.log(len(present))
