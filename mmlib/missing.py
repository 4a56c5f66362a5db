"""Pieces shared by the missing-modality baselines (MMIN, TATE): training masks and missing tags.

Both baselines train on samples with modalities removed on purpose, so that the model has seen
incomplete inputs before the test drops modalities (:func:`mmlib.evaluate.evaluate_missing`).
An absent modality enters as a zero feature, the book's convention for every method.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def training_mask(batch_size: int, num_modalities: int, include_full: bool, device=None) -> Tensor:
    """``(B, n)`` bool: one missing pattern per sample, drawn uniformly from the non-empty subsets.

    ``include_full=False`` draws from the proper non-empty subsets only, MMIN's training patterns
    (``data/multimodal_miss_dataset.py`` l. 75-82 at 2f22403: AZZ, ZVZ, ZZL, AVZ, AZL, ZVL, one drawn
    per sample with ``random.choice``, l. 101). Uses torch's global generator (saved with checkpoints).
    """
    if num_modalities < 1:
        raise ValueError(f"num_modalities must be at least 1, got {num_modalities}")
    top = 2**num_modalities - (0 if include_full else 1)
    if top <= 1:  # one modality: the only non-empty subset is the full one
        return torch.ones(batch_size, num_modalities, dtype=torch.bool, device=device)
    codes = torch.randint(1, top, (batch_size,), device=device)
    bits = 1 << torch.arange(num_modalities, device=device)
    return (codes.unsqueeze(1) & bits) > 0


def present_mask(present: Sequence[str], modalities: Sequence[str], batch_size: int, device=None) -> Tensor:
    """``(B, n)`` bool with column k True when ``modalities[k]`` is in ``present`` (one subset for the batch)."""
    row = torch.tensor([m in present for m in modalities], dtype=torch.bool, device=device)
    return row.expand(batch_size, -1)


def missing_tag(mask: Tensor) -> Tensor:
    """TATE's tag of a missing pattern: ``(B, n)`` present mask -> ``(B, n + 1)`` float.

    Column 0 is 1 when nothing is missing; column 1 + k is 1 when modality k is missing. For TATE's
    three modalities (visual, audio, text) this is the code's table (``network.py`` l. 89-105 at
    21272cc): complete [1,0,0,0]; visual missing [0,1,0,0]; audio [0,0,1,0]; text [0,0,0,1]; audio and
    text [0,0,1,1]; visual and text [0,1,0,1]; visual and audio [0,1,1,0].
    """
    missing = ~mask.bool()
    complete = ~missing.any(dim=1, keepdim=True)
    return torch.cat([complete, missing], dim=1).float()


def mask_features(features: dict[str, Tensor], modalities: Sequence[str], mask: Tensor) -> dict[str, Tensor]:
    """Each modality's feature ``(B, d)`` times its column of ``mask`` (absent -> zero)."""
    return {m: features[m] * mask[:, k : k + 1].to(features[m].dtype) for k, m in enumerate(modalities)}
