"""The README's paper-to-code table points at files and functions that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def table_rows() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    start = text.index("| the paper | the code |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        paper, code = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((paper, code))
    return rows


def named_places(code: str) -> list[tuple[Path, str]]:
    """``(file, name)`` for every name listed after a ``path.py`:`` (parenthesised option values aside)."""
    places = []
    for segment in re.sub(r"\([^)]*\)", "", code).split(";"):
        path = None
        for token in re.findall(r"`([^`]+)`", segment):
            if token.endswith(".py"):
                path = ROOT / token
                places.append((path, ""))
            elif path is not None and re.fullmatch(r"[A-Za-z_][\w.]*", token):
                places.append((path, token))
    return places


def test_every_file_and_function_of_the_paper_to_code_table_exists():
    rows = table_rows()
    assert len(rows) >= 15
    missing = []
    for paper, code in rows:
        for path, name in named_places(code):
            if not path.is_file():
                missing.append(f"{paper}: {path.relative_to(ROOT)} does not exist")
            elif name:
                source = path.read_text()
                *owner, leaf = name.split(".")
                found = re.search(rf"^\s*(def|class) {leaf}\b|^{leaf} = ", source, re.M)
                if not found or (owner and not re.search(rf"^class {owner[0]}\b", source, re.M)):
                    missing.append(f"{paper}: {name} is not defined in {path.relative_to(ROOT)}")
    assert not missing, "\n".join(missing)


def test_the_check_finds_a_renamed_function():
    assert named_places("`mmlib/shapley.py`: `edm_sample` (`x`); `mmlib/orders.py`: `Ours.fused_by_orders`") == [
        (ROOT / "mmlib/shapley.py", ""), (ROOT / "mmlib/shapley.py", "edm_sample"),
        (ROOT / "mmlib/orders.py", ""), (ROOT / "mmlib/orders.py", "Ours.fused_by_orders")]


def train_commands() -> list[tuple[str, list[str]]]:
    """``(where, arguments)`` of every ``-m mmlib train`` command in the README and the book's pages."""
    import shlex

    commands = []
    for page in [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]:
        text = page.read_text().replace("\\\n", " ")
        for line in text.splitlines():  # continued lines joined
            found = re.search(r"-m mmlib train\b(.*)$", line)
            if found:
                commands.append((page.name, shlex.split(found.group(1).split("#")[0])))
    return commands


def test_every_documented_train_command_parses_into_a_config():
    """Flags, protocols, methods and ``--data`` keys of the documented commands exist (a dataset option the
    loader lacks, such as ``--data root=`` for ``cremad``, fails here rather than for a reader)."""
    from mmlib.cli import build_parser, config_from_args

    commands = [(where, args) for where, args in train_commands() if "--help" not in args]
    assert len(commands) >= 4
    parser = build_parser()
    for where, arguments in commands:
        try:
            config_from_args(parser.parse_args(arguments), parser)
        except (SystemExit, ValueError) as error:
            raise AssertionError(f"{where}: {' '.join(arguments)}: {error}") from None
