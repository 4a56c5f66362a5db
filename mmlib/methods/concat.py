"""Concat: joint training of all encoders through one linear classifier on concatenated features.

The plain joint-training baseline of the paper's Table 1 (Eq. 5 with Fusion = concatenation).
An absent modality enters the classifier as zeros (OGM-GE's convention for unimodal evaluation).
"""

from __future__ import annotations

from torch import Tensor

from mmlib.fusion import ConcatHead
from mmlib.methods.base import Method, register_method


@register_method
class Concat(Method):
    name = "concat"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = ConcatHead(self.modalities, self.dim, self.num_classes)

    def logits_from_features(self, features: dict[str, Tensor], present) -> Tensor:
        return self.head(features, present)
