"""``mmlib.diagnose`` on a toy model written here (not from mmlib.methods), and the command."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import mmlib
from mmlib.__main__ import main as mmlib_main
from mmlib.data.base import MultimodalDataset
from mmlib.plots import SMALLEST_FONT_PT


class ToyModel(nn.Module):
    """The diagnose interface only: modality ``a`` is the label one-hot (logit 2), ``b`` a hint (logit 1)."""

    modalities = ("a", "b")

    def encode(self, inputs, modalities=None):
        return {m: inputs[m] for m in (modalities or self.modalities)}

    def logits_from_features(self, features, present):
        ref = next(iter(features.values()))
        logits = torch.zeros(ref.shape[0], 3)
        if "a" in present:
            logits = logits + 2 * features["a"]
        if "b" in present:
            logits = logits + features["b"]
        return logits


def toy_dataset():
    """30 samples, 3 classes; ``b`` names the right class for the first 2 of every 3 samples of a split."""
    labels = np.arange(30) % 3
    hint = np.where(np.arange(30) % 3 == 2, (labels + 1) % 3, labels)
    eye = np.eye(3, dtype=np.float32)
    splits = {"train": np.arange(0, 18), "val": np.arange(18, 24), "test": np.arange(24, 30)}
    return MultimodalDataset("toy", ("a", "b"), {"a": eye[labels], "b": eye[hint]}, labels, ("x", "y", "z"), splits)


def test_diagnose_a_model_written_in_the_test():
    result = mmlib.diagnose(ToyModel(), toy_dataset(), probe=False)
    table, summary = result.table, result.summary
    # test rows 24..29: labels 0,1,2,0,1,2; b right on rows 24, 25, 27, 28 (4 of 6)
    assert summary["fused_acc"] == 100.0 and table.loc["a", "head_acc"] == 100.0
    assert math.isclose(table.loc["b", "head_acc"], 100 * 4 / 6)
    # v(empty) = argmax of zero logits = class 0: 2 of 6 right. Shapley a = ((100 - 33.3) + (100 - 66.7)) / 2
    assert (math.isclose(table.loc["a", "shapley"], 50.0, abs_tol=1e-9)
            and math.isclose(table.loc["b", "shapley"], 50 / 3, abs_tol=1e-9))
    assert math.isclose(table.loc["a", "shapley_share"], 75.0)
    assert math.isclose(table.loc["a", "weight_norm"], 2 * math.sqrt(3), rel_tol=1e-6)
    assert math.isclose(table.loc["b", "weight_norm"], math.sqrt(3), rel_tol=1e-6)
    assert table.loc["a", "follow_rate"] == 100.0 and table.loc["b", "follow_rate"] == 0.0
    assert math.isclose(summary["disagreement"], 100 * 2 / 6)
    assert {"edm_sample", "edm_share", "probe_acc", "logit_scale", "feature_norm"} <= set(table.columns)
    figure = result.figure()
    assert len(figure.axes) == 4 and tuple(figure.get_size_inches()) == (8.0, 6.4)
    rows = {round(ax.get_position().y0, 3) for ax in figure.axes}
    columns = {round(ax.get_position().x0, 3) for ax in figure.axes}
    assert (len(rows), len(columns)) == (2, 2)  # two to a row: legible at a page's width
    assert figure.axes[1].get_legend().get_texts()[0].get_fontsize() >= SMALLEST_FONT_PT


def test_every_statistic_of_the_diagnosis_has_a_header():
    from mmlib.diagnosis import HEADERS

    table = mmlib.diagnose(ToyModel(), toy_dataset(), probe=False).table
    assert list(HEADERS) == list(table.columns)


def test_diagnose_with_probes_fits_one_per_modality():
    result = mmlib.diagnose(ToyModel(), toy_dataset())
    assert result.table.loc["a", "probe_acc"] == 100.0


def test_a_model_without_the_interface_is_named():
    with pytest.raises(ValueError, match="model has no 'modalities'; a model needs to be an nn.Module with"):
        mmlib.diagnose(nn.Linear(2, 2), toy_dataset())


def test_diagnose_command_on_a_stored_run(tmp_path, capsys):
    runs, weights = tmp_path / "runs", tmp_path / "weights"
    assert mmlib_main(["train", "--method", "sum", "--epochs", "1", "--modalities", "fou,mor", "--probe", "false",
                       "--results-dir", str(runs), "--checkpoint-dir", str(weights), "--quiet"]) == 0
    run_id = next(runs.glob("*.json")).stem
    capsys.readouterr()
    assert mmlib_main(["diagnose", run_id, "--results-dir", str(runs), "--weights-dir", str(weights), "--no-probe",
                       "--figure", str(tmp_path / "d.png")]) == 0
    out = capsys.readouterr().out
    assert f"{run_id} on test: fused" in out and "follow_rate" in out and (tmp_path / "d.png").is_file()
    assert mmlib_main(["diagnose", "nope", "--results-dir", str(runs)]) == 2
    assert "no record 'nope'" in capsys.readouterr().err
