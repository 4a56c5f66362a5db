"""Each run of a sweep: leased in the store, trained in a child process, on this machine or SLURM.

:func:`execute` takes the run's lease (:mod:`mmlib.sweep.lease`), skips a run whose record is stored,
and trains it in a child process (``python -m mmlib.sweep.child``) that resumes its checkpoint; the
lease heartbeats meanwhile, and a lease lost to another sweep stops the child. Launchers:
:class:`LocalLauncher` (a thread per GPU slot, or CPU workers) and :class:`SubmititLauncher` (one
SLURM job array).
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch

from mmlib.config import TrainConfig
from mmlib.sweep.grid import GridError
from mmlib.sweep.lease import HOST, Lease, acquire
from mmlib.train import stored_record

RAN, SKIPPED, FAILED, HELD = "ran", "skipped", "failed", "held"
INSTALL_SUBMITIT = "--launcher submitit needs submitit: pip install -e .[scale]"


@dataclasses.dataclass(frozen=True)
class Store:
    """Where a sweep keeps its records (the results store), checkpoints, leases and per-run logs."""

    results_dir: Path
    checkpoint_dir: Path
    stale_after_s: float = 300.0

    @property
    def heartbeat_s(self) -> float:
        """How often a lease's heartbeat is renewed (and other sweeps' leases are looked at again)."""
        return min(30.0, self.stale_after_s / 4)

    def lease_path(self, run_id: str) -> Path:
        return self.results_dir / ".sweep" / "leases" / f"{run_id}.lease"

    def log_path(self, run_id: str) -> Path:
        return self.results_dir / ".sweep" / "logs" / f"{run_id}.log"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one run in this sweep: ran, skipped, failed, or held (by another process)."""

    run_id: str
    status: str
    detail: str = ""
    seconds: float = 0.0


def _failure_reason(code: int, log: Path, offset: int) -> str:
    """The last line the training process wrote (the exception), or the signal that killed it."""
    with open(log, errors="replace") as handle:
        handle.seek(offset)
        lines = [line.strip() for line in handle if line.strip()]
    if code < 0:
        return f"killed by {signal.Signals(-code).name}" + (f" after: {lines[-1]}" if lines else "")
    return lines[-1] if lines else f"exit status {code} without output"


