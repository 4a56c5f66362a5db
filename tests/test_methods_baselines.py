"""Baselines (sum, ogm, ogm_ge, lfm, crmt, late_fusion, mla): hand-checkable properties of each, and
every method training two epochs on mfeat (2 and 3 views), synthetic and digits-sized inputs."""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mmlib.train as train_module
from mmlib.cli import build_parser, config_from_args
from mmlib.data.base import Batch, MultimodalDataset
from mmlib.methods import build_options, method_class, parse_methods
from mmlib.methods.base import JOINT, PassContext, Step
from mmlib.methods.crmt import joint_epochs_for, margin_regularizer, orthogonalize
from mmlib.methods.lfm import alignment, fitted_weights
from mmlib.methods.mla import entropy_weights, update_projector
from mmlib.methods.ogm import confidence_scores, modulate_gradient, modulation_coefficients
from mmlib.config import TrainConfig
from mmlib.runtime import seed_everything
from mmlib.train import build_model, build_optimizer, load_config_dataset, train, train_one_epoch

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("sum", "ogm", "ogm_ge", "lfm", "crmt", "late_fusion", "mla")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: intra-op threads only add contention (10-100x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(name: str, modalities=("a", "v"), dim: int = 8, num_classes: int = 3, in_dim: int = 5, epochs: int = 2,
          **options):
    torch.manual_seed(0)
    cls = method_class(name)
    return cls(modalities, {m: (in_dim,) for m in modalities}, num_classes, dim, build_options(name, options), seed=0,
               epochs=epochs)


# ---- OGM / OGM-GE -------------------------------------------------------------------------------
def test_ogm_coefficients_paper_and_code_forms():
    # true-class probabilities: a: 0.75 on both samples (s_a = 1.5); v: 0.5 (s_v = 1.0) -> rho_a = 1.5
    labels = torch.tensor([0, 0])
    logits = {"a": torch.tensor([[math.log(3.0), 0.0]] * 2), "v": torch.zeros(2, 2)}
    scores = confidence_scores(logits, labels)
    assert scores == pytest.approx({"a": 1.5, "v": 1.0})
    paper = modulation_coefficients(scores, alpha=0.5, form="paper")  # Eq. 10: 1 - tanh(alpha * rho)
    early = modulation_coefficients(scores, alpha=0.5, form="early_code")  # 1 - tanh(alpha * (rho - 1))
    assert paper == pytest.approx({"a": 1 - math.tanh(0.5 * 1.5), "v": 1.0})
    assert early == pytest.approx({"a": 1 - math.tanh(0.5 * 0.5), "v": 1.0})


def test_ogm_coefficients_for_three_modalities_compare_with_mean_of_others():
    scores = {"a": 3.0, "b": 1.0, "c": 2.0}  # rho_a = 3 / 1.5 = 2, rho_b = 1 / 2.5, rho_c = 2 / 2 = 1
    k = modulation_coefficients(scores, alpha=1.0, form="early_code")
    assert k == pytest.approx({"a": 1 - math.tanh(1.0), "b": 1.0, "c": 1.0})
    assert modulation_coefficients(scores, alpha=1.0)["a"] == pytest.approx(1 - math.tanh(2.0))


def test_ogm_confidence_uses_head_slice_plus_half_bias():
    model = build("ogm", dim=2, num_classes=2)
    with torch.no_grad():
        model.head.linear.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]]))
        model.head.linear.bias.copy_(torch.tensor([2.0, 0.0]))
    features = {"a": torch.tensor([[1.0, 5.0]]), "v": torch.tensor([[7.0, 1.0]])}
    out = model.unimodal_logits(features)
    assert torch.allclose(out["a"], torch.tensor([[1.0 + 1.0, 0.0]]))  # W_a x_a + b / 2
    assert torch.allclose(out["v"], torch.tensor([[0.0 + 1.0, 2.0]]))


