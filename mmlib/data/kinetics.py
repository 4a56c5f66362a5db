"""Kinetics-Sounds: 31 sound-bearing Kinetics-400 classes; modalities ``audio`` and ``visual``.

Raw layout (the user downloads the YouTube clips of Kinetics-400 themselves, then extracts a WAV
per clip, as OGM-GE's ``pre-processing/VGG&KS/mp4_to_wav.py`` does)::

    ROOT/my_train.txt            ytid_start,10,label   (OGM-GE data/KineticSound/my_train.txt)
    ROOT/my_test.txt             e.g.  -3Mwkq-7TV4_2,10,23   (label: class index 0-30)
    ROOT/video/{clip}.mp4
    ROOT/audio/{clip}.wav
    ROOT/classes.txt             optional: the 31 class names, one per line, in index order

* ``audio``: ``(1, 128, 1024)`` float16 normalised Kaldi filterbank (:func:`mmlib.data.media.fbank`)
  of the clip resampled to 16 kHz.
* ``visual``: ``(frames, 3, size, size)`` uint8, evenly spaced frames of the MP4.

Validation is carved from the training list, stratified by ``split_seed``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mmlib.data.base import MultimodalDataset
from mmlib.data.cache import Plan, Sample, carve_validation, load_cache, read_list_file, require_cache
from mmlib.data.media import ClipRecipe
from mmlib.data.registry import register_dataset

KS_LAYOUT = (
    "expected my_train.txt and my_test.txt (lines 'ytid_start,10,label'), video/{clip}.mp4, audio/{clip}.wav "
    "and optionally classes.txt (see data/README.md)"
)


def plan_kinetics_sounds(
    root: str | Path,
    frames: int = 3,
    size: int = 224,
    sample_rate: int = 16000,
    target_frames: int = 1024,
    num_mel_bins: int = 128,
    norm_mean: float = -4.27,
    norm_std: float = 4.57,
    train_list: str = "my_train.txt",
    test_list: str = "my_test.txt",
    num_classes: int = 31,
    val_fraction: float = 0.1,
    split_seed: int = 0,
) -> Plan:
    """Validate a Kinetics-Sounds folder and describe its cache (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Kinetics-Sounds root {root} does not exist; {KS_LAYOUT}")
    for folder in ("video", "audio"):
        if not (root / folder).is_dir():
            raise FileNotFoundError(f"Kinetics-Sounds root {root} has no {folder}/ folder; {KS_LAYOUT}")
    classes = tuple(str(k) for k in range(num_classes))
    if (root / "classes.txt").is_file():
        classes = tuple(line.strip() for line in (root / "classes.txt").read_text().splitlines() if line.strip())
    parts = {"train": _read_list(root / train_list, root, len(classes)),
             "test": _read_list(root / test_list, root, len(classes))}
    entries = parts["train"] + parts["test"]
    samples = [Sample(c, label, {"audio": root / "audio" / f"{c}.wav", "visual": root / "video" / f"{c}.mp4"})
               for c, label in entries]
    labels = np.array([s.label for s in samples], dtype=np.int64)
    n_train = len(parts["train"])
    train, val = carve_validation(labels, np.arange(n_train), val_fraction, split_seed)
    splits = {"train": train, "val": val, "test": np.arange(n_train, len(samples))}
    recipe = ClipRecipe(frames, size, sample_rate, target_frames, num_mel_bins, norm_mean, norm_std)
    params = {**dataclasses.asdict(recipe), "train_list": train_list, "test_list": test_list,
              "val_fraction": val_fraction, "split_seed": split_seed}

    def process(sample: Sample) -> dict[str, np.ndarray]:
        return recipe.arrays(sample.files["audio"], sample.files["visual"])

    modalities = recipe.modalities()
    sources = [root / train_list,
               root / test_list] + ([root / "classes.txt"] if (root / "classes.txt").is_file() else [])
    return Plan("kinetics_sounds", root, modalities, samples, classes, splits, params, process, sources)


def _read_list(path: Path, root: Path, num_classes: int) -> list[tuple[str, int]]:
    if not path.is_file():
        raise FileNotFoundError(f"Kinetics-Sounds list {path} does not exist; {KS_LAYOUT}")
    entries = []
    for number, row in enumerate(read_list_file(path, "Kinetics-Sounds"), start=1):
        if len(row) != 3 or not row[2].lstrip("-").isdigit():
            raise ValueError(f"{path} line {number}: expected 'ytid_start,10,label' (e.g. -3Mwkq-7TV4_2,10,23), got "
                             f"{','.join(row)!r}")
        clip, label = row[0], int(row[2])
        if not 0 <= label < num_classes:
            raise ValueError(f"{path} line {number}: label {label} is outside the {num_classes} classes "
                             f"0-{num_classes - 1}")
        for folder, ext in (("audio", "wav"), ("video", "mp4")):
            if not (root / folder / f"{clip}.{ext}").is_file():
                raise FileNotFoundError(f"{path} line {number} names clip {clip!r}, but {folder}/{clip}.{ext} is "
                                        "missing")
        entries.append((clip, label))
    return entries


@register_dataset("kinetics_sounds")
def load_kinetics_sounds(cache: str | None = None,
                         modalities: str | tuple[str, ...] | None = None) -> MultimodalDataset:
    """Kinetics-Sounds from a cache made by ``python -m mmlib prepare kinetics_sounds``."""
    return load_cache(require_cache(cache, "kinetics_sounds"), modalities, expect="kinetics_sounds")
