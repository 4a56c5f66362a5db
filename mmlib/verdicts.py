"""One word for a paired comparison, the reproduction report's convention.

A claim "A beats B" is *reproduced* when the paired difference over seeds has the claimed sign with
p < alpha (Wilcoxon signed-rank, :func:`mmlib.experiments.paired_test`), *not reproduced* when the
opposite sign is significant, and *inconclusive* otherwise.
"""

from __future__ import annotations


def verdict(test: dict, alpha: float = 0.05, higher_is_better: bool = True) -> str:
    """``test``: a :func:`mmlib.experiments.paired_test` result for the claim "``a`` is better than ``b``"."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if test["p_wilcoxon"] >= alpha:
        return "inconclusive"
    return "reproduced" if (test["mean_diff"] > 0) == higher_is_better else "not reproduced"
