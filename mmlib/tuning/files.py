"""Tuned-parameters files: ``data/tuned/DATASET-VIEWS.json``, the book's hyperparameter appendix.

One file per dataset and modality set, one entry per method: the best values, the validation score
at them and at the defaults, the budget (trials per method, seeds), the trials by state, the
compute time, the search space the values were drawn from (with its digest), the method's option
defaults, and every counted trial (parameters, state, value, running mean after each seed), so the
trials can be studied without the study file. The file as a whole records the base config
(protocol, epochs, data options), the sampler and pruner, the git commit and the library
versions, and the UTC time it was written.

Everything in an entry is computed from the study file, so the process that writes last (of
several filling one study) writes the complete entry. :func:`stale_methods` tells a reader which
entries were tuned under another search space or other option defaults than the code's today.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import json
import os
import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState

from mmlib.config import TrainConfig
from mmlib.methods import build_options
from mmlib.methods.base import options_identity
from mmlib.results import environment_info, replace_atomically
from mmlib.tuning.study import FINISHED, apply_values, default_values, method_space

TUNED_DIR = "data/tuned"
# TrainConfig fields a file states once at its top (or per method), so not again under "base"
PER_FILE = {"seed", "method", "method_options", "device", "dataset", "modalities", "dataset_options", "protocol",
            "epochs"}
OBJECTIVE = ("validation accuracy (%) of the fused model at the epoch kept on validation, mean over the seeds; "
             "the test split is not read")


def tuned_path(directory: str | Path, dataset: str, modalities: str) -> Path:
    return Path(directory) / f"{dataset}-{modalities}.json"


def study_path(runs_dir: str | Path, dataset: str, modalities: str) -> Path:
    """The study file of a dataset and modality set: ``tuning/DATASET-VIEWS.db`` beside the runs store."""
    return Path(runs_dir).parent / "tuning" / f"{dataset}-{modalities}.db"


def method_entry(study: optuna.Study, base: TrainConfig, seeds: tuple[int, ...], budget: int) -> dict:
    """What the file keeps of one method's study: its first ``budget`` finished trials, in the order they
    finished (so every writer agrees, and a trial a parallel worker finished beyond the budget is left out)."""
    finished = sorted(study.get_trials(deepcopy=False, states=FINISHED), key=lambda t: (t.datetime_complete, t.number))
    done = finished[:budget]  # the budget's trials, in the order they finished (parallel workers may overshoot)
    complete = [t for t in done if t.state == TrialState.COMPLETE]
    if not complete:
        raise ValueError(f"tuning {base.method}: no trial completed, so there is no best value; raise the budget")
    best = max(complete, key=lambda t: (t.value, -t.number))
    defaults = default_values(base)
    at_defaults = [t.value for t in complete if t.params == defaults]
    states = {s.name.lower(): sum(t.state == s for t in done) for s in FINISHED}
    states["failed"] = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
    states["beyond_budget"] = len(finished) - len(done)
    space = method_space(base.method)
    starts = [t.datetime_start for t in done if t.datetime_start]
    ends = [t.datetime_complete for t in done if t.datetime_complete]
    return {
        "study": study.study_name, "best": best.params, "best_value": best.value, "best_trial": best.number,
        "default_value": at_defaults[0] if at_defaults else None, "defaults": defaults,
        "budget": budget, "seeds": list(seeds), "trials": states,
        "first_start": min(starts).isoformat(), "last_complete": max(ends).isoformat(),
        "compute_s": round(sum((t.duration.total_seconds() for t in done if t.duration), 0.0), 1),
        "space": space.describe(), "space_digest": space.digest(),
        "option_defaults": options_identity(base.method, dataclasses.asdict(build_options(base.method))),
        "history": [{"trial": t.number, "state": t.state.name.lower(), "value": t.value, "params": t.params,
                     "per_seed_mean": [t.intermediate_values[k] for k in sorted(t.intermediate_values)]} for t in done],
    }


def write_tuned(path: str | Path, base: TrainConfig, entries: dict[str, dict], note: str = "") -> dict:
    """Merge ``entries`` (method -> :func:`method_entry`) into the file at ``path`` and write it whole.

    A lock on the folder (no lock file left in the repository) serialises writers; methods already in the file and not
    tuned now are kept. ``wall_s`` is the span from the first trial's start to the last trial's end over every method in
    the file (every process that filled the studies included); ``compute_s`` per method sums its trials.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        old = json.loads(path.read_text()) if path.exists() else {}
        environment = environment_info("cpu")
        methods = {**old.get("methods", {}), **entries}
        first = min(datetime.datetime.fromisoformat(e["first_start"]) for e in methods.values())
        last = max(datetime.datetime.fromisoformat(e["last_complete"]) for e in methods.values())
        content = {
            "dataset": base.dataset, "modalities": base.modalities, "dataset_options": base.dataset_options,
            "protocol": base.protocol, "epochs": base.epochs,
            "base": {k: v for k, v in dataclasses.asdict(base).items() if k not in PER_FILE},
            "objective": OBJECTIVE, "sampler": "optuna TPESampler (seeded, constant_liar)",
            "pruner": "optuna MedianPruner",
            "wall_s": round((last - first).total_seconds(), 1), "note": note or old.get("note", ""),
            "written": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "git_commit": environment["git_commit"],
            "versions": {"python": environment["python"], "torch": environment["torch"], "numpy": environment["numpy"],
                         "optuna": optuna.__version__},
            "methods": methods,
        }
        text = json.dumps(content, indent=1, default=str) + "\n"
        replace_atomically(path, lambda handle: handle.write(text.encode()))
    finally:
        os.close(folder)
    return content


