"""``cremad_fabricated``: random clips of exactly CREMA-D's prepared shapes, as a dataset by name.

For running the real training loop at the paper's scale without the dataset: speed and memory
checks on a GPU (``make gpu-check``, ``bench scale``) and CPU tests of the frame path
(normalisation, augmentation, resume). The arrays come from
:func:`mmlib.benchmarks.inputs.random_dataset` with the layout the CREMA-D preparer writes
(:func:`mmlib.data.cremad.cremad_layout`); every split holds every sample, so accuracies mean nothing.
"""

from __future__ import annotations

from mmlib.data.base import MultimodalDataset
from mmlib.data.cremad import CREMAD_CLASSES, cremad_layout
from mmlib.data.registry import register_dataset


@register_dataset("cremad_fabricated")
def load_cremad_fabricated(samples: int = 64, frames: int = 3, size: int = 224, duration: float = 3.0, n_fft: int = 512,
                           seed: int = 0, modalities: str | None = None) -> MultimodalDataset:
    """``samples`` random clips: audio ``(1, 257, 188)`` float16, visual ``(frames, 3, size, size)`` uint8.

    ``frames``, ``size``, ``duration`` and ``n_fft`` are the preparer's options; smaller values
    give the same layout at toy scale for CPU tests.
    """
    from mmlib.benchmarks.inputs import random_dataset

    if frames < 1 or size < 8:
        raise ValueError(f"cremad_fabricated needs frames >= 1 and size >= 8, got frames={frames}, size={size}")
    dataset = random_dataset(cremad_layout(frames, size, duration=duration, n_fft=n_fft), samples, CREMAD_CLASSES, seed, name="cremad_fabricated")
    return dataset if modalities is None else dataset.select(modalities)
