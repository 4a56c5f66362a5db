"""``python -m mmlib sweep``: a grid of runs as separate processes, claimed in the shared results store.

    python -m mmlib sweep --methods concat,ours --seeds 10 --set epochs=15 --data noise=pix=2.0
    python -m mmlib sweep grid.toml                          # the same grid from a file
    python -m mmlib sweep grid.toml --launcher submitit --partition gpu --time 240

The grid is methods x datasets x seeds x every listed value of every parameter. A grid file is
TOML; a list is an axis, anything else a fixed value::

    methods = ["concat", "ours"]
    datasets = ["mfeat"]
    seeds = 10                     # 0 .. 9; or a list [0, 4], or a range "5-9"
    [train]                        # fields of mmlib.config.TrainConfig
    epochs = 15
    modalities = ["fou,mor", "pix,fou,mor"]
    [options.ours]                 # a method's own options
    tau = [0.1, 0.2, 0.3]
    [data.mfeat]                   # a dataset's loader options
    noise = "pix=2.0"
    [[run]]                        # explicit runs (what write_grid exports), in addition to the grid
    method = "sum"
    seed = 3

Every entry is checked before anything starts: an unknown method, dataset, parameter or option
stops the sweep with the entry named. The command line's ``--methods``, ``--seeds``,
``--datasets``, ``--set``, ``--option`` and ``--data`` add to (or replace) the file's entries.

Each run is trained in its own process (``python -m mmlib.sweep``, which calls
:func:`mmlib.train.train` with a checkpoint directory and ``resume``). Before training, the run is
claimed in the store (:mod:`mmlib.claims`), so sweeps on any number of machines sharing the store
never train one run twice; a run whose record is stored is skipped; a run whose claim is stale
(its sweep was killed) is taken over and resumes from its last checkpoint; a run another sweep
holds is waited for. Launchers: ``local`` runs one process per GPU (``CUDA_VISIBLE_DEVICES``
sharding; ``--per-gpu N`` to share a GPU; ``--workers N`` processes on a CPU-only machine) through
a thread pool that waits on the processes; ``submitit`` sends the runs to SLURM as one job array.
The summary at the end lists what ran, what was skipped and what failed, with the reason and log.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from mmlib.claims import HOST, Claim, acquire, is_stale, read_claim
from mmlib.data.registry import typed_data_options
from mmlib.data import available_datasets
from mmlib.methods import method_class, parse_methods
from mmlib.results import RUNS_DIR, weights_folder
from mmlib.config import RETIRED, TrainConfig
from mmlib.train import stored_record, train

DEFAULTS = TrainConfig()
TRAIN_FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]
GRID_KEYS = ("methods", "datasets", "seeds", "train", "options", "data", "run")
OWN_KEYS = ("method", "dataset", "seed", "method_options", "dataset_options")  # grid keys of their own, not [train]

RAN, SKIPPED, FAILED, CLAIMED = "ran", "skipped", "failed", "claimed"
INSTALL_SUBMITIT = "--launcher submitit needs submitit: pip install -e .[scale]"


class GridError(ValueError):
    """A grid entry that names no known method, dataset, parameter or option (the message names it)."""


# ---- the grid ---------------------------------------------------------------------------------
def _typed_value(value: Any, default: Any, where: str) -> Any:
    """``value`` as the type of ``default`` (an integer where a float is expected becomes a float,
    so ``lr = 1`` and ``lr = 1.0`` are one run); a value of another type raises."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if default is not None and not isinstance(value, type(default)):
        raise GridError(f"{where} expects {type(default).__name__} (default {default!r}), got {value!r}")
    return value


def _axes(table: dict) -> list[dict]:
    """Every combination of a table's values: a list is an axis, anything else a fixed value."""
    values = [v if isinstance(v, list) else [v] for v in table.values()]
    return [dict(zip(table, combination)) for combination in itertools.product(*values)]


