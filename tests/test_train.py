"""The shared training loop: determinism, resume, the Shapley schedule, errors, the results store."""

import json

import pytest

from mmlib.results import history_frame, records_frame, save_record
from mmlib.train import TrainConfig, selection_score, train

SMALL = {"num_samples": 300, "strengths": "2.0,0.4", "noise": "1.0,1.0"}


def small_config(**changes) -> TrainConfig:
    base = dict(dataset="synthetic", dataset_options=SMALL, method="ours", epochs=3, batch_size=32,
                hidden_dim=16, seed=0, probe=False, device="cpu")
    return TrainConfig(**{**base, **changes})


def _metrics(record):
    return record["test"], [{k: v for k, v in h.items()} for h in record["history"]]


def test_same_seed_gives_identical_metrics():
    first = train(small_config(), progress=False)
    second = train(small_config(), progress=False)
    assert _metrics(first) == _metrics(second)


def test_other_seed_gives_other_run():
    assert train(small_config(seed=1), progress=False)["history"] != train(small_config(), progress=False)["history"]


@pytest.mark.parametrize("method", ["ours", "concat"])
def test_resume_after_kill_matches_uninterrupted(tmp_path, method):
    config = small_config(method=method, epochs=4)
    uninterrupted = train(config, progress=False)
    assert train(config, checkpoint_dir=tmp_path, progress=False, stop_after_epoch=2) is None
    resumed = train(config, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert _metrics(resumed) == _metrics(uninterrupted)


@pytest.mark.parametrize("saved, visible", [(3, 2), (1, 2), (2, 2), (0, 0)])
def test_resume_restores_as_many_cuda_rng_states_as_there_are_devices_and_says_so(monkeypatch, saved, visible):
    """A checkpoint of ``saved`` GPUs resumed where ``visible`` are seen: ``set_rng_state_all`` (which raises
    IndexError beyond the visible devices) gets the first ``min(saved, visible)``; differing counts warn."""
    import warnings

    import torch

    from mmlib.train import _rng_state, _set_rng_state

    state = {**_rng_state({}), "cuda": [torch.full((8,), device, dtype=torch.uint8) for device in range(saved)]}
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: visible > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.extend)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _set_rng_state(state, {})
    assert [int(s[0]) for s in restored] == list(range(min(saved, visible)))
    assert [str(w.message) for w in caught] == ([] if saved == visible else [
        f"resume: the checkpoint saved {saved} CUDA RNG state(s) and {visible} CUDA device(s) are visible; restored the "
        f"first {min(saved, visible)}, so random draws on the other devices do not continue the interrupted run's"])


def test_weakest_modality_by_shapley_is_trained_first_next_epoch():
    record = train(small_config(epochs=3), progress=False)
    for previous, current in zip(record["history"], record["history"][1:]):
        weakest = min(record["modalities"], key=lambda m: (previous["shapley"][m], record["modalities"].index(m)))
        assert current["order"][0] == weakest


def test_record_holds_config_split_identity_metrics_and_environment(tmp_path):
    record = train(small_config(), results_dir=tmp_path, progress=False)
    stored = json.loads((tmp_path / f"{record['run_id']}.json").read_text())
    assert stored["config"]["method_options"]["tau"] == 0.2
    assert stored["dataset_identity"]["split_sizes"]["test"] == 60
    assert len(stored["history"]) == 3 and 1 <= stored["best_epoch"] <= 3
    assert set(stored["test"]["shapley"]) == {"m0", "m1"}
    assert stored["environment"]["torch"] and stored["wall_time_s"] > 0
    # the best epoch is chosen on validation, never test
    best = max(stored["history"], key=lambda h: h["fused_acc"])
    assert best["epoch"] == stored["best_epoch"]


def test_selection_scores_best_epoch_or_trailing_mean():
    curve = [80.0, 90.0, 70.0, 85.0]
    best, smoothed = small_config(epochs=4), small_config(epochs=4, selection="smoothed", selection_window=3)
    assert [selection_score(curve[:e], best) for e in range(1, 5)] == curve
    assert [selection_score(curve[:e], smoothed) for e in range(1, 5)] == [None, None, 80.0, pytest.approx(245 / 3)]
    # a window longer than the run is cut to the run: its last epoch is the only candidate
    assert selection_score(curve[:2], small_config(epochs=2, selection="smoothed", selection_window=5)) == 85.0


