"""One word for a paired comparison, the reproduction report's convention.

A claim "A beats B" is *reproduced* when the paired difference over seeds has the claimed sign with
p < alpha (Wilcoxon signed-rank, :func:`mmlib.experiments.paired_test`), *not reproduced* when the
opposite sign is significant, and *inconclusive* otherwise. A claim whose test cannot reach alpha
with the pairs it has is *not testable with n seeds*, never inconclusive: with every one of n
differences of one sign, the exact two-sided Wilcoxon test gives its smallest p, 2 / 2**n
(:func:`smallest_p`; 0.25 with 3 pairs, 0.0625 with 5, 0.03125 with 6), so below 6 pairs no data
can make a claim significant at 5%.

A claim "A beats every rival" (an :func:`mmlib.experiments.intersection_union` of paired tests) is
reproduced when every rival's test reproduces it, and not reproduced as soon as one rival
significantly beats A, whatever the others show: the refuting test decides (:func:`deciding_test`),
so the claim gets the verdict a reader finds in the chapter that ran the pairwise tests; its pairs
are the fewest of its tests. :func:`claim_row` states a claim and its verdict as one row of a
claims table, the same way in every chapter that tests one, and :func:`judged_again` is the one
rule by which another page (the report) restates a stored row.
"""

from __future__ import annotations

from collections.abc import Mapping

from mmlib.methods import display_name

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
NOT_TESTABLE = "not testable"


def smallest_p(pairs: int) -> float:
    """The smallest two-sided p of an exact Wilcoxon signed-rank test on ``pairs`` nonzero paired
    differences: all of one sign, whose rank sum only 1 of the 2**n sign patterns reaches in each
    direction, so p = 2 / 2**n (1.0 for one pair)."""
    if int(pairs) != pairs or pairs < 1:
        raise ValueError(f"pairs must be a whole number of at least 1, got {pairs}")
    return min(1.0, 2.0 ** (1 - int(pairs)))


def pairs_needed(alpha: float = 0.05) -> int:
    """The fewest pairs whose exact Wilcoxon test can reach p < ``alpha`` (6 at 0.05, 8 at 0.01)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    pairs = 1
    while smallest_p(pairs) >= alpha:
        pairs += 1
    return pairs


def not_testable(pairs: int) -> str:
    """The verdict of a claim whose test cannot reach alpha: ``not testable with 3 seeds``."""
    return f"{NOT_TESTABLE} with {pairs} seed{'s' if pairs != 1 else ''}"


def verdict_kind(word: str) -> str:
    """A verdict without its number of seeds: ``not testable with 3 seeds`` -> ``not testable``."""
    return NOT_TESTABLE if word.startswith(NOT_TESTABLE) else word


def _can_decide(test: Mapping, alpha: float) -> bool:
    """Whether ``test``'s pairs let it reach p < alpha (a test that does not say its seeds: yes)."""
    return "seeds" not in test or smallest_p(test["seeds"]) < alpha


def deciding_test(test: Mapping, alpha: float = 0.05, higher_is_better: bool = True) -> Mapping:
    """The test a claim's verdict rests on: ``test`` itself, or for an intersection-union of tests
    (a ``tests`` key) the rival's test that refutes the claim (the opposite sign significant; the
    smallest p of those), when one does."""
    refuting = [t for t in test.get("tests", {}).values()
                if t["p_wilcoxon"] < alpha and (t["mean_diff"] > 0) != higher_is_better
                and _can_decide(t, alpha)]
    return min(refuting, key=lambda t: t["p_wilcoxon"]) if refuting else test


