"""What a chapter does besides its experiment: set up, show a table, glue and save its summary.

A chapter's code cells should show the experiment; the bookkeeping around it lives here, so that
every chapter sets up, formats and saves the same way:

    paths = setup(results_dir, figures_dir)        # style, threads, the folders it writes to
    show(mean_std_table(frame, "method", {"fused": "fused_acc"}), "Test accuracy (%)")
    save_summary("main_comparison", output_dir, summary, records=records, main_best=best)

Tables follow one style (``book/_static/book.css`` adds padding and right-aligns numbers): no
index column, human headers, ``mean ± std`` in one cell, at most two decimals, p-values below
0.001 written as ``< 0.001``.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from tqdm import TqdmWarning

# tqdm.auto warns when it is imported without ipywidgets (the book kernel): filter before mmlib
# imports it, which the imports below do
warnings.filterwarnings("ignore", category=TqdmWarning)

from mmlib.experiments import mean_std  # noqa: E402
from mmlib.methods import display_name  # noqa: E402
from mmlib.numerics import numerics_info, pin_status  # noqa: E402
from mmlib.plots import save_figure, use_book_style  # noqa: E402
from mmlib.results import RUNS_DIR, weights_folder  # noqa: E402
from mmlib.runtime import cpu_thread_count  # noqa: E402


@dataclass(frozen=True)
class ChapterPaths:
    """Folders a chapter reads and writes: the results store, figures, and trained weights."""

    runs: Path
    figures: Path
    weights: Path


def setup(results_dir: str = RUNS_DIR, figures_dir: str = "book/figures") -> ChapterPaths:
    """The setup cell of a training chapter: figure style, quiet progress bars, CPU threads.

    Torch uses ``MMLIB_CPU_THREADS`` threads (default 1) for what the chapter computes outside
    training too (training sets them itself, :func:`mmlib.runtime.cpu_threads`), so a chapter's
    analyses are as reproducible as its runs. A kernel whose CPU numerics are not pinned
    (:mod:`mmlib.numerics`; numpy was imported before ``mmlib``) is told so in a warning. Paths relative to the
    repository root are resolved as :func:`repo_path` does; trained weights are read from
    :func:`mmlib.results.weights_folder`.
    """
    torch.set_num_threads(cpu_thread_count())
    numerics = numerics_info()
    if numerics["coverable"] and numerics["mode"] != "native" and not numerics["pinned"]:
        warnings.warn(f"this chapter's numbers may differ from the book's in the last bits: {pin_status(numerics)}",
                      stacklevel=2)
    use_book_style()
    runs = repo_path(results_dir)
    return ChapterPaths(runs=runs, figures=repo_path(figures_dir), weights=weights_folder(runs))


def mean_std_table(frame: pd.DataFrame, by: str | Sequence[str], columns: Mapping[str, str],
                   digits: int = 1, order: Sequence[Any] | None = None) -> pd.DataFrame:
    """One row per group of ``by``; each ``{header: column}`` as ``"mean ± std"`` over its rows.

    Columns missing from ``frame`` are left out; ``order`` (values of a single ``by``) fixes the
    row order. The group keys stay ordinary columns, so the table has no index to hide.
    """
    keys = [by] if isinstance(by, str) else list(by)
    present = {header: column for header, column in columns.items() if column in frame}
    rows = []
    for group, part in frame.groupby(keys, sort=False):
        group = group if isinstance(group, tuple) else (group,)
        row = dict(zip(keys, group))
        row.update({header: mean_std(part[column].mean(), part[column].std(), digits)
                    for header, column in present.items()})
        rows.append(row)
    table = pd.DataFrame(rows, columns=[*keys, *present])
    if order is not None:
        table = table.set_index(keys[0]).loc[[o for o in order if o in set(table[keys[0]])]]
        table = table.reset_index()
    return table


def p_value(p: float) -> str:
    """A p-value as text: ``< 0.001`` below 0.001, three decimals below 0.0095 (``0.006``), else two
    (0.0098 is ``0.01``, as 0.01 is: never ``0.010`` beside ``0.01``)."""
    if not np.isfinite(p):
        return "–"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.0095 else f"{p:.2f}"


def show(table: pd.DataFrame, caption: str, digits: int = 2, p_columns: Iterable[str] = (),
         method_columns: Iterable[str] = ("method", "baseline", "against")):
    """``table`` styled the book's way: caption, no index, numbers to ``digits``, p-values as text,
    methods by their names (:func:`mmlib.methods.display_name`: ``OGM-GE``, not ``ogm_ge``) in the
    cells of ``method_columns`` and in column headers.

    Columns named in ``p_columns`` (or whose header starts with ``p ``) go through
    :func:`p_value`; other numeric columns are rounded to ``digits`` decimals.
    """
    table = table.assign(**{column: table[column].map(display_name)
                            for column in method_columns if column in table.columns})
    table = table.rename(columns=display_name)
    p_columns = set(p_columns) | {c for c in table.columns if str(c).startswith("p ")}
    formats: dict[Any, Any] = {}
    for column in table.columns:
        if column in p_columns:
            formats[column] = p_value
        elif pd.api.types.is_float_dtype(table[column]):
            formats[column] = f"{{:.{digits}f}}"
    text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])
            and not re.match(r"^[-−<]?\d", str(table[c].iloc[0]) if len(table) else "")]
    styled = table.style.format(formats, na_rep="–").hide(axis="index").set_caption(caption)
    return styled.set_properties(subset=text, **{"text-align": "left"})


def placeholder_figure(text: str):
    """A small figure that states ``text``, for a numbered figure whose data is absent (say,
    user-supplied recordings): the figure, its number and caption still stand, and say why."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return fig