def read_tuned(path: str | Path) -> dict:
    """A tuned file; a missing or unreadable one is one clear error naming ``make tune``."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"tuned file {path} does not exist; run `make tune` (or python -m mmlib tune) to write it"
                         ) from None
    except json.JSONDecodeError as error:
        raise ValueError(f"tuned file {path} is not valid JSON ({error}); restore it from git or run `make tune`"
                         ) from None


def stale_methods(tuned: dict) -> dict[str, str]:
    """Methods whose entry was tuned under another search space or other option defaults than today's, with why.

    An option added since, marked to enter run ids only when set, leaves the entry current at its default
    (:func:`mmlib.methods.base.options_identity`): the runs it was tuned on are the same runs."""
    stale = {}
    for method, entry in tuned.get("methods", {}).items():
        try:
            space, defaults = method_space(method), dataclasses.asdict(build_options(method))
        except ValueError as error:
            stale[method] = str(error)
            continue
        if entry.get("space_digest") != space.digest():
            stale[method] = "its search space changed since it was tuned"
        elif entry.get("option_defaults") != options_identity(method, defaults):
            stale[method] = "its option defaults changed since it was tuned"
    return stale


def tuned_config(base: TrainConfig, tuned: dict) -> TrainConfig:
    """``base`` (any seed) with the best values stored for ``base.method``; a warning when they are stale."""
    entry = tuned.get("methods", {}).get(base.method)
    if entry is None:
        raise ValueError(f"the tuned file of {tuned.get('dataset')} [{tuned.get('modalities')}] has no entry for "
                         f"{base.method!r}; run `python -m mmlib tune --methods {base.method}` for it")
    why = stale_methods({"methods": {base.method: entry}}).get(base.method)
    if why:
        warnings.warn(f"tuned values of {base.method}: {why}; rerun `make tune`", stacklevel=2)
    return apply_values(base, entry["best"])


def trials_study(entry: dict, method: str) -> optuna.Study:
    """An in-memory Optuna study holding the completed trials an entry lists (``history``), for
    :mod:`optuna.importance` and plots on a fresh clone that has no study file."""
    distributions = {name: parameter.distribution() for name, parameter in method_space(method).parameters.items()}
    study = optuna.create_study(direction="maximize")
    for trial in entry["history"]:
        if trial["state"] == "complete" and set(trial["params"]) == set(distributions):
            study.add_trial(optuna.trial.create_trial(params=trial["params"], distributions=distributions,
                                                      value=trial["value"]))
    return study
