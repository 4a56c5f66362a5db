"""The tensor cache: a real dataset decoded once into memory-mapped NumPy files.

A cache is a folder::

    manifest.json     dataset, modalities (shape, dtype), classes, split index lists, every
                      preprocessing parameter, source files and array files (path, size, sha256),
                      bad files skipped, notes, library versions, and ``"complete": true`` written last
    labels.npy        (N,) int64
    <modality>.npy    (N, ...) uint8 frames / images, float16 spectrograms / features
    .verified.json    the array files whose sha256 was checked, with their size and mtime

While :func:`build_cache` runs, each sample's arrays go straight into preallocated ``.npy``
memory maps (``np.lib.format.open_memmap``) and ``progress.json`` records which samples are done,
so an interrupted preparation resumes where it stopped (``progress.json`` is written before the
first sample, so even a preparation killed at once resumes). The manifest is written only when
every sample is done; :func:`load_cache` refuses a folder without it, and checks what the manifest
claims against the arrays: splits disjoint and in range, labels among the classes, array shapes and
dtypes as listed, the fingerprint recomputed from the samples and splits, and each array file's size
and sha256 (listed under ``"arrays"``; hashed once and remembered, :func:`verify_arrays`). A
complete cache is never overwritten. Writing is deterministic: the same raw files and parameters give byte-identical
``.npy`` files, whether or not the run was interrupted.

``load_dataset("cache", path=...)`` opens any cache; each real dataset is also registered under its
own name (``load_dataset("cremad", cache=...)``), which checks that the cache holds that dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from mmlib.data.base import SPLITS, MultimodalDataset, check_modalities
from mmlib.data.media import MediaError
from mmlib.data.registry import register_dataset

MANIFEST = "manifest.json"
PROGRESS = "progress.json"
VERIFIED = ".verified.json"  # files of a cache whose sha256 matched the manifest: name -> [sha256, size, mtime_ns]


@dataclass
class Sample:
    """One raw sample: its id, integer label, the files it is decoded from, and any text it carries."""

    id: str
    label: int
    files: dict[str, Path]
    text: str = ""


@dataclass
class Plan:
    """Everything :func:`build_cache` needs: what to decode, into which shapes, and how to split it.

    ``process(sample)`` returns one array per modality, of exactly ``modalities[m] = (shape, dtype)``.
    ``sources`` are files read for every sample (label tables, list files), hashed into the manifest.
    """

    dataset: str
    root: Path
    modalities: dict[str, tuple[tuple[int, ...], str]]
    samples: list[Sample]
    classes: tuple[str, ...]
    splits: dict[str, np.ndarray]
    params: dict
    process: Callable[[Sample], dict[str, np.ndarray]]
    sources: list[Path] = field(default_factory=list)
    notes: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """sha256 of what determines the cache's bytes: dataset, parameters, samples, shapes."""
        return fingerprint(self.dataset, self.params, self.modalities, [[s.id, s.label] for s in self.samples],
                           self.splits)


