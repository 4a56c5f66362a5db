"""Smoke run of the performance chapter with tiny parameters (``conftest.SMOKE``, shared with the book build)."""

import json

import pytest


@pytest.mark.slow
def test_performance_chapter_times_methods_and_scaling(smoke_book):
    run = smoke_book.run("performance")
    stored = json.loads((run.output_dir / "performance.json").read_text())
    assert set(stored["epoch_times_s"]) == {"concat", "ours"} and all(t > 0 for t in stored["epoch_times_s"].values())
    assert stored["epoch_gflop"]["ours"] > stored["epoch_gflop"]["concat"] > 0
    assert [row["n"] for row in stored["scaling"]] == [2, 3]
    assert run.glued["perf_ours_over_concat"] == pytest.approx(stored["epoch_times_s"]["ours"]
                                                               / stored["epoch_times_s"]["concat"])
    assert (smoke_book.figures_dir / "performance_scaling.png").is_file()
    # the data path against its ceiling, one row per method of bench scale, and the glued reading of them
    assert [row["method"] for row in stored["data_path"]] == ["concat", "mla", "ours"]
    assert all(row["samples"] == 12 and row["arrays"] == "host" and row["data_path_over_ceiling"] > 0
               for row in stored["data_path"])
    slowest = min(row["data_path_over_ceiling"] for row in stored["data_path"])
    assert f"reaches {slowest:.2f} to" in run.markdown("perf_data_path")
    # at CREMA-D's shapes the chain is negligible: recorded features do MLA's arithmetic, and recomputing the
    # frozen visual encoder (three frames) costs more than recomputing the audio one
    assert {(row["method"], row["order"]) for row in stored["paper_scale"]} == {
        ("mla", "visual,audio"), ("ours", "visual,audio"), ("ours_recorded", "visual,audio"), ("ours", "audio,visual"),
        ("ours_recorded", "audio,visual")}
    assert run.glued["perf_paper_recorded_over_mla_flop"] == pytest.approx(1.0, abs=0.01)
    assert run.glued["perf_paper_visual_over_mla_flop"] > run.glued["perf_paper_audio_over_mla_flop"] > 1.0
    # the same grid pinned and native: each side trained under its own numerics, compared run by run
    drift = json.loads((run.output_dir / "numerics_drift.json").read_text())
    assert drift["pinned"]["mode"] == "pinned" and drift["native"]["mode"] == "native"
    assert [(r["method"], r["seed"]) for r in drift["runs"]] == [("concat", 0), ("concat", 1), ("ours", 0), ("ours", 1)]
    assert all(0 <= r["differing"] <= r["numbers"] for r in drift["runs"]) and len(drift["run_ids"]) == 4
    claims = [(v["method"], v["baseline"], v["metric"]) for v in drift["verdicts"]]
    assert claims[:2] == [("ours", "concat", "fused_acc"), ("ours", "concat", "edm")] and len(claims) == 3
    assert claims[2] in {("ours", "concat", "head_acc_fou"), ("ours", "concat", "head_acc_mor")}
    assert f"Of 4 runs, {sum(r['differing'] > 0 for r in drift['runs'])} store" in run.markdown("perf_drift")
