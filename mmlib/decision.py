"""The decision layer: how much each modality weighs in the fused decision (the companion paper).

The companion paper (``002``) argues that imbalance survives balanced training at the classifier
itself: the per-modality parts of the decision layer differ in weight and in feature scale, so
one modality's logits dominate the sum. For any model that classifies from a subset of its
modalities (``logits_from_features(features, present)``) this module measures, per modality m:

``weight_norm``    ||W_m||_F, W_m the decision layer's effective weight on modality m's feature:
                   the Jacobian ``d z / d X_m`` of the fused logits ``(C, d)``, averaged over the
                   samples. For a linear head ``z = sum_m W_m X_m + b`` (Sum, Concat's slices) it is
                   exactly W_m; for a non-linear fusion (the memory chain) its local linearisation.
``logit_scale``    the scale of m's contribution ``c_m = z({m}) - z({})`` (logits with m alone minus
                   logits with nothing): std over classes, mean over samples (:func:`logit_scale`).
``feature_norm``   mean ||X_m||_2 over samples.
``follow_rate``    over the samples whose unimodal predictions ``argmax z({m})`` disagree, the
                   fraction whose fused prediction equals modality m's (%). Rates above 100 / n
                   mean m decides more often than an even share.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from mmlib.features import feature_chunks


def logit_scale(logits: Tensor) -> Tensor:
    """``(B, C) -> ()``: the standard deviation over classes, averaged over samples."""
    return logits.float().std(dim=-1, unbiased=False).mean()


def effective_weights(model: nn.Module, features: dict[str, Tensor], batch_size: int = 256) -> dict[str, Tensor]:
    """``{m: (C, d)}``: the fused logits' Jacobian in each modality's feature, mean over samples."""
    modalities = tuple(model.modalities)
    sums: dict[str, Tensor] = {}
    n = 0
    for _, chunk in feature_chunks(features, batch_size):
        inputs = {m: f.detach().clone().requires_grad_(True) for m, f in chunk.items()}
        logits = model.logits_from_features(inputs, modalities)
        rows = []
        for c in range(logits.shape[1]):
            grads = torch.autograd.grad(logits[:, c].sum(), [inputs[m] for m in modalities], retain_graph=True,
                                        allow_unused=True)
            rows.append([torch.zeros_like(inputs[m][0]) if g is None else g.sum(0) for m, g in zip(modalities, grads)])
        for k, m in enumerate(modalities):
            sums[m] = sums.get(m, 0) + torch.stack([r[k] for r in rows])
        n += len(logits)
    return {m: s / n for m, s in sums.items()}


def decision_statistics(model: nn.Module, features: dict[str, Tensor], batch_size: int = 256) -> dict:
    """Per-modality decision-layer statistics (module docstring) for features ``{m: (N, d)}``.

    Returns ``{"modalities": {m: {weight_norm, logit_scale, feature_norm, follow_rate}},
    "disagreement": % of samples whose unimodal predictions are not all equal, "samples": N}``.
    Samples are taken in chunks of ``batch_size`` in the order given.
    """
    modalities = tuple(model.modalities)
    if not modalities:
        raise ValueError("model.modalities is empty; the decision layer needs at least one modality")
    missing = [m for m in modalities if m not in features]
    if missing:
        raise ValueError(f"features lack modality {missing[0]!r}; pass one (N, d) tensor per modality of the model")
    was_training = model.training
    model.eval()
    try:
        weights = effective_weights(model, features, batch_size)
        scales = {m: [] for m in modalities}
        unimodal = {m: [] for m in modalities}
        fused = []
        with torch.no_grad():
            for _, chunk in feature_chunks(features, batch_size):
                empty = model.logits_from_features(chunk, ())
                for m in modalities:
                    alone = model.logits_from_features(chunk, (m,))
                    scales[m].append(float(logit_scale(alone - empty)) * len(alone))
                    unimodal[m].append(alone.argmax(-1))
                fused.append(model.logits_from_features(chunk, modalities).argmax(-1))
    finally:
        model.train(was_training)
    n = len(torch.cat(fused))
    fused_pred = torch.cat(fused)
    preds = {m: torch.cat(p) for m, p in unimodal.items()}
    stacked = torch.stack([preds[m] for m in modalities])
    disagree = (stacked != stacked[0]).any(dim=0)
    stats = {}
    for m in modalities:
        follows = (fused_pred[disagree] == preds[m][disagree]).double()
        stats[m] = {
            "weight_norm": float(weights[m].norm()),
            "logit_scale": float(np.sum(scales[m]) / n),
            "feature_norm": float(features[m].float().norm(dim=-1).mean()),
            "follow_rate": 100.0 * float(follows.mean()) if len(follows) else float("nan"),
        }
    return {"modalities": stats, "disagreement": 100.0 * float(disagree.double().mean()), "samples": int(n)}