def fingerprint(dataset: str, params: dict, modalities: dict, samples: list[list], splits: dict) -> str:
    """sha256 of a cache's dataset, parameters, ``{modality: (shape, dtype)}``, ``[id, label]`` samples and splits."""
    content = {
        "dataset": dataset,
        "params": params,
        "modalities": {m: [list(s), d] for m, (s, d) in modalities.items()},
        "samples": samples,
        "splits": {k: sorted(np.asarray(v).tolist()) for k, v in splits.items()},
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def file_record(path: Path, root: Path) -> dict:
    """``{"path", "size", "sha256"}`` of one source file, its path relative to the raw root."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    try:
        name = str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        name = str(path)
    return {"path": name, "size": Path(path).stat().st_size, "sha256": digest.hexdigest()}


def library_versions() -> dict[str, str]:
    import cv2
    import torch
    import torchaudio

    return {"numpy": np.__version__, "torch": torch.__version__, "torchaudio": torchaudio.__version__,
            "opencv": cv2.__version__}


def build_cache(plan: Plan, out: str | Path, skip_bad: bool = False, progress: bool = True,
                flush_every: int = 32) -> Path:
    """Decode every sample of ``plan`` into the cache folder ``out``; resume if it was interrupted.

    ``skip_bad``: a sample whose media cannot be decoded (:class:`MediaError`) is left out and listed
    under ``"bad"`` in the manifest instead of stopping the run.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    if (out / MANIFEST).exists():
        raise FileExistsError(
            f"cache {out} is already complete and is never overwritten; delete the folder yourself or "
            f"choose another --out"
        )
    state = _open_progress(plan, out)
    arrays = _open_arrays(plan, out, fresh=not state["done"] and not state["bad"])
    finished = set(state["done"]) | {b["index"] for b in state["bad"]}
    todo = [i for i in range(len(plan.samples)) if i not in finished]
    since_flush = 0
    try:
        for i in tqdm(todo, desc=f"prepare {plan.dataset}", unit="sample", disable=not progress,
                      initial=len(finished), total=len(plan.samples)):
            sample = plan.samples[i]
            try:
                result = plan.process(sample)
            except MediaError as error:
                if not skip_bad:
                    raise
                state["bad"].append({"index": i, "id": sample.id, "error": str(error)})
                continue
            for m, (shape, dtype) in plan.modalities.items():
                value = np.asarray(result[m])
                if value.shape != tuple(shape):
                    raise ValueError(f"{plan.dataset} sample {sample.id}: modality {m!r} has shape {value.shape}, "
                                     f"expected {tuple(shape)}")
                arrays[m][i] = value.astype(dtype)
            state["sources"][str(i)] = [file_record(p, plan.root) for p in sample.files.values()]
            state["done"].append(i)
            since_flush += 1
            if since_flush >= flush_every:
                _save_progress(out, arrays, state)
                since_flush = 0
    finally:
        _save_progress(out, arrays, state)
    _finalise(plan, out, arrays, state)
    return out


def _open_progress(plan: Plan, out: Path) -> dict:
    path = out / PROGRESS
    if path.exists():
        state = _read_json(path, "progress file", f"delete {out} and prepare it again")
        if state["fingerprint"] != plan.fingerprint:
            raise ValueError(
                f"{out} holds an unfinished cache prepared with other samples or parameters; rerun prepare "
                f"with the same options to finish it, or delete the folder to start again"
            )
        return state
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a cache being prepared; choose a new or empty --out folder")
    out.mkdir(parents=True, exist_ok=True)
    state = {"fingerprint": plan.fingerprint, "num_samples": len(plan.samples), "done": [], "bad": [], "sources": {}}
    _save_progress(out, {}, state)  # from now on the folder is a cache being prepared, resumable
    return state


def _open_arrays(plan: Plan, out: Path, fresh: bool) -> dict[str, np.memmap]:
    n = len(plan.samples)
    arrays = {}
    for m, (shape, dtype) in plan.modalities.items():
        path = out / f"{m}.npy"
        if fresh or not path.exists():
            arrays[m] = np.lib.format.open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=(n, *shape))
        else:
            arrays[m] = np.lib.format.open_memmap(path, mode="r+")
    return arrays


def _save_progress(out: Path, arrays: dict[str, np.memmap], state: dict) -> None:
    for array in arrays.values():
        array.flush()
    tmp = out / (PROGRESS + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, out / PROGRESS)


