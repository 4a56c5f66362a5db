"""mmlib.book's helpers for chapters, and the form of the chapters' sources in notebooks/."""

from __future__ import annotations

from pathlib import Path

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
