"""Spoken digits paired with handwritten digits (``fsdd_av``): real audio, real images, 10 classes.

Audio: the Free Spoken Digit Dataset (github.com/Jakobovski/free-spoken-digit-dataset, CC BY-SA
4.0), 3000 recordings ``recordings/{digit}_{speaker}_{take}.wav`` at 8 kHz, 6 speakers x 10 digits x
50 takes. Takes 0-4 are the official test split; validation is carved from the rest, stratified.
Each clip is zero-padded (not tiled: a word is heard once) or cut to ``duration`` seconds and turned
into a log-magnitude STFT, ``(1, n_fft // 2 + 1, 1 + L // hop)`` = ``(1, 129, 63)`` by default, float16.

Image: scikit-learn's 8x8 digits (``load_dataset("digits")``), ``(1, 8, 8)`` float32 in [0, 1]. Each
recording is paired with an image of the same digit drawn, by ``split_seed``, from the same split of
the image set (the digits' own stratified split), so no test image is seen in training. This is
the AV-MNIST construction (Vielzeuf et al., 2018) with real speech in place of TIDIGITS.

Weakening either side on purpose: ``audio_snr_db`` adds white noise at that signal-to-noise ratio
(dB, over the spoken part) to every waveform; ``image_noise`` adds Gaussian noise of that std and
clips to [0, 1]; ``image_downsample`` averages ``k x k`` blocks (k in 1, 2, 4, 8) and repeats them
back to 8x8. Noise is drawn once from ``split_seed``.

The 3000 files are decoded once per process (about a second) and kept in memory; no cache folder.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import torch

from mmlib.data.base import MultimodalDataset, check_modalities, stratified_split
from mmlib.data.cache import carve_validation
from mmlib.data.media import load_audio
from mmlib.data.registry import load_dataset, register_dataset

FSDD_RATE = 8000
FSDD_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)$")
FSDD_MODALITIES = ("audio", "image")


@functools.lru_cache(maxsize=2)
def read_recordings(root: str, samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(N, samples)`` int16 waveforms zero-padded / cut, ``(N,)`` digits, ``(N,)`` takes, file names."""
    folder = Path(root) / "recordings"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"FSDD root {root} has no recordings/ folder; expected recordings/{{digit}}_{{speaker}}_{{take}}.wav "
            f"from github.com/Jakobovski/free-spoken-digit-dataset (see data/README.md)"
        )
    paths = sorted(folder.glob("*.wav"))
    if not paths:
        raise FileNotFoundError(f"FSDD folder {folder} holds no .wav files; expected "
                                f"recordings/{{digit}}_{{speaker}}_{{take}}.wav")
    waves = np.zeros((len(paths), samples), dtype=np.int16)
    digits, takes = np.zeros(len(paths), dtype=np.int64), np.zeros(len(paths), dtype=np.int64)
    for i, path in enumerate(paths):
        match = FSDD_NAME.match(path.stem)
        if match is None:
            raise ValueError(f"FSDD file {path.name} is not named {{digit}}_{{speaker}}_{{take}}.wav (e.g. "
                             "7_jackson_32.wav)")
        wave = load_audio(path, FSDD_RATE)[:samples]
        waves[i, : len(wave)] = np.round(np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)
        digits[i], takes[i] = int(match.group(1)), int(match.group(3))
    return waves, digits, takes, tuple(p.name for p in paths)