def _finalise(plan: Plan, out: Path, arrays: dict[str, np.memmap], state: dict) -> None:
    split_of = {int(i): s for s in SPLITS for i in plan.splits[s]}
    state["bad"] = [{**b, "label": plan.samples[b["index"]].label, "split": split_of[b["index"]]} for b in state["bad"]]
    bad = {b["index"] for b in state["bad"]}
    keep = np.array([i for i in range(len(plan.samples)) if i not in bad], dtype=np.int64)
    new_index = np.full(len(plan.samples), -1, dtype=np.int64)
    new_index[keep] = np.arange(len(keep))
    if bad:
        for m, array in arrays.items():
            compact = np.ascontiguousarray(array[keep])
            np.save(out / f"{m}.npy.tmp.npy", compact)
            os.replace(out / f"{m}.npy.tmp.npy", out / f"{m}.npy")
    arrays.clear()
    labels = np.array([s.label for s in plan.samples], dtype=np.int64)[keep]
    np.save(out / "labels.npy", labels)
    splits = {s: [int(new_index[i]) for i in plan.splits[s] if new_index[i] >= 0] for s in SPLITS}
    sources = [r for i in keep for r in state["sources"][str(int(i))]]
    sources += [file_record(p, plan.root) for p in plan.sources]
    files = [file_record(out / name, out) for name in [*(f"{m}.npy" for m in plan.modalities), "labels.npy"]]
    manifest = {
        "dataset": plan.dataset,
        "num_samples": int(len(keep)),
        "modalities": {m: {"shape": list(s), "dtype": d} for m, (s, d) in plan.modalities.items()},
        "classes": list(plan.classes),
        "sample_ids": [plan.samples[i].id for i in keep],
        "splits": splits,
        "params": plan.params,
        "fingerprint": plan.fingerprint,
        "sources": sources,
        "arrays": files,
        "bad": sorted(state["bad"], key=lambda b: b["index"]),
        "notes": plan.notes,
        "versions": library_versions(),
        "complete": True,
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, default=str))
    os.replace(tmp, out / MANIFEST)
    (out / PROGRESS).unlink()
    _remember_verified(out, files)


MANIFEST_FIELDS = ("dataset", "num_samples", "modalities", "classes", "sample_ids", "splits", "params", "fingerprint",
                   "bad")
REPREPARE = "prepare it again into a new folder (python -m mmlib prepare DATASET --root RAW --out NEW)"


def _read_json(path: Path, what: str, fix: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} {path} is not valid JSON ({error}); it was cut short or edited: {fix}") from None


