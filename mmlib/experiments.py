"""Run a grid of configurations over seeds, reusing stored runs, and summarise across seeds.

A chapter describes its runs as ``TrainConfig`` objects; :func:`run_grid` trains what the results
store lacks (or everything, with ``force``) and returns the records. :func:`mean_std` formats mean
and std over seeds; :func:`paired_test` compares two methods seed by seed (the seeds give
the pairing: same data split, same initial draw where shapes agree).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from mmlib.results import weights_folder
from mmlib.sweep import sweep_records
from mmlib.config import TrainConfig
from mmlib.train import stored_record, train

# Table 2 (left): the variants of the paper's method, each a registered method and its options.
# "full" is the literal Eq. 11 (``ours``); "row-normalised" is ``ours_rownorm``, the form to run;
# "reverse order" trains strongest first, the control for v2's claim that weak-to-strong is best.
ABLATION_VARIANTS: dict[str, tuple[str, dict]] = {
    "full": ("ours", {}),
    "row-normalised": ("ours_rownorm", {}),
    "w/o mapping": ("ours", {"mapping": "none"}),
    "w/o memory": ("ours", {"memory": "none"}),
    "random order": ("ours", {"order": "random"}),
    "fixed order": ("ours", {"order": "fixed"}),
    "reverse order": ("ours", {"order": "reverse"}),
}

# The rows of the paper's Table 2 (component ablation, CREMA-D) that each book variant reproduces.
PAPER_ABLATION_ROWS = {
    "full": "Full Model (Ours)",
    "w/o mapping": "w/o Cross-Modal Mapping",
    "w/o memory": "w/o Modality Memory Module",
    "random order": "Random Modality Ordering",
    "fixed order": "Fixed Modality Ordering",
}


def paper_ablation_deltas(paper: pd.DataFrame) -> dict[str, float]:
    """The paper's change of fused accuracy for each book variant, matched by name: variant − full
    (points), the book's sign convention, from ``data/paper_reference/table2_component_ablation_cremad.csv``.

    The paper's ``delta`` column is checked against its ``multi`` column, so a table with the other
    sign convention (or re-ordered rows) cannot slip in.
    """
    rows = paper.set_index("variant")
    missing = sorted(set(PAPER_ABLATION_ROWS.values()) - set(rows.index))
    if missing:
        raise ValueError(f"the paper's ablation table lacks the rows {missing}; expected "
                         f"{sorted(PAPER_ABLATION_ROWS.values())}")
    full = float(rows.loc[PAPER_ABLATION_ROWS["full"], "multi"])
    deltas = {}
    for variant, row in PAPER_ABLATION_ROWS.items():
        if variant == "full":
            continue
        delta = float(rows.loc[row, "delta"])
        if abs(delta - (float(rows.loc[row, "multi"]) - full)) > 0.015:
            raise ValueError(f"the paper's delta for {row!r} ({delta:+.2f}) is not its multi minus the full model's "
                             f"({float(rows.loc[row, 'multi']) - full:+.2f}); check the table's sign convention")
        deltas[variant] = delta
    return deltas


def comparison_configs(methods: Sequence[str], dataset: str, modalities: str, dataset_options: dict,
                       seeds: int, epochs: int | None = None, protocol: str = "book", **overrides) -> list[TrainConfig]:
    """Table 1's runs for one modality set: every method, seeds ``0 .. seeds - 1``.

    ``protocol`` names the preset of :mod:`mmlib.protocols` (``book``, ``ogm_ge``, ``mla``);
    ``epochs`` (None: the protocol's) and ``overrides`` (any TrainConfig field) change it.
    """
    if epochs is not None:
        overrides["epochs"] = epochs
    return [TrainConfig.from_protocol(protocol, dataset=dataset, modalities=modalities,
                                      dataset_options=dict(dataset_options),
                                      method=m, seed=s, **overrides) for m in methods for s in range(seeds)]


def ablation_configs(dataset: str, modalities: str, dataset_options: dict, seeds: int, epochs: int | None = None,
                     protocol: str = "book", **overrides) -> dict[str, list[TrainConfig]]:
    """Table 2 (left)'s runs: each variant of the method, seeds ``0 .. seeds - 1`` (``full`` and
    ``row-normalised`` are Table 1's ``ours`` and ``ours_rownorm`` runs).

    ``protocol``, ``epochs`` and ``overrides`` as in :func:`comparison_configs`.
    """
    if epochs is not None:
        overrides["epochs"] = epochs
    return {variant: [TrainConfig.from_protocol(protocol, dataset=dataset, modalities=modalities,
                                                dataset_options=dict(dataset_options),
                                                method=method, method_options=dict(options), seed=s, **overrides)
                      for s in range(seeds)]
            for variant, (method, options) in ABLATION_VARIANTS.items()}


def with_seeds(config: TrainConfig, seeds: Iterable[int]) -> list[TrainConfig]:
    return [dataclasses.replace(config, seed=int(s)) for s in seeds]


def run_grid(configs: Sequence[TrainConfig], results_dir: str | Path, force: bool = False, progress: bool = True,
             workers: int = 0) -> list[dict]:
    """Train every config whose record is not stored yet (all of them with ``force``); return all records.

    Each run's checkpoint (its weights) is kept in :func:`mmlib.results.weights_folder`, where
    :func:`mmlib.trained.train_model` finds it.

    ``workers = 0`` trains here, one run after another. ``workers = N`` trains through
    :func:`mmlib.sweep.sweep_records` instead: N processes per GPU on every visible GPU (N processes
    on a machine without one), each run claimed in the store and resumable, so a chapter rebuild on a
    multi-GPU machine uses every GPU and several rebuilds sharing the store never train a run twice.
    A sweep never retrains a stored run, so ``force`` needs ``workers = 0``.
    """
    if workers:
        if force:
            raise ValueError("force retrains stored runs in this process; set workers=0 with force (a sweep never "
                             "retrains a stored run)")
        return sweep_records(configs, results_dir, workers, progress)
    records = []
    for config in tqdm(configs, desc="runs", disable=not progress):
        records.append(train(config, results_dir=results_dir, checkpoint_dir=weights_folder(results_dir), force=force,
                             progress=False))
    return records


def stored_grid(configs: Sequence[TrainConfig], results_dir: str | Path, made_by: str) -> list[dict]:
    """The stored records of ``configs``, training none: what a page that judges other chapters'
    runs (the report) reads, so that it judges exactly those runs.

    ``made_by``: the command that makes them, named in the one-line error when the store lacks any.
    """
    records = [stored_record(results_dir, c) for c in configs]
    missing = [c.run_id for c, r in zip(configs, records) if r is None]
    if missing:
        raise FileNotFoundError(f"the results store {results_dir} lacks {len(missing)} of the {len(configs)} runs to "
                                f"judge (first: {missing[0]}); make them first with: {made_by}")
    return records


def mean_std(mean: float, std: float, digits: int = 1) -> str:
    """``"83.4 ± 1.2"``; std of a single seed is shown as a dash."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if np.isfinite(std) else f"{mean:.{digits}f} ± –"


def paired_test(frame: pd.DataFrame, column: str, a: str, b: str, metric: str) -> dict:
    """Paired comparison across seeds of rows ``frame[column] == a`` vs ``== b`` on ``metric``.

    Returns the mean difference (a - b), its standard error, the Wilcoxon signed-rank p-value and
    the paired t-test p-value, and the number of paired seeds.
    """
    left = frame[frame[column] == a].set_index("seed")[metric]
    right = frame[frame[column] == b].set_index("seed")[metric]
    seeds = left.index.intersection(right.index)
    if len(seeds) < 2:
        raise ValueError(f"paired_test needs at least two seeds run with both {a!r} and {b!r}; found {len(seeds)}")
    diff = (left.loc[seeds] - right.loc[seeds]).to_numpy()
    wilcoxon = stats.wilcoxon(diff).pvalue if np.any(diff != 0) else 1.0
    ttest = stats.ttest_1samp(diff, 0.0).pvalue if np.std(diff) > 0 else (1.0 if np.all(diff == 0) else 0.0)
    return {
        "a": a, "b": b, "metric": metric, "seeds": int(len(seeds)), "mean_diff": float(diff.mean()),
        "se_diff": float(diff.std(ddof=1) / np.sqrt(len(diff))), "p_wilcoxon": float(wilcoxon), "p_ttest": float(ttest),
    }


def beats_all(frame: pd.DataFrame, column: str, a: str, others: Sequence[str], metric: str) -> dict:
    """Does ``a`` beat every one of ``others`` on ``metric``? Paired tests of ``a`` against each, and
    their intersection-union combination: the claim "a beats all" is supported at level alpha when
    every pairwise test is (Berger 1982), so its p-value is the largest pairwise p and its effect the
    smallest mean difference."""
    return intersection_union({b: paired_test(frame, column, a, b, metric) for b in others})


def intersection_union(tests: Mapping[str, Mapping]) -> dict:
    """The intersection-union combination of paired tests of one ``a`` against each rival (the keys
    of ``tests``, each a :func:`paired_test` result): the rival ``closest`` to ``a`` (smallest mean
    difference), that difference, the largest p-value and the fewest seeds; what :func:`beats_all`
    returns, for tests a chapter has stored."""
    if not tests:
        raise ValueError("intersection_union needs at least one paired test; got none")
    tests = dict(tests)
    weakest = min(tests, key=lambda b: tests[b]["mean_diff"])
    return {"tests": tests, "closest": weakest, "mean_diff": tests[weakest]["mean_diff"],
            "p_wilcoxon": max(t["p_wilcoxon"] for t in tests.values()),
            "seeds": min(t["seeds"] for t in tests.values())}
