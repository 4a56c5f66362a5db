"""Tiny fabricated raw files in the exact on-disk layouts of the real datasets (test helpers).

FLV clips are written by OpenCV's VideoWriter with fourcc ``FLV1`` (Sorenson Spark, the codec of
CREMA-D's VideoFlash files), which this OpenCV build encodes and decodes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CREMAD_EMOTIONS = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")


def write_wav(path: Path, seconds: float, rate: int, seed: int) -> Path:
    import soundfile

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * (200 + 40 * seed % 400) * t) + 0.01 * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), wave.astype(np.float32), rate, subtype="PCM_16")
    return path


def write_video(path: Path, frames: int, seed: int, size: tuple[int, int] = (32, 24), fourcc: str = "FLV1") -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 30, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} video to {path}")
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), (seed * 37 + i * 8) % 256, dtype=np.uint8)
        frame[:, : size[0] // 2, 2] = 200
        writer.write(frame)
    writer.release()
    return path


def write_image(path: Path, seed: int, size: tuple[int, int] = (20, 16)) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    cv2.imwrite(str(path), image)
    return path


def cremad_names(per_class: int = 2, actors: int = 4) -> list[str]:
    """Clip names ActorID_Sentence_Emotion_Level, ``per_class`` clips of every emotion per actor block."""
    names = []
    sentences = ("DFA", "IEO", "ITH", "TIE")
    for a in range(actors):
        for e in CREMAD_EMOTIONS:
            for k in range(per_class):
                names.append(f"{1001 + a}_{sentences[k % 4]}_{e}_XX")
    return sorted(names)


def fabricate_cremad(root: Path, names: list[str] | None = None, frames: int = 6, seconds: float = 0.4, rate: int = 8000) -> Path:
    """``root/AudioWAV/*.wav`` + ``root/VideoFlash/*.flv`` for every clip name."""
    for seed, name in enumerate(names or cremad_names()):
        write_wav(root / "AudioWAV" / f"{name}.wav", seconds, rate, seed)
        write_video(root / "VideoFlash" / f"{name}.flv", frames, seed)
    return root
