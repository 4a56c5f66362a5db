"""Analyses behind the model-analysis chapters: trained models back from the results store, fixed vs
hybrid vs oracle fusion order (paper Fig. 5), evaluation under missing modalities (Table 4),
features per epoch for 2-D embeddings (Fig. 4) and test-time batch-size dependence.

:func:`mmlib.train.train` returns a record, not weights. :func:`train_model` gets the weights
without a second training loop: it runs ``train`` with a checkpoint folder and rebuilds the model
from the checkpoint's best-epoch state (the weights the record's test metrics describe).
:func:`train_snapshots` uses ``train``'s ``stop_after_epoch`` / ``resume`` to stop after chosen
epochs and read the current weights there.
"""

from __future__ import annotations

import dataclasses
from itertools import permutations
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from mmlib.data.base import MultimodalDataset
from mmlib.evaluate import encode_split, feature_chunks, subset_correct
from mmlib.fusion import chain_orders
from mmlib.methods.base import Method
from mmlib.results import find_record
from mmlib.train import TrainConfig, build_model, checkpoint_path, load_config_dataset, seed_everything, train


def _model_from_state(config: TrainConfig, dataset: MultimodalDataset, state: dict) -> Method:
    seed_everything(config.seed)
    model = build_model(config, dataset)
    model.load_state_dict(state)
    return model.eval()


def train_model(config: TrainConfig, results_dir: str | Path | None, checkpoint_dir: str | Path,
                force: bool = False) -> tuple[Method, MultimodalDataset, dict]:
    """``(model, dataset, record)`` for ``config``: the best-epoch model, as in the record's test metrics.

    Trains only when the results store lacks the record or ``checkpoint_dir`` lacks its checkpoint
    (or with ``force``); otherwise the stored record and checkpoint are reused. Training runs on
    ``config.device`` (a GPU when one is visible, with ``auto``); the model comes back on the CPU,
    where the analyses run. :func:`mmlib.experiments.run_grid` keeps every run's checkpoint in
    :func:`mmlib.results.weights_folder`, so a chapter that reads the same runs loads them.
    """
    ckpt = checkpoint_path(checkpoint_dir, config)
    record = None if force or results_dir is None else find_record(results_dir, config.run_id)
    if record is None:
        record = train(config, results_dir=results_dir, checkpoint_dir=checkpoint_dir, progress=False, force=True)
    elif not ckpt.exists():  # stored record, no weights: retrain (deterministic) without storing a duplicate record
        train(config, results_dir=None, checkpoint_dir=checkpoint_dir, progress=False)
    dataset = load_config_dataset(config)
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    return _model_from_state(config, dataset, saved["best"]["state"]), dataset, record


def model_at_epoch(config: TrainConfig, dataset: MultimodalDataset, checkpoint_dir: str | Path, epoch: int) -> Method:
    """The model of ``config`` after ``epoch`` epochs (0: the initial weights), by stopping ``train`` there.

    Uses ``train(..., resume=True, stop_after_epoch=epoch)`` on a per-run checkpoint, so snapshots
    are taken in increasing epoch order on one continuing run (the schedule is not restarted).
    Call with epochs in increasing order; the checkpoint keeps the latest epoch's weights. Training
    runs on ``config.device``; the model comes back on the CPU.
    """
    config = dataclasses.replace(config, probe=False)
    if epoch == 0:  # the initial weights of train(): same seeding, same RNG use before the model is built
        seed_everything(config.seed)
        load_config_dataset(config)
        return build_model(config, dataset).eval()
    if not 1 <= epoch <= config.epochs:
        raise ValueError(f"epoch must lie in 0..{config.epochs} (the config's epochs), got {epoch}")
    ckpt = checkpoint_path(checkpoint_dir, config)
    done = len(torch.load(ckpt, map_location="cpu", weights_only=False)["history"]) if ckpt.exists() else 0
    if done > epoch:
        ckpt.unlink()  # a later snapshot is stored: start again from scratch (deterministic)
        done = 0
    if done < epoch:
        train(config, checkpoint_dir=checkpoint_dir, resume=True, progress=False, stop_after_epoch=epoch)
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    return _model_from_state(config, dataset, saved["model"])