def parse_seeds(value: int | str | list, where: str = "seeds") -> list[int]:
    """Seeds from ``N`` (seeds 0 .. N-1, as the chapters count them), ``"A-B"`` (inclusive), ``"0,4"`` or a list."""
    try:
        if isinstance(value, list):
            return [int(s) for s in value]
        if isinstance(value, int):
            return list(range(value))
        if "-" in value:
            first, last = value.split("-")
            return list(range(int(first), int(last) + 1))
        return [int(s) for s in value.split(",")] if "," in value else list(range(int(value)))
    except ValueError:
        raise GridError(f"{where}: expected a count N (seeds 0..N-1), a range A-B or a list, got {value!r}") from None


def _names(value: str | list, where: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)


def grid_datasets(spec: dict, source: str) -> list[str]:
    """The grid's datasets (default: TrainConfig's), each checked against the registry."""
    names = _names(spec.get("datasets", [DEFAULTS.dataset]), f"{source}: datasets")
    unknown = [d for d in names if d not in available_datasets()]
    if unknown:
        raise GridError(f"{source}: unknown dataset {unknown[0]!r}; valid choices are {available_datasets()}")
    return names


def drop_retired(fields: dict, where: str) -> dict:
    """``fields`` without the retired fields (:data:`mmlib.config.RETIRED`) a file exported before they went
    holds at their retired value; another value of one is an error, since no run can have it now."""
    for name, value in fields.items():
        if name in RETIRED and value != RETIRED[name]:
            raise GridError(f"{where}: {name} = {value!r}, but {name} was retired at {RETIRED[name]!r} (mmlib.config.RETIRED); "
                            f"drop it from the entry")
    return {k: v for k, v in fields.items() if k not in RETIRED}


def build_config(fields: dict, where: str) -> TrainConfig:
    """One run's :class:`TrainConfig` from a grid entry, checked the way ``python -m mmlib train`` checks
    its flags (:func:`mmlib.data.registry.typed_data_options`, :func:`mmlib.methods.build_options`). The entry's
    ``protocol`` (default ``book``) gives the values of the fields it does not set, as in the chapters."""
    fields = drop_retired(fields, where)
    unknown = sorted(set(fields) - set(TRAIN_FIELDS))
    if unknown:
        raise GridError(f"{where}: unknown parameter {unknown[0]!r}; valid parameters are {TRAIN_FIELDS}")
    dataset = fields.get("dataset", DEFAULTS.dataset)
    if dataset not in available_datasets():
        raise GridError(f"{where}: unknown dataset {dataset!r}; valid choices are {available_datasets()}")
    values = {k: _typed_value(v, getattr(DEFAULTS, k), f"{where}: {k}") for k, v in fields.items()
              if k not in {"method_options", "dataset_options"}}
    try:
        option_defaults = {f.name: f.default for f in dataclasses.fields(method_class(values.get("method", DEFAULTS.method)).Options)}
        values["method_options"] = {k: _typed_value(v, option_defaults.get(k), f"{where}: option {k}")
                                    for k, v in fields.get("method_options", {}).items()}
        values["dataset_options"] = typed_data_options(dataset, [(k, str(v)) for k, v in fields.get("dataset_options", {}).items()])
        return TrainConfig.from_protocol(values.pop("protocol", DEFAULTS.protocol), **values)
    except (ValueError, TypeError, argparse.ArgumentTypeError) as error:
        raise GridError(f"{where}: {error}") from None


