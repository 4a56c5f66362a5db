"""Smoke runs of the frozen-backbone, decision-layer and missing-modality chapters through papermill
with tiny parameters, asserting on what they stored."""

from __future__ import annotations

import json

import pytest

from mmlib.results import read_record, record_paths

TINY = {"seeds": 2, "epochs": 2}


def _run(run_notebook, tmp_path, name, **extra):
    params = {**TINY, "results_dir": str(tmp_path / "results" / "runs"), "figures_dir": str(tmp_path / "figures"),
              "output_dir": str(tmp_path / "results" / "chapters"), **extra}
    run = run_notebook(name, params)
    stored = json.loads((tmp_path / "results" / "chapters" / f"{name}.json").read_text())
    runs = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*.json")]
    return run, stored, runs


@pytest.mark.slow
def test_frozen_backbones_trains_every_method_at_both_fractions(smoke_book, shared_data):
    run, stored = smoke_book.run("frozen_backbones"), smoke_book.summary("frozen_backbones")
    runs = smoke_book.records("frozen_backbones")
    mfeat = [r for r in runs if r["dataset_identity"]["name"] == "frozen-mfeat"]
    avmnist = [r for r in runs if r["dataset_identity"]["name"] == "frozen-avmnist"]
    # methods x fractions x seeds, on each dataset; AV-MNIST adds the collapse section's variants
    # (mapping none, row-normalised, lr / 10; its default is the grid's ours at the full split)
    assert len(mfeat) == 3 * 2 * 2 and len(avmnist) == 3 * 2 * 2 + 3 * 2
    assert {r["config"]["dataset_options"]["train_fraction"] for r in runs} == {1.0, 0.15}
    full = [r["test"]["fused_acc"] for r in mfeat if r["config"]["method"] == "joint"
            and r["config"]["dataset_options"]["train_fraction"] == 1.0]
    assert stored["mean"]["1.0"]["joint"] == pytest.approx(sum(full) / len(full))
    assert {c["verdict"] for c in stored["claims"]} == {"not testable with 2 seeds"}  # 2 pairs cannot reach 0.05
    assert len(stored["claims"]) == 2 * 2  # per fraction: ours vs the best baseline, Joint vs the best
    assert len(stored["avmnist"]["claims"]) == 2 * 2 and stored["avmnist"]["backbone"]["pool_size"] > 0
    assert set(stored["avmnist"]["mean"]["0.15"]) == {"joint", "concat", "ours"}
    frozen_in_store = [r["run_id"] for r in map(read_record, record_paths(smoke_book.results_dir))
                       if r["dataset_identity"]["name"].startswith("frozen-")]
    assert sorted(stored["run_ids"]) == sorted(frozen_in_store)  # the chapter lists every run it trained
    collapse = stored["collapse"]
    assert collapse["data"] == "AV-MNIST" and collapse["seeds"] == 2
    assert sorted({r["variant"] for r in collapse["runs"]}) == ["default", "lr / 10", "mapping none", "row-normalised"]
    assert all(r["scale"] == pytest.approx(1.0) for r in collapse["runs"] if r["variant"] == "mapping none")
    default = {r["seed"]: r["fused_acc"] for r in collapse["runs"] if r["variant"] == "default"}
    book_lr = {r["config"]["lr"] for r in avmnist if r["config"]["method"] == "joint"}.pop()
    grid = {r["config"]["seed"]: r["test"]["fused_acc"] for r in avmnist if r["config"]["method"] == "ours"
            and r["config"]["dataset_options"]["train_fraction"] == 1.0 and r["config"]["lr"] == book_lr
            and r["config"]["method_options"]["mapping"] == "sample"}
    assert default == grid  # the section's default is the grid's own run, reused
    assert "collapse_text" in run.glued
    assert run.glued["frozen_full_best_acc"] == pytest.approx(max(stored["mean"]["1.0"].values()))
    for name in ("frozen_backbones.png", "frozen_backbones_avmnist.png"):
        assert (smoke_book.figures_dir / name).stat().st_size > 1000


@pytest.mark.slow
def test_frozen_backbones_without_fsdd_says_so_and_keeps_its_glue(run_notebook, tmp_path):
    run, stored, runs = _run(run_notebook, tmp_path, "frozen_backbones", methods="joint,ours",
                             fsdd_root=str(tmp_path / "no_fsdd"), collapse_seeds=2)
    assert {r["dataset_identity"]["name"] for r in runs} == {"frozen-mfeat"} and stored["avmnist"] == {}
    glued_av = [out["data"] for cell in run.notebook.cells for out in cell.get("outputs", [])
                if out.get("metadata", {}).get("scrapbook", {}).get("name") == "frozen_av"]
    assert len(glued_av) == 1 and "FSDD was not found" in json.dumps(glued_av[0])


@pytest.mark.slow
def test_decision_layer_measures_every_method_and_tests_calibration(smoke_book):
    run, stored = smoke_book.run("decision_layer"), smoke_book.summary("decision_layer")
    assert set(stored["follow_rate"]) == {"sum", "concat", "ours", "sum_calibrated"}
    assert all(0.0 <= v <= 100.0 for v in stored["follow_rate"].values())
    assert stored["calibration"]["a"] == "sum_calibrated" and stored["calibration"]["seeds"] == 6  # SMOKE's
    # six pairs can reach p < 0.05, so the test decides or is inconclusive, never "not testable"
    assert stored["calibration_verdict"] in {"reproduced", "not reproduced", "inconclusive"}
    assert run.glued["decision_cal_diff"] == pytest.approx(stored["calibration"]["mean_diff"])
    assert stored["own_model"]["fused_acc"] > 50.0  # the chapter's nearest-means model classifies
    for name in ("decision_layer_follow.png", "decision_layer_calibration.png", "decision_layer_diagnose.png"):
        assert (smoke_book.figures_dir / name).stat().st_size > 1000


@pytest.mark.slow
def test_missing_modalities_runs_the_missing_modality_baselines(run_notebook, tmp_path):
    run, stored, runs = _run(run_notebook, tmp_path, "missing_modalities", methods="ours,qmf,mmin,tate",
                             rates="0,0.5", seeds=3, baseline_seeds=2)
    counts = {m: sum(r["config"]["method"] == m for r in runs) for m in ("ours", "qmf", "mmin", "tate")}
    assert counts == {"ours": 3, "qmf": 2, "mmin": 2, "tate": 2}
    assert set(stored["mean"]) == {"ours", "qmf", "mmin", "tate"}
    assert {t["b"] for t in stored["tests"]} == {"qmf", "mmin",
                                                 "tate"} and all(t["seeds"] == 2 for t in stored["tests"])
