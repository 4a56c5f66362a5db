"""Benchmarks: fabricated inputs have a prepared cache's shapes; the arithmetic count is exact on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
from fabricate import fabricate_cremad

import mmlib.data.fabricated as fabrication
from mmlib.data.fabricated import fabricated, random_dataset
from mmlib.benchmarks.methods import main as bench_methods_main
from mmlib.benchmarks.methods import measure_methods
from mmlib.data.cremad import CREMAD_CLASSES, cremad_layout, plan_cremad
from mmlib.data.synthetic import load_synthetic

HIDDEN, D, C, INPUT = 128, 8, 5, 32  # MLP encoder width, feature width d, synthetic classes, synthetic input width


def test_fabricated_cremad_has_the_shapes_and_dtypes_prepare_writes(tmp_path):
    # the preparer's default shapes
    plan = plan_cremad(fabricate_cremad(tmp_path), val_fraction=0.25, test_fraction=0.25)
    prepared = plan.process(plan.samples[0])
    data = fabricated("cremad", 7)
    for modality in ("audio", "visual"):
        assert data.inputs[modality].shape == (7, *prepared[modality].shape)
        assert data.inputs[modality].dtype == prepared[modality].dtype
    assert data.inputs["visual"].shape[1:] == (3, 3, 224, 224) and data.inputs["audio"].shape[1:] == (1, 257, 188)
    assert data.classes == CREMAD_CLASSES


def test_random_dataset_puts_every_sample_in_every_split_and_cycles_the_labels():
    data = random_dataset({"a": ((2, 3), "float16"), "b": ((4,), "uint8")}, 5, ("x", "y"), seed=3)
    assert ({s: rows.tolist() for s, rows in data.splits.items()}
            == {s: [0, 1, 2, 3, 4] for s in ("train", "val", "test")})
    assert data.labels.tolist() == [0, 1, 0, 1, 0] and data.classes == ("x", "y")
    assert data.inputs["a"].dtype == np.float16 and data.inputs["b"].dtype == np.uint8
    again = random_dataset({"a": ((2, 3), "float16"), "b": ((4,), "uint8")}, 5, ("x", "y"), seed=3)
    assert np.array_equal(data.inputs["b"], again.inputs["b"])


def test_fabricated_names_the_datasets_whose_layout_it_knows():
    with pytest.raises(ValueError,
                       match=r"no known cache layout for dataset 'mfeat'; fabricated inputs exist for \['cremad'\]"):
        fabricated("mfeat", 10)
    with pytest.raises(ValueError, match="samples must be a positive number"):
        fabricated("cremad", 0)


def _train_rows(strengths: str) -> int:
    return len(load_synthetic(strengths=strengths, noise=",".join("1" for _ in strengths.split(","))).splits["train"])


def test_concat_epoch_arithmetic_is_the_hand_count():
    # Two MLP encoders Linear(32, 128) -> Linear(128, d) and one Linear(2d, C) head, per training sample:
    # forward  2 (32*128 + 128*d) + 2d*C multiply-adds; backward the same for the weights, plus the
    # input gradients of every layer but the first (the data needs none): 2 (128*d) + 2d*C.
    forward = 2 * (INPUT * HIDDEN + HIDDEN * D) + 2 * D * C
    backward = forward + 2 * HIDDEN * D + 2 * D * C
    measured = measure_methods(["concat"], dataset="synthetic", epochs=2, hidden_dim=D)
    assert measured["concat"]["epoch_gflop"] * 1e9 == 2 * _train_rows("2.0,0.7") * (forward + backward)
    assert measured["concat"]["epoch_s"] > 0


def test_recomputed_prefix_costs_exactly_one_frozen_forward_per_earlier_modality():
    # Three modalities: passes 2 and 3 tabulate pi_1 and pi_2 over the training split once each,
    # an encoder forward (2 (32*128 + 128*d) flops per sample); recorded features skip both.
    options = {"strengths": "2.0,1.0,0.5", "noise": "1,1,1"}
    measured = measure_methods(["ours", "ours_recorded"], dataset="synthetic", epochs=2, hidden_dim=D,
                               dataset_options=options)
    extra = (measured["ours"]["epoch_gflop"] - measured["ours_recorded"]["epoch_gflop"]) * 1e9
    assert extra == pytest.approx(2 * _train_rows("2.0,1.0,0.5") * 2 * (INPUT * HIDDEN + HIDDEN * D), abs=1)


def test_fabricated_inputs_train_every_timed_method(monkeypatch):
    small = lambda: cremad_layout(frames=2, size=32, sample_rate=8000, duration=0.25, n_fft=64, hop=32)  # noqa: E731
    monkeypatch.setitem(fabrication.PREPARED_LAYOUTS, "cremad", (small, CREMAD_CLASSES))
    measured = measure_methods(["mla", "ours"], dataset="cremad", modalities="visual,audio", epochs=2, batch_size=4,
                               fabricate=8)
    assert set(measured) == {"concat", "mla", "ours"}
    assert all(m["epoch_s"] > 0 and m["epoch_gflop"] > 0 for m in measured.values())
    # ResNet-18 arithmetic dominates: MLA's per-step head projection adds almost nothing to Concat's
    assert measured["mla"]["epoch_gflop"] / measured["concat"]["epoch_gflop"] == pytest.approx(1.0, abs=0.01)


def test_bench_methods_prints_both_ratios_and_the_verdict(capsys):
    assert bench_methods_main(["--dataset", "synthetic", "--methods", "mla,ours", "--epochs", "2", "--hidden-dim",
                               "8"]) == 0
    out = capsys.readouterr().out
    assert "GFLOP" in out and "concat" in out
    assert "ours / mla = " in out and " in arithmetic (" in out and "the target of 1.2" in out
    # synthetic's tiny encoders: 1.39 x MLA's arithmetic
    assert "ours's arithmetic alone exceeds the target here" in out


def test_bench_methods_rejects_fabricating_an_unknown_layout_or_with_dataset_options(capsys):
    assert bench_methods_main(["--dataset", "mfeat", "--fabricate", "5"]) == 2
    assert "mmlib bench methods: no known cache layout for dataset 'mfeat'" in capsys.readouterr().err
    assert bench_methods_main(["--dataset", "cremad", "--fabricate", "5", "--data", "cache=/data/cremad"]) == 2
    assert "dataset options ['cache'] do not apply" in capsys.readouterr().err


def test_frame_cache_comparison_loses_nothing_on_a_flat_frame():
    from mmlib.benchmarks.frames import compare

    flat = np.full((360, 480, 3), 128, dtype=np.uint8)  # every kernel and every size keeps a constant image
    rows = compare([flat], [224, 320], boxes_per_frame=10, seed=0)
    assert [row["cache"] for row in rows] == ["peers' JPEG files", "source (480 x 360)", "224 x 224", "320 x 320"]
    assert all(row["mae"] < 1e-4 and row["mae_small"] < 1e-4 for row in rows)  # float32 bilinear weights: ~4e-6 levels


def test_frame_cache_comparison_gains_fidelity_with_size_and_costs_its_bytes():
    from mmlib.benchmarks.frames import compare, source_frames

    rows = {row["cache"]: row for row in compare(source_frames(), [160, 224, 320], boxes_per_frame=20, seed=0)}
    psnr = [rows[f"{s} x {s}"]["psnr_db"] for s in (160, 224, 320)]
    assert psnr == sorted(psnr) and psnr[0] < psnr[-1]
    # the kernel alone loses least
    assert rows["source (480 x 360)"]["psnr_small_db"] > rows["320 x 320"]["psnr_small_db"]
    assert rows["224 x 224"]["kb_per_clip"] == pytest.approx(3 * 3 * 224 * 224 / 1e3)  # 3 RGB uint8 frames per clip
    assert rows["224 x 224"]["cremad_gb"] == pytest.approx(7442 * 3 * 3 * 224 * 224 / 1e9)


def test_bench_frames_rejects_sizes_that_are_not_numbers(capsys):
    from mmlib.benchmarks.frames import main

    with pytest.raises(SystemExit) as stopped:
        main(["--sizes", "224,big"])
    assert stopped.value.code == 2 and ("--sizes takes whole numbers separated by commas, got "
                                        "'224,big'") in capsys.readouterr().err


def test_a_hundred_epoch_run_adds_every_part_the_loop_pays():
    from mmlib.benchmarks.scale import hundred_epochs

    row = {"epoch_s": 2.0, "samples": 10, "evaluation_s": 0.5, "validation_samples": 10, "order": ["visual", "audio"],
           "overheads": {"dataset_clips": 10, "to_device_s": 0.1, "build_s": 3.0, "warmup_s": 4.0, "checkpoint_s": 0.25,
                         "checkpoint_mb": 128.0, "best_copy_s": 0.01, "probes_s": 1.0}}
    whole = hundred_epochs(row, import_s=5.0)
    assert whole["parts_s"] == {
        "start-up: interpreter and imports": 5.0, "start-up: arrays to the device": 0.01 * 7442,
        "start-up: model and optimizer": 3.0, "first-epoch warm-up": 4.0, "training": 100 * 0.2 * 6698,
        "validation (every Shapley subset)": 100 * 0.05 * 744, "checkpoints": 25.0, "best-state copies": 1.0,
        "test": 0.05 * 744, "linear probes": 1.0 / 20 * (6698 + 744)}
    assert whole["total_s"] == sum(whole["parts_s"].values()) and whole["left_out"] == ("reading the prepared cache "
                                                                                        "from disk")
    without_probes = hundred_epochs({**row, "overheads": {**row["overheads"], "probes_s": None}}, import_s=5.0)
    assert "linear probes" not in without_probes["parts_s"] and without_probes["left_out"].endswith(", linear probes")


def test_overheads_write_a_real_checkpoint_and_remove_it(tmp_path):
    import torch

    from mmlib.benchmarks.scale import overheads
    from mmlib.config import TrainConfig
    from mmlib.train import build_model, build_optimizer, load_config_dataset

    config = TrainConfig(dataset="synthetic", method="ours", hidden_dim=D, device="cpu", optimizer="sgd")
    dataset = load_config_dataset(config)
    model = build_model(config, dataset)
    found = overheads({"model": model, "config": config, "dataset": dataset,
                       "optimizer": build_optimizer(config, model),
                       "to_device_s": 0.0, "times": [3.0, 1.0, 2.0]}, torch.device("cpu"), tmp_path / "results")
    state = sum(p.numel() * p.element_size() for p in model.parameters())
    assert found["checkpoint_mb"] * 2**20 > 2 * state  # the model and the best epoch's copy, at least
    assert list((tmp_path / "results").iterdir()) == [] and found["warmup_s"] == 1.5
    assert found["probes_s"] > 0 and found["dataset_clips"] == len(dataset.labels)


def test_determinism_settings_are_timed_side_by_side_and_restored():
    import torch

    from mmlib.benchmarks import scale
    from mmlib.runtime import seed_everything

    seed_everything(0)  # the loop's settings, which every timed setting leaves as it found them
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
              torch.utils.deterministic.fill_uninitialized_memory)
    assert before == (True, False, True)
    clips = {**scale.TINY, "samples": 8}
    prices = scale.determinism_prices("ours", clips, 8, 4, 2, torch.device("cpu"))
    assert [(s["deterministic"], s["cudnn_benchmark"], s["fill_uninitialized_memory"]) for s in prices["settings"]] == [
        (True, False, True), (True, False, False), (True, True, True), (False, False, True), (False, True, True)]
    assert prices["applicable"] is False and prices["order"] == ["audio", "visual"]
    fastest = min(s["epoch_s"] for s in prices["settings"] if not s["deterministic"])
    assert prices["reproducibility_price"] == prices["settings"][0]["epoch_s"] / fastest
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
            torch.utils.deterministic.fill_uninitialized_memory) == before
