"""Shapley values (Eq. 7) and both EDM readings, on games worked out by hand."""

import itertools

import numpy as np
import pytest

from mmlib.shapley import (
    edm_sample, edm_share, sample_game, sampled_shapley, shapley_from_table, shapley_values, subset_members,
)

# v(S) for players a, b, c, worked by hand in the test below.
HAND_GAME = {"": 0, "a": 10, "b": 20, "c": 30, "ab": 40, "ac": 50, "bc": 60, "abc": 90}


def hand_value(subset: frozenset) -> float:
    return HAND_GAME["".join(sorted(subset))]


def test_shapley_of_hand_worked_three_player_game():
    # phi_a = 1/3*(10-0) + 1/6*(40-20) + 1/6*(50-30) + 1/3*(90-60) = 20, likewise phi_b = 30, phi_c = 40
    phi = shapley_values(hand_value, ["a", "b", "c"])
    assert phi == pytest.approx({"a": 20.0, "b": 30.0, "c": 40.0})


def _random_game(rng, players):
    table = {frozenset(): 0.0}
    for k in range(1, len(players) + 1):
        for subset in itertools.combinations(players, k):
            table[frozenset(subset)] = float(rng.uniform(0, 100))
    return table


@pytest.mark.parametrize("seed", range(5))
def test_shapley_is_efficient(seed):
    players = ["a", "b", "c", "d"]
    game = _random_game(np.random.default_rng(seed), players)
    phi = shapley_values(game.__getitem__, players)
    assert sum(phi.values()) == pytest.approx(game[frozenset(players)] - game[frozenset()])


def test_shapley_is_symmetric_and_gives_null_player_zero():
    rng = np.random.default_rng(0)
    base = _random_game(rng, ["a", "b"])
    # c is a null player; d is a copy of b (a perfect substitute: adding either gives the same)
    def value(subset):
        core = subset - {"c", "d"}
        if "d" in subset and "b" not in subset:
            core = core | {"b"}
        return base[frozenset(core)]

    phi = shapley_values(value, ["a", "b", "c", "d"])
    assert phi["c"] == pytest.approx(0.0)
    assert phi["b"] == pytest.approx(phi["d"])


def test_shapley_is_invariant_to_permuting_players():
    phi = shapley_values(hand_value, ["a", "b", "c"])
    phi_permuted = shapley_values(hand_value, ["c", "a", "b"])
    assert phi_permuted == pytest.approx(phi)


def test_per_sample_shapley_matches_loop_version():
    rng = np.random.default_rng(1)
    players = ["x", "y", "z"]
    tables = rng.uniform(0, 1, size=(7, 8))
    vectorised = shapley_from_table(tables)
    for row, phi in zip(tables, vectorised):
        looped = shapley_values(lambda s, row=row: row[sum(1 << players.index(p) for p in s)], players)
        assert phi == pytest.approx([looped[p] for p in players])


def test_sampled_shapley_lies_within_its_stated_bound():
    phi, bound = sampled_shapley(hand_value, ["a", "b", "c"], num_permutations=400, seed=0, value_range=100.0)
    exact = {"a": 20.0, "b": 30.0, "c": 40.0}
    for p in exact:
        assert abs(phi[p] - exact[p]) <= bound[p]


def test_subset_members_follows_bitmask():
    assert subset_members(0b101, ["a", "b", "c"]) == ("a", "c")


def test_edm_sample_is_zero_when_every_subset_is_right():
    correct = np.ones((5, 4), dtype=bool)
    terms, total = edm_sample(correct, ["a", "b"])
    assert terms == {"a": 0.0, "b": 0.0} and total == 0.0


def test_edm_sample_hand_worked_unbalanced_case():
    # columns: {}, {a}, {b}, {a,b}. Per-sample phi: (1,1), (1,1), (1.5,0.5), (0.5,-0.5)
    correct = np.array([
        [0, 1, 1, 1],
        [0, 0, 0, 1],
        [0, 1, 0, 1],
        [0, 1, 0, 0],
    ], dtype=bool)
    terms, total = edm_sample(correct, ["a", "b"])
    assert terms == pytest.approx({"a": 25.0, "b": 50.0})
    assert total == pytest.approx(75.0)


def test_edm_share_zero_when_balanced_and_hand_value_when_not():
    assert edm_share({"a": 20.0, "b": 20.0})[1] == 0.0
    terms, total = edm_share({"a": 30.0, "b": 10.0})  # shares 150% and 50%
    assert terms == pytest.approx({"a": 50.0, "b": 50.0}) and total == pytest.approx(100.0)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="distinct"):
        shapley_values(hand_value, ["a", "a"])
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        edm_sample(np.ones((3, 8), dtype=bool), ["a", "b"])
    with pytest.raises(ValueError, match="2\\*\\*n columns"):
        shapley_from_table(np.ones((2, 6)))


def test_sample_game_by_hand():
    """Subsets none, a, b, ab; the sample is right with a and with ab: v = 0, 1, 0, 2, so
    phi_a = (1 - 0) / 2 + (2 - 0) / 2 = 1.5 and phi_b = (0 - 0) / 2 + (2 - 1) / 2 = 0.5."""
    correct = np.array([[False, True, False, True]])
    assert sample_game(correct).tolist() == [[0.0, 1.0, 0.0, 2.0]]
    assert shapley_from_table(sample_game(correct)).tolist() == [[1.5, 0.5]]
