"""OGM and OGM-GE: on-the-fly gradient modulation (Peng et al., CVPR 2022).

Paper: "Balanced Multimodal Learning via On-the-fly Gradient Modulation" (Peng, Wei, Deng, Wang,
Hu; CVPR 2022). Public code: ``GeWu-Lab/OGM-GE_CVPR2022`` (``main.py``, ``train_epoch``).

Model: the Concat model (encoders, one linear head on ``[X_1; ...; X_n]``, absent modality zeroed).
Loss: plain cross-entropy of the fused prediction. What differs is the gradient hook.

Per batch (paper Eq. 9-10), with ``W_m`` modality m's column slice of the head and ``b`` its bias,
the confidence of modality m on the true class is

    s_m = sum_i softmax(W_m X_m,i + b / n)[y_i]                    (the code uses b / 2 for n = 2)

and its discrepancy ratio against the others is rho_m = s_m / mean_{j != m} s_j (for n = 2 this is
the paper's rho_a = s_a / s_v; for n > 2 each modality is compared with the mean confidence of the
others: our generalisation, not in the paper). The dominant modality (rho_m > 1) gets the coefficient

    paper       k_m = 1 - tanh(alpha * rho_m)             (Eq. 10, and the released code)
    early_code  k_m = 1 - tanh(alpha * relu(rho_m - 1))   (the code from 65b81b1 to a974f3c)

and every other modality k_m = 1. Sources of each form:
- ``paper``: the authors quote their Eq. 10 in the code as "1 - tanh(alpha * rho_t_u), if
  rho_t_u > 1; 1, else" (``main.py`` lines 112-117 at commit 343dc1d), a comment unchanged since
  commit 65b81b1 (lines 100-105); the released code computes exactly that,
  ``1 - tanh(args.alpha * relu(ratio_v))`` with ratio_v > 1 (lines 119-124; relu is the identity
  there). The paper's text itself was not retrievable from this project's search corpora; the
  label rests on the authors' own quotation of it.
- ``early_code``: the first release of the 1 - tanh(alpha * relu(ratio - 1)) coefficient (commit
  65b81b1, 2022-03-30, ``main.py`` lines 107-108) computed
  ``1 - tanh(args.alpha * relu(ratio - 1))`` for both modalities (the weaker one gets
  relu(...) = 0, so k = 1); commit a974f3c (2022-05-29) replaced it with the ``paper`` form. It is
  continuous at rho = 1, where ``paper`` jumps from 1 to 1 - tanh(alpha). It was not the code's
  first rule: the two commits before it that day (edee4a5, a051e43, ``main.py`` lines 87-115)
  multiplied audio's gradient by 1 - tanh(relu(alpha * r)) and visual's by 1 - tanh(relu(1 / r - 1)),
  r = s_a / s_v, neither of which is built here.

Between epochs ``modulation_starts`` and ``modulation_ends`` (inclusive) the gradient of every
parameter of encoder m is multiplied by k_m. OGM-GE (Eq. 11) adds Gaussian noise:
g <- k_m g + N(0, std(g)^2), std taken per parameter tensor, of the gradient before modulation, as
in the code (``parms.grad.std()``), on every modulated tensor of every modality (also those with
k_m = 1).

Options (hyperparameters in one place)
    alpha              modulation strength; 0.1 is the README's "default modulation setting"
                       (it recommends 0.8 for CREMA-D, 0.1 for VGGSound)
    modulation_starts  first epoch with modulation (1-based; the code's default 0 of 0-based)
    modulation_ends    last epoch with modulation; the code modulates epochs 0-50 of 100, the
                       first half, so our default is 10 of the default 20 epochs
    coefficient        "paper" (rho inside tanh: Eq. 10 and the released code) |
                       "early_code" (relu(rho - 1) inside tanh: 65b81b1, the first
                       release of that coefficient)
    modulate           "all" (every encoder parameter, as the paper says) | "conv" (only 4-D conv
                       weights, as the code does: ``len(parms.grad.size()) == 4``)

Deliberate differences from the public code
- ``modulate="all"`` by default: the code touches only conv weights, which would leave MLP
  encoders (mfeat, synthetic) unmodulated. ``modulate="conv"`` reproduces the code.
- At an exact tie (all rho = 1) nothing is modulated; the code modulates audio at ratio_v == 1.
- Tensors with one element get no GE noise (their std is undefined).
- Unimodal accuracy (``present=(m,)``) is the concat head with the other modalities zeroed and the
  full bias, the convention of every method here; the code's evaluation uses ``b / 2``.

Several processes (``torchrun``; :mod:`mmlib.distributed`): the confidence scores are sums over
the batch, so each rank's shard sums are summed over ranks before the coefficients are formed; the
gradients are modulated after the loop has summed them over ranks, and the GE noise is drawn from
torch's generator, which every rank has seeded and advanced alike: the same noise on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmlib.data.base import Batch
from mmlib.fusion import ConcatHead
from mmlib.methods.base import Method, Step, register_method
from mmlib.tuning.space import Float, SearchSpace

COEFFICIENT_FORMS = ("paper", "early_code")
MODULATE_SCOPES = ("all", "conv")


@dataclass
class OGMOptions:
    """OGM: alpha, the modulation window, the coefficient form and which encoder parameters."""

    alpha: float = 0.1
    modulation_starts: int = 1
    modulation_ends: int = 10
    coefficient: str = "paper"
    modulate: str = "all"

    def __post_init__(self) -> None:
        if self.coefficient not in COEFFICIENT_FORMS:
            raise ValueError(f"ogm: coefficient={self.coefficient!r} is not valid; choose one of {COEFFICIENT_FORMS}")
        if self.modulate not in MODULATE_SCOPES:
            raise ValueError(f"ogm: modulate={self.modulate!r} is not valid; choose one of {MODULATE_SCOPES}")
        if self.alpha < 0:
            raise ValueError(f"ogm: alpha must be >= 0, got {self.alpha}")


# What `python -m mmlib tune` may change (mmlib.tuning.space), for ogm and ogm_ge alike.
SEARCH_SPACE = SearchSpace(
    alpha=Float(0.05, 1.0, log=True, source="OGM-GE README: 0.1 default, 0.8 for CREMA-D"),
)


def confidence_scores(unimodal_logits: dict[str, Tensor], labels: Tensor) -> dict[str, float]:
    """s_m = sum over the batch of softmax(logits_m)[y]. ``unimodal_logits[m]: (B, C)``, ``labels: (B,)``."""
    return {m: float(F.softmax(z.float(), dim=-1).gather(1, labels[:, None]).sum()) for m, z in unimodal_logits.items()}


def modulation_coefficients(scores: dict[str, float], alpha: float, form: str = "paper") -> dict[str, float]:
    """k_m from confidences: 1 - tanh(alpha * rho_m) ("paper", Eq. 10) or 1 - tanh(alpha * relu(rho_m - 1))
    ("early_code") where rho_m = s_m / mean of the others' s is above 1; else 1."""
    if form not in COEFFICIENT_FORMS:
        raise ValueError(f"coefficient form must be one of {COEFFICIENT_FORMS}, got {form!r}")
    names = list(scores)
    coefficients = {}
    for m in names:
        others = [scores[j] for j in names if j != m]
        if not others:
            coefficients[m] = 1.0
            continue
        rho = scores[m] / max(sum(others) / len(others), 1e-12)
        if rho > 1:
            x = rho if form == "paper" else rho - 1.0
            coefficients[m] = 1.0 - float(torch.tanh(torch.tensor(alpha * x)))
        else:
            coefficients[m] = 1.0
    return coefficients


