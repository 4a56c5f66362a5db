"""Refactors keep behaviour: a fixed set of runs gives the same records as when the set was stored.

``tests/golden/records.json`` holds, for every registered method (and the option forms whose code
paths differ: LFM's learned weight, CRMT's second step, Ours with recorded prefix features and with
batch granularity), the history, best epoch, test metrics and linear probes of a 3-epoch run on a
small synthetic dataset, written by ``python tests/test_records_unchanged.py --write`` at the
commit named in the file. The test trains them again and compares every number bitwise.

Bitwise equality holds on the same CPU kernels. The file stores the CPU capability it was written
with (``torch.backends.cpu.get_cpu_capability()``); on a machine whose vector kernels differ, the
comparison is made to 1e-5 relative instead, and the test says which comparison it made.
Deliberate changes of behaviour are listed in ``CHANGED`` with their reason, never absorbed silently.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmlib.train import TrainConfig, train  # noqa: E402

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
KEPT = ("history", "best_epoch", "test", "probe_acc")
# form -> (what differs, why); empty when the refactor changed no number
CHANGED: dict[str, tuple[str, str]] = {
    "crmt": ("history[1].train_loss", "the Lipschitz pass became an estimation step (Method.estimate): it no longer "
             "adds a zero loss per batch to the epoch's mean training loss, which it halved (0.0924 -> 0.1848); "
             "weights, validation and test metrics are bitwise unchanged"),
}


def config(form: str) -> TrainConfig:
    method, options = FORMS[form]
    return TrainConfig(dataset="synthetic", dataset_options=DATA, method=method, method_options=options,
                       epochs=3, batch_size=32, hidden_dim=16, seed=0, probe=True, device="cpu")


def measured(form: str) -> dict:
    record = train(config(form), results_dir=None, progress=False)
    return json.loads(json.dumps({k: record[k] for k in KEPT}))


def differences(stored, now, path: str = "", rel: float = 0.0) -> list[str]:
    """Paths where ``now`` differs from ``stored`` (floats equal, or within ``rel`` relative)."""
    if isinstance(stored, dict) and isinstance(now, dict):
        out = [f"{path}.{k}: missing" for k in stored.keys() ^ now.keys()]
        return out + [d for k in stored.keys() & now.keys() for d in differences(stored[k], now[k], f"{path}.{k}", rel)]
    if isinstance(stored, list) and isinstance(now, list) and len(stored) == len(now):
        return [d for i, (a, b) in enumerate(zip(stored, now)) for d in differences(a, b, f"{path}[{i}]", rel)]
    if isinstance(stored, float) and isinstance(now, float):
        same = stored == now or (math.isnan(stored) and math.isnan(now)) or math.isclose(stored, now, rel_tol=rel, abs_tol=rel)
        return [] if same else [f"{path}: {stored!r} -> {now!r}"]
    return [] if stored == now else [f"{path}: {stored!r} -> {now!r}"]


def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("form", list(FORMS))
def test_records_are_unchanged(form):
    stored = golden()
    rel = 0.0 if stored["cpu_capability"] == torch.backends.cpu.get_cpu_capability() else 1e-5
    found = differences(stored["records"][form], measured(form), form, rel)
    if form in CHANGED:
        field, why = CHANGED[form]
        assert found and all(field in d for d in found), f"{form}: expected a change only in {field} ({why}), found {found}"
    else:
        assert not found, f"{form} changed ({'bitwise' if rel == 0 else f'rel {rel}'} comparison): " + "; ".join(found[:5])


def test_the_comparison_detects_a_changed_number():
    record = golden()["records"]["concat"]
    changed = json.loads(json.dumps(record))
    changed["test"]["fused_acc"] = record["test"]["fused_acc"] + 1e-12
    assert differences(record, changed) == [f".test.fused_acc: {record['test']['fused_acc']!r} -> {changed['test']['fused_acc']!r}"]
    assert differences(record, record) == []


def test_every_registered_method_is_covered():
    from mmlib.methods.base import available_methods

    assert set(available_methods()) <= {config(form).method for form in FORMS}


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    GOLDEN.parent.mkdir(exist_ok=True)
    payload = {"commit": commit, "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
               "records": {form: measured(form) for form in FORMS}}
    GOLDEN.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {GOLDEN} ({len(FORMS)} runs at {commit})")
