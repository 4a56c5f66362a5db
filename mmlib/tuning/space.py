"""Search spaces: what ``python -m mmlib tune`` may change in a run, declared beside each method's options.

Each module of :mod:`mmlib.methods` declares ``SEARCH_SPACE = SearchSpace(name=Float(...), ...)``
right after its options dataclass: the method's own parameters (names of its ``Options`` fields),
each with a range that contains the authors' value and a ``source`` saying where that value comes
from. Every space also holds the :data:`COMMON` parameters of the optimiser, ``lr`` and
``weight_decay`` (fields of :class:`mmlib.train.TrainConfig`). A module that registers several
methods (``ogm`` and ``ogm_ge``; ``ours`` and ``ours_rownorm``) declares one space for all of them.

This module imports nothing from mmlib, so the method modules can import it (and Optuna only
inside :meth:`distribution`, so the methods import without it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class Float:
    """A real parameter in ``[low, high]``, sampled on a log scale when ``log``."""

    low: float
    high: float
    source: str
    log: bool = False

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def distribution(self):
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log)


@dataclasses.dataclass(frozen=True)
class Int:
    """A whole-number parameter in ``[low, high]``."""

    low: int
    high: int
    source: str

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def suggest(self, trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high)

    def distribution(self):
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high)


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of ``choices``."""

    choices: tuple
    source: str

    def contains(self, value: Any) -> bool:
        return value in self.choices

    def suggest(self, trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.choices))

    def distribution(self):
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(list(self.choices))


Parameter = Float | Int | Choice

# The optimiser's parameters, tuned for every method. lr: the book's Adam 1e-3 (mmlib.protocols),
# the paper's AdamW 1e-4 (Sec. 5, implementation details) and the peers' SGD 1e-3 (OGM-GE, MLA code)
# lie inside; weight_decay: 1e-4, the book's and the peers' (OGM-GE main.py, MLA's configs).
COMMON: dict[str, Parameter] = {
    "lr": Float(1e-4, 1e-2, log=True,
                source="book protocol Adam 1e-3; paper Sec. 5 AdamW 1e-4; OGM-GE/MLA code SGD 1e-3"),
    "weight_decay": Float(1e-6, 1e-2, log=True, source="book protocol and OGM-GE/MLA code: 1e-4"),
}


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The method's own parameters (``own``: option name -> range); :attr:`parameters` adds :data:`COMMON`."""

    own: dict[str, Parameter]

    def __init__(self, **own: Parameter) -> None:
        clash = sorted(set(own) & set(COMMON))
        if clash:
            raise ValueError(f"search space: {clash[0]!r} is a common parameter; declare only the method's own options")
        object.__setattr__(self, "own", dict(own))

    @property
    def parameters(self) -> dict[str, Parameter]:
        return {**COMMON, **self.own}

    def suggest(self, trial) -> tuple[dict, dict]:
        """Draw every parameter from an Optuna ``trial``: ``(common, own)``, e.g. ``({"lr": ..}, {"tau": ..})``."""
        drawn = {name: parameter.suggest(trial, name) for name, parameter in self.parameters.items()}
        return {k: drawn[k] for k in COMMON}, {k: drawn[k] for k in self.own}

    def outside(self, defaults: dict) -> list[str]:
        """The parameters whose value in ``defaults`` lies outside their range (``name=value``)."""
        return [f"{name}={defaults.get(name)!r}" for name, parameter in self.parameters.items()
                if not parameter.contains(defaults.get(name))]

    def describe(self) -> dict:
        """The space as plain data (stored in a tuned file beside the values it produced)."""
        def plain(parameter):
            fields = dataclasses.asdict(parameter)
            fields["choices"] = list(fields["choices"]) if "choices" in fields else None
            return {"kind": type(parameter).__name__.lower(), **{k: v for k, v in fields.items() if v is not None}}
        return {name: plain(parameter) for name, parameter in self.parameters.items()}

    def digest(self) -> str:
        """12 hex digits that change when any range or choice changes (not when a ``source`` is reworded)."""
        ranges = {name: {k: v for k, v in d.items() if k != "source"} for name, d in self.describe().items()}
        return hashlib.sha256(json.dumps(ranges, sort_keys=True).encode()).hexdigest()[:12]

