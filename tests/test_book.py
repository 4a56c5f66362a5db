"""mmlib.book's helpers for chapters, and the form of the chapters' sources in notebooks/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmlib.book import data_options, pix_noise_spec

ROOT = Path(__file__).resolve().parents[1]
MAX_LINE = 100


def test_no_notebook_source_line_is_longer_than_100_characters():
    too_long = [f"{path.relative_to(ROOT)}:{number}: {len(line)} characters"
                for path in sorted((ROOT / "notebooks").glob("*.py"))
                for number, line in enumerate(path.read_text().splitlines(), start=1)
                if len(line) > MAX_LINE]
    assert not too_long, "wrap these lines (the book shows code at 100 characters):\n" + "\n".join(
        too_long)


def test_pix_noise_is_the_noise_spec_of_the_pix_view():
    assert pix_noise_spec(2.0) == "pix=2.0"
    assert pix_noise_spec(0.0) == ""


def test_data_options_take_a_chapters_pix_noise_only_when_pix_is_in_the_run():
    assert data_options("mfeat", "pix,fou,mor", pix_noise=2.0) == {"noise": "pix=2.0"}
    assert data_options("mfeat", "fou,mor", pix_noise=2.0) == {}
    assert data_options("mfeat", "pix,fou", pix_noise=0.0) == {}
    assert data_options("mfeat", "pix,fou", "fou=1", pix_noise=4.0) == {"noise": "fou=1,pix=4.0"}


def test_glue_p_writes_p_values_the_way_prose_reads_them(monkeypatch):
    import myst_nb

    from mmlib.book import glue_p

    glued = {}
    monkeypatch.setattr(myst_nb, "glue", lambda key, value, display=True: glued.setdefault(key, value))
    for key, p in (("small", 0.0004), ("mid", 0.0042), ("large", 0.31), ("none", float("nan"))):
        glue_p(key, p)
    assert glued == {"small": "p < 0.001", "mid": "p = 0.004", "large": "p = 0.31", "none": "p = –"}


def test_paired_table_names_the_columns_for_readers():
    from mmlib.book import paired_table

    test = {"a": "ours", "b": "concat", "metric": "fused_acc", "seeds": 3, "mean_diff": 1.5, "se_diff": 0.2,
            "p_wilcoxon": 0.25, "p_ttest": 0.1}
    table = paired_table([test], "Δ accuracy", a="rule")
    assert list(table.columns) == ["rule", "against", "Δ accuracy", "std. error", "p (Wilcoxon)"]
    assert table.iloc[0].tolist() == ["ours", "concat", 1.5, 0.2, 0.25]


# --- what a reader of the book checks, on the chapters' sources -------------------------------

PLUMBING = re.compile(r"^(import \w|from \S+ import |.*\bsave_summary\()", re.MULTILINE)
SOLUTION = re.compile(r"```\{solution\}.*?\n```", re.DOTALL)
# what a solution may show without glue: roles ({glue:text}`key`, {numref}`fig`), code, math
NOT_PROSE = re.compile(r"\{[\w:-]+\}`[^`]*`|`[^`]*`|\$[^$]*\$")
# a measured number: a decimal (0.93, 85.3), a percentage (11%) or a signed difference (+1.2)
MEASURED = re.compile(r"(?<![\w.])(?:[+−-]?\d+\.\d+|\d+(?:\.\d+)?\s?%)(?!\w|\.\d)")
EXERCISE = re.compile(r"```\{exercise\}\s*\n:label: (\S+)(.*?)\n```", re.DOTALL)


def chapter_cells(path: Path) -> list[tuple[str, str, list[str]]]:
    """``(cell type, source, tags)`` of each cell of a jupytext percent-format chapter."""
    import jupytext

    return [(cell.cell_type, cell.source, list(cell.metadata.get("tags", [])))
            for cell in jupytext.read(path).cells]


def unglued_numbers(solution: str, given: str = "") -> list[str]:
    """The measured numbers a solution writes out instead of taking them from glue; a number that
    ``given`` (the exercise, the chapter's parameters) states is an input, not a measurement."""
    inputs = {n.replace(" ", "") for n in MEASURED.findall(given)} | set(re.findall(r"\d+(?:\.\d+)?", given))
    return [n for n in MEASURED.findall(NOT_PROSE.sub("", solution.split("\n", 2)[-1]))
            if n.replace(" ", "") not in inputs]


def test_unglued_numbers_finds_written_numbers_and_accepts_glue():
    written = "```{solution} ex\n:class: dropdown\n\nThe share rises from 11% to 33%, r = 0.93.\n```"
    glued = ("```{solution} ex\n:class: dropdown\n\nThe share rises from {glue:text}`a:.0f`% to "
             "{glue:text}`b:.0f`% over `-p epochs 30`, Eq. 11, $\\tau = 0.5$, seeds 0-9.\n```")
    assert unglued_numbers(written) == ["11%", "33%", "0.93"]
    assert unglued_numbers(glued) == []
    assert unglued_numbers(written, given="Rerun with `-p tau 0.93` and watch 11%.") == ["33%"]


def test_every_solution_takes_its_numbers_from_glue():
    """A solution that names a number shows one the book measured (glue), not one written in."""
    written = set()
    for path in sorted((ROOT / "notebooks").glob("*.py")):
        cells = chapter_cells(path)
        text = "\n".join(source for kind, source, _ in cells if kind == "markdown")
        parameters = "\n".join(source for _, source, tags in cells if "parameters" in tags)
        exercises = dict(EXERCISE.findall(text))
        for solution in SOLUTION.findall(text):
            label = solution.split("\n", 1)[0].split("}", 1)[1].strip()
            given = exercises.get(label, "") + "\n" + parameters
            written |= {f"{path.name} ({label}): {n}" for n in unglued_numbers(solution, given)}
    assert not written, "take these numbers from glue (myst_nb.glue in a folded cell): " + ", ".join(
        sorted(written))


def test_every_import_and_summary_cell_is_folded():
    """Imports and summary-saving cells are plumbing: folded (hide-input) in every chapter."""
    visible = [f"{path.name}: {source.splitlines()[0][:60]}"
               for path in sorted((ROOT / "notebooks").glob("*.py"))
               for kind, source, tags in chapter_cells(path)
               if kind == "code" and PLUMBING.search(source)
               and not {"hide-input", "remove-input", "remove-cell"} & set(tags)]
    assert not visible, "tag these cells hide-input:\n" + "\n".join(visible)


def test_the_glossary_names_every_registered_method_as_its_class_does():
    from mmlib.methods import available_methods, method_class

    text = (Path(__file__).resolve().parents[1] / "book" / "glossary.md").read_text()
    rows = {ident: name for name, ident in re.findall(r"^\| ([^|]+?) \| `([a-z_]+)` \|", text, flags=re.M)}
    assert rows == {m: method_class(m).display_name for m in available_methods()}
    assert all(method_class(m).display_name for m in available_methods())


def test_tables_name_methods_as_prose_does_and_leave_other_text_alone():
    import pandas as pd

    from mmlib.book import show

    table = pd.DataFrame({"method": ["ogm_ge", "w/o memory", "ours_rownorm"], "fused": [1.0, 2.0, 3.0],
                          "sum": [4.0, 5.0, 6.0], "baseline": ["concat", "sum", "late_fusion"],
                          "protocol": ["ogm_ge", "mla", "book"], "best": ["lfm", "mla", "mla"],
                          "against": ["tate", "fou", "qmf"]})
    shown = show(table, "caption").data
    assert list(shown["method"]) == ["OGM-GE", "w/o memory", "Ours (row-normalised)"]
    assert list(shown["baseline"]) == ["Concat", "Sum", "Late Fusion"]
    assert list(shown["protocol"]) == ["ogm_ge", "mla", "book"]  # a protocol's id, not a method
    assert list(shown["against"]) == ["TATE", "fou", "QMF"]  # paired_table's second column
    assert list(shown.columns) == ["method", "fused", "Sum", "baseline", "protocol", "best", "against"]
    assert list(show(table, "caption", method_columns=["best"]).data["best"]) == ["LFM", "MLA", "MLA"]
    assert list(table["method"]) == ["ogm_ge", "w/o memory", "ours_rownorm"]  # the caller's frame is unchanged


def test_legends_name_methods_as_tables_do():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mmlib.plots import legend_by_name

    fig, ax = plt.subplots()
    for label in ("ogm_ge", "fou", "ours_rownorm"):
        ax.plot([0, 1], [0, 1], label=label)
    legend_by_name(ax, frameon=False)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["OGM-GE", "fou", "Ours (row-normalised)"]
    plt.close(fig)


def test_tick_labels_name_methods_on_a_categorical_axis():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    from mmlib.plots import ticks_by_name

    frame = pd.DataFrame({"method": ["sum_calibrated", "w/o memory", "late_fusion"], "acc": [1.0, 2.0, 3.0]})
    fig, (left, right) = plt.subplots(1, 2)
    sns.barplot(data=frame, x="method", y="acc", ax=left)
    sns.barplot(data=frame, y="method", x="acc", ax=right)
    ticks_by_name(left, "x")
    ticks_by_name(right, "y")
    named = ["Sum (calibrated)", "w/o memory", "Late Fusion"]
    assert [t.get_text() for t in left.get_xticklabels()] == named
    assert [t.get_text() for t in right.get_yticklabels()] == named
    assert list(left.get_xticks()) == [0, 1, 2]  # the bars keep their places
    with pytest.raises(ValueError, match="axis must be 'x' or 'y', got 'z'"):
        ticks_by_name(left, "z")
    plt.close(fig)
