"""How far a result travels between CPU code paths: one grid trained pinned and native, compared.

The pin (:mod:`mmlib.numerics`) makes every AVX2 CPU give the book's bits. A reader who opts out
(``MMLIB_NUMERICS=native``), or reruns on a GPU (cuBLAS and cuDNN are other paths again), gets
other bits; this module measures what that does to the stored numbers and to the verdicts. It
trains the same configs in spawned processes under each numerics mode (a process cannot change
its own: MKL, ATen and OpenBLAS fix their path when first used), then compares the records number
by number (:func:`numbers_differing`, which the golden-record test also uses) and the paired
verdicts of :mod:`mmlib.verdicts` over seeds.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd

from mmlib.experiments import paired_test, run_grid
from mmlib.methods import display_name
from mmlib.numerics import OPT_OUT, PIN, numerics_mode
from mmlib.results import records_frame
from mmlib.config import TrainConfig
from mmlib.train import stored_record
from mmlib.verdicts import verdict

COMPARED = ("history", "best_epoch", "test", "probe_acc")  # what a record measured (the golden test's fields)


def numbers_differing(stored, now, path: str = "", rel: float = 0.0) -> list[str]:
    """Paths where ``now`` differs from ``stored`` (floats equal, or within ``rel`` relative), e.g.
    ``.test.fused_acc: 81.0 -> 81.5``, in ``stored``'s order; a key on one side only is ``.key: missing``."""
    if isinstance(stored, dict) and isinstance(now, dict):
        out = [f"{path}.{k}: missing" for k in [*stored, *now] if (k in stored) != (k in now)]
        return out + [d for k in stored if k in now for d in numbers_differing(stored[k], now[k], f"{path}.{k}", rel)]
    if isinstance(stored, list) and isinstance(now, list) and len(stored) == len(now):
        return [d for i, (a, b) in enumerate(zip(stored, now)) for d in numbers_differing(a, b, f"{path}[{i}]", rel)]
    if isinstance(stored, float) and isinstance(now, float):
        same = (stored == now or (math.isnan(stored) and math.isnan(now))
                or math.isclose(stored, now, rel_tol=rel, abs_tol=rel))
        return [] if same else [f"{path}: {stored!r} -> {now!r}"]
    return [] if stored == now else [f"{path}: {stored!r} -> {now!r}"]


def count_numbers(value) -> int:
    """How many numbers (bools excluded) ``value``'s nested dicts and lists hold."""
    if isinstance(value, dict):
        return sum(count_numbers(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_numbers(v) for v in value)
    return int(isinstance(value, (int, float)) and not isinstance(value, bool))


@contextlib.contextmanager
def numerics_environment(mode: str) -> Iterator[None]:
    """``os.environ`` as a child process of ``mode`` (``pinned`` or ``native``) needs it, restored after."""
    numerics_mode({OPT_OUT: mode})
    names = (*PIN, OPT_OUT)
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    if mode == "native":
        os.environ[OPT_OUT] = "native"
    else:
        os.environ.update(PIN)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _train_part(configs: list[TrainConfig], results_dir: str) -> None:
    run_grid(configs, results_dir, progress=False)


def train_with_numerics(configs: Sequence[TrainConfig], results_dir: str | Path, mode: str,
                        workers: int = 1) -> list[dict]:
    """The records of ``configs`` in ``results_dir``, those not stored yet trained by ``workers``
    spawned processes whose CPU numerics are ``mode``. A stored record made under the other mode
    is an error that names it (retrain it, or use another ``results_dir``)."""
    missing = [c for c in configs if stored_record(results_dir, c) is None]
    if missing:
        with numerics_environment(mode), ProcessPoolExecutor(
                max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_train_part, [missing[i::max(1, workers)] for i in range(max(1, workers))],
                          [str(results_dir)] * max(1, workers)))
    records = [stored_record(results_dir, c) for c in configs]
    wrong = [r["run_id"] for r in records if r["environment"].get("numerics", {}).get("mode") != mode]
    if wrong:
        raise ValueError(f"{len(wrong)} stored records in {results_dir} were not trained {mode} (e.g. {wrong[0]}); "
                         f"delete them or choose another results folder for the {mode} runs")
    return records


