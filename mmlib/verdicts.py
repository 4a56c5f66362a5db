"""One word for a paired comparison, the reproduction report's convention.

A claim "A beats B" is *reproduced* when the paired difference over seeds has the claimed sign with
p < alpha (Wilcoxon signed-rank, :func:`mmlib.experiments.paired_test`), *not reproduced* when the
opposite sign is significant, and *inconclusive* otherwise. :func:`claim_row` states a claim and
its verdict as one row of a claims table, the same way in every chapter that tests one.
"""

from __future__ import annotations

from typing import Mapping


def verdict(test: dict, alpha: float = 0.05, higher_is_better: bool = True) -> str:
    """``test``: a :func:`mmlib.experiments.paired_test` result for the claim "``a`` is better than ``b``"."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if test["p_wilcoxon"] >= alpha:
        return "inconclusive"
    return "reproduced" if (test["mean_diff"] > 0) == higher_is_better else "not reproduced"


def claim_row(claim: str, data: str, test: Mapping, evidence: str = "", alpha: float = 0.05,
              higher_is_better: bool = True) -> dict:
    """One row of a claims table: the claim, the data it was tested on, the evidence in words, the
    paired difference and its p-value, and the :func:`verdict` at ``alpha``.

    ``test``: a :func:`mmlib.experiments.paired_test` (or :func:`mmlib.experiments.beats_all`)
    result for the claim, its ``mean_diff`` being the first named minus the second;
    ``higher_is_better``: whether the claim predicts a positive difference. The row keeps it, so a
    stored row can be judged again at another level (the report's).
    """
    return {"claim": claim, "data": data, "evidence": evidence,
            "mean diff": float(test["mean_diff"]), "p": float(test["p_wilcoxon"]),
            "higher_is_better": bool(higher_is_better),
            "verdict": verdict(test, alpha, higher_is_better)}
