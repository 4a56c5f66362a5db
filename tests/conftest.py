"""Shared test setup: quiet progress bars, a headless plot backend, the shared data folder, and
``run_notebook`` for notebook smoke tests.

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


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository (or ``$MMLIB_SHARED_DATA``); skips when absent."""
    root = Path(os.environ.get("MMLIB_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
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
