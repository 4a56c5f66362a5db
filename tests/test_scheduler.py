"""Training-order policies (Eq. 8) and how an order becomes training steps."""

import pytest

from mmlib.scheduler import next_order, prefix_plan


def test_shapley_policy_trains_weakest_first():
    assert next_order("shapley", ["a", "b", "c"], epoch=2, shapley={"a": 30.0, "b": 5.0, "c": 12.0},
                      seed=0) == ("b", "c", "a")


def test_first_epoch_uses_listed_order_and_ties_keep_it():
    assert next_order("shapley", ["a", "b"], epoch=1, shapley=None, seed=0) == ("a", "b")
    assert next_order("shapley", ["a", "b"], epoch=3, shapley={"a": 1.0, "b": 1.0}, seed=0) == ("a", "b")


def test_reverse_policy_is_the_shapley_order_reversed_every_epoch():
    phi = {"a": 30.0, "b": 5.0, "c": 12.0}
    assert next_order("reverse", ["a", "b", "c"], epoch=2, shapley=phi, seed=0) == ("a", "c", "b")  # strongest first
    for epoch, values in ((1, None), (2, phi), (3, {"a": 1.0, "b": 1.0, "c": 0.0})):
        shapley_order = next_order("shapley", ["a", "b", "c"], epoch, values, seed=0)
        assert next_order("reverse", ["a", "b", "c"], epoch, values, seed=0) == shapley_order[::-1]
    assert next_order("reverse", ["a", "b"], epoch=1, shapley=None, seed=0) == ("b", "a")


def test_random_policy_is_reproducible_per_epoch_and_fixed_never_moves():
    first = [next_order("random", "abcd", e, None, seed=4) for e in range(1, 6)]
    assert first == [next_order("random", "abcd", e, None, seed=4) for e in range(1, 6)]
    assert len(set(first)) > 1
    assert next_order("fixed", "abc", 7, {"a": 0, "b": -1, "c": 5}, 0) == ("a", "b", "c")


def test_prefix_plan_granularities():
    assert prefix_plan(("a", "b", "c"), "epoch") == [[("a",)], [("a", "b")], [("a", "b", "c")]]
    assert prefix_plan(("a", "b"), "batch") == [[("a",), ("a", "b")]]


def test_unknown_policy_or_granularity_is_an_error():
    with pytest.raises(ValueError, match="unknown order policy 'best'"):
        next_order("best", "ab", 1, None, 0)
    with pytest.raises(ValueError, match="unknown granularity"):
        prefix_plan("ab", "step")
