"""Dataset registry: ``load_dataset("mfeat", modalities="fou,mor")`` for every dataset in the book."""

from __future__ import annotations

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


def _get(name: str) -> Callable[..., MultimodalDataset]:
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; valid choices are {available_datasets()}")
    return _LOADERS[name]
