"""The missing-modality baselines QMF, MMIN and TATE, each on a case checked by hand, and every
registered method through the command line."""

import math

import pytest
import torch

from mmlib.__main__ import main as mmlib_main
from mmlib.methods import available_methods, build_options, method_class
from mmlib.methods.base import JOINT
from mmlib.methods.mmin import IMAGINE, TEACHER, ResidualAE, imagination_loss, teacher_epochs_for
from mmlib.methods.qmf import confidence_rank_loss, energy_confidence
from mmlib.methods.tate import symmetric_kl
from mmlib.missing import missing_tag, training_mask


def build(name, modalities=("a", "b"), dim=4, classes=3, **options):
    shapes = {m: (5,) for m in modalities}
    return method_class(name)(modalities, shapes, classes, dim, build_options(name, options), epochs=6).eval()


def test_qmf_energy_weight_is_logsumexp_over_temperature():
    logits = torch.tensor([[0.0, math.log(3.0)], [math.log(2.0), math.log(2.0)]])
    assert torch.allclose(energy_confidence(logits, 10.0), torch.tensor([math.log(4.0), math.log(4.0)]) / 10)


def test_qmf_fuses_logits_weighted_by_their_energy():
    model = build("qmf")
    a, b = torch.tensor([[0.0, math.log(3.0), 0.0]]), torch.tensor([[1.0, 0.0, 0.0]])
    fused = model.fuse({"a": a, "b": b}, ("a", "b"))
    weight_a, weight_b = math.log(1 + 3 + 1) / 10, math.log(math.e + 2) / 10
    assert torch.allclose(fused, weight_a * a + weight_b * b)
    assert torch.allclose(model.fuse({"a": a, "b": b}, ("b",)), weight_b * b)


def test_qmf_rank_loss_by_hand():
    # sample 0 lost more so far (history 0.2 > 0.0) yet is more confident by 1.5 > the gap 0.2
    confidence, history = torch.tensor([0.5, -1.0]), torch.tensor([0.2, 0.0])
    assert math.isclose(float(confidence_rank_loss(confidence, history)), 1.3, rel_tol=1e-6)
    # the same pair ordered the right way costs nothing
    assert float(confidence_rank_loss(torch.tensor([-1.0, 0.5]), history)) == 0.0


def test_qmf_loss_history_survives_a_checkpoint():
    model = build("qmf").train()
    from mmlib.data.base import Batch

    model.start_history(torch.tensor([7, 0, 3, 1]))
    batch = Batch({"a": torch.randn(4, 5), "b": torch.randn(4, 5)}, torch.tensor([0, 1, 2, 0]), ("a", "b"),
                  torch.tensor([3, 7, 1, 0]))
    model.loss(batch, JOINT, 1)
    fresh = build("qmf")
    fresh.load_state_dict(model.state_dict())
    assert fresh.loss_history.shape == (4, 2) and torch.equal(fresh.loss_history, model.loss_history)
    assert fresh.history_rows.tolist() == [0, 1, 3, 7]


