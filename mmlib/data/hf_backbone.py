"""Features from a local Hugging Face model folder: backbone ``hf`` of :mod:`mmlib.data.frozen`.

Any folder that ``save_pretrained`` wrote (``config.json`` and the weights) is loaded with
``transformers.AutoModel.from_pretrained(folder, local_files_only=True)``, never from the network,
put in eval mode and run once under ``torch.no_grad()`` over every sample of one modality. The
model's ``main_input_name`` says which input it takes; a modality's samples map to it as follows:

``pixel_values``  image models (ViT, DeiT, ResNet, ConvNeXt, ...): samples ``(C, H, W)`` as they
                  are, clips ``(T, C, H, W)`` frame by frame with the features averaged over the
                  T frames (as :class:`mmlib.encoders.ResNetVisualEncoder` does). Pixels arrive as
                  the dataset gives them ([0, 1]), standardised per channel with ``image_mean``
                  and ``image_std`` of the folder's ``preprocessor_config.json`` when it has them
                  (and ``do_normalize`` is not false). No resizing: C, H and W must be the model's
                  ``num_channels`` and ``image_size``.
``input_values``  waveform models (wav2vec2, HuBERT, ...): samples ``(L,)`` or ``(1, L)``.
``input_ids``     text models (BERT, ...): integer token ids ``(L,)``; positions equal to the
                  config's ``pad_token_id`` are masked out.

The feature of a sample is the **mean of the last hidden state** over its positions (tokens,
frames or patches, the CLS token included; over the spatial grid for a convolutional model's
``(C, h, w)`` map; over unmasked tokens for text), ``(N, hidden)``. Not the pooler output: a
pooler is often newly initialised when a checkpoint lacks it (``ViTModel`` adds one by default)
and wav2vec2 has none, so the mean is the one rule that holds for every folder.

A multimodal LLM fits when its ``AutoModel`` takes one modality's input on its own; otherwise
compute its features yourself and use backbone ``identity``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from mmlib.data.base import to_model_input

INPUTS = ("pixel_values", "input_values", "input_ids")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt")
HELP = "a folder written by transformers' save_pretrained (config.json and the weights)"


def check_folder(folder: str | Path) -> Path:
    """``folder`` as a Path when it holds a ``config.json``; else a one-line error saying what to give."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"hf model folder {path} does not exist; expected {HELP}, named per modality "
                                f"as hf_models='MODALITY=FOLDER;...'")
    if not (path / "config.json").is_file():
        raise ValueError(f"hf model folder {path} is not a transformers model: it has no config.json; expected {HELP}")
    return path


def fingerprint(folder: str | Path) -> dict:
    """What the feature cache keys a folder's model on: the sha256 of ``config.json``, the name, size
    and modification time of every weight file, and the transformers version that reads them.

    Editing the config, replacing or touching a weight file, or upgrading transformers computes the
    features again; moving or renaming the folder does not. Weights are not hashed (a 7B model is
    tens of GB): a change that keeps a file's size and modification time is not seen.
    """
    import transformers

    path = check_folder(folder)
    weights = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    return {"config_sha256": hashlib.sha256((path / "config.json").read_bytes()).hexdigest()[:16],
            "weights": [[str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns] for p in weights],
            "transformers": transformers.__version__}


def load_model(folder: str | Path) -> nn.Module:
    """The folder's ``AutoModel``, local files only, in eval mode with no parameter requiring a gradient."""
    from transformers import AutoModel

    path = check_folder(folder)
    try:
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"hf model folder {path} is not a transformers model AutoModel can load ({first_line}); "
                         f"expected {HELP}") from None
    if model.main_input_name not in INPUTS:
        raise ValueError(f"hf model folder {path} holds a {type(model).__name__} taking {model.main_input_name!r}; "
                         f"the frozen dataset feeds one of {INPUTS} (module docstring of mmlib.data.hf_backbone)")
    return model.eval().requires_grad_(False)


def pixel_statistics(folder: Path) -> tuple[Tensor, Tensor] | None:
    """Per-channel ``(mean, std)`` of the folder's ``preprocessor_config.json``, each ``(1, C, 1, 1)``; or None."""
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return None
    config = json.loads(path.read_text())
    if not config.get("do_normalize", True) or "image_mean" not in config or "image_std" not in config:
        return None
    return tuple(torch.tensor(config[k], dtype=torch.float32).view(1, -1, 1, 1) for k in ("image_mean", "image_std"))


