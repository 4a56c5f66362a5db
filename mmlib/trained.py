"""Trained models back from the results store and from checkpoints.

:func:`mmlib.train.train` returns a record, not weights. :func:`train_model` gets the weights
without a second training loop: it runs ``train`` with a checkpoint folder and rebuilds the model
from the checkpoint's best-epoch state (the weights the record's test metrics describe).
:func:`model_at_epoch` uses ``train``'s ``stop_after_epoch`` / ``resume`` to stop after chosen
epochs and read the current weights there (the snapshots of paper Fig. 4).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from mmlib.data.base import MultimodalDataset
from mmlib.methods.base import Method
from mmlib.results import find_record
from mmlib.config import TrainConfig
from mmlib.runtime import seed_everything
from mmlib.train import build_model, checkpoint_path, load_config_dataset, train


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
