"""Exact Shapley values over modality subsets (paper Eq. 7) and the equilibrium deviation metric.

Subsets are indexed by bitmask: subset ``b`` holds ``players[k]`` when bit ``k`` of ``b`` is set,
so a value table has ``2**n`` columns and column 0 is the empty set.

EDM (paper Sec. 5.1) is written there as ``sum_i |100% - phi(M_i)|`` without saying how phi is
scaled. Both readings are implemented:

``sample`` (primary)  per-sample Shapley of the game v(S) = |S| if the prediction from the
                      modalities in S is correct, else 0 (the sample-level valuation of Wei et al.,
                      CVPR 2024). A sample every subset gets right has phi_i = 1 for every i.
                      EDM_i = 100 * mean_samples |1 - phi_i|.
``share``             dataset-level phi from accuracies, rescaled to shares that sum to 100 * n;
                      EDM_i = |100 - 100 * n * phi_i / sum_j phi_j|, zero when contributions are equal.

Where the paper is silent, and what the code chose

- The scale of phi in EDM: the tables use the ``sample`` reading. With two modalities ``share``
  gives two equal terms by construction, which the paper's unequal two-modality rows rule out.
  Chapter: ambiguities (section 2).
- ``share`` with contributions summing to zero (an untrained model): every term is 100. Not measured.
- Eq. 7 needs P of the empty set; its value (g on a zero feature, or chance) is the caller's
  (:func:`mmlib.evaluate.summarize_correct`). The sum over subsets is exact for any n
  (:func:`sampled_shapley` is the Monte-Carlo estimate for many modalities, which the paper does
  not discuss).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

EDM_READINGS = ("sample", "share")


def subset_members(mask: int, players: Sequence[str]) -> tuple[str, ...]:
    """The players in subset ``mask``, in the order of ``players``."""
    return tuple(p for k, p in enumerate(players) if mask >> k & 1)


def _check_players(players: Sequence[str]) -> tuple[str, ...]:
    players = tuple(players)
    if not players:
        raise ValueError("Shapley values need at least one player")
    if len(set(players)) != len(players):
        raise ValueError(f"players must be distinct, got {list(players)}")
    return players


@lru_cache(maxsize=None)
def shapley_matrix(n: int) -> np.ndarray:
    """``(2**n, n)`` matrix ``W`` with ``phi = values @ W`` for a value table indexed by bitmask.

    Eq. 7 is linear in the value table: with ``w(s) = s! (n - s - 1)! / n!``, column ``i`` holds
    ``+w(|b| - 1)`` for every subset ``b`` that contains ``i`` and ``-w(|b|)`` for every one that does not.
    """
    if n < 1:
        raise ValueError(f"need at least one player, got n={n}")
    weights = np.zeros((2**n, n))
    for b in range(2**n):
        for i in range(n):
            if b >> i & 1:
                size_without = bin(b).count("1") - 1
                weights[b, i] += math.factorial(size_without) * math.factorial(n - size_without - 1) / math.factorial(n)
            else:
                size = bin(b).count("1")
                weights[b, i] -= math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
    return weights


def shapley_values(value: Callable[[frozenset], float], players: Sequence[str]) -> dict[str, float]:
    """Exact Shapley value of each player for the game ``value(frozenset_of_players)`` (Eq. 7).

    ``value`` is called once per subset (``2**n`` calls), including the empty set.
    """
    players = _check_players(players)
    n = len(players)
    table = np.array([float(value(frozenset(subset_members(b, players)))) for b in range(2**n)])
    phi = table @ shapley_matrix(n)
    return dict(zip(players, phi.tolist()))


def shapley_from_table(table: np.ndarray) -> np.ndarray:
    """Vectorised Shapley: value tables ``(..., 2**n)`` indexed by bitmask -> ``(..., n)``.

    With ``(N, 2**n)`` per-sample values this gives every sample's Shapley vector at once.
    """
    table = np.asarray(table, dtype=np.float64)
    n = int(round(math.log2(table.shape[-1])))
    if 2**n != table.shape[-1]:
        raise ValueError(f"a value table needs 2**n columns, got {table.shape[-1]}")
    return table @ shapley_matrix(n)


def sampled_shapley(
    value: Callable[[frozenset], float],
    players: Sequence[str],
    num_permutations: int,
    seed: int = 0,
    value_range: float | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """Monte-Carlo Shapley from random player orders (Castro et al., 2009), for many modalities.

    Returns ``(phi, bound)``: with probability at least 0.95 each ``|phi_i - exact_i| <= bound_i``.
    The bound is Hoeffding's, ``R * sqrt(ln(2 / 0.05) / (2 m))`` for ``m`` permutations, when the
    range ``R`` of a marginal contribution is given (100 for accuracy in %); otherwise it is the
    normal-approximation half-width ``1.96 * std / sqrt(m)`` of the sampled contributions.
    """
    players = _check_players(players)
    if num_permutations < 2:
        raise ValueError(f"num_permutations must be at least 2, got {num_permutations}")
    rng = np.random.default_rng(seed)
    cache: dict[frozenset, float] = {}

    def cached(subset: frozenset) -> float:
        if subset not in cache:
            cache[subset] = float(value(subset))
        return cache[subset]

    contributions = {p: [] for p in players}
    for _ in range(num_permutations):
        coalition: frozenset = frozenset()
        for index in rng.permutation(len(players)):
            player = players[index]
            grown = coalition | {player}
            contributions[player].append(cached(grown) - cached(coalition))
            coalition = grown
    phi = {p: float(np.mean(c)) for p, c in contributions.items()}
    if value_range is not None:
        half = value_range * math.sqrt(math.log(2 / 0.05) / (2 * num_permutations))
        bound = {p: half for p in players}
    else:
        bound = {p: float(1.96 * np.std(c, ddof=1) / math.sqrt(num_permutations)) for p, c in contributions.items()}
    return phi, bound


def sample_game(correct: np.ndarray) -> np.ndarray:
    """The per-sample game of the ``sample`` reading: ``v_s(S) = |S|`` if the prediction from the
    modalities in S is correct for sample s, else 0 (Wei et al., CVPR 2024), as an ``(N, 2**n)``
    table from the ``(N, 2**n)`` booleans "subset b predicts sample s correctly"."""
    sizes = np.array([bin(b).count("1") for b in range(correct.shape[1])], dtype=np.float64)
    return correct * sizes


def edm_sample(correct: np.ndarray, players: Sequence[str]) -> tuple[dict[str, float], float]:
    """EDM, ``sample`` reading, from ``(N, 2**n)`` booleans "subset b predicts sample s correctly".

    Returns the per-modality terms (in percentage points) and their sum.
    """
    players = _check_players(players)
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2 or correct.shape[1] != 2 ** len(players):
        raise ValueError(f"correct must have shape (N, {2 ** len(players)}) for players {list(players)}, got "
                         f"{correct.shape}")
    phi = shapley_from_table(sample_game(correct))
    terms = 100.0 * np.abs(1.0 - phi).mean(axis=0)
    return dict(zip(players, terms.tolist())), float(terms.sum())


def edm_share(phi: dict[str, float]) -> tuple[dict[str, float], float]:
    """EDM, ``share`` reading, from dataset-level Shapley values (any unit)."""
    if not phi:
        raise ValueError("edm_share needs at least one modality")
    total = sum(phi.values())
    n = len(phi)
    if total == 0:
        terms = {m: 100.0 for m in phi}
    else:
        terms = {m: abs(100.0 - 100.0 * n * v / total) for m, v in phi.items()}
    return terms, float(sum(terms.values()))
