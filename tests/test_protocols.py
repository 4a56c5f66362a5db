"""Protocol presets, the learning-rate schedule, frame normalisation and augmentation, the data path."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from mmlib.augment import crop_boxes, crop_flip, resample
from mmlib.cli import main as train_cli
from mmlib.data import load_dataset
from mmlib.data.base import Batch, MultimodalDataset, resize_frames, to_model_input
from mmlib.data.prefetch import prefetched
from mmlib.evaluate import evaluate_split
from mmlib.protocols import PROTOCOLS
from mmlib.config import TrainConfig
from mmlib.runtime import seed_everything
from mmlib.train import augment_batch, build_model, load_config_dataset, train

TOY_CLIPS = {"samples": 12, "size": 32, "duration": 0.5, "n_fft": 62}


def toy_config(**changes) -> TrainConfig:
    fields = dict(dataset="cremad_fabricated", dataset_options=TOY_CLIPS, method="concat", epochs=3, batch_size=6,
                  hidden_dim=16, probe=False, device="cpu")
    return TrainConfig.from_protocol("ogm_ge", **{**fields, **changes})


@pytest.mark.parametrize("name", ["ogm_ge", "mla"])
def test_peer_protocols_resolve_to_the_peers_recipe(name):
    config = TrainConfig.from_protocol(name)
    assert (config.optimizer, config.lr, config.weight_decay) == ("sgd", 1e-3, 1e-4)
    assert (config.lr_schedule, config.lr_step, config.lr_gamma) == ("step", 70, 0.1)
    assert (config.epochs, config.batch_size, config.hidden_dim) == (100, 64, 512)
    assert (config.frame_normalization, config.augment, config.protocol) == ("imagenet", "crop_flip", name)


def test_book_protocol_is_the_config_defaults():
    assert TrainConfig.from_protocol("book") == TrainConfig()
    assert TrainConfig.from_protocol("book").run_id == TrainConfig().run_id


def test_overrides_win_and_are_named_in_the_resolved_protocol():
    config = TrainConfig.from_protocol("ogm_ge", epochs=3, lr=0.01)
    resolved = config.resolved_protocol()
    assert resolved["values"]["epochs"] == 3 and resolved["values"]["optimizer"] == "sgd"
    assert resolved["overridden"] == ["epochs", "lr"]
    assert "OGM-GE" in resolved["source"]


def test_unknown_protocol_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown protocol 'paper'; choose one of \['book', 'mla', 'ogm_ge'\]"):
        TrainConfig.from_protocol("paper")


def test_cli_unknown_protocol_exits_2_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_cli(["--protocol", "paper"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'paper' (choose from 'book', 'mla', 'ogm_ge')" in capsys.readouterr().err


def test_step_schedule_lr_per_epoch():
    record = train(TrainConfig(dataset="synthetic", dataset_options={"num_samples": 120}, method="concat", epochs=5,
                               hidden_dim=8, probe=False, device="cpu", lr=0.4, lr_schedule="step", lr_step=2,
                               lr_gamma=0.5), progress=False)
    assert [h["lr"] for h in record["history"]] == [0.4, 0.4, 0.2, 0.2, 0.1]


def test_cosine_schedule_lr_per_epoch():
    record = train(TrainConfig(dataset="synthetic", dataset_options={"num_samples": 120}, method="concat", epochs=4,
                               hidden_dim=8, probe=False, device="cpu", lr=1.0, lr_schedule="cosine"), progress=False)
    expected = [0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(4)]
    assert [h["lr"] for h in record["history"]] == pytest.approx(expected, abs=1e-12)


def test_record_stores_the_resolved_protocol():
    record = train(toy_config(epochs=1), progress=False)
    assert record["protocol"]["name"] == "ogm_ge"
    assert record["protocol"]["values"]["augment"] == "crop_flip"
    assert record["config"]["lr_schedule"] == "step"


def test_imagenet_normalisation_constants():
    raw = torch.full((1, 1, 3, 2, 2), 255, dtype=torch.uint8)
    raw[..., 1, :, :] = 0
    out = to_model_input(raw, "imagenet")
    assert out[0, 0, :, 0, 0].tolist() == pytest.approx([(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (1 - 0.406) / 0.225])
    assert to_model_input(raw, "unit")[0, 0, :, 0, 0].tolist() == [1.0, 0.0, 1.0]
    spectrogram = torch.ones(1, 1, 4, 4, dtype=torch.float16)
    assert to_model_input(spectrogram, "imagenet").equal(torch.ones(1, 1, 4, 4))  # only uint8 RGB frames change


def test_augmentation_is_identical_for_a_seed_and_differs_across_seeds():
    frames = torch.rand(4, 3, 3, 32, 32)
    first = crop_flip(frames, torch.Generator().manual_seed(5))
    again = crop_flip(frames, torch.Generator().manual_seed(5))
    other = crop_flip(frames, torch.Generator().manual_seed(6))
    assert first.shape == frames.shape and first.dtype == frames.dtype
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_crop_boxes_follow_torchvision_ranges():
    boxes = crop_boxes(20000, 400, 300, torch.Generator().manual_seed(0))
    top, left, h, w = boxes.T
    assert bool(((top >= 0) & (left >= 0) & (top + h <= 400) & (left + w <= 300)).all())
    area = h * w / (400 * 300)
    assert float(area.min()) >= 0.08 - 0.005 and float(area.max()) <= 1.0
    assert float((w / h).min()) >= 0.75 - 0.03 and float((w / h).max()) <= 4 / 3 + 0.03


def test_crop_boxes_fall_back_to_torchvisions_centre_crop():
    # a 10 x 1000 strip: no box of area >= 8 % and aspect <= 4/3 fits, so every draw falls back
    boxes = crop_boxes(3, 10, 1000, torch.Generator().manual_seed(0))
    assert boxes.tolist() == [[0.0, 493.0, 10.0, 13.0]] * 3


def test_resample_full_box_is_identity_and_flip_mirrors():
    images = torch.rand(2, 3, 8, 8)
    full = torch.tensor([[0, 0, 8, 8], [0, 0, 8, 8]])
    same = resample(images, full, torch.tensor([False, False]), 8)
    mirrored = resample(images, full, torch.tensor([True, True]), 8)
    assert torch.allclose(same, images, atol=1e-6)
    assert torch.allclose(mirrored, images.flip(-1), atol=1e-6)


def test_resample_half_box_at_double_size_matches_bilinear_upsampling_inside():
    images = torch.rand(1, 1, 8, 8)
    out = resample(images, torch.tensor([[2, 2, 4, 4]]), torch.tensor([False]), 8)
    reference = torch.nn.functional.interpolate(images[..., 2:6, 2:6], size=8, mode="bilinear", align_corners=False)
    assert torch.allclose(out[..., 1:7, 1:7], reference[..., 1:7, 1:7], atol=1e-6)  # edges may blend the outside pixel


def test_augmentation_is_off_in_evaluation():
    config = toy_config(epochs=1)
    dataset = load_dataset("cremad_fabricated", **TOY_CLIPS).with_frame_normalization("imagenet")
    model = build_model(config, dataset)
    first = evaluate_split(model, dataset, "val", 6, torch.device("cpu"), "zero")
    second = evaluate_split(model, dataset, "val", 6, torch.device("cpu"), "zero")
    assert first == second
    batch = next(dataset.batches("val", 4))
    stored = torch.from_numpy(np.asarray(dataset.inputs["visual"][batch.index.numpy()]))
    assert torch.equal(batch.inputs["visual"], to_model_input(stored, "imagenet"))


def test_resume_with_schedule_and_augmentation_equals_uninterrupted(tmp_path):
    config = toy_config(epochs=3, lr_step=1, lr_gamma=0.5, method="ours")
    uninterrupted = train(config, progress=False)
    assert train(config, checkpoint_dir=tmp_path, progress=False, stop_after_epoch=1) is None
    resumed = train(config, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert resumed["history"] == uninterrupted["history"] and resumed["test"] == uninterrupted["test"]
    assert [h["lr"] for h in resumed["history"]] == [1e-3, 5e-4, 2.5e-4]


def test_augmentation_changes_training():
    with_augment = train(toy_config(epochs=1), progress=False)
    without = train(toy_config(epochs=1, augment="none"), progress=False)
    assert with_augment["history"][0]["train_loss"] != without["history"][0]["train_loss"]


def test_device_gather_returns_the_rows_and_values_of_the_host_gather():
    dataset = load_dataset("cremad_fabricated", **TOY_CLIPS).with_frame_normalization("imagenet")
    resident = dataclass_with_tensors(dataset)
    for host, device in zip(dataset.batches("train", 5, shuffle=True, generator=torch.Generator().manual_seed(1)),
                            resident.batches("train", 5, shuffle=True, generator=torch.Generator().manual_seed(1))):
        assert torch.equal(host.index, device.index) and torch.equal(host.labels, device.labels)
        for m in dataset.modalities:
            assert torch.equal(host.inputs[m], device.inputs[m])


def stored_batches(dataset, batch_size, seed):
    """The host batches the accelerator path prefetches: rows in their stored dtype, same order as ``batches``."""
    order = torch.randperm(len(dataset.splits["train"]), generator=torch.Generator().manual_seed(seed)).numpy()
    rows = dataset.splits["train"][order]
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        yield Batch({m: torch.from_numpy(dataset.inputs[m][chunk]) for m in dataset.modalities},
                    torch.as_tensor(dataset.labels[chunk]), dataset.modalities, torch.as_tensor(chunk))


def test_prefetched_batches_are_the_host_gather_in_order_with_a_short_last_batch():
    dataset = load_dataset("cremad_fabricated", **TOY_CLIPS).with_frame_normalization("imagenet")
    convert = lambda raw: to_model_input(raw, "imagenet")  # noqa: E731
    served = list(prefetched(stored_batches(dataset, 5, seed=1), "cpu", convert))
    gathered = list(dataset.batches("train", 5, shuffle=True, generator=torch.Generator().manual_seed(1)))
    assert [len(b) for b in served] == [5, 5, 2] == [len(b) for b in gathered]
    for ours, host in zip(served, gathered):
        assert torch.equal(ours.index, host.index) and torch.equal(ours.labels, host.labels)
        for m in dataset.modalities:
            assert ours.inputs[m].dtype == torch.float32 and torch.equal(ours.inputs[m], host.inputs[m])


def test_prefetcher_enqueues_the_next_batch_before_handing_over_the_current_one():
    drawn = []

    def source(n):
        for k in range(n):
            drawn.append(k)
            yield Batch({"a": torch.full((2, 1), k, dtype=torch.uint8)}, torch.zeros(2, dtype=torch.long), ("a",))

    handed = []
    for batch in prefetched(source(3), "cpu"):
        handed.append((int(batch.inputs["a"][0, 0]), list(drawn)))
    assert handed == [(0, [0, 1]), (1, [0, 1, 2]), (2, [0, 1, 2])]
    assert list(prefetched(source(0), "cpu")) == []
    only = list(prefetched(source(1), "cpu"))
    assert len(only) == 1 and only[0].inputs["a"].dtype == torch.float32 and only[0].index is None


def dataclass_with_tensors(dataset):
    """The dataset with its arrays as tensors, the form ``on_device`` gives them on a GPU (here on the CPU)."""
    import dataclasses

    return dataclasses.replace(dataset,
                               inputs={m: torch.from_numpy(np.ascontiguousarray(x)) for m, x in dataset.inputs.items()})


def test_on_device_keeps_host_arrays_on_the_cpu():
    dataset = load_dataset("cremad_fabricated", **TOY_CLIPS)
    assert dataset.on_device("cpu") is dataset


def test_protocol_names_are_documented():
    assert set(PROTOCOLS) == {"book", "ogm_ge", "mla"}


def test_bench_scale_measures_both_paths_for_each_method(tmp_path):
    from mmlib.benchmarks import scale

    figures = scale.run(["--device", "cpu", "--samples", "12", "--batch-size", "6", "--epochs", "2",
                         "--methods", "concat,mla,ours", "--json", str(tmp_path / "scale.json")])
    assert [row["method"] for row in figures["rows"]] == ["concat", "mla", "ours"]
    for row in figures["rows"]:
        assert row["samples"] == 12 and row["data_path_samples_per_s"] > 0 and row["ceiling_samples_per_s"] > 0
        assert row["data_path_over_ceiling"] == pytest.approx(row["data_path_samples_per_s"]
                                                              / row["ceiling_samples_per_s"])
        assert 0 < row["shapley_share_of_epoch"] and row["peak_memory_mb"] > 0
        # evaluation and epoch each see the 12 clips; CREMA-D's split scales them to 744 and 6,698 clips
        assert row["shapley_share_cremad_split"] == pytest.approx(row["shapley_share_of_epoch"] * 744 / 6698)
    assert figures["ours_over_mla"] > 0 and (tmp_path / "scale.json").exists()


def test_bench_scale_times_ours_in_both_orders_and_reports_the_slower(tmp_path, capsys):
    import json

    from mmlib.benchmarks import scale

    assert scale.main(["--device", "cpu", "--samples", "12", "--batch-size", "6", "--epochs", "2", "--methods", "ours",
                       "--json", str(tmp_path / "scale.json")]) == 0
    (row,) = json.loads((tmp_path / "scale.json").read_text())["rows"]
    assert [r["order"] for r in row["orders"]] == [["audio", "visual"], ["visual", "audio"]]
    slower = max(row["orders"], key=lambda r: r["epoch_s"])
    assert row["order"] == slower["order"] and row["epoch_s"] == slower["epoch_s"]
    assert row["data_path_samples_per_s"] == slower["data_path_samples_per_s"] == 12 / slower["epoch_s"]
    printed = capsys.readouterr().out
    assert "in order audio,visual " in printed and "in order visual,audio " in printed
    assert f"the table reports the slower, {','.join(slower['order'])}" in printed


def test_bench_scale_times_evaluation_as_the_loop_runs_it_after_a_warm_up(monkeypatch):
    """Every timed evaluation runs inside the loop's autocast; the first (warm-up) is left out of the median."""
    import contextlib

    from mmlib.benchmarks import scale

    inside, calls, seconds = [False], [], [10.0, 1.0, 3.0, 2.0]

    @contextlib.contextmanager
    def loop_autocast(device):
        inside[0] = True
        yield
        inside[0] = False

    monkeypatch.setattr(scale, "autocast", loop_autocast)
    monkeypatch.setattr(scale, "evaluate_split", lambda model, dataset, split, *rest: calls.append((split, inside[0])))
    monkeypatch.setattr(scale, "_seconds", lambda device, work: (work(), seconds.pop(0))[1])
    run = {"config": TrainConfig(dataset="synthetic", method="concat", device="cpu"), "model": None, "dataset": None}
    assert scale.evaluation_seconds(run, torch.device("cpu")) == 2.0
    assert calls == [("val", True)] * 4