def test_ogm_ge_noise_has_the_gradients_std():
    torch.manual_seed(0)
    grad = torch.linspace(-3.0, 5.0, 200_000)
    modulated = modulate_gradient(grad, coefficient=0.4, noise=True)
    noise = modulated - 0.4 * grad
    assert float(noise.std()) == pytest.approx(float(grad.std()), rel=0.01)
    assert abs(float(noise.mean())) < 0.01 * float(grad.std())
    assert torch.equal(modulate_gradient(grad, 0.4, noise=False), 0.4 * grad)


def test_ogm_modulates_encoder_gradients_only_inside_the_window():
    model = build("ogm", modulation_starts=2, modulation_ends=3)
    batch = Batch({m: torch.randn(6, 5) for m in ("a", "v")}, torch.tensor([0, 1, 2, 0, 1, 2]), ("a", "v"))
    for epoch, inside in ((1, False), (2, True)):
        model.zero_grad()
        model.loss(batch, JOINT, epoch).backward()
        before = {n: p.grad.clone() for n, p in model.named_parameters()}
        model._coefficients = {"a": 0.25, "v": 1.0}
        model.after_backward(batch, JOINT, epoch)
        for n, p in model.named_parameters():
            factor = 0.25 if inside and n.startswith("encoders.a.") else 1.0
            assert torch.allclose(p.grad, factor * before[n]), n


# ---- MLA ----------------------------------------------------------------------------------------
def test_mla_projection_changes_head_gradient_and_is_orthogonal_to_stored_directions():
    model = build("mla", dim=4, num_classes=3, projection_alpha=1e-8)
    r1, r2, r3 = (torch.tensor([1.0, 2.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 1.0, 0.0]),
                  torch.tensor([0.5, 0.0, 0.0, 3.0]))
    grads = []
    for r in (r1, r2, r3):
        model.head.weight.grad = torch.arange(12.0).view(3, 4) - 5.0
        grads.append(model.head.weight.grad.clone())
        model.project_head_gradient(r)
    projected = model.head.weight.grad  # the third step's gradient, projected with the directions r1, r2
    assert not torch.allclose(projected, grads[-1])
    assert torch.allclose(projected @ r1, torch.zeros(3), atol=1e-5)
    assert torch.allclose(projected @ r2, torch.zeros(3), atol=1e-5)
    # the component outside span(r1, r2) is kept: G P = G (I - Q Q^T) with Q an orthonormal basis
    q, _ = torch.linalg.qr(torch.stack([r1, r2], dim=1))
    assert torch.allclose(projected, grads[-1] @ (torch.eye(4) - q @ q.T), atol=1e-4)


def test_mla_projection_fires_in_training_steps():
    model = build("mla", dim=4, num_classes=3)
    batch = Batch({m: torch.randn(6, 5) for m in ("a", "v")}, torch.tensor([0, 1, 2, 0, 1, 2]), ("a", "v"))
    for step in (Step("modality", ("a",)), Step("modality", ("v",))):
        model.zero_grad()
        model.loss(batch, step, 1).backward()
        raw = model.head.weight.grad.clone()
        model.after_backward(batch, step, 1)
    assert not torch.allclose(model.head.weight.grad, raw)  # the second step's gradient was projected
    assert not torch.allclose(model.projector, torch.eye(4))


def _gsplugin_by_hand(P: list[list[float]], r: list[float], alpha: float) -> list[list[float]]:
    """The authors' GSPlugin arithmetic, written out entry by entry (Cecile-hi/Multimodal-Learning-with-
    Alternating-Unimodal-Adaptation, utils/utils.py lines 35-40 at ab6c184): k = P r;
    P[i][j] -= k[i] k[j] / (alpha + k[i] r[j]); then P / ||P||_F."""
    d = len(r)
    k = [sum(P[i][j] * r[j] for j in range(d)) for i in range(d)]
    new = [[P[i][j] - k[i] * k[j] / (alpha + k[i] * r[j]) for j in range(d)] for i in range(d)]
    norm = math.sqrt(sum(v * v for row in new for v in row))
    return [[v / norm for v in row] for row in new]


