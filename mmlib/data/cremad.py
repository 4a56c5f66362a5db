"""CREMA-D: 7442 acted clips of 91 actors, 6 emotions; modalities ``audio`` and ``visual``.

Raw layout (github.com/CheyneyComputerScience/CREMA-D, Git LFS)::

    ROOT/AudioWAV/1001_DFA_ANG_XX.wav     ActorID_Sentence_Emotion_Level
    ROOT/VideoFlash/1001_DFA_ANG_XX.flv

Classes in OGM-GE's order (``dataset/CramedDataset.py``): NEU, HAP, SAD, FEA, DIS, ANG.

* ``audio``: ``(1, 257, 188)`` float16 log spectrogram, OGM-GE's recipe (:func:`mmlib.data.media.log_spectrogram`).
* ``visual``: ``(frames, 3, size, size)`` uint8, ``frames`` evenly spaced frames (3 at 224 px in OGM-GE).

Splits, in order of precedence:

1. ``train_list`` and ``test_list``: OGM-GE's ``train.csv`` / ``test.csv`` format, one ``clip,EMO`` per
   line (e.g. ``1041_TIE_NEU_XX,NEU``); validation is carved from the training list, stratified.
2. ``speaker_independent=True``: actors (not clips) are drawn into test and validation by ``split_seed``,
   so no actor is heard in two splits.
3. Otherwise a stratified split of the clips by ``split_seed``.

The dataset README names four clips whose media do not match their names (1076_MTI_NEU_XX and
1076_MTI_SAD_XX: very short, no audio; 1064_TIE_SAD_XX: no duration; 1064_IEO_DIS_MD: one minute
holding every emotion). They are left out and listed in the manifest's notes unless
``keep_known_bad=True``, in which case they are kept and still listed.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mmlib.data.base import MultimodalDataset, stratified_split
from mmlib.data.cache import Plan, Sample, carve_validation, load_cache, read_list_file, require_cache
from mmlib.data.media import load_audio, log_spectrogram, video_frames
from mmlib.data.registry import register_dataset

CREMAD_CLASSES = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
CREMAD_LAYOUT = "expected AudioWAV/*.wav and VideoFlash/*.flv (see data/README.md)"
CLIP_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
KNOWN_BAD = {
    "1076_MTI_NEU_XX": "very short, no audio (CREMA-D README)",
    "1076_MTI_SAD_XX": "error picture, no audio, very short (CREMA-D README)",
    "1064_TIE_SAD_XX": "file has no duration (CREMA-D README)",
    "1064_IEO_DIS_MD": "one minute long, holds every emotion of IEO (CREMA-D README)",
}


def plan_cremad(
    root: str | Path,
    frames: int = 3,
    size: int = 224,
    sample_rate: int = 22050,
    duration: float = 3.0,
    n_fft: int = 512,
    hop: int = 353,
    train_list: str | None = None,
    test_list: str | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    speaker_independent: bool = False,
    keep_known_bad: bool = False,
) -> Plan:
    """Validate a CREMA-D folder and describe its cache (see the module docstring)."""
    root = Path(root)
    clips = _scan(root)
    notes = {("known_bad_kept" if keep_known_bad else "known_bad_excluded"):
             {c: KNOWN_BAD[c] for c in sorted(KNOWN_BAD) if c in clips}}
    sources: list[Path] = []
    if (train_list is None) != (test_list is None):
        raise ValueError("give both train_list and test_list (OGM-GE train.csv / test.csv), or neither")
    if train_list is not None:
        if speaker_independent:
            raise ValueError("speaker_independent splits actors by seed; it cannot be combined with "
                             "train_list/test_list")
        listed = {"train": _read_list(Path(train_list), clips), "test": _read_list(Path(test_list), clips)}
        sources = [Path(train_list), Path(test_list)]
    else:
        listed = {"all": {c: clips[c] for c in clips}}
    chosen = {part: {c: e for c, e in names.items() if keep_known_bad or c not in KNOWN_BAD}
              for part, names in listed.items()}
    ids = sorted({c for names in chosen.values() for c in names})
    label_of = {c: e for names in chosen.values() for c, e in names.items()}
    labels = np.array([CREMAD_CLASSES.index(label_of[c]) for c in ids], dtype=np.int64)
    position = {c: i for i, c in enumerate(ids)}
    if train_list is not None:
        train = np.array(sorted(position[c] for c in chosen["train"]), dtype=np.int64)
        train, val = carve_validation(labels, train, val_fraction, split_seed)
        splits = {"train": train, "val": val,
                  "test": np.array(sorted(position[c] for c in chosen["test"]), dtype=np.int64)}
    elif speaker_independent:
        splits = split_by_actor(ids, val_fraction, test_fraction, split_seed)
    else:
        try:
            splits = stratified_split(labels, val_fraction, test_fraction, split_seed)
        except ValueError as error:
            raise ValueError(f"CREMA-D root {root}: {error}; or give the splits as OGM-GE lists (--train-list, "
                             "--test-list)") from None
    samples = [Sample(c, int(labels[i]),
                      {"audio": root / "AudioWAV" / f"{c}.wav", "visual": root / "VideoFlash" / f"{c}.flv"})
               for i, c in enumerate(ids)]
    params = {
        "frames": frames, "size": size, "sample_rate": sample_rate, "duration": duration, "n_fft": n_fft, "hop": hop,
        "train_list": Path(train_list).name if train_list else None,
        "test_list": Path(test_list).name if test_list else None,
        "val_fraction": val_fraction, "test_fraction": test_fraction, "split_seed": split_seed,
        "speaker_independent": speaker_independent, "keep_known_bad": keep_known_bad,
    }

    def process(sample: Sample) -> dict[str, np.ndarray]:
        wave = load_audio(sample.files["audio"], sample_rate)
        return {
            "audio": log_spectrogram(wave, sample_rate, duration, n_fft, hop).astype(np.float16),
            "visual": video_frames(sample.files["visual"], frames, size),
        }

    modalities = cremad_layout(frames, size, sample_rate, duration, n_fft, hop)
    return Plan("cremad", root, modalities, samples, CREMAD_CLASSES, splits, params, process, sources, notes)


def cremad_layout(frames: int = 3, size: int = 224, sample_rate: int = 22050, duration: float = 3.0,
                  n_fft: int = 512, hop: int = 353) -> dict[str, tuple[tuple[int, ...], str]]:
    """Shape and dtype of one sample of each modality in a prepared cache: ``(1, 257, 188)`` float16,
    ``(3, 3, 224, 224)`` uint8 by default."""
    n_frames = 1 + int(round(duration * sample_rate)) // hop
    return {"audio": ((1, n_fft // 2 + 1, n_frames), "float16"), "visual": ((frames, 3, size, size), "uint8")}


def _scan(root: Path) -> dict[str, str]:
    """clip name -> emotion code for every clip with both a WAV and an FLV; errors show the layout."""
    if not root.is_dir():
        raise FileNotFoundError(f"CREMA-D root {root} does not exist; {CREMAD_LAYOUT}")
    for folder in ("AudioWAV", "VideoFlash"):
        if not (root / folder).is_dir():
            raise FileNotFoundError(f"CREMA-D root {root} has no {folder}/ folder; {CREMAD_LAYOUT}")
    wavs = sorted(p.stem for p in (root / "AudioWAV").glob("*.wav"))
    if not wavs:
        raise FileNotFoundError(f"CREMA-D root {root} has no AudioWAV/*.wav files; {CREMAD_LAYOUT}")
    clips = {}
    for name in wavs:
        match = CLIP_NAME.match(name)
        if match is None or match.group(3) not in CREMAD_CLASSES:
            raise ValueError(
                f"CREMA-D file AudioWAV/{name}.wav is not named ActorID_Sentence_Emotion_Level with an emotion in "
                f"{list(CREMAD_CLASSES)} (e.g. 1001_DFA_ANG_XX.wav)"
            )
        if not (root / "VideoFlash" / f"{name}.flv").is_file():
            raise FileNotFoundError(f"CREMA-D clip {name}: AudioWAV/{name}.wav has no VideoFlash/{name}.flv; "
                                    f"{CREMAD_LAYOUT}")
        clips[name] = match.group(3)
    return clips


def _read_list(path: Path, clips: dict[str, str]) -> dict[str, str]:
    """clip -> emotion from an OGM-GE list file, every clip present and every label a class."""
    chosen = {}
    for number, row in enumerate(read_list_file(path, "CREMA-D"), start=1):
        if len(row) < 2:
            raise ValueError(f"{path} line {number}: expected 'clip,EMOTION' (e.g. 1041_TIE_NEU_XX,NEU), got "
                             f"{','.join(row)!r}")
        clip, emotion = row[0], row[1]
        if emotion not in CREMAD_CLASSES:
            raise ValueError(f"{path} line {number}: label {emotion!r} is not a CREMA-D class; valid labels are "
                             f"{list(CREMAD_CLASSES)}")
        if clip not in clips:
            raise FileNotFoundError(
                f"{path} line {number} names clip {clip!r}, but AudioWAV/{clip}.wav or VideoFlash/{clip}.flv is missing"
            )
        if emotion != clips[clip]:
            raise ValueError(f"{path} line {number}: clip {clip} is labelled {emotion} but its name says "
                             f"{clips[clip]}; correct the label in the list (OGM-GE's lists use the emotion of the "
                             "name)")
        chosen[clip] = emotion
    return chosen


def split_by_actor(ids: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Speaker-independent split: whole actors (first 4 digits of the clip name) go to test, val or train."""
    actors_of = np.array([c.split("_")[0] for c in ids])
    actors = np.array(sorted(set(actors_of)))
    order = np.random.default_rng(seed).permutation(len(actors))
    n_test = max(1, int(round(test_fraction * len(actors))))
    n_val = max(1, int(round(val_fraction * len(actors))))
    if n_test + n_val >= len(actors):
        raise ValueError(f"speaker-independent split needs more than {n_test + n_val} actors, found {len(actors)}")
    part = {a: "test" for a in actors[order[:n_test]]} | {a: "val" for a in actors[order[n_test:n_test + n_val]]}
    which = np.array([part.get(a, "train") for a in actors_of])
    return {s: np.flatnonzero(which == s) for s in ("train", "val", "test")}


@register_dataset("cremad")
def load_cremad(cache: str | None = None, modalities: str | tuple[str, ...] | None = None) -> MultimodalDataset:
    """CREMA-D from a cache made by ``python -m mmlib prepare cremad``; modalities ``audio``, ``visual``."""
    return load_cache(require_cache(cache, "cremad"), modalities, expect="cremad")