def modulate_gradient(grad: Tensor, coefficient: float, noise: bool) -> Tensor:
    """``k * g`` (OGM) or ``k * g + N(0, std(g)^2)`` (OGM-GE, std of the unmodulated gradient)."""
    out = grad * coefficient
    if noise and grad.numel() > 1:
        out = out + torch.randn_like(grad) * (grad.std() + 1e-8)
    return out


@register_method
class OGM(Method):
    name = "ogm"
    display_name = "OGM"
    Options = OGMOptions
    gaussian_enhancement = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = ConcatHead(self.modalities, self.dim, self.num_classes)
        self._coefficients: dict[str, float] = {}
        self._epoch_sums: dict[str, float] = {m: 0.0 for m in self.modalities}
        self._epoch_steps = 0

    def begin_epoch(self, epoch: int) -> list[list[Step]]:
        """Reset the epoch's sums of coefficients (recorded per epoch); one joint pass."""
        self._epoch_sums = {m: 0.0 for m in self.modalities}
        self._epoch_steps = 0
        return super().begin_epoch(epoch)

    def unimodal_logits(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        """Each modality's share of the head, ``W_m X_m + b / n`` (``(B, C)`` each)."""
        share = self.head.linear.bias / len(self.modalities)
        return {m: self.head.slice_logits(m, features[m]) + share for m in self.modalities}

    def loss(self, batch: Batch, step: Step, epoch: int) -> Tensor:
        features = self.encode(batch.inputs)
        with torch.no_grad():
            scores = confidence_scores(self.unimodal_logits(features), batch.labels)
        if self.in_sharded_step():  # the global batch's sums
            summed = self.world.all_reduce(torch.tensor([scores[m] for m in self.modalities],
                                                        device=batch.labels.device))
            scores = dict(zip(self.modalities, summed.tolist()))
        self._coefficients = modulation_coefficients(scores, self.options.alpha, self.options.coefficient)
        return F.cross_entropy(self.head(features, self.modalities), batch.labels)

    def in_window(self, epoch: int) -> bool:
        return self.options.modulation_starts <= epoch <= self.options.modulation_ends

    def after_backward(self, batch: Batch, step: Step, epoch: int) -> None:
        self._epoch_steps += 1
        for m in self.modalities:
            self._epoch_sums[m] += self._coefficients[m]
        if not self.in_window(epoch):
            return
        for m in self.modalities:
            for p in self.encoders[m].parameters():
                if p.grad is None or (self.options.modulate == "conv" and p.grad.dim() != 4):
                    continue
                p.grad = modulate_gradient(p.grad, self._coefficients[m], self.gaussian_enhancement)

    def describe_epoch(self) -> dict:
        steps = max(self._epoch_steps, 1)
        return {"ogm_coefficient": {m: s / steps for m, s in self._epoch_sums.items()}}

    def logits_from_features(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        return self.head(features, present)


@register_method
class OGMGE(OGM):
    name = "ogm_ge"
    display_name = "OGM-GE"
    gaussian_enhancement = True
