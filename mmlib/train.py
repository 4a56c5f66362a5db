"""The one training loop every method shares.

Per epoch: the method's passes and steps over shuffled training batches (tqdm progress), then
validation with every subset metric (fused and unimodal accuracy, Shapley values, EDM), the order
used, and a checkpoint. Evaluation cuts each split into chunks of ``eval_batch_size`` in a fixed
shuffled order seeded by ``eval_seed`` (:mod:`mmlib.evaluate`), for every method.
The kept epoch is the one with the highest validation fused accuracy, never chosen on test (a
trailing k-epoch mean was measured and retired: :data:`mmlib.config.RETIRED`).
At the end the best weights are evaluated on the test split (and linear probes fitted), and the
run becomes one record in the results store.

The run is defined by :class:`mmlib.config.TrainConfig` (its fields, run id and protocols); where
and how it executes (device, CPU threads, seeds and random states, autocast) by :mod:`mmlib.runtime`.
A run stopped after epoch k and resumed from its checkpoint ends with exactly the metrics of an
uninterrupted run.

The data path: on a GPU the dataset's arrays move to the device once when they fit
(:meth:`MultimodalDataset.on_device`), else batches travel as uint8 / float16 through pinned
memory; conversion, normalisation and augmentation happen on the device; the loss is summed on
the device and read once per epoch, so no step waits for the host. ResNet models use channels_last
on CUDA.

Several processes (``torchrun --nproc_per_node N -m mmlib train ...``; :mod:`mmlib.distributed`):
one run, each global batch of ``batch_size`` split into N contiguous shards. Every rank is seeded
alike (same initial model, same shuffle and augmentation generators; dropout masks drawn for the
global batch); each rank's loss is scaled by its share of the batch and the gradients are summed
over ranks after ``backward`` and before ``Method.after_backward`` (an all-reduce, not a
``DistributedDataParallel`` wrapper: the methods' losses call their submodules directly); methods
make their batch statistics rank-consistent or refuse (``Method.distribute``). Encoders' BatchNorm
becomes SyncBatchNorm on CUDA (on the CPU: shard statistics, running statistics averaged).
Evaluation is sharded and gathered, identical on every rank. Rank 0 alone shows progress, writes
checkpoints and the record; every rank returns the same record, which stores ``world_size``. A
global batch must give every rank at least one sample. The run id does not depend on N.

Failing well: the results and checkpoint folders are checked (created, writable) before training,
and the checkpoint's estimated size against the free space and the file-size limit; a loss that is
not finite stops the run naming the epoch, and nothing is stored; checkpoints are written to a
uniquely named file and moved onto their name, so two processes training the same config never
share a file, a write that fails (disk full, file too large) leaves the previous checkpoint whole
and names the folder and the cause, and the second process to finish returns the record the first
stored.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmlib.augment import crop_flip, frame_modalities
from mmlib.config import TrainConfig
from mmlib.data import load_dataset
from mmlib.data.base import Batch, MultimodalDataset, check_modalities
from mmlib.data.registry import dataset_options
from mmlib.distributed import ONE_PROCESS, World, init_world
from mmlib.evaluate import encode_rows, evaluate_split, linear_probe_accuracy
from mmlib.methods import method_class
from mmlib.methods.base import Method, PassContext
from mmlib.results import environment_info, find_record, no_room, replace_atomically, store_run, writable_folder
from mmlib.runtime import (
    autocast, compile_encoders, cpu_threads, progress_bar, resolve_device, rng_state, seed_everything, set_rng_state,
)

AUGMENT_SEED_OFFSET = 7919  # the augmentation generator's seed is the run's seed plus this prime


def load_config_dataset(config: TrainConfig) -> MultimodalDataset:
    """The dataset of ``config``, restricted to ``config.modalities`` (validated against the dataset)."""
    options = dict(config.dataset_options)
    if config.modalities is not None and "modalities" in dataset_options(config.dataset):
        options["modalities"] = config.modalities
    dataset = (load_dataset(config.dataset, **options).with_frame_normalization(config.frame_normalization)
               .with_frame_size(config.frame_size))
    if config.modalities is not None:
        dataset = dataset.select(check_modalities(config.modalities, dataset.modalities,
                                                  what=f"dataset {config.dataset!r}"))
    return dataset


def build_model(config: TrainConfig, dataset: MultimodalDataset) -> Method:
    cls = method_class(config.method)
    shapes = {m: dataset.input_shape(m) for m in dataset.modalities}
    return cls(dataset.modalities, shapes, dataset.num_classes, config.hidden_dim, cls.Options(**config.method_options),
               seed=config.seed,
               encoder_kinds=dataset.params.get("encoder_kinds"), epochs=config.epochs)


def build_optimizer(config: TrainConfig, model: Method) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(config: TrainConfig,
                    optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule, stepped once after every epoch as OGM-GE and MLA step theirs.

    ``step``: StepLR, the rate times ``lr_gamma`` every ``lr_step`` epochs (the peers: 70, 0.1).
    ``cosine``: cosine annealing from ``lr`` to 0 over the run's epochs. ``none``: constant.
    """
    if config.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return None


