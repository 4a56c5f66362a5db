"""Train-time frame augmentation on the device: RandomResizedCrop + horizontal flip, batched.

The peers' recipe (OGM-GE ``dataset/CramedDataset.py`` l. 69-74, MLA ``dataset/dataset.py``
l. 129-134) is torchvision's ``RandomResizedCrop(224)`` then ``RandomHorizontalFlip()`` on every
frame of every training clip, with a fresh draw per frame. Here the draws follow torchvision's
``RandomResizedCrop.get_params`` (scale (0.08, 1), ratio (3/4, 4/3), ten tries of area and
log-uniform aspect, then the centre-crop fallback) and the flip has probability 1/2; all frames of
a batch are then cropped, resized and flipped by one ``grid_sample`` call on the device.

Deliberate differences, each documented because it changes pixels, not the distribution of crops:

* The parameters are drawn from a dedicated CPU ``torch.Generator`` (seeded from the run's seed,
  saved in checkpoints), so a run is reproducible and a resumed run draws the same crops.
* Resizing is bilinear through ``grid_sample`` (``align_corners=False``) without antialiasing;
  torchvision's PIL path antialiases when it shrinks. The crops are at most the frame's size
  and are mostly enlarged to 224, where the two agree closely.
* The crop is taken from the cached frame (``size x size``, 224 by default), not from the source
  video frame, and resized to ``out_size`` (the run's ``frame_size``; 0: the cached size). What
  that costs in pixels, measured, and how to cache larger: :mod:`mmlib.protocols`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mmlib.data.base import host_to_device

SCALE = (0.08, 1.0)
RATIO = (3.0 / 4.0, 4.0 / 3.0)
TRIES = 10


def crop_boxes(count: int, height: int, width: int, generator: torch.Generator) -> Tensor:
    """``(count, 4)`` boxes ``(top, left, h, w)`` in pixels drawn as torchvision's ``get_params`` draws them."""
    area = height * width
    log_ratio = torch.log(torch.tensor(RATIO))
    target = area * (SCALE[0] + (SCALE[1] - SCALE[0]) * torch.rand(count, TRIES, generator=generator))
    aspect = torch.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * torch.rand(count, TRIES, generator=generator))
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(fits.any(dim=1), fits.float().argmax(dim=1), torch.full((count,), -1))
    u_top, u_left = torch.rand(count, generator=generator), torch.rand(count, generator=generator)
    boxes = torch.empty(count, 4)
    found = first >= 0
    rows = torch.arange(count)[found]
    h_ok, w_ok = h[rows, first[found]], w[rows, first[found]]
    boxes[found] = torch.stack([torch.floor(u_top[found] * (height - h_ok + 1)),
                                torch.floor(u_left[found] * (width - w_ok + 1)),
                                h_ok, w_ok], dim=1)
    boxes[~found] = torch.tensor(_fallback_box(height, width), dtype=torch.float32)
    return boxes


def _fallback_box(height: int, width: int) -> tuple[int, int, int, int]:
    """torchvision's centre crop when ten tries fail: the whole frame, its aspect clamped to RATIO."""
    in_ratio = width / height
    if in_ratio < RATIO[0]:
        w, h = width, int(round(width / RATIO[0]))
    elif in_ratio > RATIO[1]:
        h, w = height, int(round(height * RATIO[1]))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def crop_flip(frames: Tensor, generator: torch.Generator, out_size: int | None = None,
              shard: tuple[int, slice] | None = None) -> Tensor:
    """Every frame of ``frames`` ``(B, T, C, H, W)`` (float) cropped, resized to ``out_size`` and flipped at random.

    Returns a tensor of the same dtype on the same device, ``(B, T, C, out_size, out_size)``
    (``out_size`` defaults to ``H``). ``shard=(n, rows)``: ``frames`` are the clips ``rows`` of a
    batch of ``n`` split over processes; the crops and flips are drawn for all ``n`` clips, as one
    process draws them, and those of ``rows`` applied.
    """
    if frames.dim() != 5 or not frames.is_floating_point():
        raise ValueError(f"crop_flip expects float frames (B, T, C, H, W), got {tuple(frames.shape)} {frames.dtype}")
    b, t, c, height, width = frames.shape
    n, rows = (b, slice(0, b)) if shard is None else shard
    boxes = crop_boxes(n * t, height, width, generator)
    flip = torch.rand(n * t, generator=generator) < 0.5
    mine = slice(rows.start * t, rows.stop * t)
    out = resample(frames.reshape(b * t, c, height, width), boxes[mine], flip[mine], out_size or height)
    return out.view(b, t, c, *out.shape[-2:])


def resample(images: Tensor, boxes: Tensor, flip: Tensor, out_size: int) -> Tensor:
    """Crop each image ``(N, C, H, W)`` to its box ``(top, left, h, w)``, resize to ``out_size``, mirror where ``flip``.

    Bilinear, through one ``affine_grid`` + ``grid_sample``: output pixel centres are mapped into the
    box (``align_corners=False``), so samples within half a pixel of the box's edge may blend in the
    neighbouring pixel outside it (torchvision crops first and repeats the edge instead). The
    ``(N, 2, 3)`` crop matrix is built on the host (the draws come from a CPU generator) and copied
    to the images' device without blocking (:func:`mmlib.data.base.host_to_device`): a step never
    waits for it.
    """
    n, c, height, width = images.shape
    top, left, h, w = boxes.to(torch.float32).unbind(dim=1)
    theta = torch.zeros(n, 2, 3, dtype=images.dtype)
    theta[:, 0, 0] = torch.where(flip, -w / width, w / width)
    theta[:, 0, 2] = (2 * left + w) / width - 1
    theta[:, 1, 1] = h / height
    theta[:, 1, 2] = (2 * top + h) / height - 1
    theta = host_to_device(theta, images.device)  # drawn on the host; travels from pinned memory, no wait
    grid = F.affine_grid(theta, [n, c, out_size, out_size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def frame_modalities(inputs: dict[str, Tensor]) -> list[str]:
    """The modalities of a batch that hold RGB frames: ``(B, T, 3, H, W)``."""
    return [m for m, x in inputs.items() if x.dim() == 5 and x.shape[2] == 3]