@torch.no_grad()
def order_correct(model: Method, features: dict[str, Tensor], labels: Tensor, batch_size: int) -> dict[str, np.ndarray]:
    """Per-sample correctness of every fixed order and of the hybrid order (paper Fig. 5).

    For an ``Ours`` model (``.mapping``, ``.memory``, ``.head``), features ``(N, d)``: returns
    ``{"a>b>c": (N,) bool for each of the k! orders, "hybrid": (N,) bool, "oracle": (N,) bool}``.
    ``oracle`` is the per-sample upper bound: correct when any fixed order is correct. Samples are
    taken in chunks of ``batch_size`` in split order (sample-level mapping depends on the batch).
    """
    orders = list(permutations(model.modalities))
    names = [">".join(o) for o in orders]
    n = len(labels)
    out = {name: np.zeros(n, dtype=bool) for name in names}
    out["hybrid"] = np.zeros(n, dtype=bool)
    for rows, chunk in feature_chunks(features, batch_size):
        y = labels[rows]
        fused = chain_orders(chunk, orders, model.mapping, model.memory)  # (K, B, d)
        for name, h in zip(names, fused):
            out[name][rows] = (model.head(h).argmax(-1) == y).numpy()
        out["hybrid"][rows] = (model.head(fused.mean(0)).argmax(-1) == y).numpy()
    out["oracle"] = np.any([out[name] for name in names], axis=0)
    return out


def order_accuracies(correct: dict[str, np.ndarray]) -> dict[str, float]:
    """Accuracy (%) of each entry of :func:`order_correct`."""
    return {k: 100.0 * float(v.mean()) for k, v in correct.items()}


def mask_columns(present: np.ndarray) -> np.ndarray:
    """Subset index ``b`` (bit k = modality k present, as in :func:`mmlib.shapley.subset_members`) per row of an ``(N, n)`` mask."""
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
    from mmlib.data.base import missing_modality_mask

    features, labels = encode_split(model, dataset, split, batch_size, "cpu")
    correct = subset_correct(model, features, labels, batch_size)
    n = len(model.modalities)
    return {float(r): missing_accuracy(correct, missing_modality_mask(len(labels), n, float(r), mask_seed)) for r in rates}


@torch.no_grad()
def fused_accuracy_by_batch(model: Method, features: dict[str, Tensor], labels: Tensor, batch_size: int) -> float:
    """Fused test accuracy (%) when evaluated in chunks of ``batch_size`` (0 or >= N: one chunk)."""
    n = len(labels)
    size = n if batch_size <= 0 else min(batch_size, n)
    right = 0
    for rows, chunk in feature_chunks(features, size):
        right += int((model.logits_from_features(chunk, model.modalities).argmax(-1) == labels[rows]).sum())
    return 100.0 * right / n


@torch.no_grad()
def fused_features(model: Method, features: dict[str, Tensor], batch_size: int) -> Tensor:
    """The representation the classifier sees with every modality present, ``(N, d')``.

    ``Ours``: the hybrid-order chain output (Algorithm 1), ``d' = d``. Concat-style heads
    (``.head.modalities``): the concatenation ``[X_1; ...; X_n]``, ``d' = n d``.
    """
    from mmlib.fusion import hybrid_order

    if hasattr(model, "mapping") and hasattr(model, "memory"):
        n = len(next(iter(features.values())))
        parts = [hybrid_order({m: f[s : s + batch_size] for m, f in features.items()}, model.modalities, model.mapping, model.memory)
                 for s in range(0, n, batch_size)]
        return torch.cat(parts)
    return torch.cat([features[m] for m in model.modalities], dim=-1)


def class_silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette score of the classes in ``points`` (Euclidean); higher = classes better separated."""
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(np.asarray(points, dtype=np.float64), np.asarray(labels)))


def repo_path(path: str | Path) -> Path:
    """``path`` as given when absolute, else relative to the repository root (the folder above
    ``Path.cwd()`` that holds ``pyproject.toml``), so chapters share ``results/runs`` wherever papermill runs them."""
    path = Path(path)
    if path.is_absolute():
        return path
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "pyproject.toml").is_file():
            return folder / path
    return Path.cwd() / path


def data_options(dataset: str, modalities: str, noise: str = "", data_root: str = "") -> dict:
    """Dataset options for a run on ``modalities``: the ``noise`` spec (``"pix=2.0,fou=1"``) restricted
    to the views present, and ``data_root`` passed as the loader's ``cache`` (or ``root``) option."""
    from mmlib.data.registry import dataset_options as loader_options

    valid = loader_options(dataset)
    options: dict = {}
    views = {m.strip() for m in modalities.split(",") if m.strip()}
    if noise and "noise" in valid:
        kept = [part for part in noise.split(",") if part.split("=")[0].strip() in views]
        if kept:
            options["noise"] = ",".join(kept)
    if data_root:
        key = next((k for k in ("cache", "root", "data_root") if k in valid), None)
        if key is None:
            raise ValueError(f"dataset {dataset!r} takes no data folder (its options are {sorted(valid)}); leave data_root empty")
        options[key] = data_root
    return options
