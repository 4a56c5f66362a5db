"""Shared test setup: quiet progress bars, a headless plot backend, the shared data folder,
``run_notebook`` for notebook smoke tests, and ``smoke_book``: every chapter smoke-run once per session.

A chapter's smoke test reads like::

    def test_quickstart_runs(run_notebook):
        result = run_notebook("quickstart", {"split_seeds": 1})
        assert 50 < result.glued["quickstart_all_views_accuracy"] <= 100
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

import mmlib  # noqa: E402,F401  first: pins the CPU numerics before numpy or torch loads (mmlib.numerics)

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    """``../shared/data`` beside the repository, or ``$MMLIB_SHARED_DATA``; it may not exist."""
    return Path(os.environ.get("MMLIB_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """:func:`shared_data_root`; skips when absent."""
    root = shared_data_root()
    if not root.is_dir():
        pytest.skip(f"shared real data not found at {root}; set MMLIB_SHARED_DATA to the folder holding fsdd/ and "
                    "cremad_meta/")
    return root


@dataclass
class NotebookRun:
    """An executed chapter: the notebook file, its parsed cells, the values it glued, its output folder."""

    path: Path
    notebook: Any
    glued: dict[str, Any]
    output_dir: Path
    results_dir: Path

    def markdown(self, key: str) -> str:
        """The text a ``glue:md`` key holds (``glued`` has only the object's repr for it)."""
        for cell in self.notebook.cells:
            for output in cell.get("outputs", []):
                scrapbook = output.get("metadata", {}).get("scrapbook", {})
                if scrapbook.get("name") == key:  # glue(..., display=False) prefixes the mime types
                    return output["data"][scrapbook.get("mime_prefix", "") + "text/markdown"]
        raise KeyError(key)


def execute_chapter(name: str, params: dict[str, Any] | None, tmp_path: Path) -> NotebookRun:
    """Run ``notebooks/NAME.py`` with ``params`` into ``tmp_path``.

    ``output_dir``, ``figures_dir`` and ``results_dir`` default to folders under ``tmp_path`` when the chapter declares
    them, so a smoke run never writes into ``results/`` or ``book/``.
    """
    import nbformat

    from mmlib.chapters import chapter_parameters, glued_values, run_chapter

    declared = chapter_parameters(name)
    params = dict(params or {})
    for key in ("output_dir", "figures_dir", "results_dir"):
        if key in declared and key not in params:
            params[key] = str(tmp_path / key)
    path = run_chapter(name, params, output_dir=tmp_path / "executed")
    return NotebookRun(path, nbformat.read(str(path), as_version=4), glued_values(path),
                       Path(params.get("output_dir", tmp_path)), Path(params.get("results_dir", tmp_path)))


@pytest.fixture
def run_notebook(tmp_path: Path) -> Callable[..., NotebookRun]:
    """``run_notebook(name, params)`` -> :class:`NotebookRun` (executed in this test's ``tmp_path``)."""

    def run(name: str, params: dict[str, Any] | None = None) -> NotebookRun:
        return execute_chapter(name, params, tmp_path)

    return run


# Tiny parameters for every chapter: a smoke run of the whole book in a few minutes on 2 cores. Where
# a test reads a chapter's output from ``smoke_book``, these are the parameters its assertions assume.
SMOKE = {
    "quickstart": {"modalities": "fou,mor", "split_seeds": 1, "max_iter": 200, "epochs": 2},
    "method": {},
    # one view set, three methods, one epoch, under a protocol other than the book's (mla: SGD and
    # 512-wide features): the report judges these runs (it trains none) and must do so under the
    # protocol it is given (test_one_verdict)
    "main_comparison": {"seeds": 2, "epochs": 1, "view_sets": "fou,mor", "protocol": "mla",
                        "methods": "concat,ours,ours_rownorm"},
    "component_ablation": {"seeds": 2, "epochs": 1, "modalities": "fou,mor", "protocol": "mla"},
    "modality_ablation": {"seeds": 2, "epochs": 2},
    "frozen_backbones": {"seeds": 2, "epochs": 2, "methods": "joint,concat,ours", "collapse_seeds": 2},
    "contribution_evolution": {"seeds": 2, "epochs": 2, "methods": "concat,ours",
                               "correlation_methods": "concat,ours"},
    "feature_distributions": {"seeds": 2, "epochs": 2},
    "order_upper_bound": {"seeds": 2, "epochs": 2},
    # Table 4 on six seeds for the methods the book runs on all of them: enough for a verdict
    "missing_modalities": {"seeds": 6, "baseline_seeds": 2, "epochs": 2, "rates": "0,0.5"},
    "av_evidence": {"seeds": 2, "epochs": 1, "methods": "concat,ours", "samples_per_class": 20},
    "decision_layer": {"seeds": 6, "epochs": 2, "stat_seeds": 2, "methods": "sum,concat,ours,sum_calibrated"},
    "ambiguities": {"seeds": 2, "epochs": 2, "eval_batch_sizes": "1,64,0"},
    "performance": {"methods": "concat,ours", "epochs": 2, "repeats": 1, "max_modalities": 3, "samples": 32,
                    "paper_samples": 2, "scale_samples": 12, "drift_methods": "concat,ours", "drift_seeds": 2,
                    "drift_epochs": 1, "drift_workers": 1},
    "tuning": {"seeds": 2, "epochs": 2, "view_sets": "fou,mor", "methods": "concat,ours,ours_rownorm",
               "tuned_dir": str(REPO_ROOT / "data" / "tuned")},
    "report": {"seeds": 2, "epochs": 1, "view_sets": "fou,mor", "ablation_modalities": "fou,mor", "protocol": "mla",
               "methods": "concat,ours,ours_rownorm"},
}

# What a chapter reads that other chapters make (notebooks/report.py: their runs and stored JSONs)
READS = {"report": ("main_comparison", "component_ablation", "av_evidence", "frozen_backbones",
                    "missing_modalities", "decision_layer", "tuning")}


class SmokeBook:
    """Chapters smoke-run on :data:`SMOKE`'s parameters, each at most once, into one results store, one
    output folder and one figures folder, as ``make book`` lays them out; a chapter's :data:`READS` run
    first. ``stored_before_report``: the store's record files just before the report ran."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.results_dir = work / "results" / "runs"
        self.output_dir = work / "results" / "chapters"
        self.figures_dir = work / "book" / "figures"
        self.runs: dict[str, NotebookRun] = {}
        self.stored_before_report: list[str] | None = None

    def run(self, name: str) -> NotebookRun:
        """The chapter's smoke run, made on first use."""
        from mmlib.chapters import chapter_parameters

        if name not in self.runs:
            for feeding in READS.get(name, ()):
                self.run(feeding)
            folders = {"results_dir": str(self.results_dir), "output_dir": str(self.output_dir),
                       "figures_dir": str(self.figures_dir)}
            if os.environ.get("MMLIB_SHARED_DATA"):  # else the chapters' default, ../shared/data/fsdd
                folders["fsdd_root"] = str(shared_data_root() / "fsdd")
            declared = chapter_parameters(name)
            params = {**{k: v for k, v in folders.items() if k in declared}, **SMOKE[name]}
            if name == "report":
                self.stored_before_report = sorted(p.name for p in self.results_dir.glob("*.json"))
            self.runs[name] = execute_chapter(name, params, self.work)
        return self.runs[name]

    def summary(self, name: str) -> dict:
        """What the chapter stored (``output_dir/NAME.json``), running it first if it has not run."""
        import json

        self.run(name)
        return json.loads((self.output_dir / f"{name}.json").read_text())

    def records(self, name: str) -> list[dict]:
        """The stored records of the runs the chapter lists in its summary's ``run_ids`` (every one must
        be in the store)."""
        from mmlib.results import find_record

        run_ids = self.summary(name)["run_ids"]
        records = [find_record(self.results_dir, run_id) for run_id in run_ids]
        missing = [run_id for run_id, record in zip(run_ids, records) if record is None]
        assert not missing, f"{name} lists runs the store lacks: {missing}"
        return records


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> SmokeBook:
    """The session's :class:`SmokeBook` (use it from tests marked slow)."""
    return SmokeBook(tmp_path_factory.mktemp("smoke_book"))
