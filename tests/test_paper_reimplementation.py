"""Eq. 7-14 and Algorithm 1 written again from the paper's text alone, against mmlib on the same tensors and weights.

Nothing here imports mmlib's implementation of those pieces (``mmlib.shapley``, ``mmlib.mapping``,
``mmlib.memory``, ``mmlib.fusion``, ``mmlib.scheduler``, ``mmlib.evaluate``'s summaries) to compute
the expected values: the re-implementation below reads the weights out of a built ``Ours`` model
(encoders, the memory's ``W`` and ``b``, the classifier ``g``) and redoes the arithmetic with loops and
plain tensor operations, in the paper's notation. mmlib is then asked the same question.

Equality: ``torch.equal`` where both sides do the same operations in the same order (the memory
unit, orders, boolean tables). Where mmlib batches an operation the loops here do one at a time (cosine
via unit vectors instead of a dot product divided by two norms; ``K`` orders stacked; a matrix
product instead of a Python sum), float32 sums run in another order, and the comparison is
``torch.testing.assert_close`` at ``atol=rtol=1e-5``: a few units in the last place of float32
(``2**-23 ~ 1.2e-7``) times the length of the sums involved (d = 16, B <= 48, 3 chain steps).

Where the paper makes no choice, the re-implementation names the choice it takes (``READINGS``),
takes mmlib's, and the module docstring of the mmlib piece marks it:

(a) gradient through the correlation matrix C of Eq. 9-10 (mmlib.mapping; option
    ``correlation_gradient``); (b) the memory gates carry a bias that Eq. 12 has not
    (mmlib.memory); (c) Eq. 11 read literally, ``X C`` with samples as columns, so the strong
    sample q gathers ``sum_r C[r, q] X_r`` (mmlib.mapping); (d) Algorithm 1 visits one instance at a
    time, where C = [1]; mmlib evaluates a batch together (option ``mapping_batch``); (e) the chain
    passes on the memory's output X~ (Eq. 14), not its cell (mmlib.fusion); and the smaller ones
    marked in ``mmlib/methods/ours.py``: ties in Eq. 8 keep the listed order, v(empty) is the
    classifier on a zero feature, the frozen prefix runs in eval mode, the EDM's scale of phi.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmlib.evaluate import encode_split, evaluate_split, subset_correct
from mmlib.methods.base import Step
from mmlib.config import TrainConfig
from mmlib.runtime import seed_everything
from mmlib.train import build_model, load_config_dataset

DATA = {"num_samples": 240, "strengths": "2.0,0.6,0.3", "noise": "1.0,1.0,1.0"}
TOL = {"atol": 1e-5, "rtol": 1e-5}  # float32 sums in another order (module docstring)

# reading -> (the choice this file takes where the paper makes none, the mmlib module whose docstring
# marks it, a phrase of that mark); test_the_readings_are_marked holds the docstrings to it
READINGS = {
    "C_GRADIENT": ("(a) gradient flows through C (Eq. 9-10 do not say whether C is a constant)",
                   "mmlib.mapping", "Gradient flows through C"),
    "GATE_BIAS": ("(b) the gates are W [X_i; X^_j] + b (Eq. 12 has no b)", "mmlib.memory", "The gates carry a bias"),
    "EQ11": ("(c) X^_j = X_j C with samples as columns: sample q gathers sum_r C[r, q] X_j,r",
             "mmlib.mapping", "Eq. 11 is read literally"),
    "EVAL_BATCH": ("(d) evaluation maps a batch together (Algorithm 1 visits one instance at a time)",
                   "mmlib.mapping", "Algorithm 1's loop visits one instance at a time"),
    "CHAIN": ("(e) the chain passes on X~ of Eq. 14, not the memory cell of Eq. 13",
              "mmlib.fusion", "the cell of Eq. 13 is not passed on"),
    "TIES": ("Eq. 8 sorts ascending; equal phi keep the dataset's listed order",
             "mmlib.methods.ours", "equal values keep the listed order"),
    "EMPTY": ("P(empty set) = accuracy of g on a zero feature",
              "mmlib.methods.ours", "accuracy of g on a zero feature"),
    "FROZEN": ("the prefix encoders pi_1..pi_{k-1} run without gradient, in eval mode (dropout off)",
               "mmlib.methods.ours", "no gradient, and in inference mode"),
}


def build(**options):
    config = TrainConfig(dataset="synthetic", dataset_options=DATA, method="ours", method_options=options,
                         epochs=1, batch_size=32, hidden_dim=16, seed=0, probe=False, device="cpu")
    seed_everything(0)
    dataset = load_config_dataset(config)
    model = build_model(config, dataset)
    with torch.no_grad():  # move the memory and head off their initialisation, identically for every form
        generator = torch.Generator().manual_seed(5)
        for p in list(model.memory.parameters()) + list(model.head.parameters()):
            p.add_(0.3 * torch.randn(p.shape, generator=generator))
    return config, dataset, model


def features(dim: int = 16, batch: int = 48, seed: int = 1) -> dict[str, torch.Tensor]:
    """Three correlated modalities (the synthetic dataset's names), so that C has entries above tau off the diagonal."""
    generator = torch.Generator().manual_seed(seed)
    shared = torch.randn(batch, dim, generator=generator)
    spread = (("m0", 0.8), ("m1", 1.0), ("m2", 1.5))
    return {m: shared + s * torch.randn(batch, dim, generator=generator) for m, s in spread}


# ---- the paper, written again ------------------------------------------------------------------
def paper_shapley(P, modalities):
    """Eq. 7: phi(M_i) = sum over S not holding M_i of |S|! (n - |S| - 1)! / n! [P(S u M_i) - P(S)]."""
    n = len(modalities)
    phi = {}
    for m in modalities:
        others = [o for o in modalities if o != m]
        total = 0.0
        for size in range(n):
            for S in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                total += weight * (P(frozenset(S) | {m}) - P(frozenset(S)))
        phi[m] = total
    return phi


def paper_priority(phi, modalities):
    """Eq. 8: arg sort of phi, weakest first (reading TIES: a stable sort over the listed order)."""
    return tuple(sorted(modalities, key=lambda m: phi[m]))


def paper_correlation(Xi, Xj, tau, detach=False):
    """Eq. 9-10: C_rq = X_i,r . X_j,q / (|X_i,r| |X_j,q|), kept where > tau, C_qq = 1."""
    B = Xi.shape[0]
    C = torch.empty(B, B)
    rows = []
    for r in range(B):
        rows.append(torch.stack([torch.dot(Xi[r], Xj[q]) / (Xi[r].norm() * Xj[q].norm()) for q in range(B)]))
    C = torch.stack(rows)
    C = C * (C > tau)
    C = C * (1 - torch.eye(B)) + torch.eye(B)
    return C.detach() if detach else C  # reading C_GRADIENT: not detached


def paper_mapping(Xi, Xj, tau, row_normalize=False, detach=False):
    """Eq. 11, reading EQ11: with samples as columns X^_j = X_j C, column q = sum_r C[r, q] X_j[:, r].

    ``row_normalize`` (the form ``ours_rownorm``, not the paper's): the weights of each output
    sample divided by their sum."""
    C = paper_correlation(Xi, Xj, tau, detach)
    out = []
    for q in range(Xj.shape[0]):
        weights = C[:, q] / C[:, q].sum() if row_normalize else C[:, q]
        out.append(sum(weights[r] * Xj[r] for r in range(Xj.shape[0])))
    return torch.stack(out)


def paper_memory(Xi, Xhat, W, b):
    """Eq. 12-14 (reading GATE_BIAS): [f; i; o] = sigma(W [X_i; X^_j] + b); memory = f X_i + i X^_j;
    X~ = o tanh(memory)."""
    d = Xi.shape[-1]
    gates = torch.sigmoid(torch.cat([Xi, Xhat], dim=-1) @ W.T + b)
    f, i, o = gates[..., :d], gates[..., d:2 * d], gates[..., 2 * d:]
    memory = f * Xi + i * Xhat
    return o * torch.tanh(memory)


def paper_chain(X, order, tau, W, b, row_normalize=False, detach=False, mapping=True, memory=True):
    """Weak to strong along ``order`` (reading CHAIN): X~ of one step is the weak side of the next."""
    h = X[order[0]]
    for m in order[1:]:
        x_hat = paper_mapping(h, X[m], tau, row_normalize, detach) if mapping else X[m]
        h = paper_memory(h, x_hat, W, b) if memory else 0.5 * (h + x_hat)
    return h


def paper_hybrid(X, modalities, tau, W, b, row_normalize=False):
    """Algorithm 1 lines 1-8 on a batch (reading EVAL_BATCH): the mean of the k! chain outputs."""
    orders = list(itertools.permutations(modalities))
    return sum(paper_chain(X, o, tau, W, b, row_normalize) for o in orders) / len(orders)


def paper_algorithm1(X, modalities, tau, W, b, g):
    """Algorithm 1 literally: every instance alone (C = [1]), every order, averaged, then g."""
    predictions = []
    for i in range(len(next(iter(X.values())))):
        instance = {m: X[m][i:i + 1] for m in modalities}
        predictions.append(g(paper_hybrid(instance, modalities, tau, W, b))[0])
    return torch.stack(predictions)


def weights_of(model):
    """The memory's W and b of Eq. 12 (None without memory) and the classifier g."""
    gates = getattr(model.memory, "gates", None)
    return (None, None, model.head) if gates is None else (gates.weight, gates.bias, model.head)


# ---- the comparisons ---------------------------------------------------------------------------
def test_shapley_values_of_a_game_match_eq_7():
    from mmlib.shapley import sampled_shapley, shapley_from_table, shapley_values, subset_members

    players = ("a", "b", "c")
    rng = np.random.default_rng(3)
    table = rng.uniform(0, 100, 8)

    def P(S):
        return table[sum(1 << k for k, p in enumerate(players) if p in S)]

    expected = paper_shapley(P, players)
    assert shapley_values(P, players) == pytest.approx(expected, abs=1e-12)  # float64, another summation order
    assert shapley_from_table(table).tolist() == pytest.approx([expected[p] for p in players], abs=1e-12)
    assert [subset_members(b, players) for b in (0, 5, 7)] == [(), ("a", "c"), players]
    exact, _ = sampled_shapley(P, players, num_permutations=4000, seed=0)  # Monte Carlo: near, not equal
    assert exact == pytest.approx(expected, abs=2.0)


@pytest.mark.parametrize("form", [{}, {"row_normalize": True}], ids=["ours", "ours_rownorm"])
def test_the_mapping_of_eq_9_to_11_in_both_forms(form):
    _, _, model = build(**form)
    X = features()
    for tau in (0.0, 0.2, 0.5):
        model.mapping.tau = tau
        mapped = model.mapping(X["m0"], X["m1"])
        expected = paper_mapping(X["m0"], X["m1"], tau, form.get("row_normalize", False))
        torch.testing.assert_close(mapped, expected, **TOL)
    # C has entries kept and entries thresholded away at tau = 0.2, so the test exercises Eq. 10
    C = paper_correlation(X["m0"], X["m1"], 0.2)
    assert 0 < int((C.fill_diagonal_(0) > 0).sum()) < C.numel() - C.shape[0]


def test_eq_11_is_read_x_c_not_c_x():
    """Reading (c): the other reading (C X: sample r gathers the strong samples it correlates with) differs."""
    _, _, model = build()
    X = features()
    C = paper_correlation(X["m0"], X["m1"], model.mapping.tau)
    assert not torch.allclose(model.mapping(X["m0"], X["m1"]), C @ X["m1"], **TOL)
    torch.testing.assert_close(model.mapping(X["m0"], X["m1"]), C.T @ X["m1"], **TOL)


def test_the_memory_of_eq_12_to_14_has_a_gate_bias():
    _, _, model = build()
    X = features()
    W, b, _ = weights_of(model)
    assert b is not None and b.abs().sum() > 0  # reading (b): Eq. 12 has no b
    assert torch.equal(model.memory(X["m0"], X["m1"]), paper_memory(X["m0"], X["m1"], W, b))  # the same operations
    with torch.no_grad():
        b.zero_()  # the bias-free Eq. 12 is the same unit with b = 0
        expected = paper_memory(X["m0"], X["m1"], W, torch.zeros_like(b))
        assert torch.equal(model.memory(X["m0"], X["m1"]), expected)


@pytest.mark.parametrize("form", [{}, {"row_normalize": True}, {"mapping": "none"}, {"memory": "none"}],
                         ids=["ours", "ours_rownorm", "no_mapping", "no_memory"])
def test_the_chain_and_the_hybrid_order_of_algorithm_1(form):
    from mmlib.fusion import chain

    _, _, model = build(**form)
    X = features()
    W, b, g = weights_of(model)
    tau, rownorm = model.mapping.tau, form.get("row_normalize", False)
    kwargs = dict(row_normalize=rownorm, mapping=form.get("mapping") != "none", memory=form.get("memory") != "none")
    for order in (("m0", "m1"), ("m2", "m0", "m1"), ("m1", "m2", "m0")):
        torch.testing.assert_close(chain(X, order, model.mapping, model.memory),
                                   paper_chain(X, order, tau, W, b, **kwargs), **TOL)
    model.eval()
    orders = list(itertools.permutations(model.modalities))
    expected = sum(paper_chain(X, o, tau, W, b, **kwargs) for o in orders) / len(orders)
    torch.testing.assert_close(model.fused_representation(X, model.modalities), expected, **TOL)
    torch.testing.assert_close(model.logits_from_features(X, model.modalities), g(expected), **TOL)


def test_the_chain_passes_the_memory_output_not_its_cell():
    """Reading (e): passing the cell (Eq. 13) on instead of X~ (Eq. 14) gives another representation."""
    from mmlib.fusion import chain

    _, _, model = build()
    X = features()
    W, b, _ = weights_of(model)
    d = X["m0"].shape[1]
    h = X["m0"]
    for m in ("m1", "m2"):
        gates = torch.sigmoid(torch.cat([h, paper_mapping(h, X[m], model.mapping.tau)], -1) @ W.T + b)
        h = gates[:, :d] * h + gates[:, d:2 * d] * paper_mapping(h, X[m], model.mapping.tau)  # the cell
    assert not torch.allclose(chain(X, model.modalities, model.mapping, model.memory), h, atol=1e-2)


def test_algorithm_1_instance_by_instance_is_the_option_mapping_batch_instance():
    """Reading (d): one instance at a time C = [1]; ``mapping_batch="instance"`` evaluates so, the default does not."""
    _, _, model = build(mapping_batch="instance")
    X = features()
    W, b, g = weights_of(model)
    model.eval()
    literal = paper_algorithm1(X, model.modalities, model.mapping.tau, W, b, g)
    torch.testing.assert_close(model.logits_from_features(X, model.modalities), literal, **TOL)
    batched = model.logits_from_features(X, model.modalities)
    model.mapping.batch = "batch"
    assert not torch.allclose(model.logits_from_features(X, model.modalities), batched, atol=1e-3)
    model.train()  # training maps the batch together whatever the option (Eq. 9: "over each training batch")
    model.mapping.batch = "instance"
    expected = paper_mapping(X["m0"], X["m1"], model.mapping.tau)
    torch.testing.assert_close(model.mapping(X["m0"], X["m1"]), expected, **TOL)


def test_validation_shapley_values_and_the_next_order():
    """Eq. 7 with P(S) = validation accuracy (%) of the hybrid order over S (reading EMPTY), then Eq. 8."""
    config, dataset, model = build()
    model.eval()
    result = evaluate_split(model, dataset, "val", config.eval_batch_size, "cpu")
    X, labels = encode_split(model, dataset, "val", config.eval_batch_size, "cpu")
    W, b, g = weights_of(model)
    tau, modalities = model.mapping.tau, model.modalities

    def P(S):
        right = 0
        for start in range(0, len(labels), config.eval_batch_size):  # the chunks mmlib evaluates in
            chunk = {m: f[start:start + config.eval_batch_size] for m, f in X.items()}
            y = labels[start:start + config.eval_batch_size]
            if S:
                logits = g(paper_hybrid(chunk, [m for m in modalities if m in S], tau, W, b))
            else:
                logits = g(torch.zeros(len(y), model.dim))
            right += int((logits.argmax(-1) == y).sum())
        return 100.0 * right / len(labels)

    phi = paper_shapley(P, modalities)
    assert result["shapley"] == pytest.approx(phi, abs=1e-9)
    assert result["subset_acc"]["none"] == pytest.approx(P(frozenset()), abs=1e-12)
    model.train()
    model.end_epoch(1, result)
    assert model.begin_epoch(2) and model.order == paper_priority(phi, modalities)
    assert model.begin_epoch(1) and model.order == modalities  # epoch 1: no Shapley values yet, the listed order
    tied = dict.fromkeys(modalities, 1.0)
    model.end_epoch(1, {"shapley": tied})
    model.begin_epoch(2)
    assert model.order == paper_priority(tied, modalities) == modalities  # reading TIES


def test_the_epoch_schedule_trains_each_prefix_in_turn():
    _, _, model = build(order="fixed")
    passes = model.begin_epoch(1)
    order = model.modalities
    assert [[s.modalities for s in steps] for steps in passes] == [[order[:k]] for k in range(1, len(order) + 1)]


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("detach", [False, True], ids=["C_with_gradient", "C_constant"])
def test_the_alternating_step_and_its_frozen_prefix(k, detach):
    """Training pi_k: CE(g(chain over pi_1..pi_k), y); gradient reaches encoder pi_k, W, b and g only
    (reading FROZEN)."""
    _, dataset, model = build(order="fixed", correlation_gradient=not detach)
    model.train()
    batch = next(dataset.batches("train", 32, shuffle=True, generator=torch.Generator().manual_seed(2)))
    prefix = model.modalities[:k]
    torch.manual_seed(7)
    model.zero_grad()
    model.loss(batch, Step("prefix", prefix), epoch=1).backward()
    theirs = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    torch.manual_seed(7)  # the same dropout draw: the frozen encoders draw none
    model.zero_grad()
    X = {}
    for m in prefix[:-1]:
        encoder = model.encoders[m]
        encoder.eval()
        with torch.no_grad():
            X[m] = encoder(batch.inputs[m])
        encoder.train()
    X[prefix[-1]] = model.encoders[prefix[-1]](batch.inputs[prefix[-1]])
    W, b, g = weights_of(model)
    h = paper_chain(X, prefix, model.mapping.tau, W, b, detach=detach)
    F.cross_entropy(g(h), batch.labels).backward()
    ours = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    trained = {n for n in ours if n.startswith(f"encoders.{prefix[-1]}.")}
    assert set(theirs) == set(ours) == trained | {n for n in ours if n.startswith(("memory.", "head."))}
    assert trained and not any(n.startswith(tuple(f"encoders.{m}." for m in prefix[:-1])) for n in ours)
    for name in ours:
        torch.testing.assert_close(theirs[name], ours[name], **TOL)


def test_holding_c_constant_changes_the_encoder_gradient():
    """Reading (a) matters: at k = 2 the trained encoder's gradient differs with C held constant."""
    grads = {}
    for flag in (True, False):
        _, dataset, model = build(order="fixed", correlation_gradient=flag)
        model.train()
        batch = next(dataset.batches("train", 32, shuffle=True, generator=torch.Generator().manual_seed(2)))
        torch.manual_seed(7)
        model.loss(batch, Step("prefix", model.modalities[:2]), epoch=1).backward()
        grads[flag] = torch.cat([p.grad.flatten() for p in model.encoders[model.modalities[1]].parameters()])
    assert (grads[True] - grads[False]).norm() > 1e-3 * grads[True].norm()


def paper_edm_sample(correct, modalities):
    """Per-sample phi of v(S) = |S| if the subset S predicts the sample right, else 0; EDM_i = 100 mean |1 - phi_i|."""
    masks = {frozenset(m for k, m in enumerate(modalities) if b >> k & 1): b for b in range(2 ** len(modalities))}
    per_sample = [paper_shapley(lambda S, s=s: len(S) * float(correct[s, masks[frozenset(S)]]), modalities)
                  for s in range(len(correct))]
    return {m: 100.0 * float(np.mean([abs(1.0 - phi[m]) for phi in per_sample])) for m in modalities}


def test_edm_in_both_readings():
    """Sec. 5.1, EDM = sum_i |100% - phi(M_i)|, phi's scale unsaid: the sample reading and the share reading."""
    from mmlib.shapley import edm_sample, edm_share

    config, dataset, model = build()
    model.eval()
    X, labels = encode_split(model, dataset, "test", config.eval_batch_size, "cpu")
    modalities = model.modalities
    tables = [subset_correct(model, X, labels, config.eval_batch_size),
              np.random.default_rng(4).uniform(size=(60, 8)) < np.linspace(0.2, 0.9, 8)]
    for correct in tables:
        expected = paper_edm_sample(correct, modalities)
        terms, total = edm_sample(correct, modalities)
        assert terms == pytest.approx(expected, abs=1e-9) and total == pytest.approx(sum(expected.values()), abs=1e-9)
    masks = {frozenset(m for k, m in enumerate(modalities) if b >> k & 1): b for b in range(8)}
    phi = paper_shapley(lambda S: 100.0 * tables[1][:, masks[frozenset(S)]].mean(), modalities)
    shares = {m: 100.0 * len(phi) * v / sum(phi.values()) for m, v in phi.items()}  # phi rescaled to sum to 100 n
    share_terms, share_total = edm_share(phi)
    assert share_terms == pytest.approx({m: abs(100.0 - v) for m, v in shares.items()}, abs=1e-9)
    assert share_total == pytest.approx(sum(abs(100.0 - v) for v in shares.values()), abs=1e-9)


def test_the_readings_are_marked():
    """Each reading this file takes is marked where mmlib makes it, and the two new options default to it."""
    import importlib

    from mmlib.methods.ours import OursOptions

    fields = {f.name: f.default for f in dataclasses.fields(OursOptions)}
    assert fields["correlation_gradient"] is True and fields["mapping_batch"] == "batch"
    for name, (_, module, phrase) in READINGS.items():
        doc = importlib.import_module(module).__doc__
        assert "Where the paper is silent, and what the code chose" in doc, module
        assert phrase in " ".join(doc.split()), (name, module, phrase)


def test_the_gradient_change_of_a_constant_c_and_the_mapped_scale():
    """mmlib.readings (the ambiguities chapter's section 5): zero without a mapping, positive with one; bad k named."""
    from mmlib.readings import correlation_gradient_change, mapped_scale

    _, dataset, model = build(order="fixed")
    order = model.modalities
    changes = [correlation_gradient_change(model, dataset, order, k, batch_size=32, batches=2) for k in (2, 3)]
    assert all(0 < c < float("inf") for c in changes) and model.mapping.correlation_gradient is True
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    _, dataset, unmapped = build(order="fixed", mapping="none")
    assert correlation_gradient_change(unmapped, dataset, order, 2, batch_size=32, batches=2) == 0.0
    with pytest.raises(ValueError, match=r"k must lie in \[2, 3\]"):
        correlation_gradient_change(model, dataset, order, 1)
    X = features(batch=96)
    model.eval()
    raw = [mapped_scale(model, X, order, size) for size in (8, 96)]
    _, _, rownorm = build(row_normalize=True)
    rownorm.eval()
    assert 1.0 < raw[0] < raw[1]  # the raw sum grows with the chunk
    assert mapped_scale(rownorm, X, order, 96) < 1.0 < raw[0]  # weights summing to one: a mean, shorter than its terms
    expected = paper_mapping(X["m0"], X["m1"], model.mapping.tau).norm(dim=-1).mean() / X["m1"].norm(dim=-1).mean()
    assert raw[1] == pytest.approx(float(expected), rel=1e-5)


def test_a_bad_reading_is_named_in_one_line():
    from mmlib.mapping import CrossModalMapping
    from mmlib.methods import build_options

    expected = r"^ours: option mapping_batch='one' is not valid; choose one of \('batch', 'instance'\)$"
    with pytest.raises(ValueError, match=expected):
        build_options("ours", {"mapping_batch": "one"})
    with pytest.raises(ValueError, match=r"^mapping batch must be one of \('batch', 'instance'\), got 'rows'$"):
        CrossModalMapping(batch="rows")
