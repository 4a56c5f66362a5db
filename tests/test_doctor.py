"""``python -m mmlib doctor``: versions that belong together, extensions that load, clear failures."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mmlib import doctor


@pytest.mark.parametrize(
    "torch_version, audio, vision",
    [
        ("2.11.0", "2.11.0", "0.26.0"),  # the project's pins
        ("2.9.1", "2.9.1", "0.24.1"),
        ("2.14.1+cpu", "2.14.1", "0.29.1"),  # a local build tag does not change the release
    ],
)
def test_expected_partners_follow_the_release_matrix(torch_version, audio, vision):
    assert doctor.expected_partners(torch_version) == {"torchaudio": audio, "torchvision": vision}


def test_matching_trio_has_no_version_problem():
    assert doctor.version_problems({"torch": "2.11.0+cu130", "torchaudio": "2.11.0",
                                    "torchvision": "0.26.0+cu130"}) == []


def _never_import():
    raise AssertionError("an extension was loaded although the versions do not belong together")


def test_mismatched_torchaudio_names_both_packages_and_the_fix(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "installed_versions",
                        lambda: {"torch": "2.11.0", "torchaudio": "2.11.1", "torchvision": "0.26.0"})
    monkeypatch.setattr(doctor, "EXTENSION_CHECKS", {"torchaudio": (_never_import, "")})
    assert doctor.main([]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "torchaudio 2.11.1 does not belong to torch 2.11.0" in err[0]
    assert "needs torchaudio 2.11.0" in err[0]
    assert "pip install --force-reinstall -c constraints.txt torch torchaudio torchvision" in err[0]


def test_mismatched_torchvision_is_named(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "installed_versions",
                        lambda: {"torch": "2.11.0", "torchaudio": "2.11.0", "torchvision": "0.27.0"})
    monkeypatch.setattr(doctor, "EXTENSION_CHECKS", {"torchvision": (_never_import, "")})
    assert doctor.main([]) == 1
    err = capsys.readouterr().err
    assert "torchvision 0.27.0 does not belong to torch 2.11.0" in err and "needs torchvision 0.26.0" in err


def test_missing_package_is_named(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "installed_versions",
                        lambda: {"torch": "2.11.0", "torchaudio": None, "torchvision": "0.26.0"})
    assert doctor.main([]) == 1
    assert "torchaudio is not installed" in capsys.readouterr().err


def test_an_extension_that_fails_to_load_is_named_with_its_fix(monkeypatch, capsys):
    def broken():
        raise OSError("libtorchaudio.so: undefined symbol: torch_exception_get_what_without_backtrace\nmore detail")

    monkeypatch.setattr(doctor, "EXTENSION_CHECKS", {"torchaudio": (broken, "the fix command")})
    assert doctor.main([]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("mmlib doctor: torchaudio failed to load or run: libtorchaudio.so: undefined symbol: "
                   "torch_exception_get_what_without_backtrace. Fix: the fix command")


def test_doctor_passes_in_this_environment_and_prints_the_versions():
    result = subprocess.run([sys.executable, "-m", "mmlib", "doctor"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name in ("python", "torch", "torchaudio", "torchvision", "cuda", "device"):
        assert any(line.startswith(name + " ") for line in result.stdout.splitlines()), (f"no {name} line: "
                                                                                         f"{result.stdout}")
    assert [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("ok")] == [
        f"ok           {name}" for name in doctor.EXTENSION_CHECKS
    ]