def test_mla_code_projection_is_the_gsplugin_arithmetic():
    model = build("mla", dim=2, num_classes=2, projection="code", projection_alpha=0.5)
    grad = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    r1, r2, r3 = torch.tensor([4.0, 4.0]), torch.tensor([1.0, 2.0]), torch.tensor([2.0, -1.0])
    # step 1 of the run: GSPlugin does nothing (train_exp_counter == 0, utils/utils.py line 29)
    model.head.weight.grad = grad.clone()
    model.project_head_gradient(r1, first_step=True)
    assert torch.equal(model.head.weight.grad, grad) and torch.equal(model.projector, torch.eye(2))
    # step 2, by hand: P = I, k = r = (1, 2); alpha + k r^T = [[1.5, 2.5], [2.5, 4.5]];
    # P = I - [[1/1.5, 2/2.5], [2/2.5, 4/4.5]] = [[1/3, -0.8], [-0.8, 1/9]], then divided by its Frobenius norm
    model.head.weight.grad = grad.clone()
    model.project_head_gradient(r2)
    unnormalised = torch.tensor([[1 / 3, -0.8], [-0.8, 1 / 9]])
    P2 = unnormalised / math.sqrt(1 / 9 + 0.64 + 0.64 + 1 / 81)
    assert torch.allclose(model.projector, P2, atol=1e-6)
    assert torch.allclose(model.head.weight.grad, grad @ P2.T, atol=1e-6)  # line 41: grad P^T
    # step 3: k = P r differs from r, so P is no longer symmetric and grad P^T != grad P
    model.head.weight.grad = grad.clone()
    model.project_head_gradient(r3)
    P3 = torch.tensor(_gsplugin_by_hand(P2.tolist(), r3.tolist(), 0.5))
    assert not torch.allclose(P3, P3.T, atol=1e-3)
    assert torch.allclose(model.projector, P3, atol=1e-6)
    assert torch.allclose(model.head.weight.grad, grad @ P3.T, atol=1e-6)


def test_mla_code_projection_skips_only_the_first_step_of_the_run():
    model = build("mla", dim=4, num_classes=3, projection="code")
    batch = Batch({m: torch.randn(6, 5) for m in ("a", "v")}, torch.tensor([0, 1, 2, 0, 1, 2]), ("a", "v"))
    model.begin_pass(_pass_context(batches=1))
    for step, changed in ((Step("modality", ("a",)), False), (Step("modality", ("v",)), True)):
        model.zero_grad()
        model.loss(batch, step, 1).backward()
        raw = model.head.weight.grad.clone()
        model.after_backward(batch, step, 1)
        assert torch.allclose(model.head.weight.grad, raw) != changed, step
    assert not torch.allclose(model.projector, torch.eye(4))


def test_rls_projector_of_one_direction():
    r = torch.tensor([3.0, 4.0])
    P = update_projector(torch.eye(2), r, alpha=1.0)
    assert torch.allclose(P, torch.eye(2) - torch.outer(r, r) / 26.0)


def test_mla_entropy_weights_per_sample_and_per_batch():
    confident, uniform = torch.tensor([[20.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 20.0]])
    w = entropy_weights([confident, uniform], "sample")[..., 0]  # (n, B)
    # sample 0: modality 0 is certain (H = 0), modality 1 uniform (H = ln 2): weights e^0 : e^-ln2 = 2 : 1
    assert torch.allclose(w[:, 0], torch.tensor([2 / 3, 1 / 3]), atol=1e-6)
    assert torch.allclose(w[:, 1], torch.tensor([1 / 3, 2 / 3]), atol=1e-6)
    wb = entropy_weights([confident, uniform], "batch")[..., 0]
    assert torch.allclose(wb[:, 0], wb[:, 1])  # one scalar per modality per batch
    assert torch.allclose(wb.sum(0), torch.ones(2))


# ---- LFM ----------------------------------------------------------------------------------------
def test_lfm_fitted_schedule_values():
    assert fitted_weights(0) == pytest.approx((0.204623704, 0.795376296))
    e = 10  # by hand: c0 + 10 c1 + 100 c2 + 1000 c3 + 1e4 c4 + 1e5 c5
    a1 = 0.204623704 + 0.0335472727 + 0.0122989557 - 0.00292947416 + 0.000223835486 - 0.00000539717505
    assert fitted_weights(e) == pytest.approx((a1, 1 - a1))
    model = build("lfm", schedule_scale=10.0)
    assert model.weights(2) == pytest.approx((a1, 1 - a1))  # epoch 2 -> index (2 - 1) * 10
    assert build("lfm", schedule="constant", cls_weight=0.3).weights(7) == pytest.approx((0.3, 0.7))


