"""Random inputs of a prepared dataset's exact shapes: for running the real loop at scale without the data.

``random_dataset`` fills a :class:`MultimodalDataset` with random arrays of the exact shapes and
dtypes a prepared cache holds, so speed and memory checks at a real dataset's scale run on any
machine (``make gpu-check``, ``bench scale``, ``bench methods --fabricate``), as do CPU tests of
the frame path (normalisation, augmentation, resume). ``fabricated`` does that for a dataset by
name, taking the shapes from the same function its preparer uses (``python -m mmlib prepare``), so
the two cannot drift apart; ``cremad_fabricated`` is the same as a dataset the loop loads by name,
with the preparer's options. Every split holds every sample, so accuracies mean nothing.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from mmlib.data.base import SPLITS, MultimodalDataset
from mmlib.data.cremad import CREMAD_CLASSES, cremad_layout
from mmlib.data.registry import register_dataset

Layout = dict[str, tuple[tuple[int, ...], str]]  # modality -> (shape of one sample, numpy dtype)

# dataset -> (its cache layout with the preparer's defaults, its classes)
PREPARED_LAYOUTS: dict[str, tuple[Callable[[], Layout], tuple[str, ...]]] = {
    "cremad": (cremad_layout, CREMAD_CLASSES),
}


def random_dataset(layout: Layout, samples: int, classes: Sequence[str], seed: int = 0,
                   name: str = "random") -> MultimodalDataset:
    """``samples`` random samples of ``layout`` (uint8: uniform 0..255, floats: standard normal), labels cycling through
    ``classes``."""
    if samples < 1:
        raise ValueError(f"random_dataset: samples must be a positive number, got {samples}")
    rng = np.random.default_rng(seed)
    inputs = {}
    for modality, (shape, dtype) in layout.items():
        if np.dtype(dtype) == np.uint8:
            inputs[modality] = rng.integers(0, 256, size=(samples, *shape), dtype=np.uint8)
        else:
            inputs[modality] = rng.normal(size=(samples, *shape)).astype(dtype)
    labels = np.arange(samples, dtype=np.int64) % len(classes)
    params = {"layout": {m: [list(shape), dtype] for m, (shape, dtype) in layout.items()}, "samples": samples,
              "seed": seed}
    return MultimodalDataset(name, tuple(layout), inputs, labels, tuple(classes),
                             {s: np.arange(samples) for s in SPLITS}, params)


def fabricated(dataset: str, samples: int, seed: int = 0) -> MultimodalDataset:
    """``samples`` random samples shaped like ``dataset``'s prepared cache (its preparer's defaults)."""
    if dataset not in PREPARED_LAYOUTS:
        raise ValueError(f"no known cache layout for dataset {dataset!r}; fabricated inputs exist for "
                         f"{sorted(PREPARED_LAYOUTS)}")
    layout, classes = PREPARED_LAYOUTS[dataset]
    return random_dataset(layout(), samples, classes, seed, name=f"{dataset}_fabricated")


@register_dataset("cremad_fabricated")
def load_cremad_fabricated(samples: int = 64, frames: int = 3, size: int = 224, duration: float = 3.0, n_fft: int = 512,
                           seed: int = 0, modalities: str | None = None) -> MultimodalDataset:
    """``samples`` random clips: audio ``(1, 257, 188)`` float16, visual ``(frames, 3, size, size)`` uint8.

    ``frames``, ``size``, ``duration`` and ``n_fft`` are the preparer's options; smaller values
    give the same layout at toy scale for CPU tests.
    """
    if frames < 1 or size < 8:
        raise ValueError(f"cremad_fabricated needs frames >= 1 and size >= 8, got frames={frames}, size={size}")
    dataset = random_dataset(cremad_layout(frames, size, duration=duration, n_fft=n_fft), samples, CREMAD_CLASSES, seed,
                             name="cremad_fabricated")
    return dataset if modalities is None else dataset.select(modalities)
