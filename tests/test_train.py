"""The shared training loop: determinism, resume, the Shapley schedule, errors, the results store."""

import dataclasses
import json

import pytest

from mmlib.results import history_frame, records_frame, save_record
from mmlib.config import GROUPS, RETIRED, TrainConfig
from mmlib.train import train

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

    from mmlib.runtime import rng_state, set_rng_state

    state = {**rng_state({}), "cuda": [torch.full((8,), device, dtype=torch.uint8) for device in range(saved)]}
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: visible > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.extend)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        set_rng_state(state, {})
    assert [int(s[0]) for s in restored] == list(range(min(saved, visible)))
    assert [str(w.message) for w in caught] == ([] if saved == visible else [
        f"resume: the checkpoint saved {saved} CUDA RNG state(s) and {visible} CUDA device(s) are visible; restored "
        f"the first {min(saved, visible)}, so random draws on the other devices do not continue the interrupted run's"])


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


def test_record_holds_the_evaluation_order():
    record = train(small_config(epochs=1), progress=False)
    assert record["config"]["eval_seed"] == 0 and record["config"]["eval_batch_size"] == 256


def test_every_field_is_described_once_in_its_metadata():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help", "").strip(), f"TrainConfig.{f.name} has no help sentence: declare it with field()"
        assert f.metadata.get("group") in GROUPS, (f"TrainConfig.{f.name}: group {f.metadata.get('group')!r} not in "
                                                   "GROUPS")
        assert f.metadata.get("identity") in {"always", "when set", "never"}, f"TrainConfig.{f.name}: identity"
    assert not set(RETIRED) & {f.name for f in dataclasses.fields(TrainConfig)}


# run ids computed by the hand-kept set of fields before the metadata replaced it (commit 7b389a2): stored
# runs keep their ids, whatever enters the run id only when set, whatever was retired
IDS_BEFORE = [
    ({}, "ours-mfeat-s0-70e06dc3bd95"),
    ({"method": "ours_rownorm", "modalities": "fou,mor", "epochs": 15, "seed": 3},
     "ours_rownorm-mfeat-s3-6b2bbabf68a4"),
    ({"dataset": "synthetic",
      "dataset_options": {"num_samples": 160, "strengths": "2.0,0.6,0.3", "noise": "1.0,1.0,1.0"},
      "method": "ours", "method_options": {"prefix_features": "recorded"}, "epochs": 3, "batch_size": 32,
      "hidden_dim": 16,
      "device": "cpu", "probe": False}, "ours-synthetic-s0-cdb2893c434c"),
    ({"method": "mla", "compile": True}, "mla-mfeat-s0-f2c41f80d24b"),
    ({"dataset": "synthetic", "frame_size": 32, "lr": 0.01}, "ours-synthetic-s0-55620935ce4d"),
]


@pytest.mark.parametrize("fields, run_id", IDS_BEFORE)
def test_run_ids_are_those_stored_before_the_metadata(fields, run_id):
    assert TrainConfig(**fields).run_id == run_id
    elsewhere = {**fields, "device": "cuda", "probe": not fields.get("probe", True)}  # never part of the id
    assert TrainConfig(**elsewhere).run_id == run_id


def test_a_record_stored_before_fields_were_retired_gives_its_config_back():
    """``python -m mmlib diagnose`` rebuilds the config of a stored record, whose config may hold retired fields."""
    stored = {**dataclasses.asdict(TrainConfig(**IDS_BEFORE[1][0])), **RETIRED}
    assert TrainConfig.from_stored(stored).run_id == IDS_BEFORE[1][1]
    with pytest.raises(ValueError, match=r"^amp = False, but amp was retired at True \(mmlib.config.RETIRED\)$"):
        TrainConfig.from_stored({**stored, "amp": False})


def test_a_protocol_run_keeps_its_id():
    assert TrainConfig.from_protocol("ogm_ge", method="ogm_ge",
                                     dataset="synthetic").run_id == "ogm_ge-synthetic-s0-2b04f966e18f"


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


def test_a_method_option_marked_when_set_enters_the_run_id_only_off_its_default():
    """ours' correlation_gradient / mapping_batch came after runs were stored (options_identity)."""
    default = TrainConfig(method="ours", method_options={"correlation_gradient": True, "mapping_batch": "batch"})
    assert default.run_id == IDS_BEFORE[0][1]
    held = TrainConfig(method="ours", method_options={"correlation_gradient": False})
    instance = TrainConfig(method="ours", method_options={"mapping_batch": "instance"})
    assert len({default.run_id, held.run_id, instance.run_id}) == 3
