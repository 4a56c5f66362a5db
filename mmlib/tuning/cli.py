"""``python -m mmlib tune``: tune methods on one dataset and modality set, on an equal budget each.

    python -m mmlib tune --methods ours,concat --modalities fou,mor --trials 10 --seeds 3 --epochs 15
    python -m mmlib tune --modalities pix,fou,mor --noise pix=2.0        # every main-comparison method

For each method, its study (:mod:`mmlib.tuning.study`) runs until ``--trials`` trials are finished,
each trial scored on the validation split over seeds ``0 .. --seeds - 1``; then the best values are
printed and merged into ``OUT/DATASET-VIEWS.json`` (:mod:`mmlib.tuning.files`). The study file
``tuning/DATASET-VIEWS.db`` sits beside the runs store (``--results-dir``), and every trial's runs
are stored there like any run. Rerunning the same command resumes (finished trials are kept) or,
when the budget is reached, only rewrites the file.

Several processes on one study: start the same command N times, each with its own ``--worker K``
(0 .. N-1); on a cluster, one job per worker on a shared file system (SQLite needs working file
locks there). ``make tune`` does this with two workers.
"""

from __future__ import annotations

import argparse

import optuna

from mmlib.book import data_options
from mmlib.methods import parse_methods
from mmlib.results import RUNS_DIR
from mmlib.config import TrainConfig
from mmlib.data.registry import parse_data_option, typed_data_options
from mmlib.tuning.files import (
    TUNED_DIR,
    method_entry,
    study_path,
    tuned_path,
    write_tuned,
)
from mmlib.tuning.study import tune_method

# Table 1's methods (notebooks/main_comparison.py): the default set to tune.
MAIN_METHODS = "sum,concat,ogm,ogm_ge,lfm,crmt,late_fusion,mla,ours,ours_rownorm"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mmlib tune", description=__doc__.split("\n")[0].replace("``", ""))
    p.add_argument("--methods", default=MAIN_METHODS, help=f"comma-separated methods (default {MAIN_METHODS})")
    p.add_argument("--dataset", default="mfeat", help="a registered dataset (default mfeat)")
    p.add_argument("--modalities", default="fou,mor", help="comma-separated modality set (default fou,mor)")
    p.add_argument("--noise", default="", help="mfeat noise spec, e.g. pix=2.0 (kept for the views present)")
    p.add_argument("--data-root", default="", help="folder of a prepared cache for real datasets")
    p.add_argument("--data", action="append", type=parse_data_option, default=[], metavar="KEY=VALUE",
                   help="a loader option of the dataset (repeatable), e.g. num_samples=300 for synthetic")
    p.add_argument("--protocol", default="book", help="training protocol (mmlib/protocols.py; default book)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the protocol's)")
    p.add_argument("--trials", type=int, default=10, help="finished trials per method: the equal budget (default 10)")
    p.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 averaged per trial (default 3)")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    p.add_argument("--worker", type=int, default=0, help="this process's index among several filling one study")
    p.add_argument("--no-probe", dest="probe", action="store_false",
                   help="skip the linear probes (the objective does not use them; a chapter's runs have them)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--results-dir", default=RUNS_DIR, help=f"the runs store (default {RUNS_DIR}); the study beside it")
    p.add_argument("--out", default=TUNED_DIR, help=f"folder of the tuned-parameters files (default {TUNED_DIR})")
    p.add_argument("--note", default="", help="a sentence kept in the tuned file (e.g. why the budget is smaller)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial, failures with their reason: tune_method
    methods = parse_methods(args.methods, "--methods")
    if not methods:
        raise ValueError("--methods is empty; name at least one method, e.g. --methods ours")
    for name in ("trials", "seeds"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}; an empty budget tunes nothing")
    if args.worker < 0:
        raise ValueError(f"--worker must be 0 or more, got {args.worker}")
    options = {**data_options(args.dataset, args.modalities, noise=args.noise, data_root=args.data_root),
               **typed_data_options(args.dataset, args.data)}
    epochs = {} if args.epochs is None else {"epochs": args.epochs}
    seeds = tuple(range(args.seeds))
    bases = {m: TrainConfig.from_protocol(args.protocol, dataset=args.dataset, modalities=args.modalities,
                                          dataset_options=options, method=m, device=args.device, probe=args.probe,
                                          **epochs)
             for m in methods}
    path = study_path(args.results_dir, args.dataset, args.modalities)
    out = tuned_path(args.out, args.dataset, args.modalities)
    for method, base in bases.items():
        study = tune_method(base, seeds, args.trials, args.results_dir, path, args.seed, args.worker)
        entry = method_entry(study, base, seeds, args.trials)
        write_tuned(out, base, {method: entry}, args.note)
        default = "–" if entry["default_value"] is None else f"{entry['default_value']:.2f}"
        values = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry["best"].items())
        print(f"{method} [{args.dataset} {args.modalities}]: best validation {entry['best_value']:.2f} % "
              f"(defaults {default} %) at {values}; trials {entry['trials']}", flush=True)
    print(f"tuned values written to {out}")
    return 0
