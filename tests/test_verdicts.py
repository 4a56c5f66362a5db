"""One claim, one row: mmlib.verdicts.claim_row on a paired test worked by hand, and prose p-values."""

import pandas as pd
import pytest

from mmlib.book import format_p
from mmlib.experiments import paired_test
from mmlib.verdicts import claim_row


def six_seeds():
    """Six seeds where ``ours`` beats ``concat`` by 1, 2, ..., 6 points (seed order shuffled for b)."""
    rows = [("ours", s, 70.0 + 2 * s) for s in range(6)]
    rows += [("concat", s, 69.0 + s) for s in (5, 3, 1, 0, 2, 4)]
    return pd.DataFrame(rows, columns=["method", "seed", "acc"])


def test_claim_row_states_the_difference_its_p_value_and_the_verdict():
    test = paired_test(six_seeds(), "method", "ours", "concat", "acc")
    # differences 1..6: mean 3.5; all six positive, so the exact Wilcoxon p is 2 / 2**6
    row = claim_row("ours beats concat", "toy [a,b]", test, evidence="ours − concat +3.50")
    assert row == {"claim": "ours beats concat", "data": "toy [a,b]", "evidence": "ours − concat +3.50",
                   "mean diff": 3.5, "p": 0.03125, "seeds": 6, "higher_is_better": True, "verdict": "reproduced"}


def test_claim_row_judges_the_claimed_direction_at_its_level():
    test = paired_test(six_seeds(), "method", "ours", "concat", "acc")
    assert claim_row("ours is worse", "toy", test, higher_is_better=False)["verdict"] == "not reproduced"
    # six pairs cannot reach 0.01 (their smallest p is 0.03125)
    assert claim_row("ours beats concat", "toy", test, alpha=0.01)["verdict"] == "not testable with 6 seeds"
    stored = claim_row("ours beats concat", "toy", {"mean_diff": -2.0, "p_wilcoxon": 0.5, "seeds": 10})
    assert (stored["mean diff"], stored["p"], stored["verdict"]) == (-2.0, 0.5, "inconclusive")


def test_claim_row_refuses_a_level_outside_zero_and_one():
    test = paired_test(six_seeds(), "method", "ours", "concat", "acc")
    with pytest.raises(ValueError, match="alpha must lie in"):
        claim_row("ours beats concat", "toy", test, alpha=5.0)


def test_format_p_writes_p_values_the_way_prose_reads_them():
    assert format_p(0.0004) == "p < 0.001"  # not "p = 0.000"
    assert format_p(0.0042) == "p = 0.004"
    assert format_p(0.31) == "p = 0.31"
    assert format_p(0.0059) == "p = 0.006" and format_p(0.0098) == format_p(0.01) == "p = 0.01"  # not 0.010
    assert format_p(float("nan")) == "p = –"


def test_a_rival_that_significantly_beats_the_claimant_refutes_beats_all():
    """The report's Table 4 case: ours behind mla by 3.15 (p = 0.002) while another rival's test is
    p = 1.0. The largest p (1.0) made the claim "inconclusive"; one refuting rival decides it."""
    from mmlib.experiments import intersection_union
    from mmlib.verdicts import deciding_test, judged_again, p_source, verdict

    tests = {"mla": {"a": "ours", "b": "mla", "mean_diff": -3.15, "p_wilcoxon": 0.002, "seeds": 10},
             "late_fusion": {"a": "ours", "b": "late_fusion", "mean_diff": -2.0, "p_wilcoxon": 0.008, "seeds": 10},
             "tate": {"a": "ours", "b": "tate", "mean_diff": 0.0, "p_wilcoxon": 1.0, "seeds": 10}}
    combined = intersection_union(tests)
    assert (combined["closest"], combined["p_wilcoxon"]) == ("mla", 1.0)
    assert deciding_test(combined) is tests["mla"] and verdict(combined) == "not reproduced"
    row = claim_row("ours beats every method", "toy", combined)
    assert (row["mean diff"], row["p"], row["verdict"]) == (-3.15, 0.002, "not reproduced")
    # the stored row judged again (the report's restated rows) keeps its verdict
    assert judged_again(row) == row["verdict"] and row["seeds"] == 10
    assert p_source(combined) == "p: the test against MLA, which refutes the claim"
    # at a level that makes no rival significant, the largest p decides as before; ten pairs cannot
    # reach 0.001 (2 / 1024 = 0.00195), so the claim is not testable there
    assert verdict(combined, alpha=0.001) == "not testable with 10 seeds"
    assert p_source(combined, alpha=0.001) == "p: the largest of 3"