def expand_grid(spec: dict, source: str = "grid") -> list[TrainConfig]:
    """The runs of a grid (the TOML layout of the module docstring), each checked, in a stable order, without repeats."""
    unknown = [k for k in spec if k not in GRID_KEYS]
    if unknown:
        raise GridError(f"{source}: unknown entry {unknown[0]!r}; a grid has {list(GRID_KEYS)}")
    train_table = drop_retired(spec.get("train", {}), f"{source} [train]")
    misplaced = [k for k in train_table if k not in TRAIN_FIELDS or k in OWN_KEYS]
    if misplaced:
        valid = [f for f in TRAIN_FIELDS if f not in OWN_KEYS]
        raise GridError(f"{source} [train]: unknown parameter {misplaced[0]!r}; valid parameters are {valid} "
                        f"(methods, datasets, seeds, [options.METHOD] and [data.DATASET] have their own entries)")
    configs = []
    if "methods" in spec:
        try:
            methods = parse_methods(",".join(_names(spec["methods"], "methods")), f"{source}: methods")
        except ValueError as error:
            raise GridError(str(error)) from None
        datasets = grid_datasets(spec, source)
        for table, names, what in ((spec.get("options", {}), methods, "method"), (spec.get("data", {}), datasets, "dataset")):
            stray = [k for k in table if k not in names]
            if stray:
                raise GridError(f"{source}: options for {what} {stray[0]!r}, which the grid does not run (its {what}s: {names})")
        seeds = parse_seeds(spec.get("seeds", [DEFAULTS.seed]), f"{source}: seeds")
        for dataset in datasets:
            for data in _axes(spec.get("data", {}).get(dataset, {})):
                for fixed in _axes(train_table):
                    for method in methods:
                        for options in _axes(spec.get("options", {}).get(method, {})):
                            configs += [build_config({**fixed, "dataset": dataset, "dataset_options": data, "method": method,
                                                      "method_options": options, "seed": seed},
                                                     f"{source} ({method} on {dataset})") for seed in seeds]
    elif any(k in spec for k in ("datasets", "seeds", "options", "data")) or train_table:
        raise GridError(f"{source}: the grid names no methods; add methods = [...] (or --methods), or list [[run]] entries")
    configs += [build_config(entry, f"{source} [[run]] #{i + 1}") for i, entry in enumerate(spec.get("run", []))]
    if not configs:
        raise GridError(f"{source}: the grid is empty; give methods (--methods) or [[run]] entries")
    return list({c.run_id: c for c in configs}.values())


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items() if v is not None) + " }"
    return "[" + ", ".join(_toml(v) for v in value) + "]"


def write_grid(configs: Iterable[TrainConfig], path: str | Path) -> Path:
    """Write ``configs`` (e.g. a chapter's :func:`mmlib.experiments.comparison_configs`) as a grid file of
    ``[[run]]`` entries that ``python -m mmlib sweep FILE`` runs; every field is written, so the file means
    the same runs when defaults change. A None value (TOML has none) is left out: it is the default."""
    configs = list(configs)
    lines = [f"# {len(configs)} runs exported by mmlib.sweep.write_grid; run them with python -m mmlib sweep {Path(path).name}"]
    for config in configs:
        lines += ["", "[[run]]"] + [f"{k} = {_toml(v)}" for k, v in dataclasses.asdict(config).items() if v is not None]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


