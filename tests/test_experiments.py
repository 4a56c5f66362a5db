"""Grids and paired tests across seeds (mmlib.experiments)."""

from pathlib import Path

import pandas as pd
import pytest

from mmlib.experiments import (
    ABLATION_VARIANTS, PAPER_ABLATION_ROWS, ablation_configs, comparison_configs, mean_std, paired_test,
    paper_ablation_deltas,
)


def test_paired_test_pairs_by_seed():
    frame = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2, 2, 1, 0], "acc": [10, 12, 14, 11, 10, 9]})
    result = paired_test(frame, "method", "a", "b", "acc")  # per seed: 10-9, 12-10, 14-11
    assert result["seeds"] == 3 and result["mean_diff"] == pytest.approx(2.0)
    assert result["se_diff"] == pytest.approx(1.0 / 3**0.5)


def test_paired_test_needs_two_shared_seeds():
    frame = pd.DataFrame({"method": ["a", "b"], "seed": [0, 0], "acc": [1.0, 2.0]})
    with pytest.raises(ValueError, match="at least two seeds run with both 'a' and 'b'"):
        paired_test(frame, "method", "a", "b", "acc")


def test_grids_share_run_ids_across_chapters():
    full = ablation_configs("mfeat", "fou,mor", {}, seeds=2, epochs=3)
    table1 = comparison_configs(["concat", "ours", "ours_rownorm"], "mfeat", "fou,mor", {}, seeds=2, epochs=3)
    assert [c.run_id for c in full["full"]] == [c.run_id for c in table1 if c.method == "ours"]
    assert [c.run_id for c in full["row-normalised"]] == [c.run_id for c in table1 if c.method == "ours_rownorm"]
    assert list(full) == list(ABLATION_VARIANTS) and full["fixed order"][1].method_options["order"] == "fixed"


def test_mean_std_formats_single_seed_with_a_dash():
    assert mean_std(83.4567, 1.234) == "83.5 ± 1.2" and mean_std(80.0, float("nan")) == "80.0 ± –"


def test_paper_ablation_deltas_match_rows_by_name_as_variant_minus_full():
    table = pd.read_csv(Path(__file__).resolve().parents[1]
                        / "data/paper_reference/table2_component_ablation_cremad.csv")
    deltas = paper_ablation_deltas(table)
    assert deltas == {"w/o mapping": -1.75, "w/o memory": -1.08, "random order": -0.94, "fixed order": -8.74}
    assert set(deltas) | {"full"} == set(PAPER_ABLATION_ROWS) and set(PAPER_ABLATION_ROWS) <= set(ABLATION_VARIANTS)
    assert paper_ablation_deltas(table.iloc[::-1]) == deltas  # by name, not by position
    flipped = table.assign(delta=-table["delta"])
    with pytest.raises(ValueError, match="is not its multi minus the full model's"):
        paper_ablation_deltas(flipped)


def test_intersection_union_of_stored_tests_is_what_beats_all_returns():
    from mmlib.experiments import beats_all, intersection_union

    rows = [("w", s, 80.0 + s) for s in range(6)] + [("x", s, 70.0 + 1.1 * s) for s in range(6)]
    rows += [("y", s, 79.0 + s - 0.2 * (s % 2)) for s in range(6)]
    frame = pd.DataFrame(rows, columns=["variant", "seed", "acc"])
    stored = {b: paired_test(frame, "variant", "w", b, "acc") for b in ("x", "y")}
    assert intersection_union(stored) == beats_all(frame, "variant", "w", ["x", "y"], "acc")
    # by hand: the closest rival, its difference, the largest p and the fewest seeds
    hand = {"x": {"mean_diff": 5.0, "p_wilcoxon": 0.01, "seeds": 6},
            "y": {"mean_diff": 1.5, "p_wilcoxon": 0.04, "seeds": 5}}
    combined = intersection_union(hand)
    assert ((combined["closest"], combined["mean_diff"], combined["p_wilcoxon"], combined["seeds"])
            == ("y", 1.5, 0.04, 5))
    with pytest.raises(ValueError, match="at least one paired test"):
        intersection_union({})