def test_beats_all_is_reproduced_only_when_every_rival_is_beaten():
    from mmlib.experiments import intersection_union
    from mmlib.verdicts import verdict

    beaten = {"x": {"a": "w", "b": "x", "mean_diff": 5.0, "p_wilcoxon": 0.01, "seeds": 6},
              "y": {"a": "w", "b": "y", "mean_diff": 1.5, "p_wilcoxon": 0.03, "seeds": 6}}
    assert verdict(intersection_union(beaten)) == "reproduced"
    beaten["y"]["p_wilcoxon"] = 0.2  # y not beaten, but not ahead either
    assert verdict(intersection_union(beaten)) == "inconclusive"
    # lower is better (EDM): a rival significantly lower refutes
    lower = {"x": {"a": "w", "b": "x", "mean_diff": -5.0, "p_wilcoxon": 0.01, "seeds": 6},
             "y": {"a": "w", "b": "y", "mean_diff": 2.0, "p_wilcoxon": 0.02, "seeds": 6}}
    assert verdict(intersection_union(lower), higher_is_better=False) == "not reproduced"


def test_smallest_p_is_two_over_two_to_the_pairs_as_scipy_computes_it():
    """Worked by hand: with n pairs all of one sign, the rank sum n(n+1)/2 is reached by 1 of the
    2**n sign patterns, and the two-sided p doubles it: 3 pairs -> 0.25, 6 -> 0.03125."""
    import numpy as np
    from scipy import stats

    from mmlib.verdicts import pairs_needed, smallest_p

    assert smallest_p(1) == 1.0 and smallest_p(3) == 0.25 and smallest_p(5) == 0.0625
    assert smallest_p(6) == 0.03125 and smallest_p(10) == 2 / 1024
    for n in range(1, 13):
        assert stats.wilcoxon(np.arange(1.0, n + 1), method="exact").pvalue == pytest.approx(smallest_p(n))
    assert (pairs_needed(0.05), pairs_needed(0.01), pairs_needed(0.5)) == (6, 8, 3)
    with pytest.raises(ValueError, match="pairs must be a whole number of at least 1, got 0"):
        smallest_p(0)


def test_a_claim_tested_on_three_pairs_is_not_testable_never_inconclusive():
    from mmlib.verdicts import verdict, verdict_kind

    three = pd.DataFrame([("ours", s, 80.0 + s) for s in range(3)] + [("concat", s, 70.0) for s in range(3)],
                         columns=["method", "seed", "acc"])
    test = paired_test(three, "method", "ours", "concat", "acc")
    assert test["p_wilcoxon"] == 0.25  # the best three pairs can do
    row = claim_row("ours beats concat", "toy", test)
    assert (row["seeds"], row["verdict"]) == (3, "not testable with 3 seeds")
    assert verdict_kind(row["verdict"]) == "not testable"
    # five pairs cannot reach 0.05 either (0.0625), six can
    assert verdict({"mean_diff": 1.0, "p_wilcoxon": 0.0625, "seeds": 5}) == "not testable with 5 seeds"
    assert verdict({"mean_diff": 1.0, "p_wilcoxon": 0.03125, "seeds": 6}) == "reproduced"
    assert verdict({"mean_diff": 1.0, "p_wilcoxon": 0.2, "seeds": 6}) == "inconclusive"
    # at alpha = 0.3 three pairs can decide
    assert verdict(test, alpha=0.3) == "reproduced"


def test_beats_all_with_one_rival_on_too_few_seeds_is_not_testable_unless_a_rival_refutes():
    """Table 4's shape: ten-seed rivals and five-seed ones (qmf, mmin, tate)."""
    from mmlib.experiments import intersection_union
    from mmlib.verdicts import verdict

    tests = {"mla": {"a": "ours", "b": "mla", "mean_diff": 3.0, "p_wilcoxon": 0.002, "seeds": 10},
             "qmf": {"a": "ours", "b": "qmf", "mean_diff": 4.0, "p_wilcoxon": 0.0625, "seeds": 5}}
    assert verdict(intersection_union(tests)) == "not testable with 5 seeds"
    tests["mla"]["mean_diff"] = -3.0  # mla significantly ahead on ten pairs: refuted, whatever qmf shows
    assert verdict(intersection_union(tests)) == "not reproduced"
    row = claim_row("ours beats every method", "toy", intersection_union(tests))
    assert (row["seeds"], row["p"]) == (10, 0.002)


def test_claim_row_refuses_a_test_that_does_not_say_its_seeds():
    with pytest.raises(ValueError, match="does not say its number of paired seeds"):
        claim_row("ours beats concat", "toy", {"mean_diff": 1.0, "p_wilcoxon": 0.01})
