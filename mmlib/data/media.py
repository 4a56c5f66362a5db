"""Decoding raw media into fixed-shape arrays: audio spectrograms, video frames, images.

These functions run once, when a dataset is prepared into the tensor cache (:mod:`mmlib.data.cache`);
a training epoch never calls them. Every failure raises :class:`MediaError` naming the file.

Defaults follow the public code of the papers the book reproduces:

* :func:`log_spectrogram` is OGM-GE's CREMA-D audio (GeWu-Lab/OGM-GE_CVPR2022,
  ``dataset/CramedDataset.py``): 22050 Hz, the clip tiled to 3 s, clipped to [-1, 1],
  ``stft(n_fft=512, hop=353)``, ``log(|S| + 1e-7)``: ``(1, 257, 188)``. We use ``torch.stft`` with
  a Hann window and zero padding at the edges (what ``librosa.stft`` does since librosa 0.10).
* :func:`fbank` is the Kaldi filterbank of the AST-style loaders used for Kinetics-Sounds and
  IEMOCAP (Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation,
  ``data/extract_fbank.py``): waveform minus its mean, 128 mel bins, 25 ms Hanning windows every
  10 ms, zero-padded or cut to ``target_frames``, then ``(x - norm_mean) / norm_std`` with the
  AudioSet statistics -4.27 / 4.57 of AST. Stored transposed, ``(1, 128, target_frames)``.
* :func:`video_frames` takes ``k`` frames at the centres of ``k`` equal segments of the clip (OGM-GE
  extracts frames first and picks 3 evenly spaced ones), resized to ``size x size`` without keeping
  the aspect ratio (OGM-GE's test transform ``Resize((224, 224))``), RGB ``uint8``.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import torch


class MediaError(ValueError):
    """A media file that cannot be decoded into the expected array (corrupt, empty, unreadable)."""


@dataclasses.dataclass(frozen=True)
class ClipRecipe:
    """An audio-visual clip as MLA's loaders read it (Kinetics-Sounds, IEMOCAP): ``frames`` frames of
    ``size`` pixels (:func:`video_frames`) and the Kaldi filterbank of the audio (:func:`fbank`). The
    fields are the preparers' options of the same names, stored in the cache's manifest."""

    frames: int
    size: int
    sample_rate: int
    target_frames: int
    num_mel_bins: int
    norm_mean: float
    norm_std: float

    def arrays(self, audio: str | Path, video: str | Path) -> dict[str, np.ndarray]:
        """The clip's ``audio`` (float16 filterbank) and ``visual`` (uint8 frames) arrays."""
        wave = load_audio(audio, self.sample_rate)
        spectrum = fbank(wave, self.sample_rate, self.num_mel_bins, self.target_frames, self.norm_mean, self.norm_std)
        return {"audio": spectrum.astype(np.float16), "visual": video_frames(video, self.frames, self.size)}

    def modalities(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Each modality's stored shape and dtype, as a cache :class:`~mmlib.data.cache.Plan` lists them."""
        return {"audio": ((1, self.num_mel_bins, self.target_frames), "float16"),
                "visual": ((self.frames, 3, self.size, self.size), "uint8")}


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform ``(n,)`` at ``sample_rate`` (channels averaged, resampled if needed)."""
    import soundfile

    path = Path(path)
    _check_wav_length(path)
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        raise MediaError(f"cannot decode audio file {path}: {error}; re-copy it or pass --skip-bad") from error
    if samples.shape[0] == 0:
        raise MediaError(f"audio file {path} holds no samples; re-copy it or pass --skip-bad")
    wave = samples.mean(axis=1)
    if rate != sample_rate:
        with torch.no_grad():
            wave = resampler(rate, sample_rate)(torch.from_numpy(wave)).numpy()
    return np.ascontiguousarray(wave, dtype=np.float32)


def _check_wav_length(path: Path) -> None:
    """Refuse a RIFF/WAVE file whose ``data`` chunk claims more bytes than the file holds.

    libsndfile reads such a cut-short file without a word, as a shorter clip. Other formats, and a
    WAV with an unknown data size (0 or 0xFFFFFFFF, written by streaming recorders), pass unchecked.
    """
    if not path.is_file():
        return  # soundfile's own error names the missing file
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk = handle.read(8)
            length = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                if length not in (0, 0xFFFFFFFF) and offset + 8 + length > size:
                    raise MediaError(f"audio file {path} is cut short: its data chunk declares {length} bytes but the "
                                     f"file holds {size - offset - 8}; re-copy it or pass --skip-bad")
                return
            offset += 8 + length + (length & 1)


@functools.lru_cache(maxsize=8)
def resampler(orig_rate: int, new_rate: int) -> torch.nn.Module:
    """torchaudio's windowed-sinc resampler, its kernel built once per pair of rates."""
    import torchaudio.transforms

    return torchaudio.transforms.Resample(orig_rate, new_rate)


def fit_length(wave: np.ndarray, length: int, mode: str = "tile") -> np.ndarray:
    """``(n,) -> (length,)``: repeat the clip (``"tile"``, OGM-GE) or zero-pad it (``"pad"``), then cut."""
    if mode == "tile":
        reps = -(-length // len(wave))
        return np.tile(wave, reps)[:length]
    if mode == "pad":
        out = np.zeros(length, dtype=wave.dtype)
        out[: min(length, len(wave))] = wave[:length]
        return out
    raise ValueError(f"fit mode must be 'tile' or 'pad', got {mode!r}")


def log_spectrogram(
    wave: np.ndarray, sample_rate: int = 22050, duration: float = 3.0, n_fft: int = 512, hop: int = 353,
    fit: str = "tile",
) -> np.ndarray:
    """``(n,) -> (1, n_fft // 2 + 1, 1 + L // hop)`` float32 log-magnitude STFT, ``L = duration * sr``.

    The OGM-GE CREMA-D recipe by default: ``(1, 257, 188)``.
    """
    length = int(round(duration * sample_rate))
    clip = np.clip(fit_length(wave, length, fit), -1.0, 1.0)
    spec = torch.stft(
        torch.from_numpy(clip), n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft),
        center=True, pad_mode="constant", return_complex=True,
    )
    return torch.log(spec.abs() + 1e-7).numpy()[None].astype(np.float32)


def fbank(
    wave: np.ndarray, sample_rate: int = 16000, num_mel_bins: int = 128, target_frames: int = 1024,
    norm_mean: float = -4.27, norm_std: float = 4.57,
) -> np.ndarray:
    """``(n,) -> (1, num_mel_bins, target_frames)`` float32 normalised Kaldi filterbank (10 ms frames)."""
    import torchaudio.compliance.kaldi

    signal = torch.from_numpy(wave - wave.mean())[None]
    feats = torchaudio.compliance.kaldi.fbank(
        signal, htk_compat=True, sample_frequency=sample_rate, use_energy=False, window_type="hanning",
        num_mel_bins=num_mel_bins, dither=0.0, frame_shift=10,
    )
    out = torch.zeros(target_frames, num_mel_bins)
    keep = min(target_frames, feats.shape[0])
    out[:keep] = feats[:keep]
    out = (out - norm_mean) / norm_std
    return out.T.numpy()[None].astype(np.float32)


def video_frames(path: str | Path, count: int = 3, size: int = 224) -> np.ndarray:
    """``(count, 3, size, size)`` uint8 RGB frames at the centres of ``count`` equal segments of the clip.

    One decoding pass picks the frames from the container's frame count; if the pass finds another
    number of frames (FLV headers can be wrong), a second pass picks them from the true count.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video file {path} does not exist")
    capture = cv2.VideoCapture(str(path))
    expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    frames, total = _pick_frames(path, expected, count, size)
    if total != expected:
        frames, total = _pick_frames(path, total, count, size)
    if total == 0:
        raise MediaError(f"cannot decode any frame of video file {path} (corrupt or empty); re-copy it or pass "
                         "--skip-bad")
    return np.ascontiguousarray(np.stack(frames).transpose(0, 3, 1, 2))


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """``frame`` ``(H, W, 3)`` resized to ``size x size`` by area averaging, as the cache stores it (aspect not
    kept)."""
    import cv2

    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)


def _pick_frames(path: Path, total: int, count: int, size: int) -> tuple[list[np.ndarray], int]:
    """Frames ``((2i + 1) * total) // (2 * count)`` resized to RGB ``size x size``, and the frames decoded."""
    import cv2

    picks = [((2 * i + 1) * total) // (2 * count) for i in range(count)] if total > 0 else []
    capture = cv2.VideoCapture(str(path))
    frames, index = [], 0
    try:
        while capture.grab():
            for _ in range(picks.count(index)):
                ok, frame = capture.retrieve()
                if not ok:
                    raise MediaError(f"cannot decode frame {index} of video file {path}; re-copy it or pass --skip-bad")
                frames.append(cv2.cvtColor(resize_frame(frame, size), cv2.COLOR_BGR2RGB))
            index += 1
    finally:
        capture.release()
    return frames, index


def read_image(path: str | Path, size: int = 224) -> np.ndarray:
    """``(3, size, size)`` uint8 RGB image, resized without keeping the aspect ratio."""
    import cv2

    path = Path(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"cannot decode image file {path} (missing, corrupt or empty); re-copy it or pass --skip-bad")
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1))
