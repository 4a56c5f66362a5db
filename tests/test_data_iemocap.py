"""IEMOCAP in MLA's list format (audio, visual, text) and in MMIN's h5 feature format."""

from __future__ import annotations

import numpy as np
import pytest
from fabricate import fabricate_iemocap_mla, fabricate_iemocap_mmin, fake_embedder

from mmlib.data import load_dataset
from mmlib.data.cache import build_cache, load_cache
from mmlib.data.iemocap import IEMOCAP_CLASSES, plan_iemocap, plan_iemocap_mmin

LABELS = ["Neutral", "Angry", "Sad", "Happy"]
SMALL = dict(frames=1, size=8, target_frames=32, num_mel_bins=16, val_fraction=0.34, embed_text=fake_embedder)


@pytest.fixture(scope="module")
def mla(tmp_path_factory):
    train = [(f"Ses01F_impro0{k}_F00{j}", LABELS[k]) for k in range(4) for j in range(3)]
    test = [("Ses05M_script01_1_M000", "Excited"), ("Ses05M_script01_1_M001", "Sad")]
    return fabricate_iemocap_mla(tmp_path_factory.mktemp("iemocap"), train, test)


def test_mla_cache_has_three_modalities_and_merges_excited_into_happy(mla, tmp_path):
    ds = load_cache(build_cache(plan_iemocap(mla, **SMALL), tmp_path / "c", progress=False))
    assert ds.classes == IEMOCAP_CLASSES == ("Angry", "Happy", "Neutral", "Sad")
    assert ds.inputs["audio"].shape == (14, 1, 16, 32)
    assert ds.inputs["visual"].shape == (14, 1, 3, 8, 8)
    assert ds.inputs["text"].shape == (14, 4)
    assert ds.labels[ds.splits["test"]].tolist() == [1, 3]
    assert {s: len(v) for s, v in ds.splits.items()} == {"train": 7, "val": 5, "test": 2}


def test_mla_label_outside_classes_is_named(tmp_path):
    raw = fabricate_iemocap_mla(tmp_path, [("Ses01F_impro01_F000", "Frustrated")], [])
    with pytest.raises(ValueError, match="label 'Frustrated' is not one of"):
        plan_iemocap(raw, **SMALL)


def test_mla_wrong_layout_shows_the_expected_layout(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"has no video/ folder; expected my_train_iemo.txt and my_test_iemo.txt"):
        plan_iemocap(tmp_path, embed_text=fake_embedder)


@pytest.fixture(scope="module")
def mmin(tmp_path_factory):
    return fabricate_iemocap_mmin(tmp_path_factory.mktemp("mmin"), {"trn": 8, "val": 4, "tst": 4})


def test_mmin_mean_pools_each_sequence_and_keeps_mmin_splits(mmin, tmp_path):
    import h5py

    build_cache(plan_iemocap_mmin(mmin), tmp_path / "c", progress=False)
    ds = load_dataset("iemocap_mmin", cache=str(tmp_path / "c"))
    assert ds.modalities == ("audio", "visual", "text")
    assert [ds.input_shape(m) for m in ds.modalities] == [(5,), (3,), (4,)]
    assert {s: len(v) for s, v in ds.splits.items()} == {"train": 8, "val": 4, "test": 4}
    assert ds.labels.tolist() == [0, 1, 2, 3] * 4
    with h5py.File(mmin / "A" / "comparE.h5", "r") as handle:
        expected = handle["Ses01F_impro00_trn000"][()].mean(axis=0)
    assert np.allclose(ds.inputs["audio"][0].astype(np.float32), expected, atol=1e-2)


def test_mmin_pad_mode_zero_pads_to_max_len(mmin):
    plan = plan_iemocap_mmin(mmin, pool="pad", max_len=5)
    out = plan.process(plan.samples[0])
    assert out["visual"].shape == (5, 3) and not out["visual"][3:].any()


def test_mmin_missing_feature_file_shows_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"has no A/comparE.h5; expected A/\{a_type\}.h5"):
        fabricate_iemocap_mmin(tmp_path, {"trn": 2, "val": 1, "tst": 1})
        (tmp_path / "A" / "comparE.h5").unlink()
        plan_iemocap_mmin(tmp_path)
