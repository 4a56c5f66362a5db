"""CRMT: certifiable robust multi-modal training (Yang, Peng, Hu et al., ICLR 2024).

Paper: "Quantifying and Enhancing Multi-modal Robustness with Modality Preference" (Zequn Yang,
Yake Wei, Ce Liang, Di Hu; ICLR 2024). Public code: ``GeWu-Lab/Certifiable-Robust-Multi-modal-Training``
(``models/fusion_model.py: orthogonal_linear, OWNNorm``; ``train.py: train_CRMT_JT, get_lip,
the_second_step``). We implement CRMT-JT (joint training; the AT and mixup variants are not built).

Model: encoders phi_m, one weight block V_m ``(C, d)`` per modality (slices of one linear layer),
orthogonalised by orthogonal weight normalisation (OWN),

    W~_m = (Z Z^T)^{-1/2} Z,   Z = V_m - rowmean(V_m)      so  W~_m W~_m^T = I_C,

learnable modality scales a_m in R^C (init 0.1) and a bias b:

    o_m = W~_m phi_m(x_m)  (B, C),      h(x) = sum_m a_m * o_m + b.

Step 1 (epochs 1..E1): CE(h(x), y) + rho * mean_i log(sum_m sum_{k != y} exp(o_mk - o_my) + eps)
(the margin regulariser; the code writes sum_k exp(o_k) exp(-o_y) - 1, the same quantity, and adds
eps = 1e-5 inside the log: ``train_CRMT_JT``, ``train.py`` l. 73-74). The paper's regulariser has no
eps (``margin_eps = 0``, the default). The constant matters once the margins are large: with S the
double sum, the gradient of log(S + eps) is S / (S + eps) times that of log S, and S falls to ~1e-5
when every wrong class trails by ~15 logits, as step 1 of a 15-epoch mfeat run reaches (training
loss -25 by epoch 12), where the code's gradient is ~0.35x the paper's. The code's constant bounds
the regulariser below by rho log eps (its training loss levels off near -5 instead). On the main
comparison's grid it raised CRMT's accuracy significantly (rerun: ``python -m mmlib sweep`` with
``--option crmt.margin_eps=1e-5``); the default stays the paper's.

Step 2 (epochs E1 + 1 .. the run's last): everything is frozen but the scales a_m. With L_m,k the
Lipschitz constant of o_m,k in the input x_m (estimated as the largest ||d o_mk / d x_m|| over the
training set, in eval mode, once at the start of step 2), j the most likely wrong class of h(x), and
beta = b_y - b_j, the scales maximise the certified radius bound

    loss = - mean_i (sum_m (a_m,y o_m,y - a_m,j o_m,j) + beta) / sqrt(sum_m (a_m,y L_m,y + a_m,j L_m,j)^2).

Both steps run in every run, scaled to its length as the authors do: their ``train.py`` (commit
5c17d92) trains ``n_epochs`` joint epochs (line 17), calls ``get_lip`` (line 30), then runs
``the_second_step`` for ``range(1, opt.n_epochs // 3)``, i.e. n // 3 - 1 epochs (line 32): 140 + 45
with their ``cfgs/train.yaml``. A run of T epochs here takes the largest E1 with
E1 + max(E1 // 3 - 1, 1) <= T joint epochs and spends the rest on step 2 (:func:`joint_epochs_for`):
T = 15 gives 12 + 3, T = 20 gives 16 + 4, T = 2 gives 1 + 1, T = 185 gives the authors' 140 + 45.

The authors' Lipschitz estimate is zero for audio. ``get_lip`` (``train.py`` lines 116-126) loops
over the modalities (visual, then audio) after each class's backward and, inside that loop, zeroes
``audio.grad`` right after reading visual's gradient, so audio's gradient is read after it was
zeroed: ``Lip[1, :]`` (audio) stays 0 for every class, while visual's gradient is never zeroed and
accumulates over the classes (``Lip[0, k]`` bounds the sum of the gradients of classes 0..k). In
``the_second_step`` (lines 287-290) audio's term of the denominator is then 0, so the bound puts no
price on audio's scales: step 2 raises a_audio wherever audio's margin is positive, held back only by
the weight decay (1e-2) of its optimizer, and the radius it maximises depends on visual's constants
alone. Here both modalities' constants are estimated, each class's gradient on its own.

Options
    rho             weight of the margin regulariser (the code's configs: 2.0)
    joint_epochs    epochs of step 1 (E1); 0 (default) scales it to the run's length as above.
                    A positive value must leave at least one epoch of the run for step 2.
    margin_eps      the constant inside the margin regulariser's log: 0 (the paper) | 1e-5 (the code)
    orthogonalize   "full" (rows of each W~_m orthonormal: the paper) | "rows" (the code:
                    ``OWNNorm(norm_groups=outdim)`` whitens each row on its own, i.e. only centres
                    and normalises rows, which are then *not* mutually orthogonal)

Deliberate differences from the public code
- ``orthogonalize="full"`` by default: with ``norm_groups = outdim`` every OWN group is a single row,
  so the code's W~_m is row-normalised but not orthogonal; the paper's bound assumes orthogonality.
  Requires C < d.
- The Lipschitz constants are those of the unscaled unimodal scores o_m,k (the paper's bound).
  ``get_lip`` differentiates the fused output (which already contains a_m, then multiplies by a_m
  again) and reads the input gradients as described above (audio's 0, visual's summed over classes).
- Step 2 uses the run's optimizer (Adam, the run's learning rate and weight decay) on the scales;
  the code uses a fresh SGD (lr 0.03 * lr, momentum 0.9, weight decay 1e-2). The shared loop has
  one optimizer, and parameters without gradient are not updated.
- Step 2 runs the frozen encoders in eval mode (no dropout, BatchNorm running statistics fixed);
  the code calls ``model.train()`` (line 266), so dropout perturbs o_m and BatchNorm statistics
  keep moving while only the scales are meant to change.
- The code validates after every epoch of step 2 and keeps the best validated checkpoint across
  both steps; here the shared loop's selection does the same over the run's epochs.
- The margin term is computed with a log-sum-exp, by default without the code's ``+ 1e-5`` inside the
  log (``margin_eps=1e-5`` adds it, as ``logaddexp(logsumexp, log eps)``, stable at any margin).
- Unimodal accuracy: ``present=(m,)`` gives a_m * o_m + b (other modalities' inputs zero, as for
  every concat-style head here). No modality: b.

Several processes (``torchrun``): refused, because its Lipschitz estimate and second-step scales are
accumulated from each batch without a reduction over processes yet
(``distributed_refusal``; ``python -m mmlib sweep`` runs several runs at
once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmlib.data.base import Batch
from mmlib.methods.base import JOINT, Method, Step, eval_mode, register_method
from mmlib.tuning.space import Float, SearchSpace

ORTHOGONALIZE = ("full", "rows")
LIPSCHITZ = Step("lipschitz", optimize=False)  # the estimate of L before the first epoch of step 2
SCALES = Step("scales")


@dataclass
class CRMTOptions:
    """CRMT: margin weight rho, the length of step 1 and the orthogonalisation."""

    rho: float = 2.0
    joint_epochs: int = 0
    orthogonalize: str = "full"
    margin_eps: float = 0.0

    def __post_init__(self) -> None:
        if self.margin_eps < 0:
            raise ValueError("crmt: margin_eps must be >= 0 (0: the paper's log, 1e-5: the code's), got "
                             f"{self.margin_eps}")
        if self.orthogonalize not in ORTHOGONALIZE:
            raise ValueError(f"crmt: orthogonalize={self.orthogonalize!r} is not valid; choose one of {ORTHOGONALIZE}")
        if self.joint_epochs < 0:
            raise ValueError("crmt: joint_epochs must be >= 1 (or 0: scaled to the run's length), got "
                             f"{self.joint_epochs}")


# What `python -m mmlib tune` may change (mmlib.tuning.space): rho around the code's 2.0.
SEARCH_SPACE = SearchSpace(
    rho=Float(0.5, 8.0, log=True, source="CRMT code's configs: rho = 2.0"),
)


def joint_epochs_for(epochs: int) -> int:
    """Step 1's length E1 in a run of ``epochs``: the largest E1 with E1 + max(E1 // 3 - 1, 1) <= epochs
    (the authors' n joint epochs, then n // 3 - 1 scale epochs; at least one of each)."""
    if epochs < 2:
        raise ValueError(f"crmt: a run needs at least 2 epochs (step 1, then step 2), got epochs={epochs}")
    return max(n for n in range(1, epochs) if n + max(n // 3 - 1, 1) <= epochs)


def orthogonalize(weight: Tensor, mode: str = "full") -> Tensor:
    """OWN of a ``(C, d)`` block: ``(Z Z^T)^{-1/2} Z`` with Z row-centred ("full"), or each row alone ("rows")."""
    z = weight.float() - weight.float().mean(dim=-1, keepdim=True)
    if mode == "rows":
        return z / z.norm(dim=-1, keepdim=True)
    if z.shape[0] >= z.shape[1]:
        raise ValueError(f"crmt: orthogonalize='full' needs fewer classes than feature width, got {z.shape[0]} >= "
                         f"{z.shape[1]}; raise --hidden-dim or use orthogonalize='rows'")
    eigenvalues, vectors = torch.linalg.eigh(z @ z.T)
    return (vectors * eigenvalues.clamp_min(1e-12).rsqrt()) @ vectors.T @ z


def margin_regularizer(unimodal: Sequence[Tensor], labels: Tensor, eps: float = 0.0) -> Tensor:
    """mean_i log(sum_m sum_{k != y_i} exp(o_m,ik - o_m,iy_i) + eps). ``unimodal``: ``(B, C)`` each;
    ``eps``: 0 (the paper) or the code's 1e-5 (``train.py`` l. 74)."""
    o = torch.stack([u.float() for u in unimodal])  # (n, B, C)
    gap = o - o.gather(2, labels[None, :, None].expand(o.shape[0], -1, 1))
    gap = gap.masked_fill(F.one_hot(labels, o.shape[-1]).bool()[None], float("-inf"))
    log_sum = torch.logsumexp(gap.permute(1, 0, 2).flatten(1), dim=1)
    return (torch.logaddexp(log_sum, torch.tensor(math.log(eps), device=log_sum.device)) if eps > 0 else log_sum).mean()


@register_method
class CRMT(Method):
    name = "crmt"
    display_name = "CRMT"
    Options = CRMTOptions
    distributed_refusal = ('its Lipschitz estimate and second-step scales are accumulated from each batch without a '
                           'reduction over processes yet')

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        n = len(self.modalities)
        self.linear = nn.Linear(n * self.dim, self.num_classes)
        self.scales = nn.Parameter(torch.full((n, self.num_classes), 0.1))
        self.register_buffer("lipschitz", torch.zeros(n, self.num_classes))
        self.register_buffer("lipschitz_ready", torch.zeros((), dtype=torch.bool))
        self._phase = "joint"
        self.joint_epochs = self._resolve_joint_epochs()

    def _resolve_joint_epochs(self) -> int:
        """E1 from the option, or scaled to the run's length; a run must leave room for step 2."""
        given, epochs = self.options.joint_epochs, self.epochs
        if epochs is None:
            if given == 0:
                raise ValueError("crmt: joint_epochs=0 scales step 1 to the run's length, which is unknown here; "
                                 "build the model with epochs=... or set joint_epochs")
            return given
        scaled = joint_epochs_for(epochs)
        if given == 0:
            return scaled
        if given >= epochs:
            raise ValueError(f"crmt: joint_epochs={given} leaves no epoch of the {epochs}-epoch run for step 2; "
                             f"use at most {epochs - 1}, or 0 to scale it as the authors do ({scaled} here)")
        return given

    # ---- model -------------------------------------------------------------------------------
    def orthogonal_weights(self) -> list[Tensor]:
        """W~_m ``(C, d)`` for every modality, in float32."""
        with torch.autocast(self.linear.weight.device.type, enabled=False):
            return [orthogonalize(self.linear.weight[:, k * self.dim : (k + 1) * self.dim], self.options.orthogonalize)
                    for k in range(len(self.modalities))]

    def unimodal_scores(self, features: dict[str, Tensor], weights: list[Tensor] | None = None) -> dict[str, Tensor]:
        """o_m = W~_m X_m ``(B, C)`` for the modalities in ``features``."""
        weights = self.orthogonal_weights() if weights is None else weights
        return {m: features[m].float() @ weights[k].T for k, m in enumerate(self.modalities) if m in features}

    def logits_from_features(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        ref = next(iter(features.values()))
        out = self.linear.bias.float().expand(ref.shape[0], -1)
        scores = self.unimodal_scores({m: features[m] for m in self.modalities if m in present})
        for k, m in enumerate(self.modalities):
            if m in scores:
                out = out + self.scales[k] * scores[m]
        return out

    # ---- training ----------------------------------------------------------------------------
    def begin_epoch(self, epoch: int) -> list[list[Step]]:
        """Step 1 (joint training) for ``joint_epochs`` epochs, then step 2: a pass that estimates L
        (once), then passes that train the scales."""
        if epoch <= self.joint_epochs:
            self._phase = "joint"
            return [[JOINT]]
        self._phase = "scales"
        return [[SCALES]] if bool(self.lipschitz_ready) else [[LIPSCHITZ], [SCALES]]

    def describe_epoch(self) -> dict:
        return {"crmt_phase": self._phase}

    def loss(self, batch: Batch, step: Step, epoch: int) -> Tensor:
        if step == SCALES:
            return self.scale_loss(batch)
        features = self.encode(batch.inputs)
        scores = self.unimodal_scores(features)
        out = self.logits_from_features(features, self.modalities)
        margin = margin_regularizer(list(scores.values()), batch.labels, self.options.margin_eps)
        return F.cross_entropy(out, batch.labels) + self.options.rho * margin

    def estimate(self, batch: Batch, step: Step, epoch: int) -> None:
        """The Lipschitz pass (``LIPSCHITZ``): :meth:`accumulate_lipschitz` on every training batch."""
        self.accumulate_lipschitz(batch)

    def accumulate_lipschitz(self, batch: Batch) -> None:
        """L_m,k <- max(L_m,k, max_i ||d o_m,ik / d x_m,i||) over this batch (eval mode: samples independent)."""
        with eval_mode(self):
            with torch.no_grad():
                weights = [w.detach() for w in self.orthogonal_weights()]
            for k, m in enumerate(self.modalities):
                x = batch.inputs[m].detach().float()
                with torch.enable_grad():
                    norms = self._score_gradient_norms(self.encoders[m], weights[k], x).detach()  # (B, C)
                self.lipschitz[k].copy_(torch.maximum(self.lipschitz[k], norms.max(dim=0).values))
        self.lipschitz_ready.fill_(True)

    def _score_gradient_norms(self, encoder: nn.Module, weight: Tensor, x: Tensor) -> Tensor:
        """``||d o_k / d x_i||`` for every sample i and class k, ``(B, C)``: per-sample Jacobians with
        ``torch.func`` (one call), or one backward per class where the encoder does not support vmap."""
        def scores(sample: Tensor) -> Tensor:
            return (encoder(sample.unsqueeze(0)).float() @ weight.T).squeeze(0)

        try:
            jacobian = torch.func.vmap(torch.func.jacrev(scores))(x)  # (B, C, *input)
            return jacobian.flatten(2).norm(dim=2)
        except RuntimeError:
            x = x.clone().requires_grad_(True)
            out = encoder(x).float() @ weight.T
            grads = [torch.autograd.grad(out[:, c].sum(), x, retain_graph=True)[0].flatten(1).norm(dim=1)
                     for c in range(out.shape[1])]
            return torch.stack(grads, dim=1)

    def scale_loss(self, batch: Batch) -> Tensor:
        """Negative certified-radius bound of step 2; only ``scales`` receive a gradient."""
        with torch.no_grad(), eval_mode(*self.encoders.values()):
            scores = self.unimodal_scores(self.encode(batch.inputs))
            bias = self.linear.bias.float()
        o = torch.stack([scores[m] for m in self.modalities])  # (n, B, C)
        out = (self.scales[:, None, :] * o).sum(0) + bias
        y = batch.labels
        rows = torch.arange(len(y), device=y.device)
        j = out.detach().masked_fill(F.one_hot(y, self.num_classes).bool(), float("-inf")).argmax(dim=1)
        a_y, a_j = self.scales[:, y], self.scales[:, j]  # (n, B)
        numer = (a_y * o[:, rows, y] - a_j * o[:, rows, j]).sum(0) + bias[y] - bias[j]
        denom = ((a_y * self.lipschitz[:, y] + a_j * self.lipschitz[:, j]) ** 2).sum(0).sqrt()
        return -(numer / denom.clamp_min(1e-12)).mean()

    def after_backward(self, batch: Batch, step: Step, epoch: int) -> None:
        if step == SCALES:
            for name, p in self.named_parameters():
                if name != "scales":
                    p.grad = None