def read_manifest(path: str | Path) -> dict:
    """The manifest of a complete cache; a clear error for an unfinished, missing or damaged one."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        progress = path / PROGRESS
        if progress.exists():
            state = _read_json(progress, "progress file", f"delete {path} and prepare it again")
            done = len(state["done"]) + len(state["bad"])
            raise ValueError(
                f"cache {path} is incomplete ({done} of {state['num_samples']} samples); rerun prepare to finish it"
            )
        raise FileNotFoundError(
            f"{path} is not a tensor cache (no {MANIFEST}); make one with "
            f"`python -m mmlib prepare DATASET --root RAW --out {path}` (see data/README.md)"
        )
    manifest = _read_json(manifest_path, "cache manifest", REPREPARE)
    if manifest.get("complete") is not True:
        raise ValueError(f"cache {path} is incomplete; rerun prepare to finish it")
    missing = [key for key in MANIFEST_FIELDS if key not in manifest]
    if missing:
        raise ValueError(f"cache manifest {manifest_path} lacks {', '.join(map(repr, missing))}; it was edited or "
                         f"damaged: {REPREPARE}")
    return manifest


def load_cache(path: str | Path, modalities: Sequence[str] | str | None = None,
               expect: str | None = None) -> MultimodalDataset:
    """A prepared cache as a :class:`MultimodalDataset` whose arrays are read-only memory maps."""
    path = Path(path)
    manifest = read_manifest(path)
    if expect is not None and manifest["dataset"] != expect:
        raise ValueError(f"cache {path} holds dataset {manifest['dataset']!r}, not {expect!r}; pass the cache made for "
                         f"{expect!r}")
    available = list(manifest["modalities"])
    chosen = check_modalities(modalities, available, what=f"cache {path}") if modalities else tuple(available)
    inputs = {m: _load_array(path, f"{m}.npy", mmap_mode="r") for m in chosen}
    labels = _load_array(path, "labels.npy")
    splits = {s: np.asarray(manifest["splits"].get(s, []), dtype=np.int64) for s in SPLITS}
    check_cache(path, manifest, inputs, labels, splits)
    verify_arrays(path, manifest, [*(f"{m}.npy" for m in chosen), "labels.npy"])
    params = {**manifest["params"], "fingerprint": manifest["fingerprint"], "modalities": list(chosen)}
    return MultimodalDataset(manifest["dataset"], chosen, inputs, labels, tuple(manifest["classes"]), splits, params,
                             sample_ids=tuple(manifest["sample_ids"]))


def _load_array(path: Path, name: str, mmap_mode: str | None = None) -> np.ndarray:
    try:
        return np.load(path / name, mmap_mode=mmap_mode)
    except FileNotFoundError:
        raise FileNotFoundError(f"cache {path} has no {name}, which its manifest lists; {REPREPARE}") from None
    except ValueError as error:
        raise ValueError(f"cache file {path / name} cannot be read ({error}); it was cut short or damaged: "
                         f"{REPREPARE}") from None


def check_cache(path: Path, manifest: dict, inputs: dict[str, np.ndarray], labels: np.ndarray,
                splits: dict[str, np.ndarray]) -> None:
    """Refuse a cache whose arrays, labels or splits disagree with its manifest (each error names the file)."""
    n, where = manifest["num_samples"], path / MANIFEST
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"cache file {path / 'labels.npy'} holds {labels.dtype} labels of shape {labels.shape}, "
                         f"expected ({n},) integers as {where} says; {REPREPARE}")
    outside = labels[(labels < 0) | (labels >= len(manifest["classes"]))]
    if len(outside):
        raise ValueError(f"cache file {path / 'labels.npy'} holds label {outside[0]}, outside the "
                         f"{len(manifest['classes'])} classes of {where}; {REPREPARE}")
    for m, array in inputs.items():
        expected = (n, *manifest["modalities"][m]["shape"])
        if array.shape != expected or array.dtype != np.dtype(manifest["modalities"][m]["dtype"]):
            raise ValueError(f"cache file {path / f'{m}.npy'} holds {array.dtype} {array.shape}, but {where} lists "
                             f"modality {m!r} as {manifest['modalities'][m]['dtype']} {expected}; {REPREPARE}")
    seen: dict[int, str] = {}
    for s, index in splits.items():
        outside = index[(index < 0) | (index >= n)]
        if len(outside):
            raise ValueError(f"cache manifest {where}: split {s!r} names sample {outside[0]}, outside 0..{n - 1}; "
                             f"{REPREPARE}")
        for i in index.tolist():
            if i in seen:
                raise ValueError(f"cache manifest {where}: sample {i} is in split {seen[i]!r} and in {s!r}; splits "
                                 f"must be disjoint (test data would leak into training): {REPREPARE}")
            seen[i] = s
    if len(manifest["sample_ids"]) != n:
        raise ValueError(f"cache manifest {where} lists {len(manifest['sample_ids'])} sample ids for {n} samples; "
                         f"{REPREPARE}")
    if _manifest_fingerprint(path, manifest, labels) != manifest["fingerprint"]:
        raise ValueError(f"cache manifest {where} does not match its fingerprint: its samples, labels, splits or "
                         f"parameters were changed after preparation; {REPREPARE}")


def verify_arrays(path: Path, manifest: dict, names: Sequence[str]) -> None:
    """Refuse a cache whose array files ``names`` differ from the size and sha256 its manifest lists.

    The size is compared on every load. Hashing reads the whole file (measured on the 2-core CI
    machine under load: 1.7 s per GB from the page cache, so some 7 s for CREMA-D's 4 GB, more from
    a cold disk), so it is done once: a file whose hash matched is remembered in ``VERIFIED`` with
    its size and modification time, and hashed again only when either changes (an overwrite, a new
    copy); bytes that rot in place without either changing are not seen again. A manifest written
    before the arrays were hashed (no ``arrays`` entry) is checked for size and shape only.
    """
    listed = {entry["path"]: entry for entry in manifest.get("arrays", [])}
    verified = _read_verified(path)
    for name in names:
        if name not in listed:
            continue
        expected, stat = listed[name], (path / name).stat()
        if stat.st_size != expected["size"]:
            raise ValueError(f"cache {path}: file {name} holds {stat.st_size} bytes, but {path / MANIFEST} lists "
                             f"{expected['size']}; it was cut short or damaged: {REPREPARE}")
        if verified.get(name) == [expected["sha256"], stat.st_size, stat.st_mtime_ns]:
            continue
        if file_record(path / name, path)["sha256"] != expected["sha256"]:
            raise ValueError(f"cache {path}: file {name} does not match the sha256 that {path / MANIFEST} lists; its "
                             f"bytes changed after preparation (a bad disk, an edit or a partial copy): {REPREPARE}")
        _remember_verified(path, [expected])


def _read_verified(path: Path) -> dict:
    """The files of the cache at ``path`` remembered as verified; none when the stamp is missing or unreadable."""
    try:
        return json.loads((path / VERIFIED).read_text())
    except (OSError, ValueError):
        return {}


def _remember_verified(path: Path, files: list[dict]) -> None:
    """Add ``files`` (``file_record`` entries whose hash matched) to the stamp of the cache at ``path``.

    A cache on a read-only disk cannot keep the stamp: it is then hashed on every load.
    """
    from mmlib.results import replace_atomically

    stamp = _read_verified(path)
    for entry in files:
        stat = (path / entry["path"]).stat()
        stamp[entry["path"]] = [entry["sha256"], stat.st_size, stat.st_mtime_ns]
    try:
        replace_atomically(path / VERIFIED, lambda handle: handle.write(json.dumps(stamp).encode()))
    except OSError:
        pass


def _manifest_fingerprint(path: Path, manifest: dict, labels: np.ndarray) -> str:
    """The fingerprint of the plan that made the cache, rebuilt from the manifest (skipped samples included)."""
    bad = manifest["bad"]
    if any("label" not in b or "split" not in b for b in bad):
        raise ValueError(f"cache manifest {path / MANIFEST} lists skipped samples without their label and split (an "
                         f"older mmlib wrote it), so its fingerprint cannot be checked; {REPREPARE}")
    total = manifest["num_samples"] + len(bad)
    skipped = {b["index"] for b in bad}
    kept = [i for i in range(total) if i not in skipped]
    samples: list[list] = [[]] * total
    for j, i in enumerate(kept):
        samples[i] = [manifest["sample_ids"][j], int(labels[j])]
    for b in bad:
        samples[b["index"]] = [b["id"], b["label"]]
    splits = {s: [kept[j] for j in manifest["splits"][s]] + [b["index"] for b in bad if b["split"] == s]
              for s in SPLITS}
    modalities = {m: (spec["shape"], spec["dtype"]) for m, spec in manifest["modalities"].items()}
    return fingerprint(manifest["dataset"], manifest["params"], modalities, samples, splits)


def require_cache(cache: str | Path | None, dataset: str) -> Path:
    """``cache`` as a path, or the error that tells the user how to make one."""
    if cache is None:
        raise ValueError(
            f"dataset {dataset!r} is read from a prepared tensor cache; pass cache=PATH to a folder made by "
            f"`python -m mmlib prepare {dataset} --root RAW --out PATH` (see data/README.md)"
        )
    return Path(cache)


@register_dataset("cache")
def load_any_cache(path: str | None = None, modalities: str | tuple[str, ...] | None = None) -> MultimodalDataset:
    """Any prepared cache, whatever dataset it holds."""
    return load_cache(require_cache(path, "cache"), modalities)


def carve_validation(labels: np.ndarray, train: np.ndarray, val_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split the training indices ``train`` into (train, val), stratified by ``labels``, deterministic."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    try:
        kept, val = train_test_split(train, test_size=val_fraction, stratify=labels[train], random_state=seed)
    except ValueError as error:
        raise ValueError(
            f"cannot carve a stratified validation set of {val_fraction:.0%} from {len(train)} training samples "
            f"({error}); use more data or a larger val_fraction"
        ) from error
    return np.sort(kept), np.sort(val)


def read_list_file(path: Path, what: str) -> list[list[str]]:
    """Non-empty lines of a split list, each split on commas (OGM-GE's ``train.csv`` / ``my_train.txt``)."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} list file {path} does not exist")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return [[cell.strip() for cell in line.split(",")] for line in lines if line.strip()]
