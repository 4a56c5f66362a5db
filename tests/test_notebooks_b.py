"""Smoke runs of the model-analysis chapters through papermill with tiny parameters (2 seeds, 2 epochs).

A test that reads a chapter at ``conftest.SMOKE``'s parameters takes the session's ``smoke_book`` run
(shared with the full-book build); one with parameters of its own writes into its tmp folder: the
results store (``results_dir``), the chapter's summary JSON (``output_dir/NAME.json``) and its
figures (``figures_dir``).
"""

from __future__ import annotations

import json
import re

import pytest

from mmlib.results import read_record, record_paths

TINY = {"seeds": 2, "epochs": 2}


def _run(run_notebook, tmp_path, name, **extra):
    params = {**TINY, "results_dir": str(tmp_path / "results" / "runs"), "figures_dir": str(tmp_path / "figures"),
              **extra}
    run = run_notebook(name, params)
    stored = json.loads((run.output_dir / f"{name}.json").read_text())
    return run, stored


def _smoke(smoke_book, name):
    """The smoke book's run of ``name`` and its summary; its runs are in the shared store, so the
    records it lists must be there (``smoke_book.records`` reads each)."""
    run, stored = smoke_book.run(name), smoke_book.summary(name)
    assert len(smoke_book.records(name)) == len(stored["run_ids"])
    assert run.glued["provenance_records"] == stored["run_ids"]
    return run, stored


def _stored_run_ids(run) -> list[str]:
    """The run ids of the records in the test's results store (each run's copies once)."""
    return sorted({read_record(path)["run_id"] for path in record_paths(run.results_dir)})


def _assert_provenance(run, stored):
    """The summary names the records the chapter read (here: every record of the fresh store), and
    glues the same list for the book's provenance page."""
    assert stored["run_ids"] and stored["run_ids"] == _stored_run_ids(run)
    assert run.glued["provenance_records"] == stored["run_ids"]


def _figures(folder):
    """The figures saved in ``folder`` (PNG files over 1 kB)."""
    return {p.name for p in folder.glob("*.png") if p.stat().st_size > 1000}


@pytest.mark.slow
def test_modality_ablation_trains_every_subset_and_glues_the_full_set(smoke_book):
    run, stored = _smoke(smoke_book, "modality_ablation")
    assert len(stored["fused"]) == 7  # every non-empty subset of three modalities
    assert run.glued["modality_ablation_full_acc"] == pytest.approx(stored["fused"]["pix + fou + mor"])
    assert set(stored["gain"]) == {"pix + fou", "pix + mor", "fou + mor", "pix + fou + mor"}
    assert "modality_ablation.png" in _figures(smoke_book.figures_dir)
    assert len(set(stored["run_ids"])) == 7 * 2  # subsets x seeds


@pytest.mark.slow
def test_order_upper_bound_oracle_is_at_least_every_fixed_order(smoke_book):
    run, stored = _smoke(smoke_book, "order_upper_bound")
    acc = stored["mean_accuracy"]
    assert acc["oracle"] >= acc["best fixed (per seed)"] >= acc["mean fixed"]
    assert run.glued["order_upper_bound_hybrid"] == pytest.approx(acc["hybrid"])
    assert "order_upper_bound.png" in _figures(smoke_book.figures_dir)
    assert len(set(stored["run_ids"])) == 2  # one model per seed


@pytest.mark.slow
def test_feature_distributions_scores_every_snapshot(smoke_book):
    run, stored = _smoke(smoke_book, "feature_distributions")
    assert stored["snapshots"] == [0, 1, 2]
    assert {r["features"] for r in stored["silhouette"]} == {"pix", "fou", "mor", "fused"}
    assert -1.0 <= run.glued["feature_distributions_first_fused"] <= 1.0
    assert {"feature_distributions_modalities.png", "feature_distributions_fused.png",
            "feature_distributions_silhouette.png"} <= _figures(smoke_book.figures_dir)
    # its snapshot runs are stopped runs under results/snapshots: no record of the store is read
    assert stored["run_ids"] == [] == run.glued["provenance_records"]


@pytest.mark.slow
def test_ambiguities_compares_every_variant_with_the_default(smoke_book):
    run, stored = _smoke(smoke_book, "ambiguities")
    assert set(stored["paired_vs_default"]) == {"mapping = feature", "mapping = none", "granularity = batch",
                                                "row_normalize = on",
                                                "prefix_features = recorded", "C held constant",
                                                "mapping_batch = instance"}
    # section 5: C held constant changes the trained encoder's gradient at k = 2 and 3, (finite: no zero gradient)
    assert all(0 < run.glued[f"ambiguities_gradient_k{k}"] < float("inf") for k in (2, 3))
    assert set(stored["gradient_change_pct"]) == {2, 3} or set(stored["gradient_change_pct"]) == {"2", "3"}
    # the raw sum of Eq. 11 grows with the chunk
    assert 1.0 < run.glued["ambiguities_scale_64"] < run.glued["ambiguities_scale_256"]
    assert run.glued["ambiguities_paper_two_rows"] >= 1
    assert run.glued["ambiguities_range_default"] >= 0.0
    assert {"ambiguities_variants.png", "ambiguities_batch_size.png"} <= _figures(smoke_book.figures_dir)
    # mfeat's rows are sorted by class: split-order chunks of 64 hold two or three digits, shuffled ones nearly all ten
    assert run.glued["ambiguities_leak_digits_sorted"] < 4 < 8 < run.glued["ambiguities_leak_digits_shuffled"]
    assert -100 < run.glued["ambiguities_leak_default_diff"] < 100
    assert re.fullmatch(r"p (= [01]\.\d+|< 0\.001)", run.glued["ambiguities_leak_default_p"])  # glue_p's prose
    assert len(set(stored["run_ids"])) == 8 * 2  # variants x seeds, trained as one grid
    for name, test in stored["paired_vs_default"].items():
        assert test["seeds"] == 2 and test["b"] == "default (sample, epoch)" and test["a"] == name


@pytest.mark.slow
def test_missing_modalities_rate_zero_is_the_complete_data_accuracy(run_notebook, tmp_path):
    run, stored = _run(run_notebook, tmp_path, "missing_modalities", methods="ours,concat", rates="0,0.5")
    runs = [read_record(p) for p in record_paths(run.results_dir)]
    ours = [r["test"]["fused_acc"] for r in runs if r["config"]["method"] == "ours"]
    assert stored["mean"]["ours"]["0.0"] == pytest.approx(sum(ours) / len(ours))
    assert run.glued["missing_modalities_first_lo"] == pytest.approx(stored["mean"]["ours"]["0.0"])
    assert "missing_modalities.png" in _figures(tmp_path / "figures")
    _assert_provenance(run, stored)
    assert len(stored["run_ids"]) == 2 * 2  # methods x seeds
