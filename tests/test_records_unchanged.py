"""Refactors keep behaviour: a fixed set of runs gives the same records as when the set was stored.

``tests/golden/records.json`` holds, for every registered method (and the option forms whose code
paths differ: LFM's learned weight, CRMT's second step, Ours with recorded prefix features and with
batch granularity), the history, best epoch, test metrics and linear probes of a 3-epoch run on a
small synthetic dataset, written by ``python tests/test_records_unchanged.py --write`` at the
commit named in the file. The test trains them again and compares every number bitwise.

Both the file and the test's runs are made under the CPU numerics' pin (:mod:`mmlib.numerics`:
MKL, ATen and oneDNN on their AVX2 paths), in a child process whose environment sets the pin
before torch computes anything, whatever the pytest process imported or was given. So the
comparison is bitwise on every x86-64 CPU with AVX2, Intel with AVX-512 or AMD without it. A
machine the pin cannot cover (no AVX2, an ARM Mac, a torch without MKL) skips the comparison and
says why: its kernels add in another order, and a 3-epoch run turns that into another best epoch.
Deliberate changes of behaviour are listed in ``CHANGED`` with their reason, never absorbed silently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmlib.drift import COMPARED, numbers_differing, numerics_environment  # noqa: E402
from mmlib.config import TrainConfig  # noqa: E402
from mmlib.train import train  # noqa: E402

GOLDEN = Path(__file__).with_name("golden") / "records.json"
DATA = {"num_samples": 160, "strengths": "2.0,0.6,0.3", "noise": "1.0,1.0,1.0"}
PLAIN = ("concat", "sum", "late_fusion", "ogm", "ogm_ge", "mla", "lfm", "ours", "ours_rownorm", "joint", "mmin", "qmf",
         "sum_calibrated", "tate")
FORMS = {  # form -> (method, options)
    **{name: (name, {}) for name in PLAIN},
    "lfm_learned": ("lfm", {"schedule": "learned"}),
    "crmt": ("crmt", {"joint_epochs": 1}),
    "ours_recorded": ("ours", {"prefix_features": "recorded"}),
    "ours_batch": ("ours", {"granularity": "batch"}),
}
# form -> (what differs, why); empty when the refactor changed no number
CHANGED: dict[str, tuple[str, str]] = {
    "qmf": ("train_loss", "issue 25: the loss history is normalised over the training rows only, as the authors' "
            "History (train_qmf.py l. 316-317), which moves the ranking margins; accuracies, EDM and probes unchanged"),
    "mmin": ("train_loss", "issue 25: each network's gradient is clipped on its own, and at 5.0 in the teacher's "
             "epochs (mmin_model.py l. 177-178, utt_fusion_model.py l. 116-117); accuracies, EDM and probes unchanged"),
    "tate": ("train_loss", "issue 25: reduction='code' weighs the tag term 0.1 / B beside per-sample means of the "
             "others, as the authors' sums and means (network.py l. 125-165); accuracies, EDM and probes unchanged"),
}


def config(form: str) -> TrainConfig:
    method, options = FORMS[form]
    return TrainConfig(dataset="synthetic", dataset_options=DATA, method=method, method_options=options,
                       epochs=3, batch_size=32, hidden_dim=16, seed=0, probe=True, device="cpu")


def measured(form: str) -> dict:
    record = train(config(form), results_dir=None, progress=False)
    return json.loads(json.dumps({k: record[k] for k in COMPARED}))


def golden() -> dict:
    return json.loads(GOLDEN.read_text())


def pinned_environment() -> dict[str, str]:
    """This process's environment with the pin forced on (a user's own values and opt-out dropped)."""
    with numerics_environment("pinned"):
        return {**os.environ, "TQDM_DISABLE": "1"}


def measure_pinned() -> dict:
    """Every form's record and the child's numerics, from one child process that runs pinned."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "measured.json"
        child = subprocess.run([sys.executable, __file__, "--measure", str(out)], env=pinned_environment(),
                               cwd=ROOT, capture_output=True, text=True)
        if child.returncode != 0:
            raise RuntimeError(f"the pinned child failed (exit {child.returncode}):\n{child.stderr[-3000:]}")
        return json.loads(out.read_text())


@pytest.fixture(scope="module")
def pinned() -> dict:
    measured_now = measure_pinned()
    numerics = measured_now["numerics"]
    if not numerics["pinned"]:
        pytest.skip(f"the CPU numerics pin cannot be in force here ({numerics['cpu']}, ATen "
                    f"{numerics['cpu_capability']}, BLAS {numerics['blas']}, MKL branch {numerics['mkl_branch']}): "
                    "the golden records are pinned to MKL's, ATen's and oneDNN's AVX2 paths, which need x86-64 "
                    "with AVX2 and torch's MKL")
    return measured_now


@pytest.mark.parametrize("form", list(FORMS))
def test_records_are_unchanged(form, pinned):
    found = numbers_differing(golden()["records"][form], pinned["records"][form], form)
    if form in CHANGED:
        field, why = CHANGED[form]
        assert found and all(field in d for d in found), (f"{form}: expected a change only in {field} ({why}), found "
                                                          f"{found}")
    else:
        assert not found, f"{form} changed (bitwise comparison, both pinned): " + "; ".join(found[:5])


def test_golden_records_were_written_pinned():
    assert golden()["numerics"]["pinned"], "rewrite tests/golden/records.json: it was written without the pin"


def test_the_comparison_detects_a_changed_number():
    record = golden()["records"]["concat"]
    changed = json.loads(json.dumps(record))
    changed["test"]["fused_acc"] = record["test"]["fused_acc"] + 1e-12
    assert numbers_differing(record, changed) == [(f".test.fused_acc: {record['test']['fused_acc']!r} -> "
                                                   f"{changed['test']['fused_acc']!r}")]
    assert numbers_differing(record, record) == []


def test_every_registered_method_is_covered():
    from mmlib.methods.base import available_methods

    assert set(available_methods()) <= {config(form).method for form in FORMS}


if __name__ == "__main__" and sys.argv[1:2] == ["--measure"]:  # the pinned child of measure_pinned
    from mmlib.numerics import numerics_info

    Path(sys.argv[2]).write_text(json.dumps({"numerics": numerics_info(),
                                             "records": {form: measured(form) for form in FORMS}}))
elif __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import torch

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    result = measure_pinned()
    if not result["numerics"]["pinned"]:
        sys.exit(f"not written: the pin is not in force on this machine ({result['numerics']})")
    payload = {"commit": commit, "torch": torch.__version__, "numerics": result["numerics"],
               "records": result["records"]}
    GOLDEN.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {GOLDEN} ({len(FORMS)} runs at {commit}, pinned on {result['numerics']['cpu']})")
