"""Ours: the frozen prefix (eval mode, tabulated once per pass with epoch granularity); the two forms of Eq. 11."""

from __future__ import annotations

import pytest
import torch

from mmlib.mapping import CrossModalMapping
from mmlib.methods import build_options
from mmlib.methods.base import PassContext, Step
from mmlib.methods.ours import Ours
from mmlib.config import TrainConfig
from mmlib.runtime import seed_everything
from mmlib.train import build_model, build_optimizer, load_config_dataset, train_one_epoch
from mmlib.evaluate import encode_rows

SMALL = {"num_samples": 300, "strengths": "2.0,0.4", "noise": "1.0,1.0"}


def setup(granularity: str = "epoch", **options):
    config = TrainConfig(dataset="synthetic", dataset_options=SMALL, method="ours",
                         method_options={"granularity": granularity, **options},
                         epochs=2, batch_size=32, hidden_dim=16, probe=False, device="cpu")
    seed_everything(0)
    dataset = load_config_dataset(config)
    model = build_model(config, dataset)
    return config, dataset, model


def context(model, dataset, steps, config) -> PassContext:
    def train_features(modalities):
        rows, features, _ = encode_rows(model, dataset, "train", config.eval_batch_size, "cpu", modalities)
        return rows, features

    return PassContext(1, [Step("prefix", prefix) for prefix in steps], 1, train_features,
                       lambda: next(dataset.batches("val", 8)), len(dataset.labels))


def eval_mode_features(model, batch, modality):
    model.eval()
    with torch.no_grad():
        features = model.encoders[modality](batch.inputs[modality])
    model.train()
    return features


def test_frozen_prefix_features_are_the_eval_mode_encoder_output():
    config, dataset, model = setup()
    first, second = model.modalities
    model.train()
    model.begin_pass(context(model, dataset, [(first,)], config))
    model.begin_pass(context(model, dataset, [(first, second)], config))
    batch = next(dataset.batches("train", 32, shuffle=True, generator=torch.Generator().manual_seed(1)))
    tabulated = model.frozen_features(batch, (first,))[first]
    assert torch.allclose(tabulated, eval_mode_features(model, batch, first), atol=1e-6)
    # dropout is active in training mode, so the frozen features are not the training-mode output
    assert not torch.allclose(tabulated, model.encoders[first](batch.inputs[first]))


def test_a_modality_trained_in_a_pass_is_tabulated_again_afterwards():
    config, dataset, model = setup()
    first, second = model.modalities
    optimizer = build_optimizer(config, model)
    generator = torch.Generator().manual_seed(0)
    train_one_epoch(model, dataset, optimizer, config, 1, generator, torch.device("cpu"), progress=False)
    # epoch 2, pass 1 trains `first` again; pass 2 must see its new weights, not epoch 1's table
    model.begin_pass(context(model, dataset, [(first,)], config))
    with torch.no_grad():
        for p in model.encoders[first].parameters():
            p.add_(0.5)
    model.begin_pass(context(model, dataset, [(first, second)], config))
    batch = next(dataset.batches("train", 32))
    assert torch.allclose(model.frozen_features(batch, (first,))[first], eval_mode_features(model, batch, first),
                          atol=1e-6)


def test_batch_granularity_computes_frozen_features_per_batch_in_eval_mode():
    config, dataset, model = setup("batch")
    first, second = model.modalities
    model.train()
    model.begin_pass(context(model, dataset, [(first,), (first, second)], config))
    batch = next(dataset.batches("train", 32))
    assert model.prefix_cache.lookup((first,), batch.index) is None
    assert torch.allclose(model.frozen_features(batch, (first,))[first], eval_mode_features(model, batch, first),
                          atol=1e-6)
    assert model.encoders[first].training  # the mode is restored


