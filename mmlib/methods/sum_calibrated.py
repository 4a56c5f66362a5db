"""Sum with calibrated logits: an adaptive decision-layer weighting (the companion paper's proposal).

The companion paper (``002``: imbalance at the decision layer) finds that a sum of per-modality
classifiers inherits the modalities' uncalibrated logit scales, so the modality whose logits are
larger decides, whatever its accuracy, and asks for weights at the decision layer that adapt to
each modality. This method is the Sum baseline (``g(X) = sum_m W_m X_m + b_m``) with one such
weighting, per-modality logit calibration:

    s_m = running mean over training batches of the logit scale of W_m X_m
          (:func:`mmlib.decision.logit_scale`: the std over classes, averaged over the batch),
    z   = sum_{m present} (s_bar / s_m) W_m X_m + b_m,      s_bar = mean_m s_m,

so every modality enters the fused decision at the same logit scale. The factors are buffers
(no gradient), updated with ``momentum`` after every training batch from the current batch and
frozen at evaluation. Unimodal accuracy (one modality present) is its own head, rescaled, as in Sum.

Several processes (``torchrun``): the current batch's logit scales are means over the batch, made the
global batch's mean (:meth:`mmlib.distributed.World.batch_mean`), so the factors agree on every rank.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
from torch import Tensor

from mmlib.data.base import Batch
from mmlib.decision import logit_scale
from mmlib.fusion import SumHead
from mmlib.methods.base import Method, Step, register_method
from mmlib.tuning.space import Float, SearchSpace

# What `python -m mmlib tune` may change (mmlib.tuning.space): the running scale's momentum.
SEARCH_SPACE = SearchSpace(
    momentum=Float(0.01, 1.0, log=True, source="this book's default 0.1 (BatchNorm's momentum); no authors' code"),
)


@register_method
class SumCalibrated(Method):
    name = "sum_calibrated"
    display_name = "Sum (calibrated)"

    @dataclasses.dataclass
    class Options:
        """Per-modality logit calibration of the Sum head."""

        momentum: float = 0.1  # weight of the current batch in the running logit scale

        def __post_init__(self) -> None:
            if not 0.0 < self.momentum <= 1.0:
                raise ValueError(f"momentum must lie in (0, 1], got {self.momentum}")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = SumHead(self.modalities, self.dim, self.num_classes)
        self.register_buffer("scales", torch.ones(len(self.modalities)))

    def factors(self) -> Tensor:
        """``(n,)``: ``s_bar / s_m`` for every modality."""
        return self.scales.mean() / self.scales.clamp_min(1e-6)

    def loss(self, batch: Batch, step: Step, epoch: int) -> Tensor:
        features = self.encode(batch.inputs)
        with torch.no_grad():
            current = torch.stack([logit_scale(features[m] @ self.head.heads[m].weight.T) for m in self.modalities])
            if self.in_sharded_step():
                current = self.world.batch_mean(current)
            self.scales.mul_(1 - self.options.momentum).add_(self.options.momentum * current)
        return torch.nn.functional.cross_entropy(self.logits_from_features(features, self.modalities), batch.labels)

    def logits_from_features(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        ref = next(iter(features.values()))
        logits = ref.new_zeros(ref.shape[0], self.num_classes)
        for m, factor in zip(self.modalities, self.factors()):
            if m in present:
                head = self.head.heads[m]
                logits = logits + factor * (features[m] @ head.weight.T) + head.bias
        return logits
