"""No host-to-device copy inside a training step on the device-resident data path (issue 24, item 3).

The CPU has no second device, so the arrays are put on ``meta`` (shapes without data): every copy
from the host to it goes through one of the entry points patched below, which record what they
copy, and whether without blocking. On a GPU, ``gpu_check``'s ``sync_debug`` section runs an epoch
under ``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import numpy as np
import torch

from mmlib.data import load_dataset
from mmlib.data.base import frame_statistics
from mmlib.train import augment_batch

META = torch.device("meta")
BATCH, SAMPLES = 8, 20


@contextlib.contextmanager
def counted_copies():
    """Every copy from one device to another made through ``Tensor.to``, ``Tensor.copy_``, ``Tensor.cuda``,
    ``torch.as_tensor`` or ``torch.tensor``, as ``(shape, non_blocking)`` in the order made."""
    copies: list[tuple[tuple[int, ...], bool]] = []
    to, copy_, cuda, as_tensor, tensor = (torch.Tensor.to, torch.Tensor.copy_, torch.Tensor.cuda, torch.as_tensor,
                                          torch.tensor)

    def counted_to(self, *args, **kwargs):
        device, _, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
        moved = to(self, *args, **kwargs)
        if device is not None and moved.device != self.device:
            copies.append((tuple(self.shape), bool(non_blocking)))
        return moved

    def counted_copy_(self, source, non_blocking=False):
        if source.device != self.device:
            copies.append((tuple(source.shape), bool(non_blocking)))
        return copy_(self, source, non_blocking)

    def counted_cuda(self, *args, **kwargs):
        copies.append((tuple(self.shape), bool(kwargs.get("non_blocking", False))))
        return cuda(self, *args, **kwargs)

    def factory(make):
        def counted(data, *args, **kwargs):
            made = make(data, *args, **kwargs)
            if made.device.type != "cpu" and not (isinstance(data, torch.Tensor) and data.device == made.device):
                copies.append((tuple(made.shape), False))
            return made
        return counted

    patches = {"to": counted_to, "copy_": counted_copy_, "cuda": counted_cuda}
    for name, patched in patches.items():
        setattr(torch.Tensor, name, patched)
    torch.as_tensor, torch.tensor = factory(as_tensor), factory(tensor)
    try:
        yield copies
    finally:
        torch.Tensor.to, torch.Tensor.copy_, torch.Tensor.cuda = to, copy_, cuda
        torch.as_tensor, torch.tensor = as_tensor, tensor


def clips():
    """Fabricated CREMA-D clips (audio float16, 3 uint8 frames of 16 x 16), ImageNet-normalised, on the host."""
    return load_dataset("cremad_fabricated", samples=SAMPLES, size=16, duration=0.25,
                        n_fft=30).with_frame_normalization("imagenet")


def on_meta(dataset):
    """``dataset`` with its arrays moved to ``meta``, as :meth:`MultimodalDataset.on_device` moves them to a GPU."""
    return replace(dataset, inputs={m: torch.from_numpy(np.ascontiguousarray(dataset.inputs[m])).to(META)
                                    for m in dataset.modalities})


def copies_per_batch(dataset, shuffle: torch.Generator, augmentation: torch.Generator, **options) -> list[list]:
    """The copies made while each training batch of one epoch is served and augmented, batch by batch."""
    per_batch = []
    with counted_copies() as copies:
        for batch in dataset.batches("train", BATCH, shuffle=True, generator=shuffle, device=META, full_frames=True,
                                     **options):
            augment_batch(batch, augmentation)
            per_batch.append(list(copies))
            copies.clear()
    return per_batch


def test_the_counter_sees_every_copy_entry_point():
    with counted_copies() as copies:
        torch.as_tensor(np.arange(3), device=META)
        torch.tensor([1.0, 2.0], device=META)
        torch.zeros(4).to(META, non_blocking=True)
        torch.empty(5, device=META).copy_(torch.zeros(5))
        torch.zeros(6).to(torch.float64)  # a conversion on the host: no copy between devices
    assert copies == [((3,), False), ((2,), False), ((4,), True), ((5,), False)]


def test_a_resident_epoch_copies_only_its_permutation_and_each_batchs_crop_matrix():
    frame_statistics.cache_clear()
    dataset = on_meta(clips())
    train = len(dataset.splits["train"])  # every split holds every fabricated clip
    sizes = [min(BATCH, train - start) for start in range(0, train, BATCH)]
    shuffle, augmentation = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    frames = dataset.inputs["visual"].shape[1]
    # one crop matrix per batch, from the host without waiting
    crops = [[((size * frames, 2, 3), True)] for size in sizes]

    first = copies_per_batch(dataset, shuffle, augmentation)
    second = copies_per_batch(dataset, shuffle, augmentation)

    # epoch 1, once: the epoch's rows, the labels and the two ImageNet statistics (cached per device from then on)
    assert first[0] == [((train,), True), ((SAMPLES,), True), ((3, 1, 1), True), ((3, 1, 1), True), *crops[0]]
    assert first[1:] == crops[1:]
    # epoch 2: the new permutation in one copy, then nothing per batch but its crop matrix
    assert second == [[((train,), True), *crops[0]], *crops[1:]]
    assert all(non_blocking for batch in first + second for _, non_blocking in batch)


def test_a_pass_that_reads_no_frames_gathers_none_and_copies_nothing_per_batch():
    dataset = on_meta(clips())
    copies = copies_per_batch(dataset, torch.Generator().manual_seed(0), torch.Generator().manual_seed(1),
                              modalities=["audio"])
    copies_per_batch(dataset, torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))  # labels now on meta
    copies = copies_per_batch(dataset, torch.Generator().manual_seed(0), torch.Generator().manual_seed(1),
                              modalities=["audio"])
    assert copies[0] == [((len(dataset.splits["train"]),), True)] and all(batch == [] for batch in copies[1:])
    batch = next(dataset.batches("train", BATCH, device=META, modalities=("audio",)))
    assert list(batch.inputs) == ["audio"] and batch.modalities == ("audio",)


def test_resident_batches_hold_the_rows_labels_and_values_of_the_host_path():
    host = clips().with_frame_size(12)
    resident = replace(host,
                       inputs={m: torch.from_numpy(np.ascontiguousarray(host.inputs[m])) for m in host.modalities})
    rows = list(host._batch_rows("train", BATCH, True, torch.Generator().manual_seed(3), None))
    expected = list(host.batches("train", BATCH, shuffle=True, generator=torch.Generator().manual_seed(3)))
    served = list(resident._resident_batches(rows, torch.device("cpu"), host.frame_size, host.modalities))
    assert len(served) == len(expected) == 3
    for got, want in zip(served, expected):
        assert torch.equal(got.index, want.index) and torch.equal(got.labels, want.labels)
        assert all(torch.equal(got.inputs[m], want.inputs[m]) for m in host.modalities)


def test_asking_for_an_unknown_modality_is_one_clear_line():
    dataset = clips()
    try:
        next(dataset.batches("train", BATCH, modalities=["text"]))
    except ValueError as error:
        assert str(error) == "batches: unknown modality 'text'; valid choices are ['audio', 'visual']"
    else:
        raise AssertionError("an unknown modality was accepted")


def test_the_loop_gathers_for_each_pass_only_the_modalities_its_steps_read(monkeypatch):
    """ours' epoch of two passes (pi_1 alone, then pi_1 -> pi_2) asks for pi_1's inputs, then both;
    concat, whose one pass reads every modality, asks for all (None). (Shuffled: the training passes;
    the frozen prefix's features are encoded in split order, from its own modalities alone.)"""
    from mmlib.config import TrainConfig
    from mmlib.data.base import MultimodalDataset
    from mmlib.train import train

    asked = []
    batches = MultimodalDataset.batches

    def recorded(self, split, *args, **kwargs):
        if split == "train" and kwargs.get("shuffle"):
            asked.append(kwargs.get("modalities"))
        return batches(self, split, *args, **kwargs)

    monkeypatch.setattr(MultimodalDataset, "batches", recorded)
    data = {"num_samples": 120}
    ours = train(TrainConfig(method="ours", dataset="synthetic", dataset_options=data, epochs=2, probe=False),
                 progress=False)
    orders = [epoch["order"] for epoch in ours["history"]]
    in_dataset_order = [tuple(m for m in ours["modalities"] if m in order[:k]) for order in orders for k in (1, 2)]
    assert asked == in_dataset_order and len(asked) == 4
    asked.clear()
    train(TrainConfig(method="concat", dataset="synthetic", dataset_options=data, epochs=1, probe=False),
          progress=False)
    assert asked == [None]
