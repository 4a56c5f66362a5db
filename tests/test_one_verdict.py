"""One verdict per claim: the report restates each chapter's verdict unchanged, and judges exactly the
runs its feeding chapters made (under their protocol), training none."""

import json

import pytest

from conftest import READS, SMOKE, execute_chapter
from mmlib.experiments import intersection_union
from mmlib.verdicts import claim_row, disagreements


def test_disagreements_names_a_claim_the_report_judges_otherwise_than_its_chapter():
    """The case the issue found: Table 4 inconclusive in the report (the largest p, 1.0) while the
    missing-modalities chapter shows ours behind mla (p = 0.002), a refuted claim."""
    tests = {"mla": {"b": "mla", "mean_diff": -3.15, "p_wilcoxon": 0.002, "seeds": 10},
             "tate": {"b": "tate", "mean_diff": 0.0, "p_wilcoxon": 1.0, "seeds": 10}}
    chapter = claim_row("Table 4: ours beats every method", "mfeat", intersection_union(tests))
    assert chapter["verdict"] == "not reproduced"
    report = {**chapter, "claim": "Table 4 (reworded)", "chapter": "missing_modalities",
              "source": {"claim": chapter["claim"], "data": "mfeat"}}
    assert disagreements([report], {"missing_modalities": [chapter]}) == []
    stale = {**report, "verdict": "inconclusive"}
    assert disagreements([stale], {"missing_modalities": [chapter]}) == [
        "'Table 4 (reworded)': not reproduced in missing_modalities, inconclusive here"]
    assert disagreements([report], {"missing_modalities": []}) == [
        "'Table 4 (reworded)': missing_modalities has no claim 'Table 4: ours beats every method' on 'mfeat'"]


@pytest.fixture(scope="module")
def book(smoke_book):
    """The report of the smoke book (``conftest.SMOKE``: its feeding chapters run first, Table 4 and the
    companion's calibration on six seeds, enough to decide; main comparison, ablation and report under
    the mla protocol, not the book's), with the store's records listed before and after it."""
    report = smoke_book.run("report")
    after = sorted(p.name for p in smoke_book.results_dir.glob("*.json"))
    stored = {name: smoke_book.summary(name) for name in READS["report"]}
    summary = smoke_book.summary("report")
    return report, summary, stored, smoke_book.stored_before_report, after


@pytest.mark.slow
def test_the_report_trains_nothing_and_judges_exactly_its_chapters_runs(book):
    report, summary, stored, before, after = book
    assert SMOKE["report"]["protocol"] == SMOKE["main_comparison"]["protocol"] == "mla"  # not the book's
    assert after == before  # not one run trained
    made = set(stored["main_comparison"]["run_ids"]) | set(stored["component_ablation"]["run_ids"])
    assert set(summary["run_ids"]) == made
    # one count of runs read, the provenance page's: run ids, each once (Table 1's ours is Table 2's full)
    assert summary["runs_read"] == report.glued["report_runs"] == len(made) == len(summary["run_ids"])
    records = [json.loads(p.read_text()) for p in report.results_dir.glob("*.json")
               if p.stem in summary["run_ids"]]
    assert {r["config"]["protocol"] for r in records} == {"mla"} and summary["protocol"] == "mla"


@pytest.mark.slow
def test_a_claim_in_a_chapter_and_in_the_report_has_one_verdict(book):
    _, summary, stored, _, _ = book
    chapters = {name: stored[name]["claims"] for name in ("missing_modalities", "frozen_backbones", "av_evidence")}
    assert disagreements(summary["claims"], chapters) == []
    restated = [c for c in summary["claims"] if c.get("source")]
    assert {c["chapter"] for c in restated} == {"missing_modalities", "frozen_backbones", "av_evidence"}
    table4 = [c for c in restated if c["chapter"] == "missing_modalities"]
    own = stored["missing_modalities"]["claims"]
    assert len(table4) == len(own) == 1
    assert SMOKE["missing_modalities"]["seeds"] == 6 and SMOKE["missing_modalities"]["baseline_seeds"] == 2
    # tate on two seeds: the claim cannot be reproduced, only refuted by a six-seed rival
    assert table4[0]["verdict"] in {"not reproduced", "not testable with 2 seeds"}
    assert (table4[0]["mean diff"], table4[0]["p"], table4[0]["seeds"]) == (own[0]["mean diff"], own[0]["p"],
                                                                          own[0]["seeds"])
    companion = [c for c in summary["claims"] if c["chapter"] == "decision_layer"]
    assert [c["verdict"] for c in companion] == [stored["decision_layer"]["calibration_verdict"]]
    assert companion[0]["seeds"] == SMOKE["decision_layer"]["seeds"] == 6  # the chapter's seeds, not the report's 2
    # every row shows its seeds; two seeds can decide nothing at 5%
    assert all(c["verdict"] == "not testable with 2 seeds" for c in summary["claims"] if c["seeds"] == 2)


@pytest.mark.slow
def test_a_report_asked_to_judge_runs_nobody_made_says_which_chapter_to_run(smoke_book, book, tmp_path):
    """The smoke book's store holds the main comparison under mla: under the book's protocol it lacks
    most runs (it holds only the tuning chapter's concat and ours at its defaults)."""
    params = {**SMOKE["report"], "protocol": "book", "results_dir": str(smoke_book.results_dir)}
    lacks = r"lacks \d+ of the \d+ runs to judge .*python -m mmlib chapter main_comparison"
    with pytest.raises(Exception, match=lacks):
        execute_chapter("report", params, tmp_path)
