"""One Optuna study per method: trials of the shared training loop, scored on validation only.

A trial draws the common ``lr`` and ``weight_decay`` and the method's own options from the
method's search space (:mod:`mmlib.tuning.space`), trains the drawn config with
:func:`mmlib.train.train` for each tuning seed (each run stored in the results store like any
other, so a run a chapter or a sweep already stored is reused, and a rerun trains nothing), and
scores it by the **validation** accuracy of the fused model at the kept epoch (the epoch the loop
selects on validation), averaged over the seeds. The test split is never read by the objective:
``train`` evaluates it for the record, and the objective does not look at it. After each seed the
running mean is reported, and Optuna's median pruner may stop a trial that trails the median of
earlier trials at the same seed.

The study lives in an SQLite file (``tuning/DATASET-VIEWS.db`` beside the runs store), one study
per method and base config, so:
- a killed ``tune`` resumes: finished trials (complete or pruned) stay, and only the rest of the
  budget is run; a trial left running by a killed process of this host (or by one killed while
  asking for it, before it wrote its pid) is marked failed and does not count;
- several processes fill one study (``mmlib tune`` started N times on the same file, each with its
  own ``--worker``): each asks for its next trial under a lock beside the file, so no trial is
  run by two processes (Optuna's SQLite storage alone can give one waiting trial to two), and the
  budget counts the trials finished or running in every process, so the processes stop together
  at the budget.

Sampler: TPE (Bergstra et al. 2011) with a fixed seed, ``constant_liar`` so that parallel workers
do not all try the same point. The first trial of a study is the defaults (the protocol's lr and
weight decay, the method's option defaults), so the tuned value is compared with the default's
validation score measured the same way. The sampler's seed is ``seed + 7919 * worker +`` the
number of trials already in the study, so one process on a fresh study always draws the same
trials, and a resumed or second process does not replay the first one's draws.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from mmlib.methods import build_options, method_class
from mmlib.config import TrainConfig
from mmlib.sweep.lease import HOST, pid_alive
from mmlib.train import load_config_dataset, train
from mmlib.tuning.space import COMMON, SearchSpace

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # the states the budget counts
WORKER_SEED_STRIDE = 7919


def method_space(method: str) -> SearchSpace:
    """The search space declared in ``method``'s module (``SEARCH_SPACE``)."""
    module = sys.modules[method_class(method).__module__]
    space = getattr(module, "SEARCH_SPACE", None)
    if not isinstance(space, SearchSpace):
        raise ValueError(  # noqa: TRY004  (a user's error: one line, exit 2)
            f"method {method!r} declares no SEARCH_SPACE in {module.__name__}; add one beside its options")
    return space


def default_values(base: TrainConfig) -> dict:
    """The point of the search space the base config stands on: its lr, weight decay and option defaults."""
    own = method_space(base.method).own
    return {"lr": base.lr, "weight_decay": base.weight_decay, **{k: base.method_options[k] for k in own}}


def apply_values(base: TrainConfig, values: dict) -> TrainConfig:
    """``base`` with the drawn (or tuned) ``values``: the common ones as config fields, the rest as method options."""
    common = {k: v for k, v in values.items() if k in COMMON}
    own = {k: v for k, v in values.items() if k not in COMMON}
    return dataclasses.replace(base, **common, method_options={**base.method_options, **own})


def validation_accuracy(record: dict) -> float:
    """Validation fused accuracy (%) at the epoch the run kept (``best_epoch``, chosen on validation)."""
    return float(record["history"][record["best_epoch"] - 1]["fused_acc"])


def study_name(base: TrainConfig, seeds: tuple[int, ...]) -> str:
    """``METHOD-DIGEST``: the digest covers the base config (less seed and the tuned fields), the
    seeds, the search space and the method's option defaults, so changing any of them starts a new study."""
    space = method_space(base.method)
    fixed = {k: v for k, v in dataclasses.asdict(base).items() if k not in {"seed", "device", "probe", *COMMON}}
    identity = {"base": fixed, "seeds": list(seeds), "space": space.digest(),
                "defaults": dataclasses.asdict(build_options(base.method))}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{base.method}-{digest}"


def storage(path: str | Path) -> RDBStorage:
    """The SQLite study file at ``path`` (created when missing)."""
    return RDBStorage(f"sqlite:///{Path(path).resolve()}", engine_kwargs={"connect_args": {"timeout": 120}})