def _pass_context(batches: int, validation_batch=None) -> PassContext:
    return PassContext(1, [], batches, lambda modalities: None, lambda: validation_batch, 0)


def test_mla_code_alpha_schedule_decays_within_the_epoch():
    model = build("mla", alpha_schedule="code")
    model.begin_pass(_pass_context(batches=10))
    assert model.current_alpha() == pytest.approx(0.1)
    model._steps_taken = 2 * 5  # two modalities, five batches done
    assert model.current_alpha() == pytest.approx(0.1 ** 1.5)
    model.begin_pass(_pass_context(batches=10))  # a new epoch starts again at 0.1
    assert model.current_alpha() == pytest.approx(0.1)
    assert build("mla").current_alpha() == pytest.approx(0.1)


def test_mla_counts_one_batch_per_round_of_unimodal_steps():
    model = build("mla", alpha_schedule="code", dim=4)
    model.begin_pass(_pass_context(batches=4))
    batch = Batch({m: torch.randn(6, 5) for m in ("a", "v")}, torch.tensor([0, 1, 2, 0, 1, 2]), ("a", "v"))
    for step in (Step("modality", ("a",)), Step("modality", ("v",))):
        model.zero_grad()
        model.loss(batch, step, 1).backward()
        model.after_backward(batch, step, 1)
    assert model.current_alpha() == pytest.approx(0.1 ** 1.25)


def test_lfm_learned_weight_rises_by_its_step_when_only_cross_entropy_can_help():
    # identical modalities, encoders and heads: p_a = p_v, so JS and its gradient are zero and the
    # hypergradient direction is g_CE; with the validation batch = the training batch, cos = 1
    model = build("lfm", schedule="learned", cls_weight=0.5, weight_lr=0.05)
    model.encoders["v"].load_state_dict(model.encoders["a"].state_dict())
    model.head.heads["v"].load_state_dict(model.head.heads["a"].state_dict())
    x = torch.randn(6, 5)
    batch = Batch({"a": x, "v": x.clone()}, torch.tensor([0, 1, 2, 0, 1, 2]), ("a", "v"))
    model.eval()  # no dropout: both paths give the same outputs
    assert model.update_learned_weight(batch, batch) == pytest.approx(1.0, abs=1e-5)
    assert model.weights(1) == pytest.approx((0.55, 0.45))


def test_lfm_learned_weight_is_clipped_saved_and_used_by_the_loss():
    torch.manual_seed(1)
    train_batch, validation_batch = (
        Batch({m: torch.randn(6, 5) for m in ("a", "v")}, torch.tensor([0, 1, 2, 0, 1, 2]), ("a", "v"))
        for _ in range(2)
    )
    model = build("lfm", schedule="learned", cls_weight=0.9, weight_lr=1.0)
    model.eval()
    cosine = model.update_learned_weight(train_batch, validation_batch)
    assert -1.0 <= cosine <= 1.0 and cosine != 0.0
    assert model.weights(1)[0] == pytest.approx(min(0.95, max(0.05, 0.9 + cosine)))
    restored = build("lfm", schedule="learned", cls_weight=0.5)
    restored.load_state_dict(model.state_dict())
    assert restored.weights(1) == model.weights(1)
    # in training, the first step of a pass takes the hypergradient step (begin_step, once), and the
    # epoch records the weights used
    fresh = build("lfm", schedule="learned", cls_weight=0.5, weight_lr=0.05)
    fresh.begin_pass(_pass_context(batches=1, validation_batch=validation_batch))
    fresh.begin_step(train_batch, JOINT, 1)
    a1 = fresh.weights(1)[0]
    assert a1 != 0.5 and abs(a1 - 0.5) <= 0.05 + 1e-9
    fresh.begin_step(train_batch, JOINT, 1)
    assert fresh.weights(1)[0] == a1
    assert fresh.describe_epoch()["lfm_weights"] == pytest.approx([a1, 1 - a1])


