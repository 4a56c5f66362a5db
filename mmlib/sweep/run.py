"""The sweep: every run of a grid trained once, waiting for the runs other sweeps hold."""

from __future__ import annotations

import dataclasses
from pathlib import Path
import time
from typing import Sequence

from tqdm.auto import tqdm

from mmlib.config import TrainConfig
from mmlib.results import weights_folder
from mmlib.sweep.launch import (FAILED, HELD, RAN, SKIPPED, Launcher, LocalLauncher, Outcome, Store, local_slots,
                                visible_gpus)
from mmlib.sweep.lease import is_stale, read_lease
from mmlib.train import stored_record


def run_sweep(configs: Sequence[TrainConfig], results_dir: str | Path, launcher: Launcher | None = None,
              checkpoint_dir: str | Path | None = None, stale_after_s: float = 300.0,
              progress: bool = True) -> list[Outcome]:
    """Train every run of ``configs`` whose record is not stored, through ``launcher`` (default: one
    process on the CPU); return one :class:`Outcome` per distinct run, in the order given.

    Runs that another process holds are waited for, in rounds every heartbeat: each then has a record
    (skipped, trained by that process), or its lease went stale and this sweep takes it over.
    """
    results_dir = Path(results_dir).absolute()  # the same folder for jobs that start elsewhere (SLURM)
    store = Store(results_dir, Path(checkpoint_dir).absolute() if checkpoint_dir else weights_folder(results_dir),
                  stale_after_s)
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
            held = read_lease(store.lease_path(config.run_id))
            if stored_record(store.results_dir, config) is not None:
                finish(Outcome(config.run_id, SKIPPED, "record stored"))
            elif held is not None and not is_stale(*held, stale_after_s):
                holders[config.run_id] = held[0].describe()
                waiting.append(config)
            else:
                ready.append(config)
        for outcome in launcher(ready, store):
            if outcome.status == HELD:
                holders[outcome.run_id] = outcome.detail
                waiting.append(runs[outcome.run_id])
            else:
                finish(outcome)
        pending = waiting
        if pending:
            time.sleep(store.heartbeat_s)
    bar.close()
    return [done[run_id] for run_id in runs]


def sweep_records(configs: Sequence[TrainConfig], results_dir: str | Path, workers: int,
                  progress: bool = True) -> list[dict]:
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
    """One line of counts, then one line per run: what ran (and how long), what was skipped and why, what failed and
    why."""
    counts = {s: sum(o.status == s for o in outcomes) for s in (RAN, SKIPPED, FAILED)}
    lines = [f"sweep: {len(outcomes)} runs: {counts[RAN]} ran, {counts[SKIPPED]} skipped, {counts[FAILED]} failed"]
    for o in sorted(outcomes, key=lambda o: (o.status != FAILED, o.status, o.run_id)):
        lines.append(f"  {o.status:<8} {o.run_id}" + (f"  {o.seconds:.1f} s" if o.status == RAN else "")
                     + (f"  {o.detail}" if o.detail else ""))
    return "\n".join(lines)