def format_p(p: float) -> str:
    """A p-value as the words prose uses: ``p = 0.004``, ``p = 0.31`` or ``p < 0.001``
    (:func:`p_value`'s digits; ``f"{p:.3f}"`` would print ``p = 0.000``)."""
    text = p_value(float(p))
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def glue_p(key: str, p: float) -> None:
    """Glue a p-value as :func:`format_p` writes it, for ``{glue:text}`key```."""
    from myst_nb import glue

    glue(key, format_p(p), display=False)


def paired_table(tests: Iterable[Mapping[str, Any]], difference: str, a: str = "method",
                 b: str = "against") -> pd.DataFrame:
    """:func:`mmlib.experiments.paired_test` results as rows with human headers, for :func:`show`:
    ``a`` and ``b`` (what was compared), ``difference`` (a − b), std. error, p (Wilcoxon)."""
    columns = {"a": a, "b": b, "mean_diff": difference, "se_diff": "std. error",
               "p_wilcoxon": "p (Wilcoxon)"}
    return pd.DataFrame(list(tests))[list(columns)].rename(columns=columns)


def glue_figure(key: str, fig, path: str | Path) -> None:
    """Save ``fig`` as PNG at ``path``, glue it as ``key`` for a numbered ``{glue:figure}``, and
    close it (the chapter shows it where the figure directive stands, not twice)."""
    import matplotlib.pyplot as plt
    from myst_nb import glue

    save_figure(fig, path)
    glue(key, fig, display=False)
    plt.close(fig)


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers, for glue and JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _json_value(value: Any) -> Any:
    """JSON for what ``json`` cannot write: numpy numbers and arrays as Python ones, else text."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return str(value)


def save_summary(name: str, output_dir: str | Path, summary: Mapping[str, Any],
                 records: Sequence[Mapping[str, Any]] | None = None, **glued: Any) -> None:
    """Glue ``glued`` (each ``key=value`` as a :func:`myst_nb.glue` name, not displayed) and write
    ``summary`` to ``OUTPUT_DIR/NAME.json``.

    ``records``: the results-store records the chapter read; their run ids are glued as
    ``provenance_records`` for the book's provenance page and saved in the JSON as ``run_ids``.
    Returns nothing, so that a final call in a cell prints nothing.
    """
    from myst_nb import glue

    for key, value in glued.items():
        glue(key, _plain(value), display=False)
    content = dict(summary)
    if records is not None:
        run_ids = sorted({r["run_id"] for r in records})
        glue("provenance_records", run_ids, display=False)
        content["run_ids"] = run_ids
    out = repo_path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(content, indent=1, default=_json_value))


def repo_path(path: str | Path) -> Path:
    """``path`` as given when absolute, else relative to the repository root (the folder above
    ``Path.cwd()`` that holds ``pyproject.toml``), so chapters share ``results/runs`` wherever
    papermill runs them."""
    path = Path(path)
    if path.is_absolute():
        return path
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "pyproject.toml").is_file():
            return folder / path
    return Path.cwd() / path


def pix_noise_spec(pix_noise: float) -> str:
    """A chapter's ``pix_noise`` parameter (mfeat) as a noise spec: ``"pix=2.0"``; ``""`` for 0."""
    return f"pix={pix_noise}" if pix_noise else ""


def data_options(dataset: str, modalities: str, noise: str = "", data_root: str = "",
                 pix_noise: float = 0.0) -> dict:
    """Dataset options for a run on ``modalities``: the ``noise`` spec (``"pix=2.0,fou=1"``)
    restricted to the views present, and ``data_root`` passed as the loader's ``cache`` (or
    ``root``) option. ``pix_noise`` (a chapter's parameter, 0 for none) adds ``pix=STD`` to the
    spec (:func:`pix_noise_spec`)."""
    from mmlib.data.registry import dataset_options as loader_options

    valid = loader_options(dataset)
    options: dict = {}
    views = {m.strip() for m in modalities.split(",") if m.strip()}
    noise = ",".join(part for part in (noise, pix_noise_spec(pix_noise)) if part)
    if noise and "noise" in valid:
        kept = [part for part in noise.split(",") if part.split("=")[0].strip() in views]
        if kept:
            options["noise"] = ",".join(kept)
    if data_root:
        key = next((k for k in ("cache", "root", "data_root") if k in valid), None)
        if key is None:
            raise ValueError(f"dataset {dataset!r} takes no data folder (its options are "
                             f"{sorted(valid)}); leave data_root empty")
        options[key] = data_root
    return options