def test_lfm_jensen_shannon_values():
    same = torch.tensor([[1.0, 2.0, 0.5]])
    assert float(alignment([same, same])) == pytest.approx(0.0, abs=1e-7)
    far = [torch.tensor([[50.0, 0.0]]), torch.tensor([[0.0, 50.0]])]  # disjoint supports: JS = ln 2
    assert float(alignment(far, "js")) == pytest.approx(math.log(2), rel=1e-5)


# ---- CRMT ---------------------------------------------------------------------------------------
def test_crmt_weight_slices_are_orthonormal():
    model = build("crmt", dim=8, num_classes=3)
    for w in model.orthogonal_weights():
        assert torch.allclose(w @ w.T, torch.eye(3), atol=1e-5)
        assert torch.allclose(w.sum(dim=1), torch.zeros(3), atol=1e-5)  # OWN centres each row
    rows = orthogonalize(torch.randn(3, 8), "rows")  # the code's per-row whitening: unit rows only
    assert torch.allclose(rows.norm(dim=1), torch.ones(3), atol=1e-6)


def test_crmt_margin_regularizer_value():
    labels = torch.tensor([0])
    o1, o2 = torch.tensor([[0.0, math.log(2.0)]]), torch.tensor([[0.0, math.log(3.0)]])
    assert float(margin_regularizer([o1, o2], labels)) == pytest.approx(math.log(5.0))


def test_crmt_margin_eps_is_the_codes_constant_inside_the_log():
    # train.py l. 73-74: log(S + 1e-5). Two modalities, 10 classes, the true class ahead by 15 in both:
    # S = 18 exp(-15) = 5.51e-6, and the code's gradient is S / (S + 1e-5) = 0.355 of the paper's
    labels = torch.tensor([0])
    scores = [torch.zeros(1, 10).index_fill_(1, labels, 15.0).requires_grad_(True) for _ in range(2)]
    s = 18 * math.exp(-15.0)
    assert margin_regularizer(scores, labels, 1e-5).item() == pytest.approx(math.log(s + 1e-5), rel=1e-6)
    paper = torch.autograd.grad(margin_regularizer(scores, labels), scores[0])[0]
    code = torch.autograd.grad(margin_regularizer(scores, labels, 1e-5), scores[0])[0]
    assert torch.allclose(code, paper * s / (s + 1e-5)) and s / (s + 1e-5) == pytest.approx(0.355, abs=1e-3)
    with pytest.raises(ValueError, match="crmt: margin_eps must be >= 0"):
        build("crmt", margin_eps=-1.0)


def test_crmt_second_step_updates_only_the_scales():
    model = build("crmt", dim=8, num_classes=3, joint_epochs=1)
    batch = Batch({m: torch.randn(6, 5) for m in ("a", "v")}, torch.tensor([0, 1, 2, 0, 1, 2]), ("a", "v"))
    assert model.begin_epoch(2) == [[Step("lipschitz", optimize=False)], [Step("scales")]]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    before = copy.deepcopy(model.state_dict())
    model.estimate(batch, Step("lipschitz", optimize=False), 2)
    assert model.begin_epoch(3) == [[Step("scales")]]  # L is estimated once
    optimizer.zero_grad(set_to_none=True)
    model.loss(batch, Step("scales"), 2).backward()
    model.after_backward(batch, Step("scales"), 2)
    optimizer.step()
    after = model.state_dict()
    assert bool(model.lipschitz_ready) and bool((model.lipschitz > 0).all())
    for name in before:
        changed = not torch.equal(before[name], after[name])
        assert changed == (name in {"scales", "lipschitz", "lipschitz_ready"}), name


