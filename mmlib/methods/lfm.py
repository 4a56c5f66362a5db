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

Learned weight (``schedule="learned"``; the paper's bilevel view, made sound): before each epoch's
first step, a_1 takes one step of normalised hypergradient descent on the validation loss after one
look-ahead step of the model. With ``theta' = theta - eta grad L_train(theta, a_1)`` and
``L_train = a_1 CE + (1 - a_1) JS`` (linear in a_1), the first-order hypergradient is

    d CE_val(theta') / d a_1  ~  -eta  g_val . (g_CE - g_JS),

g_val the gradient of the fused CE on the validation batch, g_CE and g_JS the gradients of the two
training terms on the epoch's first training batch, all at theta. The step is

    a_1 <- clip(a_1 + weight_lr * cos(g_val, g_CE - g_JS), 0.05, 0.95):

a_1 grows when moving weight to the CE term lowers the validation loss faster than moving it to
the alignment term (the cosine gives the hypergradient's sign with a bounded step, independent of
the unknown learning rate eta). a_1 starts at ``cls_weight`` and is saved in the checkpoint.

Options
    schedule        "fitted" (the code's polynomial) | "constant" (a_1 = ``cls_weight``) | "learned"
    schedule_scale  multiplies the epoch index fed to the polynomial
    cls_weight      a_1 when ``schedule="constant"``; the starting a_1 when ``"learned"``
    weight_lr       step size of the learned a_1 (per epoch, at most this much)
    divergence      "js" (the paper's Jensen-Shannon) | "code" (what ``Alignment`` computes)

Deliberate differences from the public code
- The code's ``Alignment`` calls ``F.kl_div(p.log(), m)``, which is KL(M || p), not KL(p || M);
  its "JS" is 0.5 (KL(M||p_a) + KL(M||p_v)). We use the true JS by default; ``divergence="code"``
  gives the code's quantity.
- The code's learned variant (``getAlpha_Learnable``) updates the weight with
  ``hessian_vector_prod[0].mean()``, the mean of a Hessian-vector product restricted to the model's
  first parameter tensor, computed on half of the first validation batch only: that is not the
  hypergradient of any stated objective. ``schedule="learned"`` replaces it by the first-order
  hypergradient above (same per-epoch cadence, same clip to [0.05, 0.95], same use of the first
  validation batch); the code starts at a_1 = 0.05, ours at ``cls_weight``.
- The paper describes the alignment term as a contrastive/gap term; we follow the code (JS).

Unimodal accuracy: ``present=(m,)`` gives modality m's own head ``o_m``; a subset S averages
the heads of S; no modality gives zero logits.

Several processes (``torchrun``): refused, because its learned weight takes a hypergradient step on
one validation batch through second derivatives of the shard's loss; that step is not yet made the
global batch's (``distributed_refusal``; ``python -m mmlib sweep`` runs
several runs at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmlib.data.base import Batch
from mmlib.fusion import SumHead
from mmlib.methods.base import Method, PassContext, Step, register_method
from mmlib.tuning.space import Float, SearchSpace

FITTED_COEFFICIENTS = (2.04623704e-01, 3.35472727e-03, 1.22989557e-04, -2.92947416e-06, 2.23835486e-08, -5.39717505e-11)
SCHEDULES = ("fitted", "constant", "learned")
LEARNED_RANGE = (0.05, 0.95)
DIVERGENCES = ("js", "code")


@dataclass
class LFMOptions:
    """LFM: the schedule of the CE / alignment weights and the divergence."""

    schedule: str = "fitted"
    schedule_scale: float = 1.0
    cls_weight: float = 0.5
    weight_lr: float = 0.05
    divergence: str = "js"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"lfm: schedule={self.schedule!r} is not valid; choose one of {SCHEDULES}")
        if self.divergence not in DIVERGENCES:
            raise ValueError(f"lfm: divergence={self.divergence!r} is not valid; choose one of {DIVERGENCES}")
        if not 0.0 <= self.cls_weight <= 1.0:
            raise ValueError(f"lfm: cls_weight must lie in [0, 1], got {self.cls_weight}")
        if self.weight_lr < 0:
            raise ValueError(f"lfm: weight_lr must be >= 0, got {self.weight_lr}")


# What `python -m mmlib tune` may change (mmlib.tuning.space): the stretch of the fitted schedule,
# from the code's own epochs (1) to a 20-epoch run mapped onto its 200-epoch curve (10).
SEARCH_SPACE = SearchSpace(
    schedule_scale=Float(1.0, 20.0, log=True, source="LFM code getAlpha_Learnable_Fitted (1); 20 of 200 epochs (10)"),
)


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
    display_name = "LFM"
    Options = LFMOptions
    distributed_refusal = ('its learned weight takes a hypergradient step on one validation batch through second '
                           "derivatives of the shard's loss; that step is not yet made the global batch's")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = SumHead(self.modalities, self.dim, self.num_classes)
        self._weights = (0.5, 0.5)
        self._learned_a1 = self.options.cls_weight
        self._validation_batch: Callable[[], Batch] | None = None

    def weights(self, epoch: int) -> tuple[float, float]:
        if self.options.schedule == "constant":
            return self.options.cls_weight, 1.0 - self.options.cls_weight
        if self.options.schedule == "learned":
            return self._learned_a1, 1.0 - self._learned_a1
        return fitted_weights((epoch - 1) * self.options.schedule_scale)

    def begin_epoch(self, epoch: int) -> list[list[Step]]:
        """The epoch's weights (a_1, a_2); one joint pass."""
        self._weights = self.weights(epoch)
        return super().begin_epoch(epoch)

    def begin_pass(self, context: PassContext) -> None:
        """With the learned schedule, a hypergradient step is due at the pass's first batch."""
        if self.options.schedule == "learned" and len(self.modalities) > 1:
            self._validation_batch = context.validation_batch

    def begin_step(self, batch: Batch, step: Step, epoch: int) -> None:
        """The learned schedule's hypergradient step on a_1, at the first batch of each pass."""
        if self._validation_batch is not None:
            self.update_learned_weight(batch, self._validation_batch())
            self._validation_batch = None
            self._weights = self.weights(epoch)

    def describe_epoch(self) -> dict:
        return {"lfm_weights": list(self._weights)}

    def terms(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """CE of the fused (mean) logits and the alignment divergence (None with one modality)."""
        features = self.encode(batch.inputs)
        unimodal = [self.head.heads[m](features[m]) for m in self.modalities]
        ce = F.cross_entropy(torch.stack(unimodal).mean(dim=0), batch.labels)
        return ce, (alignment(unimodal, self.options.divergence) if len(unimodal) > 1 else None)

    def loss(self, batch: Batch, step: Step, epoch: int) -> Tensor:
        ce, divergence = self.terms(batch)
        a1, a2 = self.weights(epoch)
        loss = a1 * ce if divergence is None else a1 * ce + a2 * divergence
        return 2.0 * loss

    def update_learned_weight(self, train_batch: Batch, validation_batch: Batch) -> float:
        """One normalised hypergradient step on a_1 (module docstring); returns the cosine used."""
        params = [p for p in self.parameters() if p.requires_grad]
        ce, divergence = self.terms(train_batch)
        g_ce = torch.autograd.grad(ce, params, retain_graph=True, allow_unused=True)
        g_js = torch.autograd.grad(divergence, params, allow_unused=True)
        g_val = torch.autograd.grad(self.terms(validation_batch)[0], params, allow_unused=True)
        direction = _flat(g_ce, params) - _flat(g_js, params)
        cosine = float(F.cosine_similarity(_flat(g_val, params), direction, dim=0))
        low, high = LEARNED_RANGE
        self._learned_a1 = min(high, max(low, self._learned_a1 + self.options.weight_lr * cosine))
        return cosine

    def logits_from_features(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        k = sum(1 for m in self.modalities if m in present)
        return self.head(features, present) / max(k, 1)

    def get_extra_state(self) -> dict:
        return {"learned_a1": self._learned_a1}

    def set_extra_state(self, state: dict) -> None:
        self._learned_a1 = state["learned_a1"]


def _flat(grads: Sequence[Tensor | None], params: Sequence[Tensor]) -> Tensor:
    """One vector of all gradients, zeros where a parameter got none."""
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1).float() for g, p in zip(grads, params)])