@pytest.mark.parametrize("granularity", ["epoch", "batch"])
def test_frozen_encoder_gets_no_gradient(granularity):
    config, dataset, model = setup(granularity)
    first, second = model.modalities
    model.train()
    model.begin_pass(context(model, dataset, [(first, second)], config))
    batch = next(dataset.batches("train", 32))
    model.loss(batch, Step("prefix", (first, second)), 1).backward()
    assert all(p.grad is None for p in model.encoders[first].parameters())
    assert all(p.grad is not None for p in model.encoders[second].parameters())


def test_recorded_prefix_features_are_those_seen_while_training_and_not_recomputed():
    config, dataset, model = setup(prefix_features="recorded")
    first, second = model.modalities
    model.begin_pass(context(model, dataset, [(first,)], config))
    model.eval()  # no dropout, so the recorded features can be checked against a forward pass
    batches = list(dataset.batches("train", 64, shuffle=True, generator=torch.Generator().manual_seed(2)))
    for batch in batches:
        model.loss(batch, Step("prefix", (first,)), 1)
    seen = [eval_mode_features(model, batch, first) for batch in batches]
    with torch.no_grad():
        for p in model.encoders[first].parameters():
            p.add_(0.5)
    model.begin_pass(context(model, dataset, [(first, second)], config))
    for batch, features in zip(batches, seen):
        assert torch.allclose(model.frozen_features(batch, (first,))[first], features, atol=1e-6)


def test_recorded_prefix_features_need_epoch_granularity():
    with pytest.raises(ValueError, match="prefix_features='recorded' needs granularity='epoch'"):
        TrainConfig(method="ours", method_options={"prefix_features": "recorded", "granularity": "batch"})


# ---- the two forms of Eq. 11: raw neighbour sums (ours) and row-normalised weights (ours_rownorm) ----
@pytest.mark.parametrize("batch", [1, 4, 64, 256])
def test_row_normalised_mapping_keeps_the_feature_scale_whatever_the_batch_size(batch):
    # B copies of one vector: every cosine is 1, so C is all ones; the raw sum is B v, the weighted mean is v
    v = torch.tensor([3.0, -1.0, 2.0])
    x = v.expand(batch, 3)
    raw = CrossModalMapping("sample", tau=0.2, row_normalize=False)(x, x)
    mean = CrossModalMapping("sample", tau=0.2, row_normalize=True)(x, x)
    assert torch.allclose(raw, batch * x)
    assert torch.allclose(mean, x)


def test_row_normalised_rows_are_weighted_means_of_the_batch_and_raw_sums_grow():
    torch.manual_seed(0)
    h, x = torch.randn(256, 8).abs(), torch.randn(256, 8).abs()  # positive features: most cosines exceed tau
    raw_norms, mean_norms = [], []
    for batch in (16, 256):
        raw = CrossModalMapping("sample", tau=0.2, row_normalize=False)(h[:batch], x[:batch])
        mean = CrossModalMapping("sample", tau=0.2, row_normalize=True)(h[:batch], x[:batch])
        assert (mean.norm(dim=1) <= x[:batch].norm(dim=1).max() + 1e-5).all()  # convex combinations of rows of x
        raw_norms.append(float(raw.norm(dim=1).mean()))
        mean_norms.append(float(mean.norm(dim=1).mean()))
    assert raw_norms[1] > 8 * raw_norms[0]  # grows with the number of neighbours
    assert mean_norms[1] == pytest.approx(mean_norms[0], rel=0.1)


def test_ours_rownorm_is_ours_with_row_normalised_weights_and_nothing_else():
    assert build_options("ours_rownorm").row_normalize is True
    assert {**vars(build_options("ours_rownorm")), "row_normalize": False} == vars(build_options("ours"))
    config = TrainConfig(dataset="synthetic", dataset_options=SMALL, method="ours_rownorm", hidden_dim=16, device="cpu")
    model = build_model(config, load_config_dataset(config))
    assert isinstance(model, Ours) and model.mapping.row_normalize is True
    with pytest.raises(ValueError, match="ours_rownorm: row_normalize=False is the method 'ours'"):
        build_options("ours_rownorm", {"row_normalize": False})