def test_crmt_step_lengths_scale_with_the_run_as_the_authors_do():
    # the authors: n joint epochs, then n // 3 - 1 scale epochs (140 + 45 with their config)
    assert [joint_epochs_for(t) for t in (2, 3, 15, 16, 20, 185)] == [1, 2, 12, 13, 16, 140]
    assert build("crmt", epochs=15).joint_epochs == 12
    assert build("crmt", epochs=15, joint_epochs=5).joint_epochs == 5
    with pytest.raises(ValueError,
                       match="joint_epochs=15 leaves no epoch of the 15-epoch run for step 2; use at most 14"):
        build("crmt", epochs=15, joint_epochs=15)
    with pytest.raises(ValueError, match="at least 2 epochs"):
        build("crmt", epochs=1)
    with pytest.raises(ValueError,
                       match="crmt: joint_epochs=0 scales step 1 to the run's length, which is unknown here"):
        build("crmt", epochs=None)
    assert config_from_args(build_parser().parse_args(["--method", "crmt", "--joint-epochs", "5"]),
                            build_parser()).method_options[
        "joint_epochs"] == 5


def test_crmt_second_step_runs_in_a_15_epoch_run_and_changes_only_the_scales():
    config = TrainConfig(dataset="synthetic", dataset_options={"num_samples": 120}, method="crmt", epochs=15,
                         batch_size=32,
                         hidden_dim=8, probe=False, device="cpu")
    seed_everything(0)
    dataset = load_config_dataset(config)
    model = build_model(config, dataset)
    optimizer, shuffle = build_optimizer(config, model), torch.Generator().manual_seed(0)
    phases = []
    for epoch in range(1, 16):
        train_one_epoch(model, dataset, optimizer, config, epoch, shuffle, torch.device("cpu"), progress=False)
        phases.append(model.describe_epoch()["crmt_phase"])
        if epoch == 12:
            after_step_1 = copy.deepcopy(model.state_dict())
    assert phases == ["joint"] * 12 + ["scales"] * 3
    final = model.state_dict()
    changed = {name for name in final if not torch.equal(final[name], after_step_1[name])}
    assert changed == {"scales", "lipschitz", "lipschitz_ready"}
    assert bool((model.lipschitz > 0).all())  # every modality's constants estimated (the authors' audio row is 0)


# ---- Late Fusion --------------------------------------------------------------------------------
def test_late_fusion_is_the_mean_of_the_unimodal_softmaxes():
    model = build("late_fusion").eval()
    x = {m: torch.randn(4, 5) for m in ("a", "v")}
    p = [F.softmax(model.head.heads[m](model.encoders[m](x[m])), dim=-1) for m in ("a", "v")]
    fused = model.logits_from_features(model.encode(x), ("a", "v"))
    assert torch.allclose(fused.exp(), (p[0] + p[1]) / 2, atol=1e-6)
    assert torch.allclose(model.logits_from_features(model.encode(x), ("v",)).exp(), p[1], atol=1e-6)


def test_late_fusion_training_equals_separately_trained_models():
    model = build("late_fusion").eval()  # eval: no dropout, so both paths see the same function
    separate = {m: copy.deepcopy(model) for m in ("a", "v")}
    batch = Batch({m: torch.randn(6, 5) for m in ("a", "v")}, torch.tensor([0, 1, 2, 0, 1, 2]), ("a", "v"))
    joint_opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)
    alone_opt = {m: torch.optim.Adam(list(s.encoders[m].parameters()) + list(s.head.heads[m].parameters()), lr=0.01,
                                     weight_decay=1e-4)
                 for m, s in separate.items()}
    for _ in range(3):
        joint_opt.zero_grad(set_to_none=True)
        model.loss(batch, JOINT, 1).backward()
        joint_opt.step()
        for m, s in separate.items():
            alone_opt[m].zero_grad(set_to_none=True)
            F.cross_entropy(s.head.heads[m](s.encoders[m](batch.inputs[m])), batch.labels).backward()
            alone_opt[m].step()
    for m, s in separate.items():
        for a, b in zip(list(model.encoders[m].parameters()) + list(model.head.heads[m].parameters()),
                        list(s.encoders[m].parameters()) + list(s.head.heads[m].parameters())):
            assert torch.allclose(a, b, atol=1e-6)


# ---- every method trains on every kind of input ------------------------------------------------
def _quick(method: str, **kwargs) -> TrainConfig:
    return TrainConfig(method=method, epochs=2, probe=False, device="cpu", **kwargs)


