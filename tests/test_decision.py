"""Decision-layer statistics on models whose weights are set by hand, and the calibrated Sum head."""

import math

import pytest
import torch

from mmlib.decision import decision_statistics, logit_scale
from mmlib.methods import build_options, method_class
from mmlib.methods.base import JOINT


def hand_sum_model():
    """Sum over modalities a, b (d = 2, C = 2): W_a = 3 I, W_b = I, no bias."""
    model = method_class("sum")(("a", "b"), {"a": (2,), "b": (2,)}, 2, 2, build_options("sum"))
    with torch.no_grad():
        for m, scale in (("a", 3.0), ("b", 1.0)):
            model.head.heads[m].weight.copy_(scale * torch.eye(2))
            model.head.heads[m].bias.zero_()
    return model


def test_statistics_of_a_hand_set_sum_head():
    model = hand_sum_model()
    features = {"a": torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 2.0]]),
                "b": torch.tensor([[0.0, 2.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])}
    stats = decision_statistics(model, features, batch_size=3)
    a, b = stats["modalities"]["a"], stats["modalities"]["b"]
    assert (math.isclose(a["weight_norm"], 3 * math.sqrt(2), rel_tol=1e-6)
            and math.isclose(b["weight_norm"], math.sqrt(2), rel_tol=1e-6))
    # contributions: a = 3 x_a (std over 2 classes = 1.5 |x1 - x2|), b = x_b
    assert math.isclose(a["logit_scale"], (1.5 + 1.5 + 1.5 + 3.0) / 4, rel_tol=1e-6)
    assert math.isclose(b["logit_scale"], (1.0 + 0.5 + 0.5 + 0.5) / 4, rel_tol=1e-6)
    assert math.isclose(a["feature_norm"], (1 + 1 + 1 + 2) / 4, rel_tol=1e-6)
    # unimodal predictions: a = [0, 1, 0, 1], b = [1, 0, 0, 1]; they disagree on samples 0 and 1,
    # where the fused logits 3 x_a + x_b = [3, 2], [1, 3] follow a both times
    assert stats["disagreement"] == 50.0 and a["follow_rate"] == 100.0 and b["follow_rate"] == 0.0


def test_logit_scale_is_the_mean_std_over_classes():
    assert math.isclose(float(logit_scale(torch.tensor([[0.0, 2.0], [1.0, 1.0]]))), 0.5)


def test_calibrated_sum_puts_every_modality_at_the_same_logit_scale():
    model = method_class("sum_calibrated")(("a", "b"), {"a": (2,), "b": (2,)}, 2, 2, build_options("sum_calibrated"))
    with torch.no_grad():
        model.head.heads["a"].weight.copy_(3 * torch.eye(2))
        model.head.heads["b"].weight.copy_(torch.eye(2))
        model.head.heads["a"].bias.zero_()
        model.head.heads["b"].bias.zero_()
        model.scales.copy_(torch.tensor([3.0, 1.0]))
    assert torch.allclose(model.factors(), torch.tensor([2.0 / 3.0, 2.0]))
    x = {"a": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([[0.0, 1.0]])}
    assert torch.allclose(model.logits_from_features(x, ("a", "b")), torch.tensor([[2.0, 2.0]]))


def test_calibrated_sum_tracks_the_running_scale_in_training():
    torch.manual_seed(0)
    model = method_class("sum_calibrated")(("a", "b"), {"a": (3,), "b": (3,)}, 2, 4,
                                           build_options("sum_calibrated", {"momentum": 1.0}))
    from mmlib.data.base import Batch

    inputs = {"a": torch.randn(8, 3), "b": torch.randn(8, 3)}
    model.eval()
    model.loss(Batch(inputs, torch.zeros(8, dtype=torch.long), ("a", "b")), JOINT, 1)
    with torch.no_grad():
        features = model.encode(inputs)
        expected = [float(logit_scale(features[m] @ model.head.heads[m].weight.T)) for m in ("a", "b")]
    assert torch.allclose(model.scales, torch.tensor(expected))


def test_missing_features_are_named():
    with pytest.raises(ValueError, match="features lack modality 'b'"):
        decision_statistics(hand_sum_model(), {"a": torch.zeros(2, 2)})


def test_verdict_words_follow_the_sign_and_the_threshold():
    from mmlib.verdicts import verdict

    assert verdict({"mean_diff": 1.0, "p_wilcoxon": 0.01}) == "reproduced"
    assert verdict({"mean_diff": -1.0, "p_wilcoxon": 0.01}) == "not reproduced"
    assert verdict({"mean_diff": -1.0, "p_wilcoxon": 0.01}, higher_is_better=False) == "reproduced"
    assert verdict({"mean_diff": 1.0, "p_wilcoxon": 0.05}) == "inconclusive"
    with pytest.raises(ValueError, match="alpha must lie in"):
        verdict({"mean_diff": 1.0, "p_wilcoxon": 0.01}, alpha=1.5)
