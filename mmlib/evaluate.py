"""Evaluation shared by every method: subset accuracies, Shapley values, EDM, linear probes, and
accuracy under modalities missing at test time (paper Table 4).

Encoders run once per split (:func:`encode_split`); the ``2**n`` modality subsets and the ``k!``
fusion orders inside each reuse those cached features. ``v(S)`` is the accuracy (%) with only the
modalities in ``S`` present; ``v(empty)`` is the accuracy of the classifier on a zero feature
(``empty_value="zero"``) or chance level (``"chance"``).

Evaluation order (every method, every split). With sample-level mapping a prediction depends on
the other samples of its chunk, and a split's rows can be in class order (mfeat's are), so chunks
cut in split order leak labels through their composition (measured at 4e50191, mfeat fou,mor,
10 seeds: chunks of 64 in split order inflate ours' test accuracy by +1.98 points, 9 / 1,
p = 0.01). So :func:`encode_split` returns a split's samples in a fixed shuffled order: sorted by
dataset row, then permuted by ``torch.randperm`` with a generator seeded by ``seed``
(:func:`evaluation_order`; ``TrainConfig.eval_seed``, 0 by default, recorded with the run). Chunks
of ``batch_size`` (``TrainConfig.eval_batch_size``, 256 by default) are then cut in that order. The
chunks depend only on which rows the split holds, the seed and the chunk size: never on the order
in which the split lists its rows, nor on the method.

Several processes (one run under ``torchrun``, :mod:`mmlib.distributed`): with a ``world`` of N ranks,
:func:`encode_rows` encodes each rank's contiguous slice of every batch and gathers the rows to
every rank, in the row order one process returns; :func:`subset_correct` gives each rank a
contiguous block of the chunks (cut exactly as one process cuts them) and sums the disjoint rows
of the ``(N, 2**n)`` table over ranks. Every rank then holds the same table of every sample, so
every metric below is identical on every rank.

Unimodal accuracy is measured two ways, for every method:
``head``   v({m}): the model's own classifier with only modality m present (absent ones zeroed);
``probe``  a logistic regression fitted on the frozen encoder's training-split features of m.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from mmlib.data.base import MultimodalDataset, missing_modality_mask
from mmlib.distributed import ONE_PROCESS, World, shard_bounds
from mmlib.features import feature_chunks
from mmlib.methods.base import Method, eval_mode
from mmlib.shapley import edm_sample, edm_share, shapley_from_table, subset_members

EMPTY_VALUES = ("zero", "chance")
EVAL_SEED = 0  # default seed of the evaluation order (TrainConfig.eval_seed)


def evaluation_order(rows: Tensor, seed: int = EVAL_SEED) -> Tensor:
    """Positions ``(N,)`` that put samples with dataset ``rows`` ``(N,)`` in the evaluation order:
    ascending row, then the permutation ``torch.randperm(N)`` drawn from a generator seeded by ``seed``."""
    permutation = torch.randperm(len(rows), generator=torch.Generator().manual_seed(int(seed)))
    return torch.argsort(rows.cpu())[permutation].to(rows.device)


@torch.no_grad()
def encode_rows(method: Method, dataset: MultimodalDataset, split: str, batch_size: int, device,
                modalities: Sequence[str] | None = None,
                world: World = ONE_PROCESS) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """Dataset rows ``(N,)``, features ``(N, d)`` of ``modalities`` (default all) and labels ``(N,)`` of ``split``.

    Encoders run in eval mode (dropout off, BatchNorm running statistics), without gradient.
    ``world``: each rank encodes its slice of every batch; every rank returns all ``N`` samples in
    ascending row order (one process's too: the order of every split the loaders make, which are sorted).
    """
    modalities = method.modalities if modalities is None else tuple(modalities)
    parts: dict[str, list[Tensor]] = {m: [] for m in modalities}
    rows, labels = [], []
    shard = (world.rank, world.size)
    with eval_mode(method):
        # only the encoded modalities' inputs are gathered (all of them when none is asked for: rows and labels)
        for batch in dataset.batches(split, batch_size, device=device, shard=shard, modalities=modalities or None):
            if len(batch) == 0:
                continue
            for m, f in method.encode(batch.inputs, modalities).items():
                parts[m].append(f.float())
            rows.append(batch.index)
            labels.append(batch.labels)
    rows_all = world.gather_rows(torch.cat(rows))
    order = torch.argsort(rows_all)
    return (rows_all[order], {m: world.gather_rows(torch.cat(p))[order] for m, p in parts.items()},
            world.gather_rows(torch.cat(labels))[order])


def encode_split(method: Method, dataset: MultimodalDataset, split: str, batch_size: int, device,
                 seed: int = EVAL_SEED, world: World = ONE_PROCESS) -> tuple[dict[str, Tensor], Tensor]:
    """Features ``(N, d)`` of every modality for ``split`` (encoders in eval mode), and labels ``(N,)``,
    in the evaluation order of ``seed`` (:func:`evaluation_order`), so chunks cut in order are never class-sorted."""
    return in_evaluation_order(*encode_rows(method, dataset, split, batch_size, device, world=world), seed)


def in_evaluation_order(rows: Tensor, features: dict[str, Tensor], labels: Tensor,
                        seed: int = EVAL_SEED) -> tuple[dict[str, Tensor], Tensor]:
    """Features and labels encoded in split order (what :func:`encode_rows` returns) put in the
    evaluation order of ``seed`` (:func:`evaluation_order`), as :func:`encode_split` returns them."""
    order = evaluation_order(rows, seed)
    return {m: f[order] for m, f in features.items()}, labels[order]


def subset_correct(method: Method, features: dict[str, Tensor], labels: Tensor, batch_size: int,
                   world: World = ONE_PROCESS) -> np.ndarray:
    """``(N, 2**n)`` bool: is sample s classified correctly with only the modalities of subset b?

    Chunks of ``batch_size`` samples in the order given (:func:`encode_split`'s evaluation order), so
    batch-dependent fusion (sample-level mapping) always sees the same chunks. ``world``: each rank
    classifies a contiguous block of the chunks and the table's disjoint rows are summed over ranks.
    """
    n_samples, n = len(labels), len(method.modalities)
    chunks = list(feature_chunks(features, batch_size))
    chunks = chunks[shard_bounds(len(chunks), world.rank, world.size)]
    correct = torch.zeros((n_samples, 2**n), dtype=torch.int32, device=labels.device)
    with eval_mode(method):
        for b in range(2**n):
            present = subset_members(b, method.modalities)
            for rows, chunk in chunks:
                prediction = method.logits_from_features(chunk, present).argmax(dim=-1)
                correct[rows, b] = (prediction == labels[rows]).int()
    correct = world.all_reduce(correct)
    return correct.cpu().numpy().astype(bool)


def summarize_correct(correct: np.ndarray, modalities: Sequence[str], num_classes: int,
                      empty_value: str = "zero") -> dict:
    """Subset accuracies, dataset-level Shapley values and both EDM readings from a correctness table."""
    if empty_value not in EMPTY_VALUES:
        raise ValueError(f"empty_value must be one of {EMPTY_VALUES}, got {empty_value!r}")
    accuracy = 100.0 * correct.mean(axis=0)
    if empty_value == "chance":
        accuracy[0] = 100.0 / num_classes
    modalities = tuple(modalities)
    phi = dict(zip(modalities, shapley_from_table(accuracy).tolist()))
    edm_terms, edm_total = edm_sample(correct, modalities)
    share_terms, share_total = edm_share(phi)
    return {
        "fused_acc": float(accuracy[-1]),
        "unimodal_acc": {m: float(accuracy[1 << k]) for k, m in enumerate(modalities)},
        "subset_acc": {"+".join(subset_members(b, modalities)) or "none": float(accuracy[b])
                       for b in range(len(accuracy))},
        "shapley": phi,
        "edm": edm_total,
        "edm_terms": edm_terms,
        "edm_share": share_total,
        "edm_share_terms": share_terms,
    }


def evaluate_split(method: Method, dataset: MultimodalDataset, split: str, batch_size: int, device,
                   empty_value: str = "zero",
                   seed: int = EVAL_SEED, world: World = ONE_PROCESS) -> dict:
    """All subset-based metrics of ``method`` on ``split``, in chunks of ``batch_size`` drawn in the evaluation order of
    ``seed``.

    ``world``: encoding and classification sharded over its ranks; the same metrics on every rank."""
    features, labels = encode_split(method, dataset, split, batch_size, device, seed, world)
    correct = subset_correct(method, features, labels, batch_size, world)
    return summarize_correct(correct, method.modalities, dataset.num_classes, empty_value)


def linear_probe_accuracy(method: Method, dataset: MultimodalDataset, batch_size: int, device, split: str = "test",
                          world: World = ONE_PROCESS) -> dict[str, float]:
    """Per modality: accuracy (%) on ``split`` of a logistic regression fitted on frozen training features.

    ``world``: features encoded sharded and gathered; every rank fits the same (deterministic) probes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_features, train_labels = encode_split(method, dataset, "train", batch_size, device, world=world)
    eval_features, eval_labels = encode_split(method, dataset, split, batch_size, device, world=world)
    scores = {}
    for m in method.modalities:
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        probe.fit(train_features[m].cpu().numpy(), train_labels.cpu().numpy())
        scores[m] = 100.0 * float(probe.score(eval_features[m].cpu().numpy(), eval_labels.cpu().numpy()))
    return scores


# ---- missing modalities at test time (paper Table 4) -------------------------------------------
def mask_columns(present: np.ndarray) -> np.ndarray:
    """Subset index ``b`` (bit k = modality k present, as in :func:`mmlib.shapley.subset_members`) per row of an
    ``(N, n)`` mask."""
    present = np.asarray(present, dtype=bool)
    return (present * (1 << np.arange(present.shape[1]))).sum(axis=1)


def missing_accuracy(correct: np.ndarray, present: np.ndarray) -> float:
    """Accuracy (%) when sample s sees only the modalities ``present[s]`` (paper Table 4).

    ``correct`` is :func:`mmlib.evaluate.subset_correct`'s ``(N, 2**n)`` table: each sample is scored
    with the prediction made from its own present subset. With every modality present this is the
    full evaluation (the last column) exactly.
    """
    if correct.shape[0] != present.shape[0]:
        raise ValueError(f"correct has {correct.shape[0]} samples but the mask has {present.shape[0]} rows")
    return 100.0 * float(correct[np.arange(len(correct)), mask_columns(present)].mean())


def evaluate_missing(model: Method, dataset: MultimodalDataset, rates: Sequence[float], mask_seed: int,
                     batch_size: int = 256, split: str = "test") -> dict[float, float]:
    """Accuracy (%) on ``split`` at each missing rate, masks from :func:`mmlib.data.missing_modality_mask`.

    Modalities are dropped at test time only; the model was trained on complete data. For
    batch-dependent fusion (sample-level mapping) a sample's batch neighbours are seen through the
    same subset as the sample itself.
    """
    features, labels = encode_split(model, dataset, split, batch_size, "cpu")
    correct = subset_correct(model, features, labels, batch_size)
    n = len(model.modalities)
    return {float(r): missing_accuracy(correct, missing_modality_mask(len(labels), n, float(r), mask_seed))
            for r in rates}


# ---- dependence on the evaluation batch -----------------------------------------------------------
@torch.no_grad()
def fused_accuracy_by_batch(model: Method, features: dict[str, Tensor], labels: Tensor, batch_size: int) -> float:
    """Fused test accuracy (%) when evaluated in chunks of ``batch_size`` (0 or >= N: one chunk)."""
    n = len(labels)
    size = n if batch_size <= 0 else min(batch_size, n)
    right = 0
    for rows, chunk in feature_chunks(features, size):
        right += int((model.logits_from_features(chunk, model.modalities).argmax(-1) == labels[rows]).sum())
    return 100.0 * right / n