def test_qmf_history_minimum_excludes_rows_never_trained():
    # training rows 0, 1, 3, 7; rows 2, 4, 5, 6 (validation, test) have no entry (train_qmf.py l. 316-317)
    model = build("qmf")
    model.start_history(torch.tensor([7, 0, 3, 1]))
    first = model.record_history(torch.tensor([3, 7]), torch.tensor([[2.0, 1.0], [4.0, 3.0]]))
    # rows 0 and 1 not trained yet: their 0 is the minimum, as in the code's first epoch
    assert torch.allclose(first, torch.tensor([[0.5, 1 / 3], [1.0, 1.0]]))
    second = model.record_history(torch.tensor([0, 1]), torch.tensor([[1.0, 2.0], [3.0, 0.5]]))
    # every training row trained: min (1, 0.5), max (4, 3); a buffer over dataset rows 0..7 would keep
    # the minimum at 0 and give row 1's modality a 3/4 instead of 2/3
    assert torch.allclose(second, torch.tensor([[0.0, 0.6], [2 / 3, 0.0]]))
    with pytest.raises(ValueError, match="qmf: a batch holds dataset rows outside the training split"):
        model.record_history(torch.tensor([2]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="qmf: the loss history has no training rows yet"):
        build("qmf").record_history(torch.tensor([0]), torch.ones(1, 2))


def test_qmf_history_is_built_on_the_training_split_by_the_loop(tmp_path):
    from mmlib.config import TrainConfig
    from mmlib.trained import train_model

    config = TrainConfig(dataset="synthetic", dataset_options={"num_samples": 60}, method="qmf", epochs=1,
                         batch_size=16, hidden_dim=8, probe=False, device="cpu")
    model, data, _ = train_model(config, None, tmp_path)
    assert model.history_rows.tolist() == sorted(data.splits["train"].tolist())
    assert bool((model.loss_history > 0).all())  # one epoch trains every training row


def test_mmin_imagination_loss_on_a_known_pair():
    target = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    reconstruction = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    assert float(imagination_loss(target, reconstruction)) == (4.0 + 16.0) / 4


def test_mmin_target_is_the_teachers_features_of_the_missing_modalities(monkeypatch):
    model = build("mmin").train()
    from mmlib.data.base import Batch

    inputs = {"a": torch.randn(6, 5), "b": torch.randn(6, 5)}
    mask = torch.tensor([[True, False]] * 3 + [[False, True]] * 3)
    monkeypatch.setattr("mmlib.methods.mmin.training_mask", lambda *args, **kwargs: mask)
    seen = {}
    monkeypatch.setattr("mmlib.methods.mmin.imagination_loss", lambda t, r: seen.setdefault("target", t).sum() * 0)
    model.loss(Batch(inputs, torch.zeros(6, dtype=torch.long), ("a", "b")), IMAGINE, 5)
    with torch.no_grad():
        teacher_a, teacher_b = model.teacher["a"](inputs["a"]), model.teacher["b"](inputs["b"])
    expected = torch.cat([teacher_a * (~mask[:, :1]), teacher_b * (~mask[:, 1:])], dim=-1)
    assert torch.equal(seen["target"], expected)


def test_mmin_residual_autoencoder_shapes_and_teacher_epochs():
    reconstruction, latent = ResidualAE(12, [8, 4], 3)(torch.randn(5, 12))
    assert reconstruction.shape == (5, 12) and latent.shape == (5, 12)
    assert [teacher_epochs_for(e, 0) for e in (1, 2, 15)] == [0, 1, 5] and teacher_epochs_for(15, 2) == 2


def test_mmin_training_patterns_are_proper_non_empty_subsets():
    torch.manual_seed(0)
    mask = training_mask(2000, 3, include_full=False)
    codes = set((mask.long() * torch.tensor([1, 2, 4])).sum(1).tolist())
    assert codes == {1, 2, 3, 4, 5, 6}
    assert training_mask(5, 1, include_full=False).all()


def _encoder_gradients(model, norms):
    """Give each encoder's first parameter a gradient of the given norm (one non-zero entry), the rest zero."""
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    for m, norm in zip(model.modalities, norms):
        first = next(model.encoders[m].parameters())
        first.grad.view(-1)[0] = norm


def _encoder_gradient_norms(model):
    return [float(torch.cat([p.grad.flatten() for p in model.encoders[m].parameters()]).norm())
            for m in model.modalities]


def test_mmin_clips_each_encoder_on_its_own():
    # mmin_model.py l. 50, 177-178: netA, netV, netL clipped one by one at 1.0. Norms 0.45, 0.87,
    # 0.39 are each below 1 and stay; clipped jointly (norm 1.054) they would shrink to 0.427, 0.825, 0.370
    model = build("mmin", modalities=("a", "v", "l"))
    _encoder_gradients(model, [0.45, 0.87, 0.39])
    model.after_backward(None, IMAGINE, 5)
    assert _encoder_gradient_norms(model) == pytest.approx([0.45, 0.87, 0.39])


def test_mmin_teacher_epochs_clip_each_network_at_five():
    # utt_fusion_model.py l. 116-117: the teacher's networks clipped one by one at 5.0
    model = build("mmin", modalities=("a", "v", "l"))
    _encoder_gradients(model, [4.5, 8.7, 3.9])
    model.after_backward(None, TEACHER, 1)
    assert _encoder_gradient_norms(model) == pytest.approx([4.5, 5.0, 3.9])
    _encoder_gradients(model, [4.5, 8.7, 3.9])
    model.after_backward(None, IMAGINE, 5)  # the imagination epochs clip at clip_norm = 1
    assert _encoder_gradient_norms(model) == pytest.approx([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="clip_norm and teacher_clip_norm must be >= 0"):
        build("mmin", teacher_clip_norm=-1.0)


def test_tate_tag_encoding_is_the_codes_table():
    # TATE's network.py l. 89-105, modalities (visual, audio, text): present mask -> tag
    cases = {(1, 1, 1): [1, 0, 0, 0], (0, 1, 1): [0, 1, 0, 0], (1, 0, 1): [0, 0, 1, 0], (1, 1, 0): [0, 0, 0, 1],
             (1, 0, 0): [0, 0, 1, 1], (0, 1, 0): [0, 1, 0, 1], (0, 0, 1): [0, 1, 1, 0]}
    mask = torch.tensor(list(cases), dtype=torch.bool)
    assert missing_tag(mask).tolist() == [[float(v) for v in tag] for tag in cases.values()]


def test_tate_symmetric_kl_is_zero_for_equal_and_positive_otherwise():
    a = torch.tensor([[1.0, 2.0, 3.0]])
    assert float(symmetric_kl(a, a)) == 0.0
    p, q = torch.softmax(a, -1), torch.softmax(torch.zeros(1, 3), -1)
    expected = float((p * (p / q).log()).sum() + (q * (q / p).log()).sum())
    assert math.isclose(float(symmetric_kl(a, torch.zeros(1, 3))), expected, rel_tol=1e-5)


def test_tate_tag_term_weighs_a_tenth_over_the_batch_size():
    # network.py l. 161, 125, 142: CE, KL and decoder terms summed over the batch; l. 151: the tag
    # term averaged; l. 165: total = CE + 0.1 KL + 0.1 DE + 0.1 tag. At batch 32, per sample:
    ce, kl, de, tag = torch.rand(32), torch.rand(32), torch.rand(32), torch.rand(32, 4)
    code_total = ce.sum() + 0.1 * kl.sum() + 0.1 * de.sum() + 0.1 * tag.mean()
    model = build("tate")
    ours = ce.mean() + 0.1 * kl.mean() + 0.1 * de.mean() + model.tag_weight(32) * tag.mean()
    assert model.tag_weight(32) == pytest.approx(0.1 / 32)
    assert float(ours) == pytest.approx(float(code_total) / 32)
    assert build("tate", reduction="mean").tag_weight(32) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="tate: reduction='sum' is not valid"):
        build("tate", reduction="sum")


@pytest.mark.parametrize("name", ["qmf", "mmin", "tate", "joint", "sum_calibrated"])
def test_an_absent_modality_is_never_read(name):
    torch.manual_seed(0)
    model = build(name)
    features = model.encode({"a": torch.randn(7, 5), "b": torch.randn(7, 5)})
    changed = {**features, "b": features["b"] + 100.0}
    assert torch.equal(model.logits_from_features(features, ("a",)), model.logits_from_features(changed, ("a",)))
    assert model.logits_from_features(features, ()).shape == (7, 3)


@pytest.mark.parametrize("name", sorted(available_methods()))
def test_every_method_trains_two_epochs_on_mfeat_through_the_command_line(name, tmp_path, capsys):
    code = mmlib_main(["train", "--method", name, "--epochs", "2", "--modalities", "fou,mor", "--probe", "false",
                       "--results-dir", str(tmp_path), "--checkpoint-dir", str(tmp_path / "ckpt"), "--quiet"])
    assert code == 0
    assert f"{name} on mfeat [fou,mor] seed 0: test fused" in capsys.readouterr().out
