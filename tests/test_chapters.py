"""mmlib.chapters: the chapter list, parameter checking, and the ``python -m mmlib chapter`` command."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmlib import chapters
from mmlib.chapters import ChapterError, Parameter, check_parameters, coerce, parse_cli_value

ROOT = Path(__file__).resolve().parents[1]


def test_every_listed_chapter_has_a_notebook_and_a_toc_entry():
    toc = (ROOT / "book" / "_toc.yml").read_text()
    assert chapters.CHAPTERS, "the book needs at least one chapter"
    for name in chapters.CHAPTERS:
        assert (ROOT / "notebooks" / f"{name}.py").is_file()
        assert f"chapters/{name}.ipynb" in toc, f"book/_toc.yml lacks chapters/{name}.ipynb"


def test_every_chapter_declares_typed_parameters_with_comments():
    for name in chapters.CHAPTERS:
        params = chapters.chapter_parameters(name)
        assert params, f"{name}: parameters cell is empty"
        for p in params.values():
            assert p.help, f"{name}: parameter {p.name} has no comment"


def test_unknown_parameter_is_rejected_naming_it_and_the_valid_ones():
    with pytest.raises(ChapterError) as caught:
        chapters.run_chapter("quickstart", {"epoch": 5}, output_dir=Path("/nonexistent-never-written"))
    message = str(caught.value)
    assert "'epoch'" in message
    assert "split_seeds: int = 3" in message
    assert "modalities: str = 'pix,fac,kar,fou,zer,mor'" in message


def test_unknown_chapter_lists_the_chapters():
    with pytest.raises(ChapterError, match=r"no chapter 'nope'.*quickstart"):
        chapters.run_chapter("nope", {})


def test_cli_values_are_read_like_papermill():
    assert parse_cli_value("5") == 5 and isinstance(parse_cli_value("5"), int)
    assert parse_cli_value("2.5") == 2.5
    assert parse_cli_value("True") is True and parse_cli_value("None") is None
    assert parse_cli_value("pix=2.0") == "pix=2.0"


def test_values_are_coerced_to_the_type_of_the_default():
    assert coerce(Parameter("noise", "", "str", ""), 2) == "2"
    assert coerce(Parameter("std", 2.0, "float", ""), 5) == 5.0
    assert coerce(Parameter("force", False, "bool", ""), "true") is True
    assert coerce(Parameter("epochs", 3, "int", ""), 4.0) == 4
    with pytest.raises(ChapterError, match=r"'epochs' expects int"):
        coerce(Parameter("epochs", 3, "int", ""), "many")
    with pytest.raises(ChapterError, match=r"'epochs' expects int"):
        coerce(Parameter("epochs", 3, "int", ""), 2.5)


def test_check_parameters_returns_coerced_values():
    declared = {"epochs": Parameter("epochs", 3, "int", "passes"), "noise": Parameter("noise", "", "str", "")}
    assert check_parameters("x", declared, {"epochs": "7", "noise": 1.5}) == {"epochs": 7, "noise": "1.5"}


def test_list_prints_chapters_with_their_parameters(capsys):
    assert chapters.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("quickstart\n")
    assert "split_seeds: int = 3" in out and "#" in out


def test_main_reports_an_unknown_parameter_as_an_error(capsys):
    assert chapters.main(["quickstart", "-p", "epoch", "5"]) == 2
    assert "no parameter 'epoch'" in capsys.readouterr().err


def test_main_needs_a_name_or_all(capsys):
    assert chapters.main([]) == 2
    assert "--all" in capsys.readouterr().err


def test_python_dash_m_mmlib_chapter_dispatches_here(capsys):
    from mmlib.__main__ import main

    assert main(["chapter", "--list"]) == 0
    assert "quickstart" in capsys.readouterr().out