def check_shape(model: nn.Module, folder: Path, modality: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """A one-line error when samples of ``shape`` (and ``dtype``) cannot be the model's input."""
    name, config = model.main_input_name, model.config
    where = f"hf model {folder} ({type(model).__name__}) takes {name}"
    if name == "pixel_values":
        size = getattr(config, "image_size", None)
        side = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
        expected = (getattr(config, "num_channels", None), *side)
        if len(shape) not in (3, 4) or any(e is not None and e != s for e, s in zip(expected, shape[-3:])):
            raise ValueError(f"{where} {tuple('CHW' if e is None else e for e in expected)} per image (or per frame "
                             f"of (T, C, H, W) clips); modality {modality!r} has samples of shape {shape}: resize the "
                             f"modality (e.g. avmnist image_size) or use a model built for that size")
    elif name == "input_values" and not (len(shape) == 1 or (len(shape) == 2 and shape[0] == 1)):
        raise ValueError(f"{where} (L,) waveforms; modality {modality!r} has samples of shape {shape}: "
                         f"give the modality as raw audio, or use an image model on its spectrograms")
    elif name == "input_ids" and (len(shape) != 1 or not np.issubdtype(dtype, np.integer)):
        raise ValueError(f"{where} (L,) integer token ids; modality {modality!r} has {dtype} samples of shape "
                         f"{shape}: tokenize the text first, or use backbone 'identity' on sentence embeddings")


def mean_hidden(model: nn.Module, batch: Tensor, pixels: tuple[Tensor, Tensor] | None) -> Tensor:
    """``(B, ...) -> (B, hidden)``: the mean of the last hidden state (module docstring)."""
    name = model.main_input_name
    mask = None
    if name == "pixel_values":
        frames = batch.flatten(0, 1) if batch.dim() == 5 else batch
        if pixels is not None:
            frames = (frames - pixels[0]) / pixels[1]
        inputs = {name: frames}
    elif name == "input_values":
        inputs = {name: batch.flatten(1)}
    else:
        ids = batch.long()
        pad = model.config.pad_token_id
        mask = torch.ones_like(ids) if pad is None else (ids != pad).long()
        inputs = {name: ids, "attention_mask": mask}
    hidden = model(**inputs).last_hidden_state
    if hidden.dim() == 4:  # a convolutional map (B, C, h, w)
        hidden = hidden.flatten(2).transpose(1, 2)
    if mask is None:
        pooled = hidden.mean(dim=1)
    else:
        weight = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1.0)
    if batch.dim() == 5:  # clips: the mean over the T frames
        pooled = pooled.view(batch.shape[0], batch.shape[1], -1).mean(dim=1)
    return pooled


def hf_features(folder: str | Path, array: np.ndarray, modality: str, batch_size: int = 32,
                device: str = "cpu") -> np.ndarray:
    """``(N, ...) -> (N, hidden)`` float32: the folder's model over every sample of ``modality``, once."""
    path = check_folder(folder)
    model = load_model(path).to(device)
    check_shape(model, path, modality, tuple(array.shape[1:]), array.dtype)
    pixels = pixel_statistics(path) if model.main_input_name == "pixel_values" else None
    pixels = None if pixels is None else tuple(t.to(device) for t in pixels)
    out = []
    with torch.no_grad():
        for start in range(0, len(array), batch_size):
            raw = torch.from_numpy(np.ascontiguousarray(array[start : start + batch_size]))
            batch = raw.to(device) if model.main_input_name == "input_ids" else to_model_input(raw).to(device)
            try:
                out.append(mean_hidden(model, batch, pixels).float().cpu())
            except (RuntimeError, ValueError, IndexError) as error:
                raise ValueError(f"hf model {path} ({type(model).__name__}) failed on modality {modality!r} "
                                 f"(samples {tuple(array.shape[1:])} as {model.main_input_name}): "
                                 f"{str(error).splitlines()[0]}") from None
    return torch.cat(out).numpy()
