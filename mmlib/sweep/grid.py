"""The sweep's grid: a TOML file (or the command line's entries) expanded into checked runs.

The layout is in :mod:`mmlib.sweep`'s docstring; :func:`expand_grid` turns it into
:class:`mmlib.config.TrainConfig` runs, checked the way ``python -m mmlib train`` checks its flags,
and :func:`write_grid` writes runs back as ``[[run]]`` entries.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import tomllib
from pathlib import Path
from typing import Any, Iterable

from mmlib.config import TrainConfig, without_retired
from mmlib.data import available_datasets
from mmlib.data.registry import typed_data_options
from mmlib.methods import method_class, parse_methods

DEFAULTS = TrainConfig()
TRAIN_FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]
GRID_KEYS = ("methods", "datasets", "seeds", "train", "options", "data", "run")
OWN_KEYS = ("method", "dataset", "seed", "method_options", "dataset_options")  # grid keys of their own, not [train]


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
    """``fields`` without the retired fields that a file exported before they went holds
    (:func:`mmlib.config.without_retired`)."""
    try:
        return without_retired(fields)
    except ValueError as error:
        raise GridError(f"{where}: {error}; drop it from the entry") from None


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
        option_defaults = {f.name: f.default
                           for f in dataclasses.fields(method_class(values.get("method", DEFAULTS.method)).Options)}
        values["method_options"] = {k: _typed_value(v, option_defaults.get(k), f"{where}: option {k}")
                                    for k, v in fields.get("method_options", {}).items()}
        values["dataset_options"] = typed_data_options(
            dataset, [(k, str(v)) for k, v in fields.get("dataset_options", {}).items()])
        return TrainConfig.from_protocol(values.pop("protocol", DEFAULTS.protocol), **values)
    except (ValueError, TypeError, argparse.ArgumentTypeError) as error:
        raise GridError(f"{where}: {error}") from None


def expand_grid(spec: dict, source: str = "grid") -> list[TrainConfig]:
    """The runs of a grid (the TOML layout of the module docstring), each checked, in a stable order, without
    repeats."""
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
        for table, names, what in ((spec.get("options", {}), methods, "method"),
                                   (spec.get("data", {}), datasets, "dataset")):
            stray = [k for k in table if k not in names]
            if stray:
                raise GridError(f"{source}: options for {what} {stray[0]!r}, which the grid does not run (its {what}s: "
                                f"{names})")
        seeds = parse_seeds(spec.get("seeds", [DEFAULTS.seed]), f"{source}: seeds")
        for dataset in datasets:
            for data in _axes(spec.get("data", {}).get(dataset, {})):
                for fixed in _axes(train_table):
                    for method in methods:
                        for options in _axes(spec.get("options", {}).get(method, {})):
                            configs += [build_config({**fixed, "dataset": dataset, "dataset_options": data,
                                                      "method": method,
                                                      "method_options": options, "seed": seed},
                                                     f"{source} ({method} on {dataset})") for seed in seeds]
    elif any(k in spec for k in ("datasets", "seeds", "options", "data")) or train_table:
        raise GridError(f"{source}: the grid names no methods; add methods = [...] (or --methods), or list [[run]] "
                        "entries")
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
    lines = [(f"# {len(configs)} runs exported by mmlib.sweep.write_grid; run them with python -m mmlib sweep "
              f"{Path(path).name}")]
    for config in configs:
        lines += ["", "[[run]]"] + [f"{k} = {_toml(v)}" for k, v in dataclasses.asdict(config).items() if v is not None]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def read_grid_file(path: str | Path) -> dict:
    """The grid file at ``path`` (TOML, the layout of the module docstring); one clear error when it is
    missing or not TOML."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise GridError(f"grid file {path} not found") from None
    except tomllib.TOMLDecodeError as error:
        raise GridError(f"{path} is not valid TOML: {error}") from None
