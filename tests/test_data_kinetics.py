"""Kinetics-Sounds: OGM-GE list format, fbank audio, frames, errors that show the layout."""

from __future__ import annotations

import numpy as np
import pytest
from fabricate import fabricate_kinetics, ks_clip_names

from mmlib.data.cache import build_cache, load_cache
from mmlib.data.kinetics import plan_kinetics_sounds

SMALL = dict(frames=2, size=8, target_frames=40, num_mel_bins=16, num_classes=3, val_fraction=0.33)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    entries = ks_clip_names(per_class=4, classes=3)
    return fabricate_kinetics(tmp_path_factory.mktemp("ks"), entries[0::2] + entries[1::4], entries[3::4])


def test_cache_has_fbank_frames_and_list_splits(raw, tmp_path):
    ds = load_cache(build_cache(plan_kinetics_sounds(raw, **SMALL), tmp_path / "c", progress=False))
    assert ds.inputs["audio"].shape == (12, 1, 16, 40) and ds.inputs["audio"].dtype == np.float16
    assert ds.inputs["visual"].shape == (12, 2, 3, 8, 8)
    assert {s: len(v) for s, v in ds.splits.items()} == {"train": 6, "val": 3, "test": 3}
    assert ds.classes == ("0", "1", "2")
    audio = ds.inputs["audio"].astype(np.float32)
    # 0.3 s clip: padded frames are normalised zeros
    assert np.allclose(audio[0, 0, :, -1], (0 + 4.27) / 4.57, atol=1e-2)


def test_default_audio_is_128_mel_by_1024_frames(raw):
    plan = plan_kinetics_sounds(raw, num_classes=3, val_fraction=0.33, size=8)
    assert plan.modalities["audio"] == ((1, 128, 1024), "float16") and len(plan.classes) == 3


def test_classes_file_names_the_classes(raw, tmp_path):
    (raw / "classes.txt").write_text("playing drums\nplaying guitar\nsinging\n")
    try:
        assert plan_kinetics_sounds(raw, **SMALL).classes == ("playing drums", "playing guitar", "singing")
    finally:
        (raw / "classes.txt").unlink()


def test_label_outside_classes_and_missing_clip_are_named(raw, tmp_path):
    with pytest.raises(ValueError, match="label 2 is outside the 2 classes"):
        plan_kinetics_sounds(raw, **{**SMALL, "num_classes": 2})
    (tmp_path / "audio").mkdir()
    (tmp_path / "video").mkdir()
    (tmp_path / "my_train.txt").write_text("abcdefghijk_5,10,1\n")
    (tmp_path / "my_test.txt").write_text("")
    with pytest.raises(FileNotFoundError, match="names clip 'abcdefghijk_5', but audio/abcdefghijk_5.wav is missing"):
        plan_kinetics_sounds(tmp_path, **SMALL)


def test_wrong_layout_shows_the_expected_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"has no video/ folder; expected my_train.txt and my_test.txt"):
        plan_kinetics_sounds(tmp_path)
