"""``python -m mmlib train``: train one method on one dataset, print a summary, store the record.

Every field of :class:`mmlib.config.TrainConfig` is a flag, grouped and explained in ``--help`` by
the field's own description (its metadata); every dataset option is reachable with ``--data
KEY=VALUE``, and every hyperparameter of every method is a flag of its own (grouped by method);
passing a flag that the chosen method does not have is an error. ``--config RUN.TOML`` reads the
run from a file in the sweep's grid layout instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from mmlib.data import available_datasets
from mmlib.data.registry import parse_data_option, text_parser, typed_data_options
from mmlib.distributed import is_main_process
from mmlib.evaluate import EMPTY_VALUES
from mmlib.methods import available_methods, method_class
from mmlib.protocols import AUGMENTATIONS, FRAME_NORMALIZATIONS, LR_SCHEDULES, PROTOCOL_FIELDS, PROTOCOLS
from mmlib.results import RUNS_DIR, WEIGHTS_DIR, weights_folder
from mmlib.sweep.grid import GridError, expand_grid, read_grid_file
from mmlib.config import GROUPS, OPTIMIZERS, TrainConfig
from mmlib.train import checkpoint_path, train

USAGE = "%(prog)s [--dataset NAME] [--method NAME] [--data KEY=VALUE] [OPTIONS] | --config RUN.TOML  (--help lists all)"
OPTION_FIELDS = ("dataset_options", "method_options")  # reached by --data and by the methods' own flags


def field_choices() -> dict[str, list[str]]:
    """The fields whose value is one of a list, with the list."""
    return {"dataset": available_datasets(), "method": available_methods(), "protocol": sorted(PROTOCOLS),
            "optimizer": list(OPTIMIZERS), "lr_schedule": list(LR_SCHEDULES), "augment": list(AUGMENTATIONS),
            "frame_normalization": list(FRAME_NORMALIZATIONS), "empty_value": list(EMPTY_VALUES)}


def metavar(name: str, default: object) -> str:
    """How ``--help`` shows a flag's value: true|false for a bool, else the name in capitals."""
    return "true|false" if isinstance(default, bool) else name.upper()


