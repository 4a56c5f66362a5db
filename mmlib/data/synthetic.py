"""A synthetic multimodal task whose per-modality signal strength is a dial.

Each class ``c`` has a latent prototype ``mu_c`` in R^k. Modality ``m`` observes
``x_m = A_m (s_m * mu_y + z_shared * r) + sigma_m * eps``, where ``A_m`` is a fixed random
projection to ``dim`` features, ``s_m`` the modality's *signal strength*, ``sigma_m`` its noise,
and ``r`` (the *redundancy*, 0..1) the weight of a latent nuisance shared across modalities.
Raising one ``s_m`` and lowering another creates a dominant and a weak modality on purpose:
``strengths="2.0,0.5"`` gives a two-modality task where ``m0`` dominates.
"""

from __future__ import annotations

import numpy as np

from mmlib.data.base import MultimodalDataset, stratified_split
from mmlib.data.registry import register_dataset


def _floats(values: str | tuple[float, ...] | list[float], name: str) -> list[float]:
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    try:
        return [float(v) for v in values]
    except ValueError as error:
        raise ValueError(f"synthetic {name} must be comma-separated numbers, got {values!r}") from error


@register_dataset("synthetic")
def load_synthetic(
    strengths: str | tuple[float, ...] = "2.0,0.7",
    noise: str | tuple[float, ...] = "1.0,1.0",
    num_classes: int = 5,
    num_samples: int = 1200,
    dim: int = 32,
    latent_dim: int = 8,
    redundancy: float = 0.0,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
) -> MultimodalDataset:
    """Modalities ``m0, m1, ...``; one per entry of ``strengths`` (and of ``noise``)."""
    signal, sigma = _floats(strengths, "strengths"), _floats(noise, "noise")
    if len(signal) != len(sigma):
        raise ValueError(
            f"synthetic: {len(signal)} strengths but {len(sigma)} noise levels; give one of each per modality"
        )
    if num_classes < 2 or num_samples < 10 * num_classes:
        raise ValueError(f"synthetic: need num_classes >= 2 and num_samples >= 10 * num_classes, got {num_classes}, "
                         f"{num_samples}")
    if not 0.0 <= redundancy <= 1.0:
        raise ValueError(f"synthetic: redundancy must lie in [0, 1], got {redundancy}")
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(num_classes, latent_dim))
    labels = np.arange(num_samples) % num_classes
    rng.shuffle(labels)
    shared = rng.normal(size=(num_samples, latent_dim))
    modalities = tuple(f"m{i}" for i in range(len(signal)))
    inputs = {}
    for name, s, noise_std in zip(modalities, signal, sigma):
        projection = rng.normal(size=(latent_dim, dim)) / np.sqrt(latent_dim)
        latent = s * prototypes[labels] + redundancy * shared
        inputs[name] = (latent @ projection + noise_std * rng.normal(size=(num_samples, dim))).astype(np.float32)
    splits = stratified_split(labels, val_fraction, test_fraction, seed)
    params = {
        "strengths": signal, "noise": sigma, "num_classes": num_classes, "num_samples": num_samples,
        "dim": dim, "latent_dim": latent_dim, "redundancy": redundancy, "seed": seed,
    }
    return MultimodalDataset("synthetic", modalities, inputs, labels.astype(np.int64),
                             tuple(map(str, range(num_classes))), splits, params)
