"""``python -m mmlib sweep``: the command line of a sweep (the grid's layout: :mod:`mmlib.sweep`)."""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

from mmlib.results import RUNS_DIR
from mmlib.sweep.grid import DEFAULTS, GridError, _names, expand_grid, grid_datasets, read_grid_file, write_grid
from mmlib.sweep.launch import FAILED, Launcher, LocalLauncher, SubmititLauncher, local_slots, visible_gpus
from mmlib.sweep.run import run_sweep, summary
from mmlib.train import stored_record


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
                                     epilog="The grid file's layout is in the docstring of mmlib/sweep/__init__.py.")
    parser.add_argument("grid", nargs="?", help="a TOML grid file")
    grid = parser.add_argument_group("the grid (adds to or replaces the file's entries)")
    grid.add_argument("--methods", help="comma-separated methods")
    grid.add_argument("--datasets", help=f"comma-separated datasets (default {DEFAULTS.dataset})")
    grid.add_argument("--seeds", help="N (seeds 0..N-1), a range A-B, or a list 0,4 (default 0)")
    grid.add_argument("--set", action="append", type=_pair, default=[], metavar="KEY=VALUE",
                      help="a TrainConfig field, repeatable; a TOML list is an axis: --set epochs=2 --set 'lr=[1e-3, "
                           "1e-2]'")
    grid.add_argument("--option", action="append", type=_pair, default=[], metavar="METHOD.NAME=VALUE",
                      help="a method's option, repeatable: --option ours.tau=0.3")
    grid.add_argument("--data", action="append", type=_pair, default=[], metavar="KEY=VALUE",
                      help="a dataset option for every dataset of the grid, repeatable: --data noise=pix=2.0")
    store = parser.add_argument_group("store")
    store.add_argument("--results-dir", default=RUNS_DIR,
                       help=f"the results store, shared with the chapters (default {RUNS_DIR})")
    store.add_argument("--checkpoint-dir", default=None, help="per-epoch checkpoints, kept for the analysis chapters "
                                                              "(default: weights/ beside RESULTS_DIR, as the chapters "
                                                              "keep them)")
    store.add_argument("--stale-after", type=float, default=300.0, metavar="SECONDS",
                       help="a lease whose heartbeat is older is taken over (default 300; heartbeats every min(30, "
                            "SECONDS/4))")
    store.add_argument("--dry-run", action="store_true",
                       help="print the grid's runs and whether each is stored, then exit")
    store.add_argument("--export", metavar="FILE", help="write the grid as [[run]] entries to FILE (TOML), then exit")
    store.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--launcher", choices=("local", "submitit"), default="local",
                        help="local: processes on this machine (default); submitit: a SLURM job array")
    local = parser.add_argument_group("--launcher local")
    local.add_argument("--gpus", default=None,
                       help="GPU ids to use, comma-separated, or 'none' (default: every visible GPU)")
    local.add_argument("--per-gpu", type=int, default=1, help="runs sharing one GPU (default 1)")
    local.add_argument("--workers", type=int, default=None, help="parallel runs on a machine without GPUs (default 1)")
    cluster = parser.add_argument_group("--launcher submitit")
    cluster.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's)")
    cluster.add_argument("--time", type=int, default=240, metavar="MINUTES", help="time limit per run (default 240)")
    cluster.add_argument("--gpus-per-task", type=int, default=1, help="GPUs per run (default 1)")
    cluster.add_argument("--cpus-per-task", type=int, default=None, help="CPUs per run (default: the cluster's)")
    cluster.add_argument("--max-parallel", type=int, default=None,
                         help="most array tasks running at once (default: no limit)")
    cluster.add_argument("--cluster", choices=("slurm", "local", "debug"), default="slurm",
                         help="submitit executor: slurm (default), or local / debug to try the job array on this "
                              "machine")
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
        outcomes = run_sweep(configs, args.results_dir, launcher, args.checkpoint_dir, args.stale_after,
                             progress=not args.quiet)
    except KeyboardInterrupt:
        print("mmlib sweep: interrupted; finished runs are stored, and the same command resumes the others from their "
              "checkpoints", file=sys.stderr)
        return 130
    print(summary(outcomes))
    return 1 if any(o.status == FAILED for o in outcomes) else 0
