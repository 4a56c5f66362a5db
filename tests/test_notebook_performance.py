"""Smoke run of the performance chapter with tiny parameters."""

import json

import pytest


@pytest.mark.slow
def test_performance_chapter_times_methods_and_scaling(run_notebook):
    run = run_notebook("performance", {"methods": "concat,ours", "epochs": 2, "repeats": 1, "max_modalities": 3, "samples": 32})
    stored = json.loads((run.output_dir / "performance.json").read_text())
    assert set(stored["epoch_times_s"]) == {"concat", "ours"} and all(t > 0 for t in stored["epoch_times_s"].values())
    assert [row["n"] for row in stored["scaling"]] == [2, 3]
    assert run.glued["perf_ours_over_concat"] == pytest.approx(stored["epoch_times_s"]["ours"] / stored["epoch_times_s"]["concat"])
    assert (run.output_dir.parent / "figures_dir" / "performance_scaling.png").is_file()