def verdict(test: Mapping, alpha: float = 0.05, higher_is_better: bool = True) -> str:
    """``test``: a :func:`mmlib.experiments.paired_test` result for the claim "``a`` is better than
    ``b``", or an :func:`mmlib.experiments.intersection_union` of them ("``a`` beats every rival").
    Its ``seeds`` (the pairs) decide first whether the test can reach ``alpha`` at all."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    test = deciding_test(test, alpha, higher_is_better)
    if not _can_decide(test, alpha):
        return not_testable(int(test["seeds"]))
    if test["p_wilcoxon"] >= alpha:
        return INCONCLUSIVE
    return REPRODUCED if (test["mean_diff"] > 0) == higher_is_better else NOT_REPRODUCED


def claim_row(claim: str, data: str, test: Mapping, evidence: str = "", alpha: float = 0.05,
              higher_is_better: bool = True) -> dict:
    """One row of a claims table: the claim, the data it was tested on, the evidence in words, the
    paired difference, its p-value and its number of paired seeds, and the :func:`verdict` at
    ``alpha``.

    ``test``: a :func:`mmlib.experiments.paired_test` (or :func:`mmlib.experiments.beats_all`)
    result for the claim, its ``mean_diff`` being the first named minus the second; of a
    ``beats_all`` result the row keeps the deciding test's difference, p and seeds
    (:func:`deciding_test`), so that judging the stored row again gives the same verdict
    (:func:`judged_again`);
    ``higher_is_better``: whether the claim predicts a positive difference. The row keeps it, so a
    stored row can be judged again at another level (the report's).
    """
    if "seeds" not in test:
        raise ValueError(f"the test of {claim!r} does not say its number of paired seeds ('seeds'); "
                         "pass a paired_test or beats_all result")
    decided_by = deciding_test(test, alpha, higher_is_better)
    return {"claim": claim, "data": data, "evidence": evidence,
            "mean diff": float(decided_by["mean_diff"]), "p": float(decided_by["p_wilcoxon"]),
            "seeds": int(decided_by.get("seeds", test["seeds"])),
            "higher_is_better": bool(higher_is_better),
            "verdict": verdict(test, alpha, higher_is_better)}


def judged_again(row: Mapping, alpha: float = 0.05) -> str:
    """The verdict of a stored :func:`claim_row` at ``alpha``, by the same rule: at the level the
    chapter used, the chapter's own verdict."""
    test = {"mean_diff": row["mean diff"], "p_wilcoxon": row["p"], "seeds": row["seeds"]}
    return verdict(test, alpha, row["higher_is_better"])


def p_source(test: Mapping, alpha: float = 0.05, higher_is_better: bool = True) -> str:
    """What the p of a "beats every rival" row is, for its evidence: ``p: the largest of 3``, or
    ``p: the test against MLA, which refutes the claim`` when a rival's test decides
    (:func:`deciding_test`; a method by its :func:`mmlib.methods.display_name`)."""
    decided_by = deciding_test(test, alpha, higher_is_better)
    if decided_by is test:
        return f"p: the largest of {len(test['tests'])}"
    return f"p: the test against {display_name(decided_by['b'])}, which refutes the claim"


def disagreements(restated_rows, chapter_rows) -> list[str]:
    """Where a page that restates other chapters' claims (the report) shows another verdict than
    the chapter that tested the claim: one sentence per row, empty when every verdict agrees.

    ``restated_rows``: rows with ``chapter`` and ``source`` (the chapter's own ``claim`` and
    ``data``), as the report stores them; ``chapter_rows``: chapter name -> that chapter's stored
    :func:`claim_row` rows. Rows without a ``source`` were judged by the page itself.
    """
    found = []
    for row in restated_rows:
        source = row.get("source")
        if not isinstance(source, dict):
            continue
        own = [r for r in chapter_rows.get(row["chapter"], [])
               if (r["claim"], r["data"]) == (source["claim"], source["data"])]
        if not own:
            found.append(f"{row['claim']!r}: {row['chapter']} has no claim {source['claim']!r} on "
                         f"{source['data']!r}")
        elif own[0]["verdict"] != row["verdict"]:
            found.append(f"{row['claim']!r}: {own[0]['verdict']} in {row['chapter']}, "
                         f"{row['verdict']} here")
    return found
