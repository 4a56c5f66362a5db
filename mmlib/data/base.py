"""The batch type, the in-memory dataset, stratified splits and missing-modality masks.

Every dataset in the book, embedded or real, becomes a :class:`MultimodalDataset`: one array per
modality (``(N, ...)``, a NumPy array or a read-only memory map), integer labels, named classes and
a fixed train / val / test split. Training never sees files, only :class:`Batch` objects.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mmlib.data.prefetch import prefetched
from mmlib.distributed import shard_bounds

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Batch:
    """One minibatch.

    inputs:   modality name -> tensor ``(B, ...)``
    labels:   ``(B,)`` int64
    index:    ``(B,)`` int64 row of each sample in the dataset (None for a hand-made batch), so a
              method can look up per-sample values it computed earlier (e.g. frozen features).
    """

    inputs: dict[str, Tensor]
    labels: Tensor
    modalities: tuple[str, ...]
    index: Tensor | None = None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        return Batch(
            {m: x.to(device, non_blocking=non_blocking) for m, x in self.inputs.items()},
            self.labels.to(device, non_blocking=non_blocking),
            self.modalities,
            None if self.index is None else self.index.to(device, non_blocking=non_blocking),
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class MultimodalDataset:
    """Arrays for every modality, labels, class names and the split that is part of its identity."""

    name: str
    modalities: tuple[str, ...]
    inputs: dict[str, np.ndarray]
    labels: np.ndarray
    classes: tuple[str, ...]
    splits: dict[str, np.ndarray]
    params: dict = field(default_factory=dict)
    frame_normalization: str = "unit"
    frame_size: int = 0
    sample_ids: tuple[str, ...] = ()  # each row's id where the source names samples (a cache's clips); else ()
    _labels_on: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # device -> labels there

    def __post_init__(self) -> None:
        n = len(self.labels)
        for m in self.modalities:
            if m not in self.inputs:
                raise ValueError(f"dataset {self.name!r}: no array for modality {m!r}; have {sorted(self.inputs)}")
            if len(self.inputs[m]) != n:
                raise ValueError(
                    f"dataset {self.name!r}: modality {m!r} has {len(self.inputs[m])} samples but there are "
                    f"{n} labels; every modality must hold one row per sample"
                )
        for s in SPLITS:
            if s not in self.splits:
                raise ValueError(f"dataset {self.name!r}: split {s!r} missing; expected splits {SPLITS}")
            if len(self.splits[s]) == 0:
                raise ValueError(
                    f"dataset {self.name!r}: split {s!r} is empty; choose fractions that leave at least one "
                    f"sample per split (sizes: { {k: len(v) for k, v in self.splits.items()} })"
                )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def input_shape(self, modality: str) -> tuple[int, ...]:
        """The shape of one sample of ``modality`` as the model receives it (RGB frames at ``frame_size``)."""
        shape = tuple(self.inputs[modality].shape[1:])
        if self.frame_size and is_frames(self.inputs[modality]) and len(shape) == 4:
            return (*shape[:-2], self.frame_size, self.frame_size)
        return shape

    @property
    def identity(self) -> dict:
        """JSON-serialisable description that names exactly which samples are in which split."""
        digest = hashlib.sha256()
        for s in SPLITS:
            digest.update(s.encode())
            digest.update(np.asarray(self.splits[s], dtype=np.int64).tobytes())
        return {
            "name": self.name,
            "modalities": list(self.modalities),
            "params": json.loads(json.dumps(self.params, default=str)),
            "split_sizes": {s: int(len(self.splits[s])) for s in SPLITS},
            "split_sha256": digest.hexdigest()[:16],
            "num_classes": self.num_classes,
        }

    def select(self, modalities: Sequence[str]) -> "MultimodalDataset":
        """The same samples and split with only ``modalities`` (in the given order)."""
        modalities = check_modalities(modalities, self.modalities, what=f"dataset {self.name!r}")
        return replace(self, modalities=modalities, inputs={m: self.inputs[m] for m in modalities},
                                   params={**self.params, "modalities": list(modalities)})

    def with_frame_normalization(self, normalization: str) -> "MultimodalDataset":
        """The same dataset whose RGB frames reach the model as ``unit`` ([0, 1]) or ``imagenet`` (standardised)."""
        if normalization not in FRAME_STATISTICS:
            raise ValueError(f"frame_normalization must be one of {tuple(FRAME_STATISTICS)}, got {normalization!r}")
        return replace(self, frame_normalization=normalization)

    def with_frame_size(self, size: int) -> "MultimodalDataset":
        """The same dataset whose clips' RGB frames (``(T, 3, H, W)`` per sample) reach the model resized
        to ``size x size`` (0: as stored).

        Evaluation batches are resized as the peers' test transform resizes (``Resize((224, 224))``);
        training batches asked for with ``full_frames`` keep the stored size, so that the crop of
        train-time augmentation is cut from every stored pixel and then resized (``crop_flip``).
        """
        check_frame_size(size, "frame_size")
        return replace(self, frame_size=size)

    def on_device(self, device: torch.device | str, budget: float = 0.5) -> "MultimodalDataset":
        """The same dataset with every array on ``device`` when it fits, else unchanged.

        On a CUDA device the arrays move, in their stored dtype (uint8 frames, float16
        spectrograms), when they take at most ``budget`` of the free device memory; batches are
        then gathered, converted and normalised on the device with no host work. The CPU path
        keeps NumPy arrays (and memory maps) as they are.
        """
        device = torch.device(device)
        if device.type != "cuda" or self.resident:
            return self
        size = sum(np.asarray(self.inputs[m]).nbytes for m in self.modalities)
        free, _ = torch.cuda.mem_get_info(device)
        if size > budget * free:
            return self
        inputs = {m: torch.from_numpy(np.ascontiguousarray(self.inputs[m])).to(device) for m in self.modalities}
        return replace(self, inputs=inputs)

    def tensors(self, split: str, device: torch.device | str = "cpu") -> tuple[dict[str, Tensor], Tensor]:
        """Every sample of ``split`` as tensors (float32 inputs; uint8 frames are scaled to [0, 1])."""
        idx = self._split_indices(split)
        inputs = {m: self._gather(m, idx, torch.device(device), self.frame_size) for m in self.modalities}
        return inputs, torch.as_tensor(np.asarray(self.labels[idx]), dtype=torch.long, device=device)

    def batches(
        self,
        split: str,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        shard: tuple[int, int] | None = None,
        full_frames: bool = False,
        modalities: Sequence[str] | None = None,
    ) -> Iterator[Batch]:
        """Minibatches of ``split``: in split order, or shuffled by ``generator``; the last may be smaller.

        ``shard=(rank, size)``: every batch is cut as without it (same order, same ``batch_size``),
        then only rank's contiguous slice of it is gathered (:func:`mmlib.distributed.shard_bounds`):
        the shard of one process of a run trained by ``size`` processes.

        ``full_frames``: RGB frames keep their stored size instead of ``frame_size`` (for a training
        loop whose augmentation crops and resizes them).

        ``modalities``: gather only these (default: every modality); the batch's ``inputs`` and
        ``modalities`` hold just them, so a pass that reads no frames gathers and converts none.

        For arrays on a device (:meth:`on_device`), the epoch's rows travel there in one copy and
        the labels once per device; each batch is then sliced, gathered and converted there with
        no copy from the host and no wait for it (:meth:`_resident_batches`). For an accelerator
        and arrays left on the host, batches are gathered in their stored dtype and copied one step
        ahead on a side stream (:mod:`mmlib.data.prefetch`).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        device = torch.device(device)
        chosen = self.modalities if modalities is None else check_modalities(modalities, self.modalities,
                                                                             what="batches")
        frame_size = 0 if full_frames else self.frame_size
        rows = self._batch_rows(split, batch_size, shuffle, generator, shard)
        if self.resident and device.type != "cpu":
            yield from self._resident_batches(list(rows), device, frame_size, chosen)
            return
        if device.type == "cpu" or self.resident:
            for chunk in rows:
                yield self._batch({m: self._gather(m, chunk, device, frame_size) for m in chosen}, chunk, device,
                                  chosen)
            return
        yield from self._prefetched_batches(rows, device, frame_size, chosen)

    def _prefetched_batches(self, chunks: Iterable[np.ndarray], device: torch.device, frame_size: int,
                            chosen: Sequence[str]) -> Iterator[Batch]:
        """Host arrays to an accelerator: each chunk gathered in its stored dtype, copied and converted
        one step ahead (:func:`mmlib.data.prefetch.prefetched`)."""
        stored = (self._batch({m: self._stored_rows(m, chunk) for m in chosen}, chunk, torch.device("cpu"), chosen)
                  for chunk in chunks)
        yield from prefetched(stored, device, lambda raw: to_model_input(raw, self.frame_normalization, frame_size))

    def _resident_batches(self, chunks: list[np.ndarray], device: torch.device, frame_size: int,
                          modalities: tuple[str, ...]) -> Iterator[Batch]:
        """Batches of arrays that live on ``device``, with no host-to-device copy and no host sync per batch.

        The rows of every batch of the epoch (``chunks``, the permutation cut into batches) go to the
        device in one non-blocking copy; the labels are kept there once per device
        (:meth:`_device_labels`); each batch is a slice of those rows, its inputs and labels
        gathered by ``index_select`` and converted there, its frame statistics cached per device
        (:func:`frame_statistics`).
        """
        order = host_to_device(torch.from_numpy(np.concatenate(chunks) if chunks else np.empty(0, np.int64)), device)
        labels = self._device_labels(device)
        start = 0
        for chunk in chunks:
            index = order[start : start + len(chunk)]
            start += len(chunk)
            inputs = {m: to_model_input(self.inputs[m].index_select(0, index), self.frame_normalization, frame_size)
                      for m in modalities}
            yield Batch(inputs, labels.index_select(0, index), modalities, index)

    def _device_labels(self, device: torch.device) -> Tensor:
        """The labels of every sample as an int64 tensor on ``device``, copied there once."""
        key = str(device)
        if key not in self._labels_on:
            self._labels_on[key] = host_to_device(torch.as_tensor(np.asarray(self.labels), dtype=torch.long), device)
        return self._labels_on[key]

    def nonfinite_samples(self, split: str, chunk: int = 1024) -> dict[str, list[str]]:
        """The samples of ``split`` whose stored input holds NaN or inf, by modality (those with any):
        their ids (:attr:`sample_ids`), else their row numbers. Read ``chunk`` rows at a time."""
        index = self._split_indices(split)
        found: dict[str, list[str]] = {}
        for m in self.modalities:
            for start in range(0, len(index), chunk):
                rows = index[start : start + chunk]
                stored = self._stored_rows(m, rows)
                if not stored.is_floating_point():
                    break
                finite = torch.isfinite(stored).reshape(len(rows), -1).all(dim=1).cpu().numpy()
                found.setdefault(m, []).extend(self.sample_ids[r] if self.sample_ids else str(r)
                                               for r in sorted(rows[~finite]))
        return {m: ids for m, ids in found.items() if ids}

    @property
    def resident(self) -> bool:
        """Whether the arrays are tensors (on a device, see :meth:`on_device`) rather than host arrays."""
        return any(isinstance(self.inputs[m], Tensor) for m in self.modalities)

    def _batch_rows(self, split: str, batch_size: int, shuffle: bool, generator: torch.Generator | None,
                    shard: tuple[int, int] | None) -> Iterator[np.ndarray]:
        """The dataset rows of each batch (this shard's slice of it), in the order batches are served."""
        idx = self._split_indices(split)
        if shuffle:
            order = torch.randperm(len(idx), generator=generator).numpy()
            idx = idx[order]
        for start in range(0, len(idx), batch_size):
            chunk = np.sort(idx[start : start + batch_size]) if not shuffle else idx[start : start + batch_size]
            if shard is not None:
                chunk = chunk[shard_bounds(len(chunk), *shard)]
            yield chunk

    def _batch(self, inputs: dict[str, Tensor], rows: np.ndarray, device: torch.device,
               modalities: tuple[str, ...]) -> Batch:
        """A :class:`Batch` of ``inputs`` (of ``modalities``) with the labels and indices of ``rows`` on ``device``."""
        labels = torch.as_tensor(np.asarray(self.labels[rows]), dtype=torch.long, device=device)
        return Batch(inputs, labels, modalities, torch.as_tensor(rows, dtype=torch.long, device=device))

    def _stored_rows(self, modality: str, rows: np.ndarray) -> Tensor:
        """Rows of one modality as they are stored: a host tensor in the array's dtype, or a slice of a resident one."""
        stored = self.inputs[modality]
        if isinstance(stored, Tensor):
            return stored.index_select(0, torch.as_tensor(rows, device=stored.device))
        return torch.from_numpy(np.ascontiguousarray(stored[rows]))

    def _gather(self, modality: str, rows: np.ndarray, device: torch.device, frame_size: int) -> Tensor:
        """Rows of one modality as float32 model input on ``device``, RGB frames at ``frame_size`` (0: as stored).

        Stored arrays travel in their own dtype (uint8 frames are a quarter of their float32 size),
        from host memory to a GPU through pinned memory, and are converted on ``device``.
        """
        raw = self._stored_rows(modality, rows)
        if device.type == "cuda" and raw.device.type == "cpu":
            raw = raw.pin_memory()
        return to_model_input(raw.to(device, non_blocking=True), self.frame_normalization, frame_size)

    def _split_indices(self, split: str) -> np.ndarray:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return np.asarray(self.splits[split], dtype=np.int64)