def _train_in_child(config: dict, run_id: str, store: Store, visible_devices: str | None, lease: Lease) -> Outcome:
    """Train ``config`` in a new process while ``lease`` heartbeats; kill it if the lease is lost."""
    log = store.log_path(run_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible_devices
    request = json.dumps({"config": config, "parent": os.getpid(), "results_dir": str(store.results_dir),
                          "checkpoint_dir": str(store.checkpoint_dir)})
    start = time.perf_counter()
    with open(log, "a") as handle:
        handle.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {HOST} sweep pid {os.getpid()} "
                     f"CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '(unset)')}\n")
        handle.flush()
        offset = handle.tell()
        process = subprocess.Popen([sys.executable, "-m", "mmlib.sweep.child", request], stdout=handle,
                                   stderr=subprocess.STDOUT, env=env)
        while True:
            try:
                code = process.wait(timeout=lease.heartbeat_s)
                break
            except subprocess.TimeoutExpired:
                if lease.lost.is_set():
                    process.kill()
                    process.wait()
                    return Outcome(run_id, FAILED,
                                   f"stopped: another process took over the lease (this one's heartbeat "
                                   f"was older than {store.stale_after_s:.0f} s) (log {log})",
                                   time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if code == 0 and stored_record(store.results_dir, TrainConfig(**config)) is not None:
        return Outcome(run_id, RAN, seconds=seconds)
    reason = _failure_reason(code, log, offset) if code else f"finished without storing a record of {run_id}"
    return Outcome(run_id, FAILED, f"{reason} (log {log})", seconds)


def execute(config: dict, store: Store, visible_devices: str | None = None) -> Outcome:
    """Lease the run of ``config`` (a ``TrainConfig`` as a dict), train it in a child process, release it.

    This is the body of a sweep's worker thread and of a submitit task. ``visible_devices`` becomes the
    child's ``CUDA_VISIBLE_DEVICES`` (None: inherited, as SLURM sets it). The record is looked for again
    once the lease is held: another process may have finished the run and released its lease meanwhile.
    """
    run_id = TrainConfig(**config).run_id
    if stored_record(store.results_dir, TrainConfig(**config)) is not None:
        return Outcome(run_id, SKIPPED, "record stored")
    held = acquire(store.lease_path(run_id), store.heartbeat_s, store.stale_after_s)
    if not isinstance(held, Lease):
        return Outcome(run_id, HELD, held.describe() if held else "lease changing hands")
    with held:
        if stored_record(store.results_dir, TrainConfig(**config)) is not None:
            return Outcome(run_id, SKIPPED, "record stored")
        return _train_in_child(config, run_id, store, visible_devices, held)


# ---- launchers --------------------------------------------------------------------------------
Launcher = Callable[[Sequence[TrainConfig], Store], Iterator[Outcome]]


def visible_gpus() -> list[str]:
    """This machine's GPUs as ``CUDA_VISIBLE_DEVICES`` entries (its current value when set)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def local_slots(gpus: Sequence[str], per_gpu: int = 1, workers: int | None = None) -> list[str]:
    """One ``CUDA_VISIBLE_DEVICES`` value per process that may run at once: each GPU ``per_gpu`` times,
    interleaved so the first runs land on different GPUs; without GPUs, ``workers`` CPU processes ("")."""
    if per_gpu < 1 or (workers is not None and workers < 1):
        raise GridError("--per-gpu and --workers must be positive")
    if gpus and workers is not None:
        raise GridError("--workers counts CPU processes; with GPUs use --per-gpu N (or --gpus none to train on the "
                        "CPU)")
    return [g for _ in range(per_gpu) for g in gpus] if gpus else [""] * (workers or 1)


class LocalLauncher:
    """Runs on this machine: a thread per slot starts and waits on one training process at a time."""

    def __init__(self, slots: Sequence[str]) -> None:
        self.slots = list(slots)

    def __call__(self, configs: Sequence[TrainConfig], store: Store) -> Iterator[Outcome]:
        free: queue.SimpleQueue[str] = queue.SimpleQueue()
        for slot in self.slots:
            free.put(slot)

        def job(config: TrainConfig) -> Outcome:
            slot = free.get()
            try:
                return execute(dataclasses.asdict(config), store, slot)
            except Exception as error:  # the sweep reports it and goes on with the other runs
                return Outcome(config.run_id, FAILED, f"{type(error).__name__}: {error}")
            finally:
                free.put(slot)

        with ThreadPoolExecutor(max_workers=len(self.slots), thread_name_prefix="sweep") as pool:
            futures = [pool.submit(job, c) for c in configs]
            try:
                for future in as_completed(futures):
                    yield future.result()
            finally:  # interrupted: start nothing new
                for future in futures:
                    future.cancel()


def import_submitit():
    try:
        import submitit
    except ImportError:
        raise GridError(INSTALL_SUBMITIT) from None
    return submitit


class SubmititLauncher:
    """Runs as one SLURM job array through submitit, a task per run (``cluster="local"`` or ``"debug"``
    uses submitit's executors that need no SLURM). Each task calls :func:`execute`, so leases, resume
    and skipping work as on one machine; a task that hits its time limit leaves a lease that goes
    stale and a checkpoint that the next sweep resumes."""

    def __init__(self, folder: Path, cluster: str = "slurm", partition: str | None = None, time_min: int = 240,
                 gpus_per_task: int = 1, cpus_per_task: int | None = None, max_parallel: int | None = None) -> None:
        self.submitit = import_submitit()
        self.executor = self.submitit.AutoExecutor(folder=folder, cluster=cluster)
        self.executor.update_parameters(name="mmlib-sweep", timeout_min=time_min, nodes=1, tasks_per_node=1,
                                        gpus_per_node=gpus_per_task, cpus_per_task=cpus_per_task,
                                        slurm_partition=partition, slurm_array_parallelism=max_parallel)

    def __call__(self, configs: Sequence[TrainConfig], store: Store) -> Iterator[Outcome]:
        if not configs:
            return
        jobs = self.executor.map_array(execute, [dataclasses.asdict(c) for c in configs], [store] * len(configs))
        run_of = {job.job_id: config.run_id for job, config in zip(jobs, configs)}
        for job in self.submitit.helpers.as_completed(jobs, poll_frequency=2):
            try:
                yield job.result()
            except Exception as error:  # the task died (time limit, node failure) or could not start
                last = str(error).strip().splitlines()[-1:] or [type(error).__name__]
                yield Outcome(run_of[job.job_id], FAILED, f"job {job.job_id}: {last[0]} (logs {job.paths.folder})")