def compare_records(pinned: Sequence[dict], native: Sequence[dict]) -> pd.DataFrame:
    """One row per run (records paired by run id): how many of its measured numbers differ
    between the two modes, and how its best epoch and test fused accuracy moved."""
    by_id = {r["run_id"]: r for r in native}
    rows = []
    for a in pinned:
        b = by_id[a["run_id"]]
        kept_a, kept_b = ({k: r.get(k) for k in COMPARED} for r in (a, b))
        rows.append({"run_id": a["run_id"], "method": a["config"]["method"], "seed": a["config"]["seed"],
                     "numbers": count_numbers(kept_a), "differing": len(numbers_differing(kept_a, kept_b)),
                     "best_epoch_moved": a["best_epoch"] != b["best_epoch"],
                     "fused_acc_change": b["test"]["fused_acc"] - a["test"]["fused_acc"]})
    return pd.DataFrame(rows)


def compare_verdicts(pinned: Sequence[dict], native: Sequence[dict], forms: Sequence[str],
                     metrics: Sequence[tuple[str, bool]], alpha: float = 0.05) -> pd.DataFrame:
    """The verdict of each paired claim "form beats baseline on metric" (every other method of the
    grid as baseline; ``metrics``: ``(column, higher_is_better)``) from each mode's records."""
    frames = {"pinned": records_frame(list(pinned)), "native": records_frame(list(native))}
    methods = list(dict.fromkeys(r["config"]["method"] for r in pinned))
    rows = []
    for form in forms:
        for baseline in (m for m in methods if m != form):
            for metric, higher_is_better in metrics:
                row = {"method": form, "baseline": baseline, "metric": metric}
                for mode, frame in frames.items():
                    test = paired_test(frame, "method", form, baseline, metric)
                    row[f"p {mode}"] = test["p_wilcoxon"]
                    row[f"verdict {mode}"] = verdict(test, alpha, higher_is_better)
                rows.append(row)
    table = pd.DataFrame(rows)
    table["verdict moved"] = table["verdict pinned"] != table["verdict native"]
    return table


def drift_by_method(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`compare_records`' rows summed per method: runs, runs with any other number, numbers
    that differ, best epochs that moved, the largest change of test fused accuracy (points)."""
    return table.groupby("method", sort=False).agg(
        runs=("run_id", "size"), runs_differing=("differing", lambda d: int((d > 0).sum())),
        numbers_differing=("differing", "sum"), best_epoch_moved=("best_epoch_moved", "sum"),
        largest_accuracy_change=("fused_acc_change", lambda c: float(c.abs().max()))).reset_index()


def metric_name(column: str) -> str:
    """A records-frame column as prose: ``fused accuracy``, ``EDM``, ``mor's head accuracy``."""
    names = {"fused_acc": "fused accuracy", "edm": "EDM"}
    return names.get(column) or (f"{column.removeprefix('head_acc_')}'s head accuracy"
                                 if column.startswith("head_acc_") else column)


def describe_drift(table: pd.DataFrame, verdicts: pd.DataFrame) -> str:
    """Two sentences for readers: what moved in the records (:func:`compare_records`) and how many
    verdicts (:func:`compare_verdicts`) changed."""
    moved_epochs = int(table["best_epoch_moved"].sum())
    moved = int(verdicts["verdict moved"].sum())
    forms = " and ".join(map(display_name, dict.fromkeys(verdicts["method"]))) or "the method"
    metrics = ", ".join(metric_name(m) for m in dict.fromkeys(verdicts["metric"]))
    seeds = table.groupby("method")["seed"].nunique().min()
    change = (": no verdict of the comparison depends on the code path." if not moved else
              ", listed above: those claims sit near the threshold on either path.")
    return (f"Of {len(table)} runs, {int((table['differing'] > 0).sum())} store at least one other number "
            f"({int(table['differing'].sum()):,} of {int(table['numbers'].sum()):,} numbers in all); "
            f"{moved_epochs} of them pick{'s' if moved_epochs == 1 else ''} another best epoch, and test fused "
            f"accuracy moves by at most {table['fused_acc_change'].abs().max():.2f} points. Of the {len(verdicts)} "
            f"paired verdicts of {forms} against every other method ({metrics}; Wilcoxon over {seeds} seeds), "
            f"{moved} change{'s' if moved == 1 else ''}" + change)
