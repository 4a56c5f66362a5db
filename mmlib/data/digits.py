"""scikit-learn's bundled 8x8 handwritten digits (1797 images): a single image modality ``image``.

Used where a chapter needs a tiny image input (a CNN encoder) without any download, and as the
visual half of the spoken-digit pairing.
"""

from __future__ import annotations

import numpy as np

from mmlib.data.base import MultimodalDataset, stratified_split
from mmlib.data.registry import register_dataset


@register_dataset("digits")
def load_digits_images(
    val_fraction: float = 0.15, test_fraction: float = 0.2, split_seed: int = 0
) -> MultimodalDataset:
    """``image``: ``(N, 1, 8, 8)`` float32 in [0, 1]; labels 0-9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]
    labels = bunch.target.astype(np.int64)
    splits = stratified_split(labels, val_fraction, test_fraction, split_seed)
    params = {"val_fraction": val_fraction, "test_fraction": test_fraction, "split_seed": split_seed}
    return MultimodalDataset("digits", ("image",), {"image": images}, labels, tuple(map(str, range(10))), splits,
                             params)
