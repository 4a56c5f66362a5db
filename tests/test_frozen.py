"""Frozen pretrained backbones (paper Table 3): features computed once and cached, the backbone
never trained, adapters Linear + ReLU, the pretraining pool disjoint from every split."""

import numpy as np
import pytest
import torch

from mmlib.data import load_dataset
from mmlib.encoders import AdapterEncoder, build_encoder
from mmlib.train import TrainConfig, train

OPTIONS = {"modalities": "fou,mor", "pretrain_epochs": 2, "backbone_dim": 16}


def test_backbone_features_are_computed_once_and_cached(tmp_path, monkeypatch):
    import mmlib.data.frozen as frozen

    calls = []
    compute = frozen.compute_features
    monkeypatch.setattr(frozen, "compute_features", lambda *a, **k: calls.append(1) or compute(*a, **k))
    first = load_dataset("frozen", cache=str(tmp_path), **OPTIONS)
    second = load_dataset("frozen", cache=str(tmp_path), train_fraction=0.15, **OPTIONS)
    assert len(calls) == 1
    assert np.array_equal(first.inputs["fou"], second.inputs["fou"]) and first.inputs["fou"].shape[1] == 16


def test_the_backbone_is_bitwise_unchanged_by_training_and_not_in_the_model(tmp_path):
    data = load_dataset("frozen", cache=str(tmp_path), **OPTIONS)
    (weights_file,) = tmp_path.glob("*.pt")
    before = torch.load(weights_file)
    features_before = {m: data.inputs[m].copy() for m in data.modalities}
    config = TrainConfig(dataset="frozen", modalities="fou,mor", method="concat", epochs=2, probe=False, hidden_dim=8,
                         dataset_options={"cache": str(tmp_path), "pretrain_epochs": 2, "backbone_dim": 16})
    train(config, progress=False)
    after = torch.load(weights_file)
    assert all(torch.equal(before[m][k], after[m][k]) for m in before for k in before[m])
    again = load_dataset("frozen", cache=str(tmp_path), **OPTIONS)
    assert all(np.array_equal(features_before[m], again.inputs[m]) for m in data.modalities)


def test_frozen_encoder_kind_is_a_linear_relu_adapter():
    encoder = build_encoder((16,), 8, "frozen")
    assert isinstance(encoder, AdapterEncoder)
    assert [type(layer).__name__ for layer in encoder.net] == ["Linear", "ReLU"]
    assert encoder.net[0].in_features == 16 and encoder.net[0].out_features == 8


def test_pool_is_disjoint_and_the_limited_split_is_stratified(tmp_path):
    base = load_dataset("mfeat", modalities="fou,mor")
    full = load_dataset("frozen", cache=str(tmp_path), **OPTIONS)
    limited = load_dataset("frozen", cache=str(tmp_path), train_fraction=0.15, **OPTIONS)
    pool = np.setdiff1d(base.splits["train"], full.splits["train"])
    assert full.params["frozen"]["pool_size"] == len(pool) > 0
    for split in ("val", "test"):
        assert np.array_equal(full.splits[split], base.splits[split])
        assert not np.intersect1d(pool, full.splits[split]).size
    assert set(limited.splits["train"]) <= set(full.splits["train"])
    counts = np.bincount(base.labels[limited.splits["train"]], minlength=10)
    assert counts.min() == counts.max() and abs(len(limited.splits["train"]) / len(full.splits["train"]) - 0.15) < 0.02


def test_a_model_on_frozen_data_gets_adapters(tmp_path):
    from mmlib.train import build_model, load_config_dataset

    config = TrainConfig(dataset="frozen", modalities="fou,mor", method="sum", epochs=1, hidden_dim=8,
                         dataset_options={"cache": str(tmp_path), "pretrain_epochs": 2, "backbone_dim": 16})
    model = build_model(config, load_config_dataset(config))
    assert all(isinstance(e, AdapterEncoder) for e in model.encoders.values())


@pytest.mark.parametrize("options, message", [
    ({"train_fraction": 0.0}, "train_fraction must lie in (0, 1]"),
    ({"backbone": "ola"}, "backbone must be one of"),
    ({"base_options": "nois=pix=2"}, "base_options: 'nois=pix=2' is not KEY=VALUE"),
])
def test_bad_options_are_named(options, message, tmp_path):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset("frozen", cache=str(tmp_path), **{**OPTIONS, **options})
