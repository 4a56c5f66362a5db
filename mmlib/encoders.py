"""Encoders ``f_m`` (paper Eq. 2): every one maps its input to a ``(B, d)`` feature of a common width d.

``resnet_audio``   ResNet-18 from scratch on a 1-channel spectrogram ``(B, 1, F, T)``, as in OGM-GE.
``resnet_visual``  ResNet-18 from scratch on frames ``(B, T, 3, H, W)``: frames folded into the batch,
                   2-D ResNet per frame, average over time (OGM-GE's visual net, pooled).
``mlp``            two-layer MLP for feature vectors ``(B, D)`` (mfeat views, synthetic modalities).
``small_cnn``      two conv layers for tiny images ``(B, 1, 8, 8)`` (scikit-learn digits).
``frozen``         the adapter of paper Sec. 5.4 (Linear + ReLU) on features that a frozen pretrained
                   backbone computed once (:mod:`mmlib.data.frozen`, paper Table 3).

No weights are downloaded: ResNets start from scratch.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torchvision.models import resnet18

ENCODER_KINDS = ("mlp", "small_cnn", "resnet_audio", "resnet_visual", "frozen")


def _resnet_trunk(in_channels: int) -> nn.Sequential:
    net = resnet18(weights=None)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return nn.Sequential(*(list(net.children())[:-2]), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _projection(out_dim: int) -> nn.Module:
    """ResNet-18's 512-d pooled feature to width d; none at d = 512, the peers' width (their
    fusion reads the pooled feature directly: OGM-GE ``models/basic_model.py`` l. 38-55)."""
    return nn.Identity() if out_dim == 512 else nn.Linear(512, out_dim)


class ResNetAudioEncoder(nn.Module):
    """``(B, 1, F, T) -> (B, d)``."""

    def __init__(self, out_dim: int) -> None:
        super().__init__()
        self.trunk = _resnet_trunk(1)
        self.project = _projection(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(self.trunk(x))


class ResNetVisualEncoder(nn.Module):
    """``(B, T, 3, H, W) -> (B, d)``: per-frame ResNet-18, then the mean over the T frames."""

    def __init__(self, out_dim: int) -> None:
        super().__init__()
        self.trunk = _resnet_trunk(3)
        self.project = _projection(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        b, t = x.shape[:2]
        per_frame = self.trunk(x.flatten(0, 1)).view(b, t, -1)
        return self.project(per_frame.mean(dim=1))


class MLPEncoder(nn.Module):
    """``(B, D) -> (B, d)``: Linear, ReLU, dropout, Linear."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


class SmallCNNEncoder(nn.Module):
    """``(B, C, H, W) -> (B, d)`` for tiny images: two 3x3 convolutions, global pooling, Linear."""

    def __init__(self, in_channels: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32 * 4, out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class AdapterEncoder(nn.Module):
    """``(B, D) -> (B, d)``: Linear + ReLU, the trainable adapter after a frozen backbone (paper Sec. 5.4).

    Its input is the backbone's feature, computed once per dataset and cached (:mod:`mmlib.data.frozen`),
    so the backbone is never run, nor changed, while the adapter trains.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


def default_encoder_kind(input_shape: Sequence[int]) -> str:
    """The encoder a modality gets from the shape of one sample."""
    shape = tuple(input_shape)
    if len(shape) == 1:
        return "mlp"
    if len(shape) == 3 and shape[1] * shape[2] <= 32 * 32:
        return "small_cnn"
    if len(shape) == 3:
        return "resnet_audio"
    if len(shape) == 4:
        return "resnet_visual"
    raise ValueError(f"no encoder for inputs of shape {shape}; expected (D,), (C, H, W) or (T, 3, H, W)")


def build_encoder(input_shape: Sequence[int], out_dim: int, kind: str | None = None, hidden: int = 128) -> nn.Module:
    """An encoder for one modality whose samples have ``input_shape``; ``kind`` defaults by shape."""
    kind = kind or default_encoder_kind(input_shape)
    if kind == "mlp":
        return MLPEncoder(int(torch.tensor(input_shape).prod()), out_dim, hidden)
    if kind == "small_cnn":
        return SmallCNNEncoder(int(input_shape[0]), out_dim)
    if kind == "resnet_audio":
        return ResNetAudioEncoder(out_dim)
    if kind == "resnet_visual":
        return ResNetVisualEncoder(out_dim)
    if kind == "frozen":
        return AdapterEncoder(int(torch.tensor(input_shape).prod()), out_dim)
    raise ValueError(f"unknown encoder kind {kind!r}; choose one of {ENCODER_KINDS}")
