"""``python -m mmlib bench data``: samples/s of an epoch read from the tensor cache vs. decoded from media.

One run fabricates CREMA-D-format clips in a temporary folder (16 kHz WAV as in AudioWAV, 480x360
FLV as in VideoFlash, 2.5 s each), prepares the cache once (timed separately), then times epochs:

* **media**: what OGM-GE's ``CramedDataset.__getitem__`` and MLA's loaders do every epoch, per sample:
  decode the WAV, resample to 22050 Hz (a resampler built once: faster than their per-call librosa), tile to 3 s, STFT
  (n_fft 512, hop 353), log; open 3 JPEG frames (extracted beforehand, as their preprocessing does, not timed), resize
  to 224x224, ToTensor, Normalize; then stack the batch.
* **cache**: ``load_cache`` memory maps, ``MultimodalDataset.batches`` (uint8 -> float, float16 -> float32).

Both paths run on one torch thread. Prints both rates and their ratio, measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mmlib.data.cache import build_cache, load_cache
from mmlib.data.cremad import CREMAD_CLASSES, plan_cremad

MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def fabricate(root: Path, clips: int, seconds: float = 2.5) -> list[str]:
    """CREMA-D layout: ``AudioWAV/*.wav`` (16 kHz) and ``VideoFlash/*.flv`` (480x360, 30 fps); clip names."""
    import cv2
    import soundfile

    (root / "AudioWAV").mkdir(parents=True)
    (root / "VideoFlash").mkdir()
    rng = np.random.default_rng(0)
    names = [f"{1001 + i // 12}_{('DFA', 'IEO')[i // 6 % 2]}_{CREMAD_CLASSES[i % 6]}_XX" for i in range(clips)]
    for i, name in enumerate(names):
        t = np.arange(int(seconds * 16000)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (150 + 10 * i) * t) + 0.02 * rng.standard_normal(len(t))
        soundfile.write(str(root / "AudioWAV" / f"{name}.wav"), wave.astype(np.float32), 16000, subtype="PCM_16")
        writer = cv2.VideoWriter(str(root / "VideoFlash" / f"{name}.flv"), cv2.VideoWriter_fourcc(*"FLV1"), 30,
                                 (480, 360))
        for _ in range(int(seconds * 30)):
            frame = rng.integers(0, 256, (45, 60, 3), dtype=np.uint8)
            writer.write(cv2.resize(frame, (480, 360), interpolation=cv2.INTER_LINEAR))
        writer.release()
    return names


def extract_jpegs(root: Path, names: list[str], out: Path) -> None:
    """3 evenly spaced frames per clip as JPEG files, the frame folders OGM-GE's loader reads."""
    import cv2

    for name in names:
        capture = cv2.VideoCapture(str(root / "VideoFlash" / f"{name}.flv"))
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        capture.release()
        (out / name).mkdir(parents=True)
        for k in range(3):
            cv2.imwrite(str(out / name / f"frame_{k:05d}.jpg"), frames[(2 * k + 1) * len(frames) // 6])


def media_epoch(root: Path, frames_dir: Path, names: list[str], batch_size: int) -> int:
    """One epoch decoding every sample the way the authors' loaders do; returns samples seen."""
    import soundfile
    import torchaudio.transforms
    from PIL import Image

    window = torch.hann_window(512)
    resample = torchaudio.transforms.Resample(16000, 22050)
    seen = 0
    for start in range(0, len(names), batch_size):
        specs, images = [], []
        for name in names[start:start + batch_size]:
            wave, rate = soundfile.read(str(root / "AudioWAV" / f"{name}.wav"), dtype="float32")
            wave = resample(torch.from_numpy(wave))
            wave = wave.repeat(3)[: 22050 * 3].clamp(-1, 1)
            spec = torch.stft(wave, 512, 353, window=window, return_complex=True)
            specs.append(torch.log(spec.abs() + 1e-7)[None])
            clip = []
            for path in sorted((frames_dir / name).iterdir()):
                image = Image.open(path).convert("RGB").resize((224, 224), Image.BILINEAR)
                tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255)
                clip.append((tensor - MEAN) / STD)
            images.append(torch.stack(clip))
        audio, visual = torch.stack(specs), torch.stack(images)
        seen += min(len(audio), len(visual))
    return seen


def cache_epoch(path: Path, batch_size: int) -> int:
    ds = load_cache(path)
    seen = 0
    for split in ("train", "val", "test"):
        for batch in ds.batches(split, batch_size):
            seen += len(batch)
    return seen


def best_rate(epoch, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        seen = epoch()
        rates.append(seen / (time.perf_counter() - start))
    return max(rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmlib bench data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=64, help="fabricated CREMA-D clips (default: 64)")
    parser.add_argument("--batch-size", type=int, default=16, help="(default: 16)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="epochs timed per path; the best is reported (default: 3)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # per-sample tensors are small; thread pools only add contention, on both paths
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "raw"
        names = fabricate(root, args.clips)
        extract_jpegs(root, names, Path(tmp) / "frames")
        start = time.perf_counter()
        cache = build_cache(plan_cremad(root, val_fraction=0.2, test_fraction=0.2), Path(tmp) / "cache", progress=False)
        prepare_s = time.perf_counter() - start
        media = best_rate(lambda: media_epoch(root, Path(tmp) / "frames", names, args.batch_size), args.repeats)
        cached = best_rate(lambda: cache_epoch(cache, args.batch_size), args.repeats)
    print(f"data benchmark: {args.clips} CREMA-D-format clips, batch {args.batch_size}, best of {args.repeats} epochs, "
          "1 thread")
    print(f"  prepare (once)            {prepare_s:8.2f} s")
    print(f"  decode media every epoch  {media:8.1f} samples/s")
    print(f"  read tensor cache         {cached:8.1f} samples/s")
    print(f"  ratio cache / media       {cached / media:8.1f}x")
    return 0