def augment_batch(batch: Batch, generator: torch.Generator, world: World = ONE_PROCESS, out_size: int = 0) -> Batch:
    """``batch`` with every RGB-frame modality randomly cropped, resized (to ``out_size``; 0: the frames'
    own size) and flipped (:mod:`mmlib.augment`).

    ``world`` (inside ``World.step``; outside it, ``batch`` is the whole batch): ``batch`` is this rank's
    shard; the crops and flips are drawn for the whole global batch, as one process draws them, and this
    rank's rows are applied.
    """
    frames = frame_modalities(batch.inputs)
    shard = None if world.batch is None else (world.batch, world.rows())
    return dataclasses.replace(batch,
                               inputs={m: crop_flip(x, generator, out_size or None, shard=shard) if m in frames else x
                                              for m, x in batch.inputs.items()})


def train_one_epoch(model: Method, dataset: MultimodalDataset, optimizer, config: TrainConfig, epoch: int,
                    shuffle: torch.Generator, device: torch.device, progress: bool,
                    augmentation: torch.Generator | None = None, world: World = ONE_PROCESS) -> float:
    """Every pass and step the method plans for ``epoch``; returns the mean loss of its optimised steps.

    A pass gathers only the modalities its steps read (:meth:`Method.pass_inputs`; ours' pass that
    trains pi_1 alone gathers no other input), and crops only the frames it gathered: a pass without
    frames draws nothing from ``augmentation``, the generator of train-time frame augmentation (None:
    off). The loss is summed on the device and read once at the end of the epoch: no host
    synchronisation per step.
    ``world`` (several processes, see the module docstring): this rank steps on its shard of every
    batch, its loss scaled by the shard's share of the batch; gradients are summed over ranks before
    ``after_backward``, BatchNorm running statistics averaged on the CPU, and the epoch's loss is
    summed over ranks (the global batches' mean).
    """
    model.train()
    plan = model.begin_epoch(epoch)
    train_size = len(dataset.splits["train"])
    batches_per_pass = -(-train_size // config.batch_size)
    parameters = [p for p in model.parameters() if p.requires_grad]
    average_buffers = device.type != "cuda" and any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    shard = (world.rank, world.size)
    loss_sum, steps_done = torch.zeros((), device=device), 0
    bar = progress_bar(batches_per_pass * len(plan), f"epoch {epoch}/{config.epochs}",
                       show=progress and world.is_main)

    def train_features(modalities):
        with autocast(device):
            rows, features, _ = encode_rows(model, dataset, "train", config.eval_batch_size, device, modalities, world)
        return rows, features

    def validation_batch():
        shuffled = torch.Generator().manual_seed(config.eval_seed)
        return next(dataset.batches("val", config.eval_batch_size, shuffle=True, generator=shuffled, device=device))

    for steps in plan:
        model.begin_pass(PassContext(epoch, steps, batches_per_pass, train_features, validation_batch,
                                     len(dataset.labels)))
        batches = dataset.batches("train", config.batch_size, shuffle=True, generator=shuffle, device=device,
                                  shard=shard, full_frames=augmentation is not None,
                                  modalities=model.pass_inputs(steps))
        for number, batch in enumerate(batches):
            global_batch = min(config.batch_size, train_size - number * config.batch_size)
            with world.step(global_batch):
                if augmentation is not None:
                    batch = augment_batch(batch, augmentation, world, config.frame_size)
                for step in steps:
                    if not step.optimize:
                        with autocast(device):
                            model.estimate(batch, step, epoch)
                        continue
                    optimizer.zero_grad(set_to_none=True)
                    with autocast(device):
                        model.begin_step(batch, step, epoch)
                        loss = model.loss(batch, step, epoch)
                    loss = loss * world.share()
                    loss.backward()
                    world.average_gradients(parameters)
                    model.after_backward(batch, step, epoch)
                    optimizer.step()
                    if average_buffers:
                        world.average_buffers(model)
                    loss_sum += loss.detach().float()
                    steps_done += 1
            bar.update(1)
    bar.close()
    return float(world.all_reduce(loss_sum)) / steps_done


def nonfinite_loss_message(loss: float, epoch: int, config: TrainConfig, dataset: MultimodalDataset) -> str:
    """Why a run stopped on a loss that is not finite: the training samples whose inputs hold NaN or
    inf, by modality (:meth:`MultimodalDataset.nonfinite_samples`), else the learning rate."""
    stopped = (f"training loss became {loss} in epoch {epoch} of {config.run_id}; the run is stopped and no record is "
               "stored")
    found = dataset.nonfinite_samples("train")
    if not found:
        return f"{stopped} (lower the learning rate, now {config.lr}; the training inputs are finite)"
    shown = "; ".join(f"modality {m!r} in {len(ids)} training sample(s): "
                      f"{', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''}"
                      for m, ids in found.items())
    return f"{stopped}: the data hold NaN or inf ({shown}); repair or drop those samples (a cache: prepare it again)"


def check_shards(train_size: int, batch_size: int, world: World) -> None:
    """Every global batch must give every rank at least one sample; a clear error otherwise."""
    sizes = {min(batch_size, train_size)} | ({train_size % batch_size} - {0})
    if min(sizes) < world.size:
        raise ValueError(f"a training batch of {min(sizes)} sample(s) (training split {train_size}, batch_size "
                         f"{batch_size}) cannot give each of {world.size} processes a sample; choose a batch_size "
                         f"whose last batch (train size mod batch_size) is 0 or at least {world.size}, or fewer "
                         "processes")


def answers(record: dict | None, config: TrainConfig) -> bool:
    """Whether the stored ``record`` of ``config``'s run id answers ``config``: not when it lacks the
    linear probes ``config`` asks for (``probe`` is not part of the run id, so chapters share runs;
    such a run is trained again and stored beside the probe-less record)."""
    return record is not None and not (config.probe and record.get("probe_acc") is None)


def stored_record(results_dir: str | Path, config: TrainConfig) -> dict | None:
    """The stored record that answers ``config`` (:func:`answers`): the newest of its run id, or None."""
    stored = find_record(results_dir, config.run_id)
    return stored if answers(stored, config) else None


def train(config: TrainConfig, results_dir: str | Path | None = None, checkpoint_dir: str | Path | None = None,
          resume: bool = False, progress: bool = True, stop_after_epoch: int | None = None,
          force: bool = False) -> dict | None:
    """Train ``config`` and return its record (stored in ``results_dir`` when given).

    ``checkpoint_dir``: a checkpoint is written after every epoch; with ``resume`` an existing one
    is continued. ``stop_after_epoch`` ends the call after that epoch's checkpoint and returns None
    (what a killed run leaves behind). With a stored record and no ``force``, that record is returned.
    A stored record made without linear probes does not answer a config that asks for them: the
    run is trained again and stored beside it. Under ``torchrun`` with several processes (``WORLD_SIZE``
    > 1) the processes train the run together (module docstring); rank 0 stores it, and every rank
    returns the same record.
    """
    device = resolve_device(config.device)
    world = init_world(device)
    device = world.device
    results_dir = None if results_dir is None else writable_folder(results_dir, "results folder")
    checkpoint_dir = None if checkpoint_dir is None else writable_folder(checkpoint_dir, "checkpoint folder")
    if results_dir is not None and not force:
        found = find_record(results_dir, config.run_id)
        stored = found if answers(found, config) else None
        force = found is not None  # a probe-less record: store beside it
        stored, force = world.broadcast_object((stored, force))  # rank 0's answer: every rank trains or none does
        if stored is not None:
            return stored
    with cpu_threads(device), world.peer_loss_named():
        return _train(config, device, results_dir, checkpoint_dir, resume, progress, stop_after_epoch, force, world)


def checkpoint_path(checkpoint_dir: str | Path, config: TrainConfig) -> Path:
    """Where the checkpoint of ``config`` is kept in ``checkpoint_dir``."""
    return Path(checkpoint_dir) / f"{config.run_id}.ckpt"


OPTIMIZER_SLOTS = {"adam": 2, "sgd": 1}  # tensors the optimizer keeps per parameter (moments; momentum)


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` of ``state`` onto ``path``, atomically (:func:`mmlib.results.replace_atomically`).

    The state is serialised in memory and then written, so a write that fails (disk full, the
    file-size limit of ``ulimit -f``, permissions) raises an ``OSError`` that names the folder and
    the cause, and the previous checkpoint stays whole. (``torch.save`` onto the file itself reports
    such a failure as ``RuntimeError: ... unexpected pos``, which says neither.)
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getbuffer()
    try:
        replace_atomically(path, lambda handle: handle.write(data))
    except ConnectionError:  # SIGTERM from torchrun mid-write (distributed.World.peer_loss_named): its own line
        raise
    except OSError as error:
        cause = no_room(path.parent, len(data)) or error.strerror or str(error)
        kept = f"{path} still holds the last finished epoch" if path.exists() else "no epoch of this run is stored"
        rerun = "rerun with resume" if path.exists() else "rerun"
        raise OSError(f"cannot write checkpoint {path.name} into {path.parent} ({cause}); {kept}: free space, raise "
                      f"the limit or choose another checkpoint folder and {rerun}") from None


def check_checkpoint_room(path: Path, model: Method, config: TrainConfig) -> None:
    """Refuse to train when ``path``'s folder cannot hold the checkpoint (:func:`mmlib.results.no_room`).

    Its size is estimated before the first epoch as the model's serialised state two times over,
    for the last and the best epoch, plus the optimizer's slots for every trained parameter; the
    history and random states add a few kB.
    """
    state = io.BytesIO()
    torch.save(model.state_dict(), state)
    slots = (sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
             * OPTIMIZER_SLOTS[config.optimizer])
    cause = no_room(path.parent, 2 * state.tell() + slots)
    if cause:
        raise OSError(f"checkpoint folder {path.parent} cannot hold the checkpoint of {config.run_id} ({cause}); free "
                      f"space, raise the limit or choose another checkpoint folder before training")


def _train(config: TrainConfig, device: torch.device, results_dir, checkpoint_dir, resume: bool, progress: bool,
           stop_after_epoch: int | None, force: bool, world: World) -> dict | None:
    seed_everything(config.seed)
    dataset = load_config_dataset(config).on_device(device)
    model = build_model(config, dataset).to(device)
    check_shards(len(dataset.splits["train"]), config.batch_size, world)
    model = world.prepare_model(model)
    if device.type == "cuda" and any(len(dataset.input_shape(m)) >= 3 for m in dataset.modalities):
        model = model.to(memory_format=torch.channels_last)
    if config.compile:
        compile_encoders(model)
    optimizer = build_optimizer(config, model)
    scheduler = build_scheduler(config, optimizer)
    shuffle = torch.Generator().manual_seed(config.seed)
    generators = {"shuffle": shuffle}
    augmentation = None
    if config.augment == "crop_flip":
        augmentation = generators["augment"] = torch.Generator().manual_seed(config.seed + AUGMENT_SEED_OFFSET)
    history: list[dict] = []
    best: dict[str, Any] = {"epoch": 0, "acc": -1.0, "state": None}
    elapsed = 0.0
    checkpoint = checkpoint_path(checkpoint_dir, config) if checkpoint_dir is not None else None
    if resume and checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)  # RNG states must stay on the CPU
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])  # moves the optimizer state to the parameters' device
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        set_rng_state(saved["rng"], generators)
        history, best, elapsed = saved["history"], saved["best"], saved["elapsed"]
    if checkpoint is not None:
        check_checkpoint_room(checkpoint, model, config)
    start = time.perf_counter() - elapsed
    for epoch in range(len(history) + 1, config.epochs + 1):
        epoch_lr = optimizer.param_groups[0]["lr"]
        train_loss = train_one_epoch(model, dataset, optimizer, config, epoch, shuffle, device, progress, augmentation,
                                     world)
        if scheduler is not None:
            scheduler.step()
        if not np.isfinite(train_loss):
            raise ValueError(nonfinite_loss_message(train_loss, epoch, config, dataset))
        described = model.describe_epoch()
        with autocast(device):
            validation = evaluate_split(model, dataset, "val", config.eval_batch_size, device, config.empty_value,
                                        config.eval_seed, world)
        model.end_epoch(epoch, validation)
        history.append({"epoch": epoch, "lr": epoch_lr, "train_loss": train_loss, **described, **validation})
        if validation["fused_acc"] > best["acc"]:
            best = {"epoch": epoch, "acc": validation["fused_acc"], "state": copy.deepcopy(model.state_dict())}
        if checkpoint is not None and world.is_main:
            save_checkpoint(checkpoint, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                         "rng": rng_state(generators),
                                         "scheduler": None if scheduler is None else scheduler.state_dict(),
                                         "history": history, "best": best, "elapsed": time.perf_counter() - start,
                                         "config": dataclasses.asdict(config)})
        if stop_after_epoch is not None and epoch >= stop_after_epoch and epoch < config.epochs:
            return None
    model.load_state_dict(best["state"])
    with autocast(device):
        test = evaluate_split(model, dataset, "test", config.eval_batch_size, device, config.empty_value,
                              config.eval_seed, world)
    probe = linear_probe_accuracy(model, dataset, config.eval_batch_size, device, world=world) if config.probe else None
    record = {
        "run_id": config.run_id, "config": dataclasses.asdict(config), "modalities": list(dataset.modalities),
        "protocol": config.resolved_protocol(), "dataset_identity": dataset.identity, "history": history,
        "best_epoch": best["epoch"],
        "test": test, "probe_acc": probe, "wall_time_s": time.perf_counter() - start,
        "environment": environment_info(str(device)), "world_size": world.size,
    }
    if results_dir is None:
        return record
    stored = _store(record, results_dir, force, checkpoint) if world.is_main else None
    return world.broadcast_object(stored)  # what rank 0 stored (or found stored), on every rank


def _store(record: dict, results_dir: Path, force: bool, checkpoint: Path | None) -> dict:
    try:
        return store_run(record, results_dir, force)
    except OSError as error:
        kept = (f"; checkpoint {checkpoint} holds every epoch: fix the folder and rerun with resume to store "
                "it") if checkpoint else ""
        raise OSError(f"cannot store the record of {record['run_id']} in {results_dir} "
                      f"({error.strerror or error}){kept}") from None
