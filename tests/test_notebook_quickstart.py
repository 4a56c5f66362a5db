"""Smoke run of the quickstart chapter through papermill with tiny parameters."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_quickstart_runs_and_stores_its_accuracies(run_notebook):
    run = run_notebook("quickstart", {"modalities": "fou,mor", "split_seeds": 1, "max_iter": 200, "epochs": 2,
                                      "train_modalities": "fou,mor", "train_noise": ""})
    stored = json.loads((run.output_dir / "quickstart.json").read_text())
    assert set(stored["per_view_accuracy"]) == {"fou", "mor"}
    assert 50.0 < stored["all_views_accuracy"] <= 100.0
    assert stored["per_view_accuracy"]["fou"] > stored["per_view_accuracy"]["mor"]
    assert run.glued["quickstart_all_views_accuracy"] == pytest.approx(stored["all_views_accuracy"])
    assert "quickstart_views_fig" in run.glued
    figure = run.output_dir.parent / "figures_dir" / "quickstart_views.png"
    assert figure.is_file() and figure.stat().st_size > 1000
    image_outputs = [o for c in run.notebook.cells for o in c.get("outputs", [])
                     if any(mime.endswith("image/png") for mime in o.get("data", {}))]
    assert image_outputs, "the figure must be captured as a PNG output for the book"


@pytest.mark.slow
def test_quickstart_trains_ours_and_orders_by_stored_shapley(run_notebook, monkeypatch):
    from mmlib.numerics import PIN, cpu_supports_pin

    for name in PIN:  # the kernel starts as JupyterLab's would, without the pin: its first import sets it
        monkeypatch.delenv(name, raising=False)
    run = run_notebook("quickstart", {"modalities": "fou,mor", "split_seeds": 1, "max_iter": 100, "epochs": 3,
                                      "train_modalities": "fou,mor", "train_noise": "", "seed": 2})
    stored = json.loads((run.output_dir / "quickstart.json").read_text())
    (record_path,) = run.results_dir.glob("*.json")
    record = json.loads(record_path.read_text())
    assert stored["ours"]["run_id"] == record["run_id"] and record["config"]["epochs"] == 3
    numerics = record["environment"]["numerics"]
    assert numerics["pinned"] == cpu_supports_pin(), numerics
    assert run.glued["quickstart_ours_fused"] == pytest.approx(record["test"]["fused_acc"])
    for previous, order in zip(record["history"], stored["ours"]["orders"][1:]):
        assert order[0] == min(previous["shapley"], key=previous["shapley"].get)
