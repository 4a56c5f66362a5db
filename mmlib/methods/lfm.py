"""LFM: learning the modality fusion / alignment trade-off (Yang et al., NeurIPS 2024).

Paper: "Facilitating Multimodal Classification via Dynamically Learning Modality Gap" (Yang, Wan,
Zhang, Wu, Li, Shen, et al.; NeurIPS 2024). Public code: ``njustkmg/NeurIPS24-LFM``
(``Crema_epoch.py``: heuristic schedule; ``Crema_epoch_learnable.py``: learned weight).

Model: one linear head per modality, ``o_m = W_m X_m + b_m``; the fused prediction is the mean of
the unimodal logits, ``o = (1/n) sum_m o_m`` (the code: ``0.5 * o_v + 0.5 * o_a``). Loss, per batch:

    L = 2 * (a_1(e) * CE(o, y) + a_2(e) * JS(p_1, ..., p_n)),      p_m = softmax(o_m)

with JS the (generalised, equal-weight) Jensen-Shannon divergence, JS = (1/n) sum_m KL(p_m || M),
M = (1/n) sum_m p_m (batch mean of the per-sample value). The epoch weight is the code's
polynomial fit of its learned weights (``getAlpha_Learnable_Fitted``):

    a_1(e) = sum_i c_i e^i,  c = (2.04623704e-01, 3.35472727e-03, 1.22989557e-04,
                                  -2.92947416e-06, 2.23835486e-08, -5.39717505e-11)
    a_2(e) = 1 - a_1(e)      (the code's second coefficient list is exactly 1 - the first)

with e the 0-based epoch (our epoch - 1), times ``schedule_scale``. The fit was made on a
200-epoch CREMA-D run: a_1 = 0.20 at e = 0, 0.25 at e = 10, 0.30 at e = 19, 0.44 at e = 50,
0.54 at e = 100, 0.82 at e = 150, 0.92 at e = 199.
``schedule_scale = 10`` maps a 20-epoch run onto that 200-epoch curve.

Options
    schedule        "fitted" (the code's polynomial) | "constant" (a_1 = ``cls_weight``)
    schedule_scale  multiplies the epoch index fed to the polynomial
    cls_weight      a_1 when ``schedule="constant"``
    divergence      "js" (the paper's Jensen-Shannon) | "code" (what ``Alignment`` computes)

Deliberate differences from the public code
- The code's ``Alignment`` calls ``F.kl_div(p.log(), m)``, which is KL(M || p), not KL(p || M);
  its "JS" is 0.5 (KL(M||p_a) + KL(M||p_v)). We use the true JS by default; ``divergence="code"``
  gives the code's quantity.
- The learned variant (``getAlpha_Learnable``) is not implemented: its update of the weight uses
  ``hessian_vector_prod[0].mean()``, the mean of the Hessian-vector product restricted to the
  model's first parameter tensor, which is not the hypergradient of any stated objective; we
  could not make it sound without inventing a different method.
- The paper describes the alignment term as a contrastive/gap term; we follow the code (JS).

Unimodal accuracy: ``present=(m,)`` gives modality m's own head ``o_m``; a subset S averages
the heads of S; no modality gives zero logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmlib.data.base import Batch
from mmlib.fusion import SumHead
from mmlib.methods.base import Method, register_method

FITTED_COEFFICIENTS = (2.04623704e-01, 3.35472727e-03, 1.22989557e-04, -2.92947416e-06, 2.23835486e-08, -5.39717505e-11)
SCHEDULES = ("fitted", "constant")
DIVERGENCES = ("js", "code")


@dataclass
class LFMOptions:
    """LFM: the schedule of the CE / alignment weights and the divergence."""

    schedule: str = "fitted"
    schedule_scale: float = 1.0
    cls_weight: float = 0.5
    divergence: str = "js"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"lfm: schedule={self.schedule!r} is not valid; choose one of {SCHEDULES}")
        if self.divergence not in DIVERGENCES:
            raise ValueError(f"lfm: divergence={self.divergence!r} is not valid; choose one of {DIVERGENCES}")
        if not 0.0 <= self.cls_weight <= 1.0:
            raise ValueError(f"lfm: cls_weight must lie in [0, 1], got {self.cls_weight}")


def fitted_weights(epoch_index: float) -> tuple[float, float]:
    """(a_1, a_2) of the code's polynomial at the 0-based epoch ``epoch_index``."""
    a1 = sum(c * epoch_index**i for i, c in enumerate(FITTED_COEFFICIENTS))
    return a1, 1.0 - a1


def alignment(logits: Sequence[Tensor], divergence: str = "js") -> Tensor:
    """Mean over the batch of JS(p_1..p_n) = (1/n) sum_m KL(p_m || M) ("js") or (1/n) sum_m KL(M || p_m) ("code")."""
    log_p = torch.stack([F.log_softmax(z.float(), dim=-1) for z in logits])  # (n, B, C)
    log_mix = torch.logsumexp(log_p, dim=0) - torch.log(torch.tensor(float(len(logits))))
    if divergence == "js":
        kl = (log_p.exp() * (log_p - log_mix)).sum(-1)
    else:
        kl = (log_mix.exp() * (log_mix - log_p)).sum(-1)
    return kl.mean(dim=0).mean()


@register_method
class LFM(Method):
    name = "lfm"
    Options = LFMOptions

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = SumHead(self.modalities, self.dim, self.num_classes)
        self._weights = (0.5, 0.5)

    def weights(self, epoch: int) -> tuple[float, float]:
        if self.options.schedule == "constant":
            return self.options.cls_weight, 1.0 - self.options.cls_weight
        return fitted_weights((epoch - 1) * self.options.schedule_scale)

    def epoch_plan(self, epoch: int):
        self._weights = self.weights(epoch)
        return super().epoch_plan(epoch)

    def describe_epoch(self) -> dict:
        return {"lfm_weights": list(self._weights)}

    def loss(self, batch: Batch, step, epoch: int) -> Tensor:
        features = self.encode(batch.inputs)
        unimodal = [self.head.heads[m](features[m]) for m in self.modalities]
        fused = torch.stack(unimodal).mean(dim=0)
        a1, a2 = self.weights(epoch)
        loss = a1 * F.cross_entropy(fused, batch.labels)
        if len(unimodal) > 1:
            loss = loss + a2 * alignment(unimodal, self.options.divergence)
        return 2.0 * loss

    def logits_from_features(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        k = sum(1 for m in self.modalities if m in present)
        return self.head(features, present) / max(k, 1)