def test_gpu_summary_says_plainly_when_no_gpu_figures_are_stored(tmp_path):
    from mmlib.benchmarks.gpu_check import summary

    text, table = summary(tmp_path / "gpu-check.json")
    assert table is None and "no run of this book has been timed on a GPU yet" in text


def test_gpu_summary_shows_device_date_and_figures(tmp_path):
    import json

    from mmlib.benchmarks.gpu_check import summary

    row = {"method": "ours", "arrays": "device", "data_path_samples_per_s": 900.4, "ceiling_samples_per_s": 1000.0,
           "data_path_over_ceiling": 0.9004, "shapley_share_cremad_split": 0.031}
    prefetched_row = {**row, "arrays": "host", "data_path_samples_per_s": 850.0, "data_path_over_ceiling": 0.85}
    figures = {"device": "NVIDIA H200", "date": "2026-12-01 10:00 UTC", "versions": {"torch": "2.11.0", "cuda": "13.0"},
               "bench_scale": {"rows": [row], "ours_over_mla": 1.1, "ours_100_epochs_cremad_s": 240.0},
               "host_arrays": [prefetched_row], "resume": {"largest_history_difference": 0.0}}
    (tmp_path / "gpu-check.json").write_text(json.dumps(figures))
    text, table = summary(tmp_path / "gpu-check.json")
    assert "NVIDIA H200 on 2026-12-01 10:00 UTC" in text and "1.10 MLA epochs" in text and "4.0 minutes" in text
    assert table.to_dict(orient="records") == [
        {"method": "ours", "arrays on": "device", "data path (clips/s)": 900, "ceiling (clips/s)": 1000,
         "data path / ceiling": 0.9, "evaluation / epoch at CREMA-D": "3.1%"},
        {"method": "ours", "arrays on": "host", "data path (clips/s)": 850, "ceiling (clips/s)": 1000,
         "data path / ceiling": 0.85, "evaluation / epoch at CREMA-D": "3.1%"}]