def spectrograms(waves: np.ndarray, n_fft: int, hop: int, mels: int = 0) -> np.ndarray:
    """``(N, L)`` float32 -> ``(N, 1, n_fft // 2 + 1, 1 + L // hop)`` float16 log-magnitude STFT.

    ``mels > 0``: the magnitude is first pooled into that many mel bands over 0-4 kHz
    (torchaudio's HTK triangular filters), giving ``(N, 1, mels, 1 + L // hop)``.
    """
    spec = torch.stft(torch.from_numpy(waves), n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft),
                      center=True, pad_mode="constant", return_complex=True).abs()
    if mels > 0:
        from torchaudio.functional import melscale_fbanks

        banks = melscale_fbanks(n_fft // 2 + 1, 0.0, FSDD_RATE / 2, mels, FSDD_RATE)  # (F, mels)
        spec = torch.einsum("nft,fm->nmt", spec, banks)
    return torch.log(spec + 1e-7).numpy()[:, None].astype(np.float16)


def add_noise_at_snr(waves: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise whose power is ``snr_db`` below each clip's power over its non-silent (non-padded) part."""
    spoken = np.abs(waves) > 0
    power = (waves**2).sum(axis=1) / np.maximum(spoken.sum(axis=1), 1)
    std = np.sqrt(power / 10 ** (snr_db / 10))
    return (waves + rng.standard_normal(waves.shape).astype(np.float32)
            * std[:, None].astype(np.float32)).astype(np.float32)


def degrade_images(images: np.ndarray, noise: float, downsample: int, rng: np.random.Generator) -> np.ndarray:
    """``(N, 1, 8, 8)`` -> same shape, block-averaged by ``downsample`` and with Gaussian noise ``noise``, in [0, 1]."""
    if downsample not in (1, 2, 4, 8):
        raise ValueError(f"image_downsample must be 1, 2, 4 or 8 (a divisor of 8), got {downsample}")
    n, k = len(images), downsample
    blocks = images.reshape(n, 1, 8 // k, k, 8 // k, k).mean(axis=(3, 5))
    out = np.repeat(np.repeat(blocks, k, axis=2), k, axis=3)
    if noise > 0:
        out = np.clip(out + rng.normal(0.0, noise, size=out.shape), 0.0, 1.0)
    return out.astype(np.float32)


def pair_images(audio_labels: np.ndarray, audio_splits: dict[str, np.ndarray], image_labels: np.ndarray,
                image_splits: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """For every recording, the index of an image of the same digit from the same split (cycled if short)."""
    rng = np.random.default_rng(seed)
    chosen = np.full(len(audio_labels), -1, dtype=np.int64)
    for split in ("train", "val", "test"):
        for digit in range(10):
            audio = audio_splits[split][audio_labels[audio_splits[split]] == digit]
            pool = rng.permutation(image_splits[split][image_labels[image_splits[split]] == digit])
            if len(audio) and not len(pool):
                raise ValueError(f"no {split} image of digit {digit} to pair with; lower the image split fractions")
            chosen[audio] = pool[np.arange(len(audio)) % max(len(pool), 1)]
    return chosen


@register_dataset("fsdd_av")
def load_fsdd_av(
    root: str | None = None,
    modalities: str | tuple[str, ...] = "audio,image",
    duration: float = 1.0,
    n_fft: int = 256,
    hop: int = 128,
    test_takes: int = 5,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    audio_snr_db: float | None = None,
    image_noise: float = 0.0,
    image_downsample: int = 1,
) -> MultimodalDataset:
    """``audio`` ``(N, 1, 129, 63)`` float16 and ``image`` ``(N, 1, 8, 8)`` float32; labels 0-9 (see module
    docstring)."""
    if root is None:
        raise ValueError(
            "fsdd_av needs root=FOLDER holding recordings/*.wav of the Free Spoken Digit Dataset; clone "
            "github.com/Jakobovski/free-spoken-digit-dataset and pass its folder (see data/README.md)"
        )
    chosen = check_modalities(modalities, FSDD_MODALITIES, what="fsdd_av")
    waves, labels, takes, names = read_recordings(str(root), int(round(duration * FSDD_RATE)))
    test = np.flatnonzero(takes < test_takes)
    train, val = carve_validation(labels, np.flatnonzero(takes >= test_takes), val_fraction, split_seed)
    splits = {"train": train, "val": val, "test": test}
    rng = np.random.default_rng(split_seed)
    inputs = {}
    if "audio" in chosen:
        signal = waves.astype(np.float32) / 32767
        if audio_snr_db is not None:
            signal = add_noise_at_snr(signal, audio_snr_db, rng)
        inputs["audio"] = spectrograms(signal, n_fft, hop)
    if "image" in chosen:
        digits = load_dataset("digits", split_seed=split_seed)
        image_splits = stratified_split(digits.labels, 0.15, 0.2, split_seed)
        pairing = pair_images(labels, splits, digits.labels, image_splits, split_seed)
        inputs["image"] = degrade_images(digits.inputs["image"][pairing], image_noise, image_downsample, rng)
    params = {
        "duration": duration, "n_fft": n_fft, "hop": hop, "test_takes": test_takes, "val_fraction": val_fraction,
        "split_seed": split_seed, "audio_snr_db": audio_snr_db, "image_noise": image_noise,
        "image_downsample": image_downsample, "num_recordings": len(names),
    }
    return MultimodalDataset("fsdd_av", chosen, inputs, labels, tuple(map(str, range(10))), splits, params)
