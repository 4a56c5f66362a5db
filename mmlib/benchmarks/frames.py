"""Cached frame size: what a crop taken from the resized cache loses against one taken from the source frame.

The peers crop ``RandomResizedCrop(224)`` boxes from frames kept at the video's own size (CREMA-D:
480 x 360; OGM-GE ``data/CREMAD/video_preprocessing.py`` writes each decoded frame as it is). The
book's cache stores frames resized to ``size x size`` (``cv2.INTER_AREA``,
:func:`mmlib.data.media.resize_frame`) and crops from those on the device (:mod:`mmlib.augment`).
This benchmark measures what that costs in pixels, on real photographs: scikit-learn's two sample
images (shipped with it, no download), shrunk to CREMA-D's 480 x 360. For each box, drawn on the
source as the peers draw them, the reference is the source region resized to 224 x 224 bilinearly
with antialiasing (torchvision's PIL path); it is compared with the same region, in relative
coordinates, cut by :func:`mmlib.augment.resample` from a cache of each size. Only resolution and
the resampling kernel differ: the ``source`` row cuts from the source itself, so it shows the
kernel's share (no antialiasing in ``grid_sample``) alone. A yardstick from the peers' own side:
their frames are JPEG files (``cv2.imencode`` at OpenCV's default quality, 95), and the ``peers'
JPEG files`` row is the reference crop of such a file against the reference crop of the source.

Per cache size: PSNR (dB) and mean absolute error (0-255 levels), medians over boxes, for every box
and for the smallest fifth of boxes (the most enlarged); bytes per CREMA-D clip (3 frames) and the
whole cache (7,442 clips). Higher PSNR is closer to the peers' crops.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mmlib.augment import crop_boxes, resample
from mmlib.data.base import resize_frames
from mmlib.data.media import resize_frame

SOURCE = (360, 480)  # CREMA-D's VideoFlash frames (height, width)
CROP = 224
CREMAD_CLIPS, FRAMES = 7442, 3
LABELS = {"jpeg": "peers' JPEG files", "source": "source (480 x 360)"}


def source_frames() -> list[np.ndarray]:
    """scikit-learn's sample photographs, ``(360, 480, 3)`` uint8 RGB, as CREMA-D's frames are shaped."""
    import cv2
    from sklearn.datasets import load_sample_images

    return [cv2.resize(image, SOURCE[::-1], interpolation=cv2.INTER_AREA) for image in load_sample_images().images]


def jpeg_round_trip(frame: np.ndarray, quality: int = 95) -> np.ndarray:
    """``frame`` written and read back as a JPEG of ``quality`` (OpenCV's default, which the peers' frame files
    have)."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)


def reference_crops(frame: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Each box ``(top, left, h, w)`` of ``frame`` ``(3, H, W)`` resized to 224 x 224, bilinear with
    antialiasing (:func:`mmlib.data.base.resize_frames`, torchvision's ``Resize``)."""
    return torch.cat([resize_frames(frame[None, :, int(top):int(top + h), int(left):int(left + w)], CROP)
                      for top, left, h, w in boxes.tolist()])


def _channels_first(image: np.ndarray) -> torch.Tensor:
    """An ``(H, W, 3)`` uint8 image as a ``(3, H, W)`` float tensor of 0-255 levels."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()


def compare(frames: list[np.ndarray], sizes: list[int], boxes_per_frame: int, seed: int) -> list[dict]:
    """One row per cache size (and ``source``): PSNR and MAE medians over all boxes and the smallest fifth."""
    generator = torch.Generator().manual_seed(seed)
    height, width = SOURCE
    errors: dict[str, list[np.ndarray]] = {}
    areas = []
    for frame in frames:
        source = _channels_first(frame)
        boxes = crop_boxes(boxes_per_frame, height, width, generator)
        areas.append((boxes[:, 2] * boxes[:, 3] / (height * width)).numpy())
        reference = reference_crops(source, boxes)
        jpeg = reference_crops(_channels_first(jpeg_round_trip(frame)), boxes)
        errors.setdefault("jpeg", []).append((jpeg - reference).flatten(1).numpy())
        caches = {"source": source, **{str(s): _channels_first(resize_frame(frame, s)) for s in sizes}}
        unflipped = torch.zeros(len(boxes), dtype=torch.bool)
        for name, cache in caches.items():
            scale = torch.tensor([cache.shape[1] / height, cache.shape[2] / width] * 2)
            cut = resample(cache.expand(len(boxes), -1, -1, -1), boxes * scale, unflipped, CROP)
            errors.setdefault(name, []).append((cut - reference).flatten(1).numpy())
    area = np.concatenate(areas)
    small = area <= np.quantile(area, 0.2)
    rows = []
    for name, parts in errors.items():
        difference = np.concatenate(parts)
        mse, mae = (difference ** 2).mean(axis=1), np.abs(difference).mean(axis=1)
        psnr = 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-12))
        pixels = int(name) ** 2 if name.isdigit() else SOURCE[0] * SOURCE[1]
        rows.append({
            "cache": LABELS.get(name, f"{name} x {name}"),
            "psnr_db": float(np.median(psnr)), "psnr_small_db": float(np.median(psnr[small])),
            "mae": float(np.median(mae)), "mae_small": float(np.median(mae[small])),
            "kb_per_clip": FRAMES * 3 * pixels / 1e3, "cremad_gb": CREMAD_CLIPS * FRAMES * 3 * pixels / 1e9,
        })
    return rows


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mmlib bench frames", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="224,256,320", help="cached frame sizes to compare (default: 224,256,320)")
    parser.add_argument("--boxes", type=int, default=500, help="crops per photograph (default: 500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes takes whole numbers separated by commas, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 8 or args.boxes < 5:
        parser.error("--sizes must list sizes of at least 8 pixels and --boxes must be at least 5")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    rows = compare(source_frames(), args.sizes, args.boxes, args.seed)
    print(f"224 x 224 crops cut from a cache of each size against crops from the 480 x 360 source "
          f"({2 * args.boxes} boxes on 2 photographs, seed {args.seed}); small: the fifth of boxes with the least area")
    print(f"{'cache':<20} {'PSNR dB':>8} {'small':>7} {'MAE':>6} {'small':>6} {'kB/clip':>8} {'CREMA-D GB':>11}")
    for row in rows:
        print(f"{row['cache']:<20} {row['psnr_db']:>8.1f} {row['psnr_small_db']:>7.1f} {row['mae']:>6.2f} "
              f"{row['mae_small']:>6.2f} {row['kb_per_clip']:>8.0f} {row['cremad_gb']:>11.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0
