"""CREMA-D: layout checks, list files, splits, known-bad clips, --skip-bad, the registered loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fabricate import cremad_names, fabricate_cremad

from mmlib.data import load_dataset
from mmlib.data.cache import build_cache, load_cache
from mmlib.data.cremad import CREMAD_CLASSES, plan_cremad
from mmlib.data.prepare import main as prepare

SMALL = dict(frames=3, size=16, sample_rate=8000, duration=0.5, n_fft=64, hop=32, val_fraction=0.25, test_fraction=0.25)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return fabricate_cremad(tmp_path_factory.mktemp("cremad"))


def test_cache_has_ogm_shapes_labels_and_stratified_splits(raw, tmp_path):
    ds = load_cache(build_cache(plan_cremad(raw, **SMALL), tmp_path / "c", progress=False))
    n = len(cremad_names())
    assert ds.modalities == ("audio", "visual")
    assert ds.inputs["audio"].shape == (n, 1, 33, 1 + 4000 // 32) and ds.inputs["audio"].dtype == np.float16
    assert ds.inputs["visual"].shape == (n, 3, 3, 16, 16) and ds.inputs["visual"].dtype == np.uint8
    assert ds.classes == CREMAD_CLASSES
    assert np.bincount(ds.labels).tolist() == [8] * 6
    assert {s: len(v) for s, v in ds.splits.items()} == {"train": 24, "val": 12, "test": 12}
    assert sorted(np.concatenate(list(ds.splits.values())).tolist()) == list(range(n))


def test_default_audio_is_ogm_ge_257_by_188(raw):
    plan = plan_cremad(raw, size=16, val_fraction=0.25, test_fraction=0.25)
    assert plan.modalities["audio"] == ((1, 257, 188), "float16")
    assert plan.process(plan.samples[0])["audio"].shape == (1, 257, 188)


def test_visual_frames_are_rgb_and_evenly_spaced(raw):
    plan = plan_cremad(raw, **SMALL)
    frames = plan.process(plan.samples[0])["visual"]
    # the red half is channel 0 (RGB, not BGR)
    assert frames[0, 0, 0, 0] > 150 and frames[0, 2, 0, 0] < frames[0, 0, 0, 0]
    assert frames[0, 1, 0, -1] < frames[1, 1, 0, -1] < frames[2, 1, 0, -1]  # brightness ramps over the clip


def test_manifest_records_params_sources_versions_and_completion(raw, tmp_path):
    out = build_cache(plan_cremad(raw, **SMALL), tmp_path / "c", progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest)[-1] == "complete" and manifest["complete"] is True
    assert manifest["params"]["hop"] == 32 and manifest["classes"] == list(CREMAD_CLASSES)
    assert len(manifest["sources"]) == 2 * len(cremad_names())
    assert {"path", "size", "sha256"} <= set(manifest["sources"][0])
    assert set(manifest["versions"]) == {"numpy", "torch", "torchaudio", "opencv"}
    assert not (out / "progress.json").exists()


def test_same_input_gives_byte_identical_arrays(raw, tmp_path):
    a = build_cache(plan_cremad(raw, **SMALL), tmp_path / "a", progress=False)
    b = build_cache(plan_cremad(raw, **SMALL), tmp_path / "b", progress=False)
    for name in ("audio.npy", "visual.npy", "labels.npy"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_list_files_give_train_and_test_with_val_carved_from_train(raw, tmp_path):
    names = cremad_names()
    test_names = names[::4]
    train_names = [n for n in names if n not in test_names]
    (tmp_path / "train.csv").write_text("".join(f"{n},{n.split('_')[2]}\n" for n in train_names))
    (tmp_path / "test.csv").write_text("".join(f"{n},{n.split('_')[2]}\n" for n in test_names))
    plan = plan_cremad(raw, **{**SMALL, "val_fraction": 0.2}, train_list=str(tmp_path / "train.csv"),
                       test_list=str(tmp_path / "test.csv"))
    ids = [s.id for s in plan.samples]
    assert sorted(ids[i] for i in plan.splits["test"]) == sorted(test_names)
    assert len(plan.splits["val"]) == 8 and len(plan.splits["train"]) == 28


def test_speaker_independent_split_keeps_each_actor_in_one_split(raw):
    plan = plan_cremad(raw, **SMALL, speaker_independent=True)
    actors = {s: {plan.samples[i].id[:4] for i in idx} for s, idx in plan.splits.items()}
    assert actors["train"].isdisjoint(actors["test"]) and actors["train"].isdisjoint(actors["val"])
    assert actors["val"].isdisjoint(actors["test"])


def test_missing_root_and_missing_folder_show_the_expected_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; expected AudioWAV/"):
        plan_cremad(tmp_path / "nowhere")
    (tmp_path / "VideoFlash").mkdir()
    with pytest.raises(FileNotFoundError,
                       match=r"has no AudioWAV/ folder; expected AudioWAV/\*\.wav and VideoFlash/\*\.flv"):
        plan_cremad(tmp_path)


def test_list_label_outside_classes_and_missing_clip_are_named(raw, tmp_path):
    name = cremad_names()[0]
    (tmp_path / "test.csv").write_text(f"{name},NEU\n")
    (tmp_path / "bad_label.csv").write_text(f"{name},JOY\n")
    with pytest.raises(ValueError, match="label 'JOY' is not a CREMA-D class"):
        plan_cremad(raw, train_list=str(tmp_path / "bad_label.csv"), test_list=str(tmp_path / "test.csv"))
    (tmp_path / "missing.csv").write_text("1099_DFA_NEU_XX,NEU\n")
    with pytest.raises(FileNotFoundError, match="names clip '1099_DFA_NEU_XX'"):
        plan_cremad(raw, train_list=str(tmp_path / "missing.csv"), test_list=str(tmp_path / "test.csv"))


def test_known_bad_clips_are_left_out_and_reported(tmp_path):
    names = cremad_names() + ["1076_MTI_SAD_XX"]
    raw = fabricate_cremad(tmp_path / "raw", names)
    plan = plan_cremad(raw, **SMALL)
    assert "1076_MTI_SAD_XX" not in [s.id for s in plan.samples]
    assert "1076_MTI_SAD_XX" in plan.notes["known_bad_excluded"]
    kept = plan_cremad(raw, **SMALL, keep_known_bad=True)
    assert "1076_MTI_SAD_XX" in [s.id for s in kept.samples] and "1076_MTI_SAD_XX" in kept.notes["known_bad_kept"]


def test_corrupt_flv_is_named_and_skip_bad_lists_it(tmp_path):
    raw = fabricate_cremad(tmp_path / "raw")
    broken = cremad_names()[5]
    (raw / "VideoFlash" / f"{broken}.flv").write_bytes(b"not a video")
    args = ["cremad", "--root", str(raw), "--quiet", "--size", "16", "--sample-rate", "8000", "--duration", "0.5",
            "--n-fft", "64", "--hop", "32", "--val-fraction", "0.25", "--test-fraction", "0.25"]
    with pytest.raises(ValueError, match=f"{broken}.flv"):
        prepare([*args, "--out", str(tmp_path / "strict")])
    assert prepare([*args, "--out", str(tmp_path / "lenient"), "--skip-bad"]) == 0
    manifest = json.loads((tmp_path / "lenient" / "manifest.json").read_text())
    assert [b["id"] for b in manifest["bad"]] == [broken] and f"{broken}.flv" in manifest["bad"][0]["error"]
    ds = load_dataset("cremad", cache=str(tmp_path / "lenient"))
    assert len(ds.labels) == len(cremad_names()) - 1 == ds.inputs["visual"].shape[0]
    assert sum(len(v) for v in ds.splits.values()) == len(ds.labels)


def test_empty_wav_is_named(tmp_path):
    raw = fabricate_cremad(tmp_path / "raw")
    broken = cremad_names()[2]
    (raw / "AudioWAV" / f"{broken}.wav").write_bytes(b"")
    plan = plan_cremad(raw, **SMALL)
    with pytest.raises(ValueError, match=f"{broken}.wav"):
        build_cache(plan, tmp_path / "c", progress=False)


def test_registered_loader_explains_how_to_make_a_cache():
    with pytest.raises(ValueError, match="python -m mmlib prepare cremad --root RAW --out PATH"):
        load_dataset("cremad")