# Per-channel mean and std that RGB frames are standardised with: ``unit`` leaves [0, 1] as is;
# ``imagenet`` is torchvision's Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) of the
# peers' frame transforms (OGM-GE dataset/CramedDataset.py l. 73, MLA dataset/dataset.py l. 133).
FRAME_STATISTICS = {
    "unit": None,
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def to_model_input(raw: Tensor, frame_normalization: str = "unit", frame_size: int = 0) -> Tensor:
    """A stored array as float32 model input: uint8 scaled to [0, 1]; RGB frames ``(..., 3, H, W)``
    standardised and, for clips ``(B, T, 3, H, W)`` (what augmentation crops) with ``frame_size``,
    resized to ``frame_size x frame_size`` (:func:`resize_frames`)."""
    if raw.dtype != torch.uint8:
        return raw.float()
    scaled = raw.float().div_(255.0)
    if not is_frames(raw):
        return scaled
    statistics = frame_statistics(frame_normalization, raw.device)
    if statistics is not None:
        mean, std = statistics
        scaled = scaled.sub_(mean).div_(std)
    return resize_frames(scaled, frame_size) if raw.dim() == 5 else scaled


@functools.cache
def frame_statistics(frame_normalization: str, device: torch.device) -> tuple[Tensor, Tensor] | None:
    """The ``(3, 1, 1)`` mean and std of :data:`FRAME_STATISTICS` on ``device``, made there once per device
    (None for ``unit``): a batch's normalisation copies nothing from the host."""
    statistics = FRAME_STATISTICS[frame_normalization]
    if statistics is None:
        return None
    return tuple(host_to_device(torch.tensor(v).view(3, 1, 1), device) for v in statistics)


def host_to_device(tensor: Tensor, device: torch.device) -> Tensor:
    """A host ``tensor`` on ``device`` without making the host wait: from pinned memory with
    ``non_blocking`` on CUDA (the copy is queued on the current stream, before any kernel that
    reads it); unchanged on the CPU."""
    if device.type == "cpu":
        return tensor
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def resize_frames(frames: Tensor, size: int) -> Tensor:
    """Float frames ``(..., 3, H, W)`` resized to ``size x size``, bilinear and antialiased; unchanged when
    ``size`` is 0 or already theirs. The peers' test-time ``transforms.Resize(size=(224, 224))`` (OGM-GE
    ``dataset/CramedDataset.py`` l. 76) resizes PIL frames this way, aspect not kept."""
    if not size or tuple(frames.shape[-2:]) == (size, size):
        return frames
    flat = frames.reshape(-1, *frames.shape[-3:])
    resized = F.interpolate(flat, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.view(*frames.shape[:-2], size, size)


def is_frames(array: np.ndarray | Tensor) -> bool:
    """Whether a stored array (or batch) holds RGB frames: uint8 ``(..., 3, H, W)``."""
    return str(array.dtype).endswith("uint8") and array.ndim >= 4 and array.shape[-3] == 3


def check_frame_size(size: int, what: str) -> None:
    """``size`` must be 0 (frames as stored) or at least 8 pixels; a clear error naming ``what`` otherwise."""
    if not isinstance(size, int) or isinstance(size, bool) or (size != 0 and size < 8):
        raise ValueError(f"{what} must be 0 (frames at their stored size) or a size of at least 8 pixels, got {size!r}")


def check_modalities(requested: Sequence[str] | str, available: Sequence[str], what: str) -> tuple[str, ...]:
    """Validate a modality list (``"a,b"`` or a sequence): known names, no repeats, at least one."""
    if isinstance(requested, str):
        requested = [m.strip() for m in requested.split(",") if m.strip()]
    requested = tuple(requested)
    if not requested:
        raise ValueError(f"{what}: no modality given; choose from {list(available)}")
    unknown = [m for m in requested if m not in available]
    if unknown:
        raise ValueError(f"{what}: unknown modality {unknown[0]!r}; valid choices are {list(available)}")
    repeated = sorted({m for m in requested if requested.count(m) > 1})
    if repeated:
        raise ValueError(f"{what}: modality {repeated[0]!r} listed twice in {list(requested)}; list each once")
    return requested


def stratified_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Disjoint train / val / test index arrays with every class in the same proportion in each.

    Deterministic: the same labels, fractions and seed give the same indices. Too few samples for
    that is an error that says how many are needed.
    """
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < frac < 1.0:
            raise ValueError(f"{name} must lie in (0, 1), got {frac}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1 to leave training data, got {val_fraction + test_fraction}"
        )
    labels = np.asarray(labels)
    try:
        return _stratified_split(labels, val_fraction, test_fraction, seed)
    except ValueError:
        pass  # scikit-learn's wording names its own parameters; say what the data needs instead
    classes, counts = np.unique(labels, return_counts=True)
    needed = next(n for n in itertools.count(len(classes))
                  if _stratifiable(n, len(classes), val_fraction, test_fraction))
    raise ValueError(
        f"a stratified split of {len(labels)} samples into {val_fraction:.0%} validation and {test_fraction:.0%} test "
        f"needs at least {needed} samples spread evenly over the {len(classes)} classes (about "
        f"{-(-needed // len(classes))} each), so that every split holds every class; the smallest class here has "
        f"{counts.min()}: add samples or raise the fractions"
    )


def _stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float,
                      seed: int) -> dict[str, np.ndarray]:
    from sklearn.model_selection import train_test_split

    all_idx = np.arange(len(labels))
    rest, test = train_test_split(all_idx, test_size=test_fraction, stratify=labels, random_state=seed)
    val_share = val_fraction / (1.0 - test_fraction)
    train, val = train_test_split(rest, test_size=val_share, stratify=labels[rest], random_state=seed + 1)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def _stratifiable(num_samples: int, num_classes: int, val_fraction: float, test_fraction: float) -> bool:
    """Whether ``num_samples`` spread evenly over ``num_classes`` can be split with every class in every split."""
    try:
        _stratified_split(np.arange(num_samples) % num_classes, val_fraction, test_fraction, 0)
    except ValueError:
        return False
    return True


def missing_modality_mask(num_samples: int, num_modalities: int, rate: float, seed: int) -> np.ndarray:
    """``(N, n)`` bool mask with each modality absent with probability ``rate``, never all absent.

    A sample drawn with every modality missing keeps one modality chosen uniformly at random, the
    convention of the missing-modality literature (MMIN, TATE), so every sample stays classifiable.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"missing rate must lie in [0, 1), got {rate}")
    rng = np.random.default_rng(seed)
    present = rng.random((num_samples, num_modalities)) >= rate
    empty = ~present.any(axis=1)
    present[np.flatnonzero(empty), rng.integers(0, num_modalities, size=int(empty.sum()))] = True
    return present
