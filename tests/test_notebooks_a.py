"""Smoke runs of the main comparison, component ablation and report chapters with tiny parameters."""

import json

import pytest

TINY = {"seeds": 2, "epochs": 2}


@pytest.mark.slow
def test_main_comparison_stores_every_method_and_set(run_notebook):
    run = run_notebook("main_comparison", {**TINY, "methods": "concat,ours,ours_rownorm", "view_sets": "fou,mor|pix,fou,mor"})
    stored = json.loads((run.output_dir / "main_comparison.json").read_text())
    assert set(stored["tables"]) == {"fou,mor", "pix,fou,mor"}
    assert set(stored["tables"]["fou,mor"]) == {"concat", "ours", "ours_rownorm"}
    records = [json.loads(p.read_text()) for p in run.results_dir.glob("*.json")]
    assert len(records) == 3 * 2 * 2
    for form in ("ours", "ours_rownorm"):
        fused = [r["test"]["fused_acc"] for r in records if r["config"]["method"] == form and r["modalities"] == ["fou", "mor"]]
        assert run.glued[f"main_{form}_fused_0"] == pytest.approx(sum(fused) / len(fused))
    # (ours, ours_rownorm) x concat, and ours_rownorm x ours; x (fused, edm) x 2 sets
    assert len(stored["paired_tests"]) == 3 * 2 * 2
    assert {(t["method"], t["baseline"]) for t in stored["paired_tests"]} == {("ours", "concat"), ("ours_rownorm", "concat"),
                                                                              ("ours_rownorm", "ours")}


def test_main_comparison_rejects_unknown_method(run_notebook):
    with pytest.raises(Exception, match="unknown method 'magic'"):
        run_notebook("main_comparison", {**TINY, "methods": "concat,magic"})


@pytest.mark.slow
def test_component_ablation_tests_every_variant_against_full(run_notebook):
    run = run_notebook("component_ablation", {**TINY, "modalities": "fou,mor"})
    stored = json.loads((run.output_dir / "component_ablation.json").read_text())
    assert set(stored["paired_vs_full"]) == {"row-normalised", "w/o mapping", "w/o memory", "random order", "fixed order",
                                             "reverse order"}
    records = [json.loads(p.read_text()) for p in run.results_dir.glob("*.json")]
    assert sorted({r["config"]["method_options"]["order"] for r in records}) == ["fixed", "random", "reverse", "shapley"]
    assert sorted({r["config"]["method"] for r in records}) == ["ours", "ours_rownorm"]
    assert len(records) == 7 * 2
    assert run.glued["ablation_fixed_delta"] == pytest.approx(stored["paired_vs_full"]["fixed order"]["mean_diff"])


@pytest.mark.slow
def test_report_gives_a_verdict_per_claim_and_finds_the_paper_mismatches(run_notebook, tmp_path):
    # the AV-MNIST chapter's stored claims, as av_evidence writes them: the report adds them with its own verdicts
    av = [{"claim": f"claim {k}", "data": "AV-MNIST", "evidence": "", "mean diff": 2.0, "p": 0.01,
           "better_when_positive": k == 0, "verdict": "stale"} for k in range(2)]
    (tmp_path / "output_dir").mkdir()
    (tmp_path / "output_dir" / "av_evidence.json").write_text(json.dumps({"seeds": 3, "claims": av}))
    run = run_notebook("report", {**TINY, "view_sets": "fou,mor", "ablation_modalities": "fou,mor"})
    stored = json.loads((run.output_dir / "report.json").read_text())
    assert {c["verdict"] for c in stored["claims"]} <= {"reproduced", "not reproduced", "inconclusive"}
    assert len(stored["claims"]) == 5 + 4 + 1 + 2  # five per modality set, four ablation claims, v2's order, AV-MNIST
    assert [(c["data"], c["verdict"]) for c in stored["claims"][-2:]] == [("AV-MNIST, 3 seeds", "reproduced"),
                                                                         ("AV-MNIST, 3 seeds", "not reproduced")]
    order = stored["claims"][-3]
    assert order["claim"].startswith("v2:") and order["data"] == "mfeat [fou,mor]"
    assert all("ours_rownorm" not in c["evidence"] for c in stored["claims"][:2])  # the rival is never ours
    mismatched = {(m["dataset"], m["method"]) for m in stored["paper_mismatches"]}
    assert mismatched == {("IEMOCAP", "Late Fusion"), ("Kinetics-400", "CRMT"), ("Kinetics-400", "LFM"),
                          ("Kinetics-400", "Late Fusion"), ("Kinetics-400", "MLA"), ("MVSA-Single", "LFM")}
    assert run.glued["report_mismatches"] == 6


def test_method_chapter_computes_its_worked_examples(run_notebook):
    run = run_notebook("method", {"tau": 1.0})
    assert run.glued["method_phi_audio"] == pytest.approx(34.1666667)
    assert run.glued["method_phi_sum"] == pytest.approx(60.0)
    assert run.glued["method_edm_lazy"] == pytest.approx(100.0)
    assert run.glued["method_hybrid_max_diff"] < 1e-5
    assert run.glued["method_kept_fraction"] == pytest.approx(0.0, abs=1e-6)  # tau = 1 keeps only the diagonal


@pytest.mark.slow
def test_contribution_evolution_correlates_gap_and_accuracy(run_notebook):
    run = run_notebook("contribution_evolution", {**TINY, "methods": "concat,ours", "correlation_methods": "concat,ours"})
    stored = json.loads((run.output_dir / "contribution_evolution.json").read_text())
    assert stored["runs"] == 4 and -1.0 <= stored["pearson_r"] <= 1.0
    assert run.glued["evolution_r"] == pytest.approx(stored["pearson_r"])
    assert set(stored["share_gap_last_epoch"]) == {"concat", "ours"}
