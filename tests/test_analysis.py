"""Specifications of the model analyses: trained models back (mmlib.trained), oracle order (mmlib.orders),
missing-modality evaluation and batch dependence (mmlib.evaluate), fused features (mmlib.embedding)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mmlib.book import data_options, repo_path
from mmlib.embedding import class_silhouette, fused_features
from mmlib.evaluate import (
    encode_split, evaluate_missing, evaluate_split, feature_chunks, fused_accuracy_by_batch, mask_columns,
    missing_accuracy,
)
from mmlib.orders import order_accuracies, order_correct
from mmlib.trained import model_at_epoch, train_model
from mmlib.config import TrainConfig
from mmlib.runtime import seed_everything
from mmlib.train import build_model, load_config_dataset

TINY = TrainConfig(dataset="mfeat", modalities="pix,fou,mor", dataset_options={"noise": "pix=2.0"}, method="ours",
                   epochs=2, seed=0, probe=False, device="cpu")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("analysis")
    model, data, record = train_model(TINY, root / "runs", root / "weights")
    return model, data, record, root


def test_mask_columns_put_modality_k_on_bit_k():
    present = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1]], dtype=bool)
    assert mask_columns(present).tolist() == [5, 2, 7]


def test_missing_accuracy_picks_each_samples_own_subset_column():
    # 2 modalities -> columns none, a, b, a+b
    correct = np.array([[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 1, 0]], dtype=bool)
    present = np.array([[1, 0], [0, 1], [1, 1], [1, 1]], dtype=bool)  # columns 1, 2, 3, 3
    assert missing_accuracy(correct, present) == pytest.approx(75.0)
    assert missing_accuracy(correct, np.ones((4, 2), dtype=bool)) == pytest.approx(50.0)  # the last column


def test_class_silhouette_of_two_hand_made_clusters():
    points = np.array([[0.0], [1.0], [10.0], [11.0]])
    expected = (2 * (1 - 1 / 10.5) + 2 * (1 - 1 / 9.5)) / 4
    assert class_silhouette(points, np.array([0, 0, 1, 1])) == pytest.approx(expected)


def test_data_options_keep_noise_only_for_views_in_the_run():
    assert data_options("mfeat", "fou,mor", "pix=2.0") == {}
    assert data_options("mfeat", "pix,mor", "pix=2.0,fou=1") == {"noise": "pix=2.0"}
    with pytest.raises(ValueError, match="data_root"):
        data_options("mfeat", "fou", "", "/some/cache")


def test_repo_path_resolves_relative_paths_at_the_repository_root(tmp_path):
    assert repo_path(tmp_path) == tmp_path
    assert (repo_path("results/runs").parent.parent / "pyproject.toml").is_file()


def test_train_model_returns_the_weights_the_record_describes(trained):
    model, data, record, root = trained
    test = evaluate_split(model, data, "test", TINY.eval_batch_size, "cpu")
    assert test["fused_acc"] == pytest.approx(record["test"]["fused_acc"])
    again, _, stored = train_model(TINY, root / "runs", root / "weights")  # reused, not retrained
    assert stored["run_id"] == record["run_id"]
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b)


def test_oracle_is_any_fixed_order_and_hybrid_matches_the_models_inference(trained):
    model, data, record, _ = trained
    features, labels = encode_split(model, data, "test", 256, "cpu")
    correct = order_correct(model, features, labels, 256)
    fixed = [k for k in correct if k not in ("hybrid", "oracle")]
    assert len(fixed) == 6  # 3! orders
    assert np.array_equal(correct["oracle"], np.any([correct[k] for k in fixed], axis=0))
    acc = order_accuracies(correct)
    assert all(acc["oracle"] >= acc[k] for k in fixed)
    assert acc["hybrid"] == pytest.approx(record["test"]["fused_acc"])  # Algorithm 1 is what the record scores


def test_missing_evaluation_at_rate_zero_equals_the_full_evaluation(trained):
    model, data, record, _ = trained
    scores = evaluate_missing(model, data, [0.0, 0.5], mask_seed=3)
    assert scores[0.0] == pytest.approx(record["test"]["fused_acc"])
    assert 0.0 <= scores[0.5] <= 100.0


def test_whole_split_batch_equals_batch_size_zero(trained):
    model, data, _, _ = trained
    features, labels = encode_split(model, data, "test", 256, "cpu")
    assert (fused_accuracy_by_batch(model, features, labels, 0)
            == fused_accuracy_by_batch(model, features, labels, 10_000))
    assert fused_accuracy_by_batch(model, features, labels,
                                   256) == pytest.approx(evaluate_split(model, data, "test", 256, "cpu")["fused_acc"])


def test_snapshots_in_steps_equal_a_direct_snapshot(tmp_path):
    torch.set_num_threads(1)
    data = load_config_dataset(TINY)
    initial = model_at_epoch(TINY, data, tmp_path / "a", 0)
    seed_everything(TINY.seed)  # as train() does before building the model
    load_config_dataset(TINY)
    built = build_model(dataclasses.replace(TINY), data)
    assert all(torch.equal(a, b) for a, b in zip(initial.state_dict().values(), built.state_dict().values())
               if isinstance(a, torch.Tensor))
    model_at_epoch(TINY, data, tmp_path / "a", 1)
    stepped = model_at_epoch(TINY, data, tmp_path / "a", 2)
    direct = model_at_epoch(TINY, data, tmp_path / "b", 2)
    for a, b in zip(stepped.state_dict().values(), direct.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b)


def test_fused_features_are_what_the_classifier_sees(trained):
    """Ours: the hybrid-order chain output, (N, d), whose head gives the model's own predictions;
    the default (concatenation): [X_1; ...; X_n] with an absent modality's block zeroed."""
    model, data, _, _ = trained
    features, labels = encode_split(model, data, "test", 256, "cpu")
    fused = fused_features(model, features, 256)
    assert fused.shape == (len(labels), model.dim)
    with torch.no_grad():
        predictions = torch.cat([model.logits_from_features(chunk, model.modalities)
                                 for _, chunk in feature_chunks(features, 256)])
        assert torch.equal(model.head(fused).argmax(-1), predictions.argmax(-1))
    concat = build_model(dataclasses.replace(TINY, method="concat", method_options={}), data)
    chunk = {m: torch.full((2, 3), float(k + 1)) for k, m in enumerate(concat.modalities)}
    assert concat.fused_representation(chunk, ["pix", "mor"]).tolist() == [[1.0] * 3 + [0.0] * 3 + [3.0] * 3] * 2
