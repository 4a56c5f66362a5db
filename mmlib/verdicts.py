"""One word for a paired comparison, the reproduction report's convention.

A claim "A beats B" is *reproduced* when the paired difference over seeds has the claimed sign with
p < alpha (Wilcoxon signed-rank, :func:`mmlib.experiments.paired_test`), *not reproduced* when the
opposite sign is significant, and *inconclusive* otherwise. A claim "A beats every rival" (an
:func:`mmlib.experiments.intersection_union` of paired tests) is reproduced when every rival's test
reproduces it, and not reproduced as soon as one rival significantly beats A, whatever the others
show: the refuting test decides (:func:`deciding_test`), so the claim gets the verdict a reader
finds in the chapter that ran the pairwise tests. :func:`claim_row` states a claim and
its verdict as one row of a claims table, the same way in every chapter that tests one.
"""

from __future__ import annotations

from typing import Mapping


def deciding_test(test: Mapping, alpha: float = 0.05, higher_is_better: bool = True) -> Mapping:
    """The test a claim's verdict rests on: ``test`` itself, or for an intersection-union of tests
    (a ``tests`` key) the rival's test that refutes the claim (the opposite sign significant; the
    smallest p of those), when one does."""
    refuting = [t for t in test.get("tests", {}).values()
                if t["p_wilcoxon"] < alpha and (t["mean_diff"] > 0) != higher_is_better]
    return min(refuting, key=lambda t: t["p_wilcoxon"]) if refuting else test


def verdict(test: Mapping, alpha: float = 0.05, higher_is_better: bool = True) -> str:
    """``test``: a :func:`mmlib.experiments.paired_test` result for the claim "``a`` is better than
    ``b``", or an :func:`mmlib.experiments.intersection_union` of them ("``a`` beats every rival")."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    test = deciding_test(test, alpha, higher_is_better)
    if test["p_wilcoxon"] >= alpha:
        return "inconclusive"
    return "reproduced" if (test["mean_diff"] > 0) == higher_is_better else "not reproduced"


def claim_row(claim: str, data: str, test: Mapping, evidence: str = "", alpha: float = 0.05,
              higher_is_better: bool = True) -> dict:
    """One row of a claims table: the claim, the data it was tested on, the evidence in words, the
    paired difference and its p-value, and the :func:`verdict` at ``alpha``.

    ``test``: a :func:`mmlib.experiments.paired_test` (or :func:`mmlib.experiments.beats_all`)
    result for the claim, its ``mean_diff`` being the first named minus the second; of a
    ``beats_all`` result the row keeps the deciding test's difference and p (:func:`deciding_test`),
    so that judging the stored row again gives the same verdict;
    ``higher_is_better``: whether the claim predicts a positive difference. The row keeps it, so a
    stored row can be judged again at another level (the report's).
    """
    decided_by = deciding_test(test, alpha, higher_is_better)
    return {"claim": claim, "data": data, "evidence": evidence,
            "mean diff": float(decided_by["mean_diff"]), "p": float(decided_by["p_wilcoxon"]),
            "higher_is_better": bool(higher_is_better),
            "verdict": verdict(test, alpha, higher_is_better)}


def p_source(test: Mapping, alpha: float = 0.05, higher_is_better: bool = True) -> str:
    """What the p of a "beats every rival" row is, for its evidence: ``p: the largest of 3``, or
    ``p: the test against mla, which refutes the claim`` when a rival's test decides
    (:func:`deciding_test`)."""
    decided_by = deciding_test(test, alpha, higher_is_better)
    if decided_by is test:
        return f"p: the largest of {len(test['tests'])}"
    return f"p: the test against {decided_by['b']}, which refutes the claim"
