"""The fused representation of trained models and how well it separates classes (paper Fig. 4)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mmlib.evaluate import feature_chunks
from mmlib.methods.base import Method


@torch.no_grad()
def fused_features(model: Method, features: dict[str, Tensor], batch_size: int) -> Tensor:
    """:meth:`Method.fused_representation` with every modality present, ``(N, d')``, in chunks of
    ``batch_size`` samples in the order given (batch-dependent fusion sees the evaluation's chunks)."""
    return torch.cat([model.fused_representation(chunk, model.modalities)
                      for _, chunk in feature_chunks(features, batch_size)])


def class_silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette score of the classes in ``points`` (Euclidean); higher = classes better separated."""
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(np.asarray(points, dtype=np.float64), np.asarray(labels)))
