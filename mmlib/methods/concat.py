"""Concat: joint training of all encoders through one linear classifier on concatenated features.

The plain joint-training baseline of the paper's Table 1 (Eq. 5 with Fusion = concatenation).

Where the paper is silent, and what the code chose

- The paper names the baseline and reports its unimodal accuracies without saying how a
  concatenation is evaluated on one modality: an absent modality enters the classifier as zeros
  (OGM-GE's convention for unimodal evaluation), its slice's weights and the bias kept. The
  same zeros give the subset values of Eq. 7 and the missing-modality accuracies. Not measured
  against another convention.
"""

from __future__ import annotations

from torch import Tensor

from mmlib.fusion import ConcatHead
from mmlib.methods.base import Method, register_method
from mmlib.tuning.space import SearchSpace

SEARCH_SPACE = SearchSpace()  # no options of its own: lr and weight decay (mmlib.tuning.space.COMMON)


@register_method
class Concat(Method):
    name = "concat"
    display_name = "Concat"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = ConcatHead(self.modalities, self.dim, self.num_classes)

    def logits_from_features(self, features: dict[str, Tensor], present) -> Tensor:
        return self.head(features, present)