def _check_record(record: dict, modalities) -> None:
    assert set(record["test"]["unimodal_acc"]) == set(modalities)
    assert 0.0 <= record["test"]["fused_acc"] <= 100.0
    assert len(record["history"]) == 2 and all(np.isfinite(h["train_loss"]) for h in record["history"])


def test_every_baseline_trains_through_the_command_line_on_mfeat_two_views(tmp_path):
    """``python -m mmlib train --method NAME --epochs 2`` for every baseline, the processes run side by side."""
    if not (ROOT / "mmlib" / "cli.py").exists():
        pytest.skip("mmlib/cli.py not written yet")
    runs = {}
    for method in BASELINES:
        out = tmp_path / method
        runs[method] = subprocess.Popen(
            [sys.executable, "-m", "mmlib", "train", "--dataset", "mfeat", "--modalities", "fou,mor", "--method",
             method,
             "--epochs", "2", "--seed", "0", "--probe", "false", "--device", "cpu", "--quiet",
             "--results-dir", str(out / "results"), "--checkpoint-dir", str(out / "ckpt")],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    for method, process in runs.items():
        stdout, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, f"{method}: {stderr[-2000:]}"
        assert f"{method} on mfeat [fou,mor]" in stdout
        assert list((tmp_path / method / "results").glob("*.json")), method


@pytest.mark.parametrize("method", BASELINES)
def test_method_trains_on_mfeat_three_views_and_synthetic(method):
    record = train(_quick(method, dataset="mfeat", modalities="pix,fou,mor", dataset_options={"noise": "pix=2.0"}),
                   progress=False)
    _check_record(record, ("pix", "fou", "mor"))
    record = train(_quick(method, dataset="synthetic", dataset_options={"num_samples": 200}), progress=False)
    _check_record(record, ("m0", "m1"))


def _digits_sized_dataset() -> MultimodalDataset:
    rng = np.random.default_rng(0)
    n = 120
    labels = np.arange(n) % 4
    inputs = {m: (rng.normal(size=(n, 1, 8, 8)) + labels[:, None, None, None] * scale).astype(np.float32)
              for m, scale in (("left", 0.5), ("right", 0.2))}
    order = rng.permutation(n)
    splits = {"train": order[:80], "val": order[80:100], "test": order[100:]}
    return MultimodalDataset("digits_pair", ("left", "right"), inputs, labels.astype(np.int64), ("0", "1", "2", "3"),
                             splits)


@pytest.mark.parametrize("method", BASELINES)
def test_method_trains_on_digits_sized_two_modality_input(method, monkeypatch):
    dataset = _digits_sized_dataset()
    monkeypatch.setattr(train_module, "load_config_dataset", lambda config: dataset)
    record = train(_quick(method, dataset="digits"), progress=False)
    _check_record(record, ("left", "right"))


def test_parse_methods_names_the_parameter_and_the_valid_choices():
    assert parse_methods(" ours, mla ,") == ["ours", "mla"]
    with pytest.raises(ValueError, match=r"correlation_methods: unknown method 'magic'; valid choices are \[.*'ours'"):
        parse_methods("ours,magic", "correlation_methods")


@pytest.mark.parametrize("method, options", [
    ("lfm", {"schedule": "learned"}),
    ("mla", {"alpha_schedule": "code"}),
    ("ours", {"prefix_features": "recorded"}),
])
def test_options_that_use_the_pass_hook_train_and_resume_exactly(method, options, tmp_path):
    config = TrainConfig(method=method, method_options=options, dataset="mfeat", modalities="fou,mor", epochs=3,
                         probe=False, device="cpu")
    whole = train(config, progress=False)
    _check_record({**whole, "history": whole["history"][:2]}, ("fou", "mor"))
    assert train(config, checkpoint_dir=tmp_path, progress=False, stop_after_epoch=1) is None
    resumed = train(config, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert resumed["test"] == whole["test"] and resumed["history"] == whole["history"]
    if method == "lfm":
        weights = [h["lfm_weights"][0] for h in whole["history"]]
        assert len(set(weights)) == 3 and all(0.05 <= w <= 0.95 for w in weights)  # a_1 learned, one step per epoch