def test_compile_option_compiles_encoders_in_place_and_names_its_own_run():
    """``compile`` wraps each encoder's forward (state-dict keys unchanged, so checkpoints load into an
    eager model) and enters the run id only when set (compiled dropout draws other masks)."""
    from mmlib.runtime import compile_encoders

    config = TrainConfig(dataset="synthetic", method="concat", hidden_dim=8, device="cpu")
    seed_everything(0)
    model = build_model(config, load_config_dataset(config))
    keys = list(model.state_dict())
    compile_encoders(model)
    assert all(encoder._compiled_call_impl is not None for encoder in model.encoders.values())
    assert list(model.state_dict()) == keys
    assert dataclasses.replace(config, compile=False).run_id == config.run_id
    assert dataclasses.replace(config, compile=True).run_id != config.run_id


def test_resize_frames_is_torchvisions_antialiased_resize_and_keeps_constants():
    from torchvision.transforms.v2 import functional as TF

    frames = torch.rand(2, 3, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    resized = resize_frames(frames, 8)
    assert resized.shape == (2, 3, 3, 8, 8)
    expected = TF.resize(frames.reshape(6, 3, 20, 28), [8, 8], antialias=True).reshape(2, 3, 3, 8, 8)
    assert torch.allclose(resized, expected, atol=1e-6)
    assert torch.allclose(resize_frames(torch.full((1, 1, 3, 20, 28), 0.25), 8), torch.full((1, 1, 3, 8, 8), 0.25))
    assert resize_frames(frames, 0) is frames and resize_frames(resized, 8) is resized


def test_frame_size_resizes_evaluation_frames_and_leaves_training_frames_whole_for_the_crop():
    dataset = load_dataset("cremad_fabricated", **TOY_CLIPS).with_frame_normalization("imagenet").with_frame_size(16)
    assert dataset.input_shape("visual") == (3, 3, 16, 16) and dataset.input_shape("audio") == (1, 32, 32)
    evaluation = next(dataset.batches("val", 4))
    whole = next(dataset.batches("val", 4, full_frames=True))
    assert evaluation.inputs["visual"].shape == (4, 3, 3, 16, 16) and whole.inputs["visual"].shape == (4, 3, 3, 32, 32)
    assert torch.equal(evaluation.inputs["audio"], whole.inputs["audio"])
    assert torch.allclose(evaluation.inputs["visual"], resize_frames(whole.inputs["visual"], 16))
    assert dataset.tensors("test")[0]["visual"].shape[-2:] == (16, 16)
    cropped = augment_batch(whole, torch.Generator().manual_seed(0), out_size=16)
    assert (cropped.inputs["visual"].shape == (4, 3, 3, 16, 16)
            and torch.equal(cropped.inputs["audio"], whole.inputs["audio"]))


def test_a_run_at_another_frame_size_trains_and_is_another_run():
    at_16 = toy_config(epochs=1, frame_size=16)
    record = train(at_16, progress=False)
    assert record["config"]["frame_size"] == 16 and math.isfinite(record["history"][0]["train_loss"])
    assert at_16.run_id != toy_config(epochs=1).run_id


@pytest.mark.parametrize("size", [-1, 4, 2.5])
def test_frame_size_must_be_zero_or_a_real_size(size):
    with pytest.raises(ValueError, match=r"frame_size must be 0 \(frames at their stored size\) or a size of at least "
                                         rf"8 pixels, got {size}"):
        toy_config(frame_size=size)


def test_cli_frame_size_too_small_is_one_line(capsys):
    assert train_cli(["--dataset", "cremad_fabricated", "--frame-size", "4", "--epochs", "1"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "mmlib train: frame_size must be 0 (frames at their stored size) or a size of at least 8 pixels, got 4"]


def test_a_prefetched_epoch_interrupted_and_resumed_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    """The path of host arrays prefetched to an accelerator (:mod:`mmlib.data.prefetch`, one batch in
    flight), run on the CPU's no-op streams: a run stopped in the middle of its second epoch, with a
    batch already gathered ahead, resumes from its checkpoint to the uninterrupted run's record."""
    stop = {"at": None, "served": 0}

    def through_the_prefetcher(self, split, batch_size, shuffle=False, generator=None, device="cpu", shard=None,
                               full_frames=False, modalities=None):
        chosen = self.modalities if modalities is None else list(modalities)
        chunks = self._batch_rows(split, batch_size, shuffle, generator, shard)
        for batch in self._prefetched_batches(chunks, torch.device(device), 0 if full_frames else self.frame_size,
                                              chosen):
            if split == "train":
                stop["served"] += 1
                if stop["served"] == stop["at"]:
                    raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(MultimodalDataset, "batches", through_the_prefetcher)
    config = toy_config(epochs=3, method="ours")
    uninterrupted = train(config, progress=False)
    per_epoch = stop["served"] // 3
    stop.update(served=0, at=per_epoch + 2)  # the second batch of epoch 2, the third already gathered
    with pytest.raises(KeyboardInterrupt):
        train(config, checkpoint_dir=tmp_path, progress=False)
    stop.update(served=0, at=None)
    resumed = train(config, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert stop["served"] == 2 * per_epoch, "the resumed run must start at epoch 2, from the checkpoint"
    assert resumed["history"] == uninterrupted["history"] and resumed["test"] == uninterrupted["test"]
