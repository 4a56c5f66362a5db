"""Dataset registry: ``load_dataset("mfeat", modalities="fou,mor")`` for every dataset in the book."""

from __future__ import annotations

import argparse
import inspect
from typing import Callable

from mmlib.data.base import MultimodalDataset

_LOADERS: dict[str, Callable[..., MultimodalDataset]] = {}


def register_dataset(name: str) -> Callable[[Callable[..., MultimodalDataset]], Callable[..., MultimodalDataset]]:
    """Decorator that makes a loader reachable as ``load_dataset(name, ...)``."""

    def decorate(loader: Callable[..., MultimodalDataset]) -> Callable[..., MultimodalDataset]:
        if name in _LOADERS:
            raise ValueError(f"dataset {name!r} is registered twice")
        _LOADERS[name] = loader
        return loader

    return decorate


def available_datasets() -> list[str]:
    return sorted(_LOADERS)


def dataset_options(name: str) -> dict[str, object]:
    """The keyword options of a dataset's loader with their defaults."""
    loader = _get(name)
    return {p.name: p.default for p in inspect.signature(loader).parameters.values()}


def load_dataset(name: str, **options) -> MultimodalDataset:
    """Load a registered dataset; unknown names and unknown options raise with the valid choices."""
    loader = _get(name)
    valid = dataset_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(f"dataset {name!r} has no option {unknown[0]!r}; valid options are {sorted(valid)}")
    return loader(**options)


def parse_bool(text: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off) as a bool; an argparse error otherwise."""
    if text.lower() in {"1", "true", "yes", "on"}:
        return True
    if text.lower() in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def text_parser(default: object) -> Callable[[str], object]:
    """What turns a command-line text into a value of ``default``'s type (bool, int, float; else text)."""
    if isinstance(default, bool):
        return parse_bool
    if isinstance(default, (int, float)):
        return type(default)
    return str


def parse_data_option(text: str) -> tuple[str, str]:
    """``--data KEY=VALUE`` as ``(key, value)``; an argparse error without ``=``."""
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
            typed[key] = text_parser(default)(value) if isinstance(default, (bool, int, float)) else value
        except (ValueError, argparse.ArgumentTypeError):
            raise ValueError(f"--data {key}={value}: option {key!r} of dataset {dataset!r} expects "
                             f"{type(default).__name__} (default {default!r}), got {value!r}") from None
    return typed


def _get(name: str) -> Callable[..., MultimodalDataset]:
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; valid choices are {available_datasets()}")
    return _LOADERS[name]