@contextlib.contextmanager
def study_lock(path: Path):
    """An exclusive lock on ``.NAME.lock`` beside the study file, held by one process at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def open_study(base: TrainConfig, seeds: tuple[int, ...], budget: int, path: str | Path, seed: int = 0,
               worker: int = 0) -> optuna.Study:
    """The method's study in the file at ``path``, created with the defaults as its first trial when new.

    Opening holds :func:`study_lock`: two processes creating one new SQLite file at once collide in
    Optuna's schema setup (``UNIQUE constraint failed: alembic_version``). A trial left running by
    a process of this host that no longer exists (killed) is marked failed; it does not count. So
    is one without a pid (read as 0, never alive): its process was killed between asking for it
    and naming itself, both of which happen under the lock held here.
    """
    path = Path(path)
    with study_lock(path):
        study = optuna.create_study(study_name=study_name(base, seeds), storage=storage(path), direction="maximize",
                                    load_if_exists=True)
        if not study.trials:
            study.set_user_attr("method", base.method)
            study.set_user_attr("seeds", list(seeds))
            study.enqueue_trial(default_values(base), user_attrs={"defaults": True})
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.user_attrs.get("host", HOST) == HOST and not pid_alive(trial.user_attrs.get("pid", 0)):
                study.tell(trial.number, state=TrialState.FAIL)
        known = len(study.trials)
    study.sampler = optuna.samplers.TPESampler(seed=seed + WORKER_SEED_STRIDE * worker + known, constant_liar=True,
                                               n_startup_trials=max(2, budget // 3))
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=max(2, budget // 4), n_warmup_steps=0)
    return study


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)


def evaluate(trial: optuna.Trial, base: TrainConfig, seeds: tuple[int, ...], runs_dir: str | Path) -> float:
    """The objective: draw, train every seed (stored runs reused), report the running mean, maybe prune."""
    common, own = method_space(base.method).suggest(trial)
    config = apply_values(base, {**common, **own})
    scores = []
    for step, seed in enumerate(seeds):
        record = train(dataclasses.replace(config, seed=seed), results_dir=runs_dir, progress=False)
        scores.append(validation_accuracy(record))
        trial.set_user_attr("run_ids", [*trial.user_attrs.get("run_ids", []), record["run_id"]])
        trial.report(sum(scores) / len(scores), step)
        if step + 1 < len(seeds) and trial.should_prune():
            raise optuna.TrialPruned()
    return sum(scores) / len(scores)


def tune_method(base: TrainConfig, seeds: tuple[int, ...], budget: int, runs_dir: str | Path, path: str | Path,
                seed: int = 0, worker: int = 0, log: Callable[[str], None] | None = None) -> optuna.Study:
    """Run ``base.method``'s study until ``budget`` trials are finished or running (counted over every process).

    Each trial is asked for under :func:`study_lock` (Optuna's SQLite storage can hand one waiting
    trial, such as the enqueued defaults, to two processes at once), then trained and told. A trial
    that fails (e.g. a loss that became NaN at a large learning rate) is told failed with its reason
    and does not count; three failures in a row stop with the last reason. Ctrl-C tells the running
    trial failed before it stops.
    """
    log = log or (lambda line: print(line, flush=True))
    load_config_dataset(base)  # a wrong dataset, modality set or data option: one error now, not a failed trial each
    path = Path(path)
    study = open_study(base, seeds, budget, path, seed, worker)
    failures = 0
    while len(study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))) < budget:
        with study_lock(path):
            trial = study.ask()
            trial.set_user_attr("pid", os.getpid())
            trial.set_user_attr("host", HOST)
        try:
            frozen = study.tell(trial, evaluate(trial, base, seeds, runs_dir))
        except optuna.TrialPruned:
            frozen = study.tell(trial, state=TrialState.PRUNED)
        except ValueError as error:
            trial.set_user_attr("error", str(error))
            frozen = study.tell(trial, state=TrialState.FAIL)
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        failures = failures + 1 if frozen.state == TrialState.FAIL else 0
        value = f" value {frozen.value:.2f}" if frozen.value is not None else ""
        value += f" ({frozen.user_attrs['error']})" if "error" in frozen.user_attrs else ""
        state = frozen.state.name.lower()
        log(f"{base.method} trial {frozen.number} {state}{value} (pid {os.getpid()}) {frozen.params}")
        if failures >= 3:
            raise ValueError(f"tuning {base.method}: three trials in a row failed ({frozen.user_attrs['error']})")
    return study
