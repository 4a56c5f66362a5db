"""Sum: joint training of all encoders through one linear head per modality, logits summed.

The "Sum" baseline of the paper's Table 1 (Eq. 5 with Fusion = sum of per-modality classifiers,
``g(X) = sum_m (W_m X_m + b_m)``), as OGM-GE's ``SumFusion`` (``fc_x(x) + fc_y(y)``).

Where the paper is silent, and what the code chose

- Unimodal accuracy, which the paper reports without its rule: ``logits_from_features(features,
  (m,))`` is modality m's own head ``W_m X_m + b_m``; an absent modality's head is left out of the
  sum (equivalently, its feature is zero and its bias dropped). With no modality present the
  logits are zero. Not measured against another convention.
"""

from __future__ import annotations

from torch import Tensor

from mmlib.fusion import SumHead
from mmlib.methods.base import Method, register_method
from mmlib.tuning.space import SearchSpace

SEARCH_SPACE = SearchSpace()  # no options of its own: lr and weight decay (mmlib.tuning.space.COMMON)


@register_method
class Sum(Method):
    name = "sum"
    display_name = "Sum"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = SumHead(self.modalities, self.dim, self.num_classes)

    def logits_from_features(self, features: dict[str, Tensor], present) -> Tensor:
        return self.head(features, present)
