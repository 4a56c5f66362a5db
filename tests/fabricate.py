"""Tiny fabricated raw files in the exact on-disk layouts of the real datasets, and the pid of a
process that has exited (test helpers).

FLV clips are written by OpenCV's VideoWriter with fourcc ``FLV1`` (Sorenson Spark, the codec of
CREMA-D's VideoFlash files), which this OpenCV build encodes and decodes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

CREMAD_EMOTIONS = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")


def dead_pid() -> int:
    """The pid of a child that has already exited (a lease or trial holder that was killed)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


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


def fabricate_cremad(root: Path, names: list[str] | None = None, frames: int = 6, seconds: float = 0.4,
                     rate: int = 8000) -> Path:
    """``root/AudioWAV/*.wav`` + ``root/VideoFlash/*.flv`` for every clip name."""
    for seed, name in enumerate(names or cremad_names()):
        write_wav(root / "AudioWAV" / f"{name}.wav", seconds, rate, seed)
        write_video(root / "VideoFlash" / f"{name}.flv", frames, seed)
    return root


def ks_clip_names(per_class: int, classes: int) -> list[tuple[str, int]]:
    """YouTube-style clip ids ``ytid_start`` with a class index, ``per_class`` of each class."""
    return [(f"-a{c:02d}x_Y{k}Zq_{10 * k}", c) for c in range(classes) for k in range(per_class)]


def fabricate_kinetics(root: Path, train: list[tuple[str, int]], test: list[tuple[str, int]],
                       seconds: float = 0.3) -> Path:
    """OGM-GE list files ``my_train.txt`` / ``my_test.txt`` plus ``video/*.mp4`` and ``audio/*.wav``."""
    for name, entries in (("my_train.txt", train), ("my_test.txt", test)):
        root.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("".join(f"{clip},10,{label}\n" for clip, label in entries))
    for seed, (clip, _) in enumerate(train + test):
        write_wav(root / "audio" / f"{clip}.wav", seconds, 16000, seed)
        write_video(root / "video" / f"{clip}.mp4", 5, seed, fourcc="mp4v")
    return root


def fabricate_mvsa(root: Path, labels: list[tuple[str, str]]) -> Path:
    """``labelResultAll.txt`` (header, then ``ID<TAB>text,image``) and ``data/{ID}.jpg`` + ``data/{ID}.txt``."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    lines = ["ID\ttext,image"] + [f"{i + 1}\t{t},{v}" for i, (t, v) in enumerate(labels)]
    (root / "labelResultAll.txt").write_text("\n".join(lines) + "\n")
    for i in range(len(labels)):
        write_image(root / "data" / f"{i + 1}.jpg", i)
        (root / "data" / f"{i + 1}.txt").write_text(f"tweet number {i + 1} #mood")
    return root


def fake_embedder(texts: list[str]) -> np.ndarray:
    """A 4-d deterministic stand-in for a sentence encoder: length, vowels, digits, hashes."""
    return np.array([[len(t), sum(c in "aeiou" for c in t), sum(c.isdigit() for c in t), t.count("#")] for t in texts],
                    dtype=np.float32)


def fabricate_iemocap_mla(root: Path, train: list[tuple[str, str]], test: list[tuple[str, str]]) -> Path:
    """MLA lists ``my_train_iemo.txt`` / ``my_test_iemo.txt`` plus ``video/*.mp4`` and ``audio/*.wav``."""
    sep = " [split|sign] "
    root.mkdir(parents=True, exist_ok=True)
    for name, entries in (("my_train_iemo.txt", train), ("my_test_iemo.txt", test)):
        (root / name).write_text("".join(f"{u}.mp4{sep}What a day, {u}.{sep}{label}\n" for u, label in entries))
    for seed, (utt, _) in enumerate(train + test):
        write_wav(root / "audio" / f"{utt}.wav", 0.3, 16000, seed)
        write_video(root / "video" / f"{utt}.mp4", 4, seed, fourcc="mp4v")
    return root


def fabricate_iemocap_mmin(root: Path, per_split: dict[str, int], dims=(5, 3, 4), cv: int = 1) -> Path:
    """MMIN layout: ``A/comparE.h5``, ``V/denseface.h5``, ``L/bert_large.h5`` and ``target/{cv}/*``."""
    import h5py

    rng = np.random.default_rng(0)
    names = {}
    target = root / "target" / str(cv)
    target.mkdir(parents=True, exist_ok=True)
    for split, n in per_split.items():
        ids = [f"Ses0{1 + k % 5}F_impro0{k % 9}_{split}{k:03d}" for k in range(n)]
        names[split] = ids
        onehot = np.eye(4)[np.arange(n) % 4]
        np.save(target / f"{split}_label.npy", onehot)
        np.save(target / f"{split}_int2name.npy", np.array([[i.encode()] for i in ids]))
    for folder, file, dim in (("A", "comparE", dims[0]), ("V", "denseface", dims[1]), ("L", "bert_large", dims[2])):
        (root / folder).mkdir(parents=True, exist_ok=True)
        with h5py.File(root / folder / f"{file}.h5", "w") as handle:
            for ids in names.values():
                for k, utt in enumerate(ids):
                    handle[utt] = rng.standard_normal((3 + k % 4, dim)).astype(np.float32)
    return root
