"""Joint: fusion at the input, the paper's Table 3 baseline for frozen backbones (Sec. 5.4).

The usual fine-tuning of one multimodal model: the inputs of every modality (on frozen-backbone
data, the backbone's features) are concatenated *before* any trainable layer, one adapter
(Linear + ReLU, the paper's adapter) maps the concatenation to width d, and one linear classifier
reads it:

    z = W relu(A [x_1; ...; x_n] + a) + b.

There are no per-modality encoders: ``encode`` passes each modality's input through, flattened,
so unimodal accuracy and the linear probes (on the inputs themselves) are computed as for every
method.

Where the paper is silent, and what the code chose

- Sec. 5.4 says only that Joint fuses at the input level; here it gets the adapter the paper gives
  its own method (a linear layer and ReLU) on the concatenation, then one linear classifier.
  Not measured.
- Unimodal accuracy: an absent modality's input is zeroed at the concatenation (the book's
  convention, as Concat). Not measured against another.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from mmlib.methods.base import Method, register_method
from mmlib.tuning.space import SearchSpace

SEARCH_SPACE = SearchSpace()  # no options of its own: lr and weight decay (mmlib.tuning.space.COMMON)


@register_method
class Joint(Method):
    name = "joint"
    display_name = "Joint"

    def __init__(self, modalities, input_shapes, *args, **kwargs) -> None:
        super().__init__(modalities, input_shapes, *args, **kwargs)
        self.encoders = nn.ModuleDict({m: nn.Flatten() for m in self.modalities})
        self.widths = {m: int(torch.tensor(input_shapes[m]).prod()) for m in self.modalities}
        self.adapter = nn.Sequential(nn.Linear(sum(self.widths.values()), self.dim), nn.ReLU())
        self.classifier = nn.Linear(self.dim, self.num_classes)

    def logits_from_features(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        ref = next(iter(features.values()))
        parts = [features[m] if m in present else ref.new_zeros(ref.shape[0], self.widths[m]) for m in self.modalities]
        return self.classifier(self.adapter(torch.cat(parts, dim=-1)))