def method_option_owners() -> dict[str, list[str]]:
    """Option name -> the methods that have it."""
    owners: dict[str, list[str]] = {}
    for name in available_methods():
        for f in dataclasses.fields(method_class(name).Options):
            owners.setdefault(f.name, []).append(name)
    return owners


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`TrainConfig` field, grouped and explained by the field's metadata; every flag
    defaults to None (not given), so a field left out takes the protocol's or the dataclass's value."""
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    defaults, choices = TrainConfig(), field_choices()
    for f in dataclasses.fields(TrainConfig):
        group = groups[f.metadata["group"]]
        if f.name == "dataset_options":
            group.add_argument("--data", action="append", type=parse_data_option, default=[], metavar="KEY=VALUE",
                               help=f"{f.metadata['help']}; repeatable, e.g. --data noise=pix=2.0 --data split_seed=1")
            continue
        if f.name in OPTION_FIELDS:
            continue
        default = "the protocol's" if f.name in PROTOCOL_FIELDS else getattr(defaults, f.name)
        identity = {"never": "; not part of the run id", "when set": "; part of the run id only when set"}
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=text_parser(getattr(defaults, f.name)),
                           default=None, choices=choices.get(f.name),
                           metavar=None if f.name in choices else metavar(f.name, getattr(defaults, f.name)),
                           help=f"{f.metadata['help']} (default: {default}{identity.get(f.metadata['identity'], '')})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mmlib train", description=__doc__.split("\n\n")[0], usage=USAGE)
    parser.add_argument("--config", metavar="RUN.TOML", default=None,
                        help="the run from a file in the sweep's grid layout (mmlib/sweep/__init__.py; e.g. one "
                             "[[run]] entry, as sweep --export writes it); no other option of the run may be given "
                             "with it")
    add_config_flags(parser)
    store = parser.add_argument_group("the results store")
    store.add_argument("--results-dir", default=RUNS_DIR,
                       help=f"the results store the run's record goes to, shared with the chapters "
                            f"(default: {RUNS_DIR})")
    store.add_argument("--checkpoint-dir", default=None,
                       help=f"per-epoch checkpoints, where the chapters find the run's weights "
                            f"(default: {WEIGHTS_DIR})")
    store.add_argument("--resume", action="store_true",
                       help="continue the checkpoint of an interrupted run with the same config")
    store.add_argument("--force", action="store_true",
                       help="train again even if a record of this config exists (stored beside it)")
    store.add_argument("--quiet", action="store_true", help="no progress bars")
    owners = method_option_owners()
    for name in available_methods():
        options = method_class(name).Options
        fields = dataclasses.fields(options)
        if not fields:
            continue
        group = parser.add_argument_group(f"options of --method {name}", (options.__doc__ or "").strip().split("\n")[0])
        for f in fields:
            if owners[f.name][0] != name:
                continue  # documented under the first method that has it
            also = f" (also: {', '.join(owners[f.name][1:])})" if len(owners[f.name]) > 1 else ""
            group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"opt_{f.name}", type=text_parser(f.default),
                               default=None, metavar=metavar(f.name, f.default), help=f"default {f.default!r}{also}")
    return parser


def config_from_file(path: str, args: argparse.Namespace) -> TrainConfig:
    """The one run of the grid file ``path`` (:func:`mmlib.sweep.grid.expand_grid`); an error when the command
    line gives options of the run too, or the file holds more than one run."""
    of_the_run = {f.name for f in dataclasses.fields(TrainConfig)} | {"data"}
    given = [f"--{k.removeprefix('opt_').replace('_', '-')}" for k, v in vars(args).items()
             if v not in (None, []) and (k.startswith("opt_") or k in of_the_run)]
    if given:
        raise ValueError(f"--config {path} gives the run; drop {', '.join(sorted(given))} or put it in the file")
    try:
        configs = expand_grid(read_grid_file(path), path)
    except GridError as error:
        raise ValueError(str(error)) from None
    if len(configs) != 1:
        raise ValueError(f"--config {path} holds {len(configs)} runs; train takes one "
                         f"(python -m mmlib sweep {path} runs them all)")
    return configs[0]


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TrainConfig:
    if args.config is not None:
        return config_from_file(args.config, args)
    defaults = TrainConfig()
    method, dataset = args.method or defaults.method, args.dataset or defaults.dataset
    own = {f.name for f in dataclasses.fields(method_class(method).Options)}
    method_options = {}
    for key, value in vars(args).items():
        if key.startswith("opt_") and value is not None:
            name = key[4:]
            if name not in own:
                parser.error(f"--{name.replace('_', '-')} is not an option of --method {method}; "
                             f"its options are {sorted(own) or 'none'}")
            method_options[name] = value
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"dataset", "method", "protocol", *OPTION_FIELDS}
    given = {k: getattr(args, k) for k in fields if getattr(args, k) is not None}
    return TrainConfig.from_protocol(args.protocol or defaults.protocol, dataset=dataset,
                                     dataset_options=typed_data_options(dataset, args.data), method=method,
                                     method_options=method_options, **given)


def check_resumable(config: TrainConfig, checkpoint_dir: str) -> None:
    """``--resume`` needs a checkpoint of exactly this config; say which ones the folder holds otherwise."""
    path = checkpoint_path(checkpoint_dir, config)
    if path.exists():
        return
    same_run = sorted(p.name
                      for p in Path(checkpoint_dir).glob(f"{config.method}-{config.dataset}-s{config.seed}-*.ckpt"))
    others = (f"; it holds {', '.join(same_run)} of {config.method} on {config.dataset} seed {config.seed} with other "
              "options") if same_run else ""
    raise ValueError(f"--resume: no checkpoint of this config in {checkpoint_dir} (expected {path.name}){others}; "
                     f"give the options of the interrupted run, or drop --resume to start at epoch 1")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args, parser)
        checkpoint_dir = args.checkpoint_dir
        if checkpoint_dir is None and args.results_dir:
            checkpoint_dir = str(weights_folder(args.results_dir))
        if args.resume:
            check_resumable(config, checkpoint_dir)
        record = train(config, results_dir=args.results_dir, checkpoint_dir=checkpoint_dir,
                       resume=args.resume, progress=not args.quiet, force=args.force)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"mmlib train: {error}", file=sys.stderr)
        return 2
    if not is_main_process():
        return 0  # under torchrun only rank 0 reports the run (every rank returned the same record)
    test = record["test"]
    unimodal = " ".join(f"{m}={a:.1f}" for m, a in test["unimodal_acc"].items())
    probe = " ".join(f"{m}={a:.1f}" for m, a in (record["probe_acc"] or {}).items())
    print(f"{config.method} on {config.dataset} [{','.join(record['modalities'])}] seed {config.seed}: "
          f"test fused {test['fused_acc']:.2f}% | head {unimodal} | probe {probe or '-'} | EDM {test['edm']:.2f} "
          f"| best epoch {record['best_epoch']} | {record['wall_time_s']:.1f} s | record "
          f"{args.results_dir}/{record['run_id']}.json")
    return 0
