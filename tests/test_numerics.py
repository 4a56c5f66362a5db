"""The CPU numerics pin (mmlib.numerics) and the comparison of pinned and native runs (mmlib.drift)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmlib import doctor, numerics
from mmlib.drift import compare_records, count_numbers, numbers_differing, numerics_environment
from mmlib.numerics import OPT_OUT, PIN, numerics_info, pin_environment, pin_problems, pin_status

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
from provenance import machine_line, numerics_label  # noqa: E402


@pytest.fixture
def avx2_cpu(monkeypatch):
    monkeypatch.setattr(numerics, "cpu_supports_pin", lambda: True)


def test_pin_sets_every_unset_variable_and_keeps_the_users_own(avx2_cpu):
    environ = {"MKL_CBWR": "COMPATIBLE"}
    pin_environment(environ)
    assert environ == {**PIN, "MKL_CBWR": "COMPATIBLE"}


def test_native_opts_out_of_every_variable(avx2_cpu):
    environ = {OPT_OUT: "native"}
    pin_environment(environ)
    assert environ == {OPT_OUT: "native"}


def test_a_cpu_without_avx2_is_left_unpinned(monkeypatch):
    monkeypatch.setattr(numerics, "cpu_supports_pin", lambda: False)
    environ: dict[str, str] = {}
    pin_environment(environ)
    assert environ == {}  # OpenBLAS's Haswell kernels would stop on an illegal instruction


def test_an_unknown_mode_is_named_with_the_two_choices():
    with pytest.raises(ValueError, match=r"MMLIB_NUMERICS='fast' is not a numerics mode; choose pinned .* or native"):
        numerics.numerics_mode({OPT_OUT: "fast"})


@pytest.mark.parametrize("name, value",
                         [("MKL_CBWR", "AVX3"), ("MKL_CBWR", "AVX2,LOOSE"), ("ATEN_CPU_CAPABILITY", "avx3"),
                                         ("ONEDNN_MAX_CPU_ISA", "AVX9"), ("OPENBLAS_CORETYPE", "Skylake")])
def test_a_value_its_library_does_not_know_is_one_line_naming_it(name, value):
    (problem,) = pin_problems({**PIN, name: value})
    assert problem.startswith(f"{name}={value!r} is not a value its library knows") and f"use {PIN[name]}" in problem


def test_the_pins_own_values_and_mkls_strict_form_are_known():
    assert pin_problems(dict(PIN)) == [] and pin_problems({**PIN, "MKL_CBWR": "avx2,strict"}) == []


def test_this_test_process_runs_pinned():
    """conftest imports mmlib before numpy: MKL, ATen and every loaded OpenBLAS run their AVX2 path."""
    info = numerics_info()
    if not info["coverable"]:
        pytest.skip(f"the pin cannot cover this CPU: {pin_status(info)}")
    assert info["pinned"], pin_status(info)
    assert (info["mkl_branch"], info["cpu_capability"]) == ("AVX2", "AVX2")
    assert info["openblas"] and set(info["openblas"]) == {"Haswell"}
    assert pin_status(info).startswith("pinned to AVX2")


def _info(**changes) -> dict:
    info = {"mode": "pinned", "pinned": False, "coverable": True, "cpu": "EPYC", "cpu_capability": "AVX512",
            "blas": "mkl", "mkl_branch": "OFF", "openblas": ["SkylakeX"], "variables": dict(PIN)}
    return {**info, **changes}


def test_status_says_why_the_pin_is_not_in_force():
    assert pin_status(_info()).startswith("not pinned: numpy or torch computed before mmlib was imported")
    assert pin_status(_info(mode="native")).startswith("native (MMLIB_NUMERICS=native")
    assert pin_status(_info(variables={**PIN, "MKL_CBWR": "COMPATIBLE"})).startswith(
        "not pinned: the environment sets MKL_CBWR=COMPATIBLE; unset them to pin")
    assert pin_status(_info(coverable=False)).startswith("not pinned: the pin needs x86-64 with AVX2, FMA and torch's "
                                                         "MKL")


def test_doctor_names_an_unknown_pin_value_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "EXTENSION_CHECKS", {})
    monkeypatch.setenv("MKL_CBWR", "AVX3")
    assert doctor.main([]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "mmlib doctor: MKL_CBWR='AVX3' is not a value its library knows (it is ignored, and the CPU's own path runs); "
        "use AVX2 as the pin does, or unset it and let mmlib set it"]
    assert any(line.startswith("numerics     ") for line in captured.out.splitlines())


def test_a_child_of_the_native_environment_runs_native_and_the_environment_comes_back():
    before = {name: os.environ.get(name) for name in (*PIN, OPT_OUT)}
    with numerics_environment("native"):
        assert os.environ[OPT_OUT] == "native" and not any(name in os.environ for name in PIN)
        child = subprocess.run([sys.executable, "-c",
                                "import mmlib, os, json; from mmlib.numerics import numerics_info; "
                                "print(json.dumps(numerics_info()))"], capture_output=True, text=True)
    assert {name: os.environ.get(name) for name in (*PIN, OPT_OUT)} == before
    import json

    native = json.loads(child.stdout)
    assert native["mode"] == "native" and not native["pinned"] and native["variables"] == dict.fromkeys(PIN)
    with pytest.raises(ValueError, match="not a numerics mode"):
        with numerics_environment("fast"):
            pass


def test_numbers_differing_names_each_path_and_counts_numbers():
    stored = {"best_epoch": 2, "test": {"fused_acc": 81.0, "shapley": [0.5, -0.25]}, "flag": True}
    now = {"best_epoch": 3, "test": {"fused_acc": 81.0, "shapley": [0.5, -0.25000000000000006]}, "flag": True}
    assert numbers_differing(stored, now) == [".best_epoch: 2 -> 3", ".test.shapley[1]: -0.25 -> -0.25000000000000006"]
    assert numbers_differing(stored, now, rel=1e-9) == [".best_epoch: 2 -> 3"]
    assert count_numbers(stored) == 4  # the bool is not a number


def test_compare_records_pairs_runs_by_id():
    def record(run_id, method, best, fused, loss):
        return {"run_id": run_id, "config": {"method": method, "seed": 0}, "best_epoch": best, "probe_acc": None,
                "history": [{"train_loss": loss}], "test": {"fused_acc": fused}}

    pinned = [record("a", "concat", 2, 80.0, 1.0), record("b", "ours", 3, 70.0, 2.0)]
    native = [record("b", "ours", 2, 71.5, 2.0000001), record("a", "concat", 2, 80.0, 1.0)]
    table = compare_records(pinned, native)
    assert table[["run_id", "numbers", "differing", "best_epoch_moved"]].values.tolist() == [
        ["a", 3, 0, False], ["b", 3, 3, True]]
    assert table["fused_acc_change"].tolist() == [0.0, 1.5]


def test_provenance_names_the_machine_and_whether_it_was_pinned():
    info = _info(pinned=True, cpu_capability="AVX2", mkl_branch="AVX2", openblas=["Haswell", "Haswell"])
    assert numerics_label(info) == "pinned"
    assert numerics_label(_info()) == "not pinned (ATen AVX512, MKL OFF)"
    assert numerics_label({}) == "numerics not recorded"
    assert machine_line(info) == ("EPYC: torch CPU capability AVX2, BLAS mkl (MKL branch AVX2), OpenBLAS kernels "
                                  "Haswell/Haswell, pinned")


def test_every_chapter_imports_mmlib_before_anything_else():
    """A chapter opened in JupyterLab pins itself only if mmlib comes before numpy (OpenBLAS reads its
    variable when numpy loads it)."""
    import re

    for source in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py")):
        first = next(line for line in source.read_text().splitlines() if re.match(r"^(import|from) ", line))
        assert first.startswith("import mmlib "), f"{source.name}: first import is {first!r}, not mmlib"


def test_drift_is_summed_per_method_and_described_in_two_sentences():
    import pandas as pd

    from mmlib.drift import describe_drift, drift_by_method

    table = pd.DataFrame({"run_id": ["a", "b", "c"], "method": ["concat", "concat", "ours"], "seed": [0, 1, 0],
                          "numbers": [10, 10, 12], "differing": [0, 3, 2], "best_epoch_moved": [False, False, True],
                          "fused_acc_change": [0.0, -0.25, 0.5]})
    assert drift_by_method(table).values.tolist() == [["concat", 2, 1, 3, 0, 0.25], ["ours", 1, 1, 2, 1, 0.5]]
    verdicts = pd.DataFrame({"method": ["ours", "ours"], "metric": ["fused_acc", "head_acc_mor"],
                             "verdict moved": [False, True]})
    assert describe_drift(table, verdicts) == (
        "Of 3 runs, 2 store at least one other number (5 of 32 numbers in all); 1 of them picks another best "
        "epoch, and test fused accuracy moves by at most 0.50 points. Of the 2 paired verdicts of Ours against "
        "every other method (fused accuracy, mor's head accuracy; Wilcoxon over 1 seeds), 1 changes, listed "
        "above: those claims sit near the threshold on either path.")