def test_smoothed_selection_keeps_the_epoch_with_the_best_trailing_mean_and_records_the_evaluation_order():
    record = train(small_config(epochs=4, selection="smoothed", selection_window=2), progress=False)
    curve = [h["fused_acc"] for h in record["history"]]
    means = {e: (curve[e - 2] + curve[e - 1]) / 2 for e in range(2, 5)}
    assert record["best_epoch"] == max(means, key=lambda e: (means[e], -e))
    assert record["config"]["eval_seed"] == 0 and record["config"]["eval_batch_size"] == 256


def test_stored_run_is_reused_and_never_overwritten(tmp_path):
    first = train(small_config(), results_dir=tmp_path, progress=False)
    assert train(small_config(), results_dir=tmp_path, progress=False) == first
    with pytest.raises(FileExistsError, match="never overwritten"):
        save_record(first, tmp_path)
    train(small_config(), results_dir=tmp_path, progress=False, force=True)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [f"{first['run_id']}-2.json", f"{first['run_id']}.json"]


def test_frames_from_records():
    record = train(small_config(probe=True), progress=False)
    runs = records_frame([record])
    assert runs.loc[0, "method"] == "ours" and 0 <= runs.loc[0, "probe_acc_m1"] <= 100
    history = history_frame([record])
    assert len(history) == 3 * 2 and history.groupby("epoch")["share"].sum().round(6).eq(100).all()


def test_unimodal_accuracy_is_measured_two_ways():
    record = train(small_config(method="concat", probe=True), progress=False)
    assert set(record["test"]["unimodal_acc"]) == set(record["probe_acc"]) == {"m0", "m1"}


@pytest.mark.parametrize("changes, message", [
    ({"method": "magic"}, "unknown method 'magic'; valid choices are"),
    ({"method_options": {"taux": 0.1}}, "method 'ours' has no option 'taux'"),
    ({"method_options": {"tau": 1.5}}, r"tau .* must lie in \[0, 1\]"),
    ({"method_options": {"order": "best"}}, "option order='best' is not valid"),
    ({"optimizer": "lion"}, "unknown optimizer 'lion'"),
    ({"selection": "last"}, r"selection must be one of \('best', 'smoothed'\), got 'last'"),
    ({"selection_window": 0}, "selection_window must be a positive number of epochs, got 0"),
])
def test_bad_config_is_a_clear_error(changes, message):
    with pytest.raises(ValueError, match=message):
        small_config(**changes)


@pytest.mark.parametrize("modalities, message", [
    ("m0,m7", "unknown modality 'm7'; valid choices are"),
    ("m0,m0", "modality 'm0' listed twice"),
])
def test_bad_modality_list_is_a_clear_error(modalities, message):
    with pytest.raises(ValueError, match=message):
        train(small_config(modalities=modalities), progress=False)


def test_mfeat_view_names_are_checked():
    with pytest.raises(ValueError, match=r"unknown modality 'pixel'; valid choices are \['fou'"):
        train(TrainConfig(dataset="mfeat", modalities="pixel,fou", epochs=1), progress=False)


def test_a_record_without_probes_does_not_answer_a_config_that_wants_them(tmp_path):
    quick = small_config(epochs=1, probe=False)
    without = train(quick, results_dir=tmp_path, progress=False)
    assert without["probe_acc"] is None
    wanted = train(small_config(epochs=1, probe=True), results_dir=tmp_path, progress=False)
    assert wanted["probe_acc"] is not None and wanted["run_id"] == without["run_id"]
    assert wanted["test"] == without["test"]  # the same run, trained again, with probes added
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [f"{quick.run_id}-2.json", f"{quick.run_id}.json"]
    again = train(small_config(epochs=1, probe=True), results_dir=tmp_path, progress=False)
    assert again == wanted and len(list(tmp_path.glob("*.json"))) == 2  # the probed record is reused
    assert train(quick, results_dir=tmp_path, progress=False) == wanted  # a probe-less config takes it too