# ---- one run, claimed -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Store:
    """Where a sweep keeps its records (the results store), checkpoints, claims and per-run logs."""

    results_dir: Path
    checkpoint_dir: Path
    stale_after_s: float = 300.0

    @property
    def heartbeat_s(self) -> float:
        """How often a claim's heartbeat is renewed (and other sweeps' claims are looked at again)."""
        return min(30.0, self.stale_after_s / 4)

    def claim_path(self, run_id: str) -> Path:
        return self.results_dir / ".sweep" / "claims" / f"{run_id}.claim"

    def log_path(self, run_id: str) -> Path:
        return self.results_dir / ".sweep" / "logs" / f"{run_id}.log"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one run in this sweep: ran, skipped, failed, or claimed (held by another process)."""

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


def _train_in_child(config: dict, run_id: str, store: Store, visible_devices: str | None, claim: Claim) -> Outcome:
    """Train ``config`` in a new process while ``claim`` heartbeats; kill it if the claim is lost."""
    log = store.log_path(run_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible_devices
    request = json.dumps({"config": config, "parent": os.getpid(), "results_dir": str(store.results_dir), "checkpoint_dir": str(store.checkpoint_dir)})
    start = time.perf_counter()
    with open(log, "a") as handle:
        handle.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {HOST} sweep pid {os.getpid()} "
                     f"CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '(unset)')}\n")
        handle.flush()
        offset = handle.tell()
        process = subprocess.Popen([sys.executable, "-m", "mmlib.sweep", request], stdout=handle, stderr=subprocess.STDOUT, env=env)
        while True:
            try:
                code = process.wait(timeout=claim.heartbeat_s)
                break
            except subprocess.TimeoutExpired:
                if claim.lost.is_set():
                    process.kill()
                    process.wait()
                    return Outcome(run_id, FAILED, f"stopped: another process took over the claim (this one's heartbeat "
                                   f"was older than {store.stale_after_s:.0f} s) (log {log})", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if code == 0 and stored_record(store.results_dir, TrainConfig(**config)) is not None:
        return Outcome(run_id, RAN, seconds=seconds)
    reason = _failure_reason(code, log, offset) if code else f"finished without storing a record of {run_id}"
    return Outcome(run_id, FAILED, f"{reason} (log {log})", seconds)


def execute(config: dict, store: Store, visible_devices: str | None = None) -> Outcome:
    """Claim the run of ``config`` (a ``TrainConfig`` as a dict), train it in a child process, release it.

    This is the body of a sweep's worker thread and of a submitit task. ``visible_devices`` becomes the
    child's ``CUDA_VISIBLE_DEVICES`` (None: inherited, as SLURM sets it). The record is looked for again
    once the claim is held: another process may have finished the run and released its claim meanwhile.
    """
    run_id = TrainConfig(**config).run_id
    if stored_record(store.results_dir, TrainConfig(**config)) is not None:
        return Outcome(run_id, SKIPPED, "record stored")
    held = acquire(store.claim_path(run_id), store.heartbeat_s, store.stale_after_s)
    if not isinstance(held, Claim):
        return Outcome(run_id, CLAIMED, held.describe() if held else "claim changing hands")
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
        raise GridError("--workers counts CPU processes; with GPUs use --per-gpu N (or --gpus none to train on the CPU)")
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
    uses submitit's executors that need no SLURM). Each task calls :func:`execute`, so claims, resume
    and skipping work as on one machine; a task that hits its time limit leaves a claim that goes
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


# ---- the sweep --------------------------------------------------------------------------------
def run_sweep(configs: Sequence[TrainConfig], results_dir: str | Path, launcher: Launcher | None = None,
              checkpoint_dir: str | Path | None = None, stale_after_s: float = 300.0, progress: bool = True) -> list[Outcome]:
    """Train every run of ``configs`` whose record is not stored, through ``launcher`` (default: one
    process on the CPU); return one :class:`Outcome` per distinct run, in the order given.

    Runs that another process holds are waited for, in rounds every heartbeat: each then has a record
    (skipped, trained by that process), or its claim went stale and this sweep takes it over.
    """
    results_dir = Path(results_dir).absolute()  # the same folder for jobs that start elsewhere (SLURM)
    store = Store(results_dir, Path(checkpoint_dir).absolute() if checkpoint_dir else weights_folder(results_dir), stale_after_s)
    launcher = launcher or LocalLauncher(local_slots([]))
    runs = {c.run_id: c for c in configs}
    done: dict[str, Outcome] = {}
    holders: dict[str, str] = {}
    bar = tqdm(total=len(runs), desc="sweep", unit="run", disable=not progress)

    def finish(outcome: Outcome) -> None:
        if outcome.status == SKIPPED and outcome.run_id in holders:
            outcome = dataclasses.replace(outcome, detail=f"trained by {holders[outcome.run_id]}")
        done[outcome.run_id] = outcome
        bar.update(1)
        bar.set_postfix({s: sum(o.status == s for o in done.values()) for s in (RAN, SKIPPED, FAILED)})

    pending = list(runs.values())
    while pending:
        ready, waiting = [], []
        for config in pending:
            held = read_claim(store.claim_path(config.run_id))
            if stored_record(store.results_dir, config) is not None:
                finish(Outcome(config.run_id, SKIPPED, "record stored"))
            elif held is not None and not is_stale(*held, stale_after_s):
                holders[config.run_id] = held[0].describe()
                waiting.append(config)
            else:
                ready.append(config)
        for outcome in launcher(ready, store):
            if outcome.status == CLAIMED:
                holders[outcome.run_id] = outcome.detail
                waiting.append(runs[outcome.run_id])
            else:
                finish(outcome)
        pending = waiting
        if pending:
            time.sleep(store.heartbeat_s)
    bar.close()
    return [done[run_id] for run_id in runs]


def sweep_records(configs: Sequence[TrainConfig], results_dir: str | Path, workers: int, progress: bool = True) -> list[dict]:
    """The records of ``configs`` (what :func:`mmlib.experiments.run_grid` returns), trained by a local sweep:
    ``workers`` processes per GPU on every visible GPU, or ``workers`` processes without a GPU.
    Raises with the summary of the runs that failed."""
    gpus = visible_gpus()
    slots = local_slots(gpus, per_gpu=workers) if gpus else local_slots([], workers=workers)
    failed = [o for o in run_sweep(configs, results_dir, LocalLauncher(slots), progress=progress) if o.status == FAILED]
    if failed:
        raise RuntimeError(summary(failed))
    return [stored_record(results_dir, c) for c in configs]


def summary(outcomes: Sequence[Outcome]) -> str:
    """One line of counts, then one line per run: what ran (and how long), what was skipped and why, what failed and why."""
    counts = {s: sum(o.status == s for o in outcomes) for s in (RAN, SKIPPED, FAILED)}
    lines = [f"sweep: {len(outcomes)} runs: {counts[RAN]} ran, {counts[SKIPPED]} skipped, {counts[FAILED]} failed"]
    for o in sorted(outcomes, key=lambda o: (o.status != FAILED, o.status, o.run_id)):
        lines.append(f"  {o.status:<8} {o.run_id}" + (f"  {o.seconds:.1f} s" if o.status == RAN else "") + (f"  {o.detail}" if o.detail else ""))
    return "\n".join(lines)


# ---- command line -----------------------------------------------------------------------------
def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _cli_value(text: str) -> Any:
    """A command-line value read as TOML (``2``, ``1e-3``, ``true``, ``[0.1, 0.2]``), else as text (``fou,mor``)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def read_grid_file(path: str | Path) -> dict:
    """The grid file at ``path`` (TOML, the layout of the module docstring); one clear error when it is
    missing or not TOML."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise GridError(f"grid file {path} not found") from None
    except tomllib.TOMLDecodeError as error:
        raise GridError(f"{path} is not valid TOML: {error}") from None


def grid_spec(args: argparse.Namespace) -> tuple[dict, str]:
    """The grid file's contents with the command line's entries added; and the name errors should use."""
    source = args.grid or "command line"
    spec = read_grid_file(args.grid) if args.grid else {}
    for key in ("methods", "datasets", "seeds"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    for key, value in args.set:
        spec.setdefault("train", {})[key] = _cli_value(value)
    for key, value in args.option:
        method, dot, name = key.partition(".")
        if not dot:
            raise GridError(f"--option expects METHOD.NAME=VALUE (e.g. ours.tau=0.3), got {key}={value}")
        spec.setdefault("options", {}).setdefault(method, {})[name] = _cli_value(value)
    if args.data:
        for dataset in grid_datasets(spec, source):
            spec.setdefault("data", {}).setdefault(dataset, {}).update({k: _cli_value(v) for k, v in args.data})
    return spec, source


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mmlib sweep", description=__doc__.split("\n\n")[0],
                                     epilog="The grid file's layout is in the docstring of mmlib/sweep.py.")
    parser.add_argument("grid", nargs="?", help="a TOML grid file")
    grid = parser.add_argument_group("the grid (adds to or replaces the file's entries)")
    grid.add_argument("--methods", help="comma-separated methods")
    grid.add_argument("--datasets", help=f"comma-separated datasets (default {DEFAULTS.dataset})")
    grid.add_argument("--seeds", help="N (seeds 0..N-1), a range A-B, or a list 0,4 (default 0)")
    grid.add_argument("--set", action="append", type=_pair, default=[], metavar="KEY=VALUE",
                      help="a TrainConfig field, repeatable; a TOML list is an axis: --set epochs=2 --set 'lr=[1e-3, 1e-2]'")
    grid.add_argument("--option", action="append", type=_pair, default=[], metavar="METHOD.NAME=VALUE",
                      help="a method's option, repeatable: --option ours.tau=0.3")
    grid.add_argument("--data", action="append", type=_pair, default=[], metavar="KEY=VALUE",
                      help="a dataset option for every dataset of the grid, repeatable: --data noise=pix=2.0")
    store = parser.add_argument_group("store")
    store.add_argument("--results-dir", default=RUNS_DIR, help=f"the results store, shared with the chapters (default {RUNS_DIR})")
    store.add_argument("--checkpoint-dir", default=None, help="per-epoch checkpoints, kept for the analysis chapters (default: weights/ beside RESULTS_DIR, as the chapters keep them)")
    store.add_argument("--stale-after", type=float, default=300.0, metavar="SECONDS",
                       help="a claim whose heartbeat is older is taken over (default 300; heartbeats every min(30, SECONDS/4))")
    store.add_argument("--dry-run", action="store_true", help="print the grid's runs and whether each is stored, then exit")
    store.add_argument("--export", metavar="FILE", help="write the grid as [[run]] entries to FILE (TOML), then exit")
    store.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--launcher", choices=("local", "submitit"), default="local",
                        help="local: processes on this machine (default); submitit: a SLURM job array")
    local = parser.add_argument_group("--launcher local")
    local.add_argument("--gpus", default=None, help="GPU ids to use, comma-separated, or 'none' (default: every visible GPU)")
    local.add_argument("--per-gpu", type=int, default=1, help="runs sharing one GPU (default 1)")
    local.add_argument("--workers", type=int, default=None, help="parallel runs on a machine without GPUs (default 1)")
    cluster = parser.add_argument_group("--launcher submitit")
    cluster.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's)")
    cluster.add_argument("--time", type=int, default=240, metavar="MINUTES", help="time limit per run (default 240)")
    cluster.add_argument("--gpus-per-task", type=int, default=1, help="GPUs per run (default 1)")
    cluster.add_argument("--cpus-per-task", type=int, default=None, help="CPUs per run (default: the cluster's)")
    cluster.add_argument("--max-parallel", type=int, default=None, help="most array tasks running at once (default: no limit)")
    cluster.add_argument("--cluster", choices=("slurm", "local", "debug"), default="slurm",
                         help="submitit executor: slurm (default), or local / debug to try the job array on this machine")
    return parser


def make_launcher(args: argparse.Namespace, results_dir: Path) -> Launcher:
    if args.launcher == "submitit":
        return SubmititLauncher(results_dir / ".sweep" / "submitit", args.cluster, args.partition, args.time,
                                args.gpus_per_task, args.cpus_per_task, args.max_parallel)
    gpus = visible_gpus() if args.gpus is None else [] if args.gpus == "none" else _names(args.gpus, "--gpus")
    return LocalLauncher(local_slots(gpus, args.per_gpu, args.workers))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        spec, source = grid_spec(args)
        configs = expand_grid(spec, source)
        if args.export:
            print(f"wrote {len(configs)} runs to {write_grid(configs, args.export)}")
            return 0
        if args.dry_run:
            for config in configs:
                stored = stored_record(args.results_dir, config) is not None
                print(f"{'stored' if stored else 'to run':<7} {config.run_id}")
            return 0
        launcher = make_launcher(args, Path(args.results_dir))
    except GridError as error:
        print(f"mmlib sweep: {error}", file=sys.stderr)
        return 2
    try:
        outcomes = run_sweep(configs, args.results_dir, launcher, args.checkpoint_dir, args.stale_after, progress=not args.quiet)
    except KeyboardInterrupt:
        print("mmlib sweep: interrupted; finished runs are stored, and the same command resumes the others from their "
              "checkpoints", file=sys.stderr)
        return 130
    print(summary(outcomes))
    return 1 if any(o.status == FAILED for o in outcomes) else 0


# ---- the training process ---------------------------------------------------------------------
def _exit_with_parent(parent: int) -> None:
    """End this process when the sweep that started it (pid ``parent``) dies, so that no orphan trains a
    run whose claim has gone stale while a new sweep resumes it: the kernel kills it (Linux
    ``PR_SET_PDEATHSIG``), elsewhere a thread that polls the parent does."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    else:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="parent watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the watch began
        os._exit(1)


def _train_child(request: str) -> None:
    """``python -m mmlib.sweep REQUEST``: train one run of a sweep, resuming its checkpoint."""
    payload = json.loads(request)
    _exit_with_parent(payload["parent"])
    train(TrainConfig(**payload["config"]), results_dir=payload["results_dir"], checkpoint_dir=payload["checkpoint_dir"],
          resume=True, progress=False)


if __name__ == "__main__":
    _train_child(sys.argv[1])
