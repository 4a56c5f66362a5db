"""``python -m mmlib train``: train one method on one dataset, print a summary, store the record.

Every field of :class:`mmlib.train.TrainConfig` is a flag, every dataset option is reachable with
``--data KEY=VALUE``, and every hyperparameter of every method is a flag of its own (grouped by
method in ``--help``); passing a flag that the chosen method does not have is an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from mmlib.data import available_datasets, dataset_options
from mmlib.distributed import is_main_process
from mmlib.methods import available_methods, method_class
from mmlib.protocols import PROTOCOL_FIELDS, PROTOCOLS
from mmlib.results import RUNS_DIR, WEIGHTS_DIR, weights_folder
from mmlib.train import TrainConfig, checkpoint_path, train

USAGE = "%(prog)s [--dataset NAME] [--method NAME] [--data KEY=VALUE] [OPTIONS]  (--help lists every option)"


def _parse_bool(text: str) -> bool:
    if text.lower() in {"1", "true", "yes", "on"}:
        return True
    if text.lower() in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _typed(default):
    if isinstance(default, bool):
        return _parse_bool
    if isinstance(default, (int, float)):
        return type(default)
    return str


def parse_data_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--data expects KEY=VALUE (e.g. noise=pix=2.0), got {text!r}")
    return key, value


def typed_data_options(dataset: str, pairs: list[tuple[str, str]]) -> dict:
    """``--data`` pairs converted to the type of the loader's default (text when the default is text or None)."""
    defaults = dataset_options(dataset)
    typed = {}
    for key, value in pairs:
        if key not in defaults:
            raise ValueError(f"dataset {dataset!r} has no option {key!r}; valid options are {sorted(defaults)}")
        default = defaults[key]
        try:
            typed[key] = _typed(default)(value) if isinstance(default, (bool, int, float)) else value
        except (ValueError, argparse.ArgumentTypeError):
            raise ValueError(f"--data {key}={value}: option {key!r} of dataset {dataset!r} expects "
                             f"{type(default).__name__} (default {default!r}), got {value!r}") from None
    return typed


def method_option_owners() -> dict[str, list[str]]:
    """Option name -> the methods that have it."""
    owners: dict[str, list[str]] = {}
    for name in available_methods():
        for f in dataclasses.fields(method_class(name).Options):
            owners.setdefault(f.name, []).append(name)
    return owners


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mmlib train", description=__doc__.split("\n\n")[0], usage=USAGE)
    defaults = TrainConfig()
    parser.add_argument("--dataset", default=defaults.dataset, choices=available_datasets())
    parser.add_argument("--modalities", default=None, help="comma-separated modality names, e.g. fou,mor (default: the dataset's)")
    parser.add_argument("--data", action="append", type=parse_data_option, default=[], metavar="KEY=VALUE",
                        help="a dataset option, repeatable; e.g. --data noise=pix=2.0 --data split_seed=1")
    parser.add_argument("--method", default=defaults.method, choices=available_methods())
    parser.add_argument("--protocol", default=defaults.protocol, choices=sorted(PROTOCOLS),
                        help="the preset the run starts from (mmlib/protocols.py); flags below override it (default: book)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in {"dataset", "modalities", "dataset_options", "method", "method_options", "protocol"}:
            continue
        from_protocol = f.name in PROTOCOL_FIELDS
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=_typed(getattr(defaults, f.name)),
                            default=None if from_protocol else getattr(defaults, f.name),
                            help="(default: the protocol's)" if from_protocol else f"(default: {getattr(defaults, f.name)})")
    parser.add_argument("--results-dir", default=RUNS_DIR,
                        help=f"the results store the run's record goes to, shared with the chapters (default: {RUNS_DIR})")
    parser.add_argument("--checkpoint-dir", default=None,
                        help=f"per-epoch checkpoints, where the chapters find the run's weights (default: {WEIGHTS_DIR})")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint of an interrupted run with the same config")
    parser.add_argument("--force", action="store_true", help="train again even if a record of this config exists (stored beside it)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
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
            group.add_argument(f"--{f.name.replace('_', '-')}", dest=f"opt_{f.name}", type=_typed(f.default), default=None,
                               help=f"default {f.default!r}{also}")
    return parser


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TrainConfig:
    own = {f.name for f in dataclasses.fields(method_class(args.method).Options)}
    method_options = {}
    for key, value in vars(args).items():
        if key.startswith("opt_") and value is not None:
            name = key[4:]
            if name not in own:
                parser.error(f"--{name.replace('_', '-')} is not an option of --method {args.method}; "
                             f"its options are {sorted(own) or 'none'}")
            method_options[name] = value
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"dataset", "modalities", "dataset_options", "method", "method_options", "protocol"}
    given = {k: getattr(args, k) for k in fields if getattr(args, k) is not None}
    return TrainConfig.from_protocol(args.protocol, dataset=args.dataset, modalities=args.modalities,
                                     dataset_options=typed_data_options(args.dataset, args.data), method=args.method,
                                     method_options=method_options, **given)


def check_resumable(config: TrainConfig, checkpoint_dir: str) -> None:
    """``--resume`` needs a checkpoint of exactly this config; say which ones the folder holds otherwise."""
    path = checkpoint_path(checkpoint_dir, config)
    if path.exists():
        return
    same_run = sorted(p.name for p in Path(checkpoint_dir).glob(f"{config.method}-{config.dataset}-s{config.seed}-*.ckpt"))
    others = f"; it holds {', '.join(same_run)} of {config.method} on {config.dataset} seed {config.seed} with other options" if same_run else ""
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
          f"| best epoch {record['best_epoch']} | {record['wall_time_s']:.1f} s | record {args.results_dir}/{record['run_id']}.json")
    return 0
