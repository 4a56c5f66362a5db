"""The frozen-prefix cache's invariant: a table is dropped exactly when its encoder has trained since."""

from __future__ import annotations

import pytest
import torch

from mmlib.prefix_cache import FrozenPrefixCache

ROWS = torch.tensor([2, 0, 1])


class Counting:
    """A stand-in for the training-split encoder pass: counts what it is asked for."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def __call__(self, modalities):
        self.asked.append(list(modalities))
        version = len(self.asked)
        return ROWS, {m: torch.full((3, 2), float(version)) + ROWS[:, None] for m in modalities}


def run_epoch(cache: FrozenPrefixCache, order: str, compute: Counting) -> list[list[str]]:
    """One epoch of passes over ``order`` (e.g. "abc"): pass k trains order[k] with order[:k] frozen."""
    return [cache.start_pass(list(order[:k]), order[k], compute, len(ROWS)) for k in range(len(order))]


def test_each_frozen_encoder_is_computed_once_per_change_of_its_weights():
    cache, compute = FrozenPrefixCache(), Counting()
    # epoch 1, order a>b>c: a is computed for pass 2; b for pass 3 (a still valid)
    assert run_epoch(cache, "abc", compute) == [[], ["a"], ["b"]]
    # epoch 2, order b>a>c: pass 2 needs b, trained in pass 1; pass 3 needs a (trained in pass 2), b is valid
    assert run_epoch(cache, "bac", compute) == [[], ["b"], ["a"]]
    assert compute.asked == [["a"], ["b"], ["b"], ["a"]]


def test_the_encoder_trained_last_is_dropped_when_the_next_pass_starts():
    cache, compute = FrozenPrefixCache(), Counting()
    run_epoch(cache, "abc", compute)
    assert "a" in cache and "b" in cache and "c" not in cache
    cache.start_pass([], "a", compute, len(ROWS))  # epoch 2 starts with a: c (trained last) is stale, a and b not yet
    assert "a" in cache and "b" in cache
    cache.start_pass(["a"], "b", compute, len(ROWS))  # a trained in the previous pass: recomputed
    assert compute.asked[-1] == ["a"]


def test_lookup_returns_rows_in_batch_order_or_none():
    cache, compute = FrozenPrefixCache(), Counting()
    cache.start_pass(["a"], "b", compute, len(ROWS))
    # the table row r holds 1 + r in both columns (compute's first answer, written at ROWS)
    assert cache.lookup(["a"], torch.tensor([1, 2]))["a"].tolist() == [[2.0, 2.0], [3.0, 3.0]]
    assert cache.lookup(["a", "b"], torch.tensor([1])) is None  # b is not tabulated
    assert cache.lookup(["a"], None) is None  # a hand-made batch has no dataset rows


def test_recorded_mode_keeps_and_overwrites_instead_of_dropping():
    cache, compute = FrozenPrefixCache(recorded=True), Counting()
    cache.start_pass([], "a", compute, len(ROWS))
    cache.write("a", torch.tensor([0, 1]), torch.tensor([[5.0, 5.0], [6.0, 6.0]]))  # recorded while a trained
    assert cache.start_pass(["a"], "b", compute, len(ROWS)) == []  # a's recorded features serve: nothing computed
    assert cache.lookup(["a"], torch.tensor([1]))["a"].tolist() == [[6.0, 6.0]]


def test_a_table_holds_every_dataset_row_from_its_first_write_and_clear_forgets():
    cache = FrozenPrefixCache(recorded=True)
    with pytest.raises(ValueError, match="write before start_pass"):
        cache.write("a", torch.tensor([0]), torch.ones(1, 2))
    cache.start_pass([], "a", Counting(), rows=5)
    cache.write("a", torch.tensor([0]), torch.ones(1, 2))
    assert cache._tables["a"].shape == (5, 2)  # whole at once: no write reads its rows back to size it
    cache.write("a", torch.tensor([4]), torch.full((1, 2), 2.0))
    assert cache.lookup(["a"], torch.tensor([0, 4, 2]))["a"].tolist() == [[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]
    cache.clear()
    assert "a" not in cache
