"""Smoke runs of the AV-MNIST chapter (av_evidence): with FSDD it trains and stores its claims; without
it, it says how to add FSDD in one command and still renders."""

import json
import os
from pathlib import Path

import pytest
from conftest import SMOKE

SHARED = Path(os.environ.get("MMLIB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
FSDD = SHARED / "fsdd"
needs_fsdd = pytest.mark.skipif(not (FSDD / "recordings").is_dir(),
                                reason=f"FSDD recordings not found under {FSDD} (set MMLIB_SHARED_DATA)")
TINY = {"seeds": 2, "epochs": 1, "methods": "concat,ours", "samples_per_class": 20}


@needs_fsdd
@pytest.mark.slow
def test_av_evidence_trains_every_method_and_variant_and_stores_its_claims(smoke_book):
    assert SMOKE["av_evidence"] == TINY
    run = smoke_book.run("av_evidence")
    stored, records = smoke_book.summary("av_evidence"), smoke_book.records("av_evidence")
    # concat + the seven ablation variants (full is ours), two seeds each
    assert len(records) == len(set(stored["run_ids"])) == (1 + 7) * 2
    assert {r["config"]["dataset"] for r in records} == {"avmnist"}
    assert {r["dataset_identity"]["split_sizes"]["test"] for r in records} == {40}
    assert run.glued["av_fsdd_present"] is True
    assert 0 < float(run.glued["av_padding_pct"]) < 100  # one second per recording; most words are shorter
    assert set(stored["main"]) == {"concat", "ours"}
    assert set(stored["paired_ablation"]) == {"row-normalised", "w/o mapping", "w/o memory", "random order",
                                              "fixed order", "reverse order"}
    claims = stored["claims"]
    assert len(claims) == 1 + 2 + 4 + 1  # best method, two against concat, four removals, v2's order
    assert {c["verdict"] for c in claims} == {"not testable with 2 seeds"}  # 2 pairs cannot reach p < 0.05
    assert {c["seeds"] for c in claims} == {2}
    assert [c["claim"] for c in claims[:3]] == [  # methods by their names, as the tables show them
        "Ours has the highest fused accuracy of all methods", "Ours has lower EDM than joint training (Concat)",
        "Ours keeps the weak modality usable alone better than joint training"]
    assert claims[0]["evidence"].startswith("Ours − best other (Concat) ")
    order = claims[-1]
    assert order["claim"].startswith("v2:")
    reverse = stored["paired_ablation"]["reverse order"]["mean_diff"]
    random_ = stored["paired_ablation"]["random order"]["mean_diff"]
    fixed = stored["paired_ablation"]["fixed order"]["mean_diff"]
    if order["verdict"] == "not reproduced":  # an order that beats weak-to-strong decides (deciding_test)
        assert order["mean diff"] < 0 and order["p"] < 0.05
        assert any(order["mean diff"] == pytest.approx(d) for d in (-reverse, -random_, -fixed))
    else:
        assert order["mean diff"] == pytest.approx(min(-reverse, -random_, -fixed))  # the closest other order
    assert run.glued["av_order_delta"] == pytest.approx(order["mean diff"])
    assert "AV-MNIST" in run.markdown("av_answer")


def test_av_evidence_without_fsdd_says_how_to_add_it_and_renders(run_notebook, tmp_path):
    run = run_notebook("av_evidence", {**TINY, "fsdd_root": str(tmp_path / "no_fsdd")})
    stored = json.loads((run.output_dir / "av_evidence.json").read_text())
    assert stored["fsdd_present"] is False and stored["claims"] == []
    assert run.glued["av_fsdd_present"] is False
    answer = run.markdown("av_answer")
    assert "git clone --depth 1 https://github.com/Jakobovski/free-spoken-digit-dataset" in answer
    assert not list(run.results_dir.glob("*.json"))


def test_av_evidence_refuses_a_single_seed(run_notebook, tmp_path):
    with pytest.raises(Exception, match="seeds = 1: the paired tests need at least 2 seeds"):
        run_notebook("av_evidence", {**TINY, "seeds": 1, "fsdd_root": str(tmp_path)})


def test_beats_all_takes_the_largest_p_and_the_smallest_difference():
    import pandas as pd

    from mmlib.experiments import beats_all, paired_test

    rows = [("w", s, 80.0 + s) for s in range(6)] + [("x", s, 70.0 + s + 0.1 * s) for s in range(6)]
    rows += [("y", s, 79.0 + s - 0.2 * (s % 2)) for s in range(6)]
    frame = pd.DataFrame(rows, columns=["variant", "seed", "acc"])
    result = beats_all(frame, "variant", "w", ["x", "y"], "acc")
    pairwise = {b: paired_test(frame, "variant", "w", b, "acc") for b in ("x", "y")}
    assert result["closest"] == "y" and result["mean_diff"] == pytest.approx(1.1)
    assert result["p_wilcoxon"] == max(t["p_wilcoxon"] for t in pairwise.values())
    assert result["seeds"] == 6
