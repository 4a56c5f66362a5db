"""Evaluation order: chunks drawn in a fixed shuffled order (seeded), never in the split's order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmlib.data.base import MultimodalDataset
from mmlib.evaluate import evaluate_split, evaluation_order

CHUNK = 8


class ChunkMean(nn.Module):
    """The most batch-dependent classifier there is: every sample's logits are its chunk's mean feature."""

    modalities = ("x",)

    def encode(self, inputs, modalities=None):
        return {"x": inputs["x"]}

    def logits_from_features(self, features, present):
        f = features["x"] if present else torch.zeros_like(features["x"])
        return f.mean(dim=0, keepdim=True).expand_as(f)


def class_sorted_dataset(test_rows: np.ndarray | None = None) -> MultimodalDataset:
    """32 samples, two classes, one-hot features; the test split (rows 16-31) lists class 0, then class 1."""
    labels = np.array([0, 1] * 8 + [0] * 8 + [1] * 8)
    features = np.eye(2, dtype=np.float32)[labels]
    test = np.arange(16, 32) if test_rows is None else test_rows
    splits = {"train": np.arange(0, 8), "val": np.arange(8, 16), "test": test}
    return MultimodalDataset("sorted", ("x",), {"x": features}, labels, ("0", "1"), splits)


def majority_count(chunk_labels: list[int]) -> int:
    """Samples a chunk-mean classifier gets right in one chunk: the majority class's count (ties go to class 0)."""
    zeros, ones = chunk_labels.count(0), chunk_labels.count(1)
    return zeros if zeros >= ones else ones


def test_split_order_chunks_would_leak_labels_but_evaluation_chunks_are_shuffled():
    dataset = class_sorted_dataset()
    labels = dataset.labels[dataset.splits["test"]].tolist()
    in_split_order = sum(majority_count(labels[s : s + CHUNK]) for s in range(0, 16, CHUNK))
    assert in_split_order == 16  # sorted chunks are single-class: the chunk mean is the label
    # the documented order: rows ascending, then torch.randperm(16) from a generator seeded with the seed
    permutation = torch.randperm(16, generator=torch.Generator().manual_seed(0)).tolist()
    shuffled = [labels[i] for i in permutation]
    expected = 100.0 * sum(majority_count(shuffled[s : s + CHUNK]) for s in range(0, 16, CHUNK)) / 16
    result = evaluate_split(ChunkMean(), dataset, "test", CHUNK, "cpu", seed=0)
    assert result["fused_acc"] == pytest.approx(expected)
    assert result["fused_acc"] < 100.0


@pytest.mark.parametrize("seed", [0, 7])
def test_evaluation_gives_the_same_accuracy_for_any_order_of_the_splits_rows(seed):
    reference = evaluate_split(ChunkMean(), class_sorted_dataset(), "test", CHUNK, "cpu", seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        shuffled_split = class_sorted_dataset(rng.permutation(np.arange(16, 32)))
        assert evaluate_split(ChunkMean(), shuffled_split, "test", CHUNK, "cpu", seed=seed) == reference


def test_evaluation_order_depends_on_rows_and_seed_only():
    rows = torch.tensor([30, 10, 20, 40])
    order = evaluation_order(rows, seed=3)
    permutation = torch.randperm(4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(rows[order], torch.tensor([10, 20, 30, 40])[permutation])
    assert torch.equal(rows[order], rows.flip(0)[evaluation_order(rows.flip(0), seed=3)])
