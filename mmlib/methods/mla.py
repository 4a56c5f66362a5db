"""MLA: multimodal learning with alternating unimodal adaptation (Zhang, Latham, Yao; CVPR 2024).

Paper: "Multimodal Representation Learning by Alternating Unimodal Adaptation". Public code:
``Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation`` (``main.py``,
``utils/utils.py: GSPlugin``).

Model: encoders f_m and ONE linear head g(X) = W X + b shared by every modality.

Training (paper Sec. 3.2): every batch steps through the modalities in turn; the step for m
minimises CE(g(f_m(x_m)), y) and updates f_m and g. Between backward and the optimizer step the
head's weight gradient is projected (paper Sec. 3.3, gradient modification after OWM): with r the
batch mean of the features that entered the head at a previous step and P the projector
(P_0 = I) updated by the recursive least-squares rule

    k = P r,    P <- P - k k^T / (alpha + r^T k),

the gradient becomes  dW <- dW P  (``(C, d) @ (d, d)``). P is symmetric, so dW P r ~ 0 for every
stored r: the head's update leaves the logits of the previously seen feature directions (almost:
up to the regulariser alpha) unchanged, so one modality's step does not overwrite what the head
learnt from the others. P is updated after each step with that step's r, so the projection at a
step uses the directions of every earlier step (all modalities, as the code's single shared P).
The bias gradient is not projected (as in the code).

Inference (paper Sec. 3.4): test-time dynamic fusion weighted by uncertainty. Per sample,
H_m = -sum_c p_mc log p_mc with p_m = softmax(g(X_m)), weights w_m = softmax_m(-H_m) (equal to the
code's exp(max H - H_m) / sum), logits = sum_m w_m g(X_m) over the present modalities.

Options
    projection_alpha   alpha of the RLS update (regulariser; smaller = closer to exact orthogonality)
    projection         "previous" (project with the directions of earlier steps, then store the
                       current one: OWM) | "code" (the arithmetic of the authors' GSPlugin, below)
                       | "none" (no projection: what the released code effectively does, see below)
    alpha_schedule     "constant" (alpha = projection_alpha throughout) | "code" (the code's decay within
                       each epoch: alpha = projection_alpha ** (1 + b / batches) at batch b, from 0.1
                       to 0.01 with the default)
    entropy_weights    "sample" (one weight per sample, the paper) | "batch" (the code's
                       ``calculate_entropy``: a softmax over the *batch* axis, entropy summed over
                       the whole batch, one scalar weight per modality per batch)

Deliberate differences from the public code
- The code's projection never fires: ``GSPlugin.before_update`` looks for a parameter named
  ``"module.weight"`` in ``fusion_module.fc_out.named_parameters()``, whose weight is named
  ``"weight"``. Here the projection is applied.
- ``projection="code"`` is the arithmetic ``GSPlugin.before_update`` would do if it fired
  (``utils/utils.py`` lines 26-41 at commit ab6c184): nothing at the first step of the run
  (``train_exp_counter != 0``, line 29; ``main.py`` counts every unimodal step, lines 437-454);
  at every later step, with r the step's batch-mean feature as a column and k = P r (line 35),

      P <- P - (k k^T) / (alpha + k r^T)      the division elementwise by the d x d matrix
                                              alpha + k r^T (line 36: ``torch.mm(k, r)``)
      P <- P / ||P||_F                         (lines 38-40)
      dW <- dW P^T                             (line 41)

  so P is updated with the *current* step's direction before the current gradient is projected,
  and P is not symmetric after the first update whose k differs from r. This is not the
  recursive-least-squares projector (whose denominator is the scalar alpha + r^T k): it keeps no
  exact orthogonality to the stored directions, and an entry of alpha + k r^T near 0 makes P blow
  up. Our default uses only earlier steps' directions with the scalar RLS denominator (OWM, the
  paper's intent: protect what was learnt from the other modalities).
- The code decays alpha within each epoch, alpha = 0.1 ** (1 + batch_index / len(loader)), from
  0.1 to 0.01 (``alpha_schedule="code"``); by default alpha is the constant ``projection_alpha``.
- Per-sample entropy weights by default (the paper's description); the code's per-batch scalar
  (which makes a prediction depend on the other samples in the batch) is ``entropy_weights="batch"``.
- The code's modality order is fixed (audio, visual[, text]); ours is the dataset's listed order.

Several processes (``torchrun``; :mod:`mmlib.distributed`): r is the mean over the global batch
(each rank's shard mean weighted by its share, summed over ranks), and the head's gradient is
projected after the loop has summed it over ranks, so P and the projected gradient are the same
on every rank and those of one process (up to the order of float sums).

Unimodal accuracy: ``present=(m,)`` is g(X_m), the shared head on modality m alone (the weights
reduce to 1). No modality: g(0) = b.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmlib.data.base import Batch
from mmlib.methods.base import Method, PassContext, Step, register_method
from mmlib.tuning.space import Float, SearchSpace

PROJECTIONS = ("previous", "code", "none")
ALPHA_SCHEDULES = ("constant", "code")
ENTROPY_WEIGHTS = ("sample", "batch")


@dataclass
class MLAOptions:
    """MLA: the head-gradient projection and the test-time entropy weights."""

    projection_alpha: float = 0.1
    projection: str = "previous"
    alpha_schedule: str = "constant"
    entropy_weights: str = "sample"

    def __post_init__(self) -> None:
        if self.projection not in PROJECTIONS:
            raise ValueError(f"mla: projection={self.projection!r} is not valid; choose one of {PROJECTIONS}")
        if self.alpha_schedule not in ALPHA_SCHEDULES:
            raise ValueError(f"mla: alpha_schedule={self.alpha_schedule!r} is not valid; choose one of "
                             f"{ALPHA_SCHEDULES}")
        if self.entropy_weights not in ENTROPY_WEIGHTS:
            raise ValueError(f"mla: entropy_weights={self.entropy_weights!r} is not valid; choose one of "
                             f"{ENTROPY_WEIGHTS}")
        if self.projection_alpha <= 0:
            raise ValueError(f"mla: projection_alpha must be > 0, got {self.projection_alpha}")


# What `python -m mmlib tune` may change (mmlib.tuning.space): the RLS regulariser alpha.
SEARCH_SPACE = SearchSpace(
    projection_alpha=Float(0.01, 1.0, log=True, source="MLA code GSPlugin: alpha = 0.1"),
)


def update_projector(P: Tensor, r: Tensor, alpha: float) -> Tensor:
    """One RLS step: ``P - (P r)(P r)^T / (alpha + r^T P r)``. ``P: (d, d)``, ``r: (d,)``."""
    k = P @ r
    return P - torch.outer(k, k) / (alpha + r @ k)


def gsplugin_projector(P: Tensor, r: Tensor, alpha: float) -> Tensor:
    """The authors' GSPlugin update: ``k = P r``, ``P - (k k^T) / (alpha + k r^T)`` elementwise, then
    divided by its Frobenius norm. ``P: (d, d)``, ``r: (d,)``."""
    k = P @ r
    P = P - torch.outer(k, k) / (alpha + torch.outer(k, r))
    return P / torch.linalg.matrix_norm(P)


def entropy_weights(logits: Sequence[Tensor], mode: str = "sample") -> Tensor:
    """Fusion weights ``(n, B, 1)`` from unimodal logits ``(B, C)`` each: softmax over modalities of -entropy."""
    if mode == "sample":
        p = torch.stack([F.softmax(z.float(), dim=-1) for z in logits])  # (n, B, C)
        entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(-1, keepdim=True)  # (n, B, 1)
        return F.softmax(-entropy, dim=0)
    p = torch.stack([F.softmax(z.float(), dim=0) for z in logits])  # the code: softmax over the batch
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=(1, 2))  # (n,)
    batch = logits[0].shape[0]
    return F.softmax(-entropy, dim=0)[:, None, None].expand(len(logits), batch, 1)


@register_method
class MLA(Method):
    name = "mla"
    display_name = "MLA"
    Options = MLAOptions

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.head = nn.Linear(self.dim, self.num_classes)
        self.register_buffer("projector", torch.eye(self.dim))  # P, saved with the checkpoint
        self._direction: Tensor | None = None
        self._batches, self._steps_taken = 1, 0

    def begin_epoch(self, epoch: int) -> list[list[Step]]:
        """One pass; every batch takes one step per modality, in modality order."""
        return [[Step("modality", (m,)) for m in self.modalities]]

    def begin_pass(self, context: PassContext) -> None:
        self._batches, self._steps_taken = context.batches, 0

    def current_alpha(self) -> float:
        """alpha of the RLS update at the current step (constant, or the code's decay over the epoch's batches)."""
        alpha = self.options.projection_alpha
        if self.options.alpha_schedule == "constant":
            return alpha
        batch_index = self._steps_taken // len(self.modalities)
        return alpha ** (1.0 + batch_index / max(self._batches, 1))

    def loss(self, batch: Batch, step: Step, epoch: int) -> Tensor:
        (modality,) = step.modalities
        feature = self.encoders[modality](batch.inputs[modality])
        self._direction = feature.detach().float().mean(dim=0)
        if self.in_sharded_step():
            self._direction = self.world.batch_mean(self._direction)
        return F.cross_entropy(self.head(feature), batch.labels)

    @torch.no_grad()
    def project_head_gradient(self, direction: Tensor, first_step: bool = False) -> None:
        """Project ``head.weight.grad`` and store ``direction`` in P, in the order the option says.
        ``first_step``: the run's first step, which the code's GSPlugin skips."""
        mode, alpha = self.options.projection, self.current_alpha()
        if mode == "none" or (mode == "code" and first_step):
            return
        grad = self.head.weight.grad
        if mode == "code":
            self.projector.copy_(gsplugin_projector(self.projector, direction, alpha))
            if grad is not None:
                grad.copy_(grad @ self.projector.T)
            return
        if grad is not None:
            grad.copy_(grad @ self.projector)
        self.projector.copy_(update_projector(self.projector, direction, alpha))

    def after_backward(self, batch: Batch, step: Step, epoch: int) -> None:
        self.project_head_gradient(self._direction, first_step=epoch == 1 and self._steps_taken == 0)
        self._steps_taken += 1

    def logits_from_features(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        present = [m for m in self.modalities if m in present]
        if not present:
            ref = next(iter(features.values()))
            return self.head(torch.zeros(ref.shape[0], self.dim, device=ref.device, dtype=ref.dtype))
        logits = [self.head(features[m]) for m in present]
        if len(logits) == 1:
            return logits[0]
        weights = entropy_weights(logits, self.options.entropy_weights).to(logits[0].dtype)
        return (weights * torch.stack(logits)).sum(dim=0)
