"""Spoken digits + handwritten digits (fsdd_av) on the real FSDD recordings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mmlib.data import load_dataset
from mmlib.data.fsdd import add_noise_at_snr, degrade_images

SHARED = Path(os.environ.get("MMLIB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
FSDD = SHARED / "fsdd"
needs_fsdd = pytest.mark.skipif(not (FSDD / "recordings").is_dir(),
                                reason=f"FSDD recordings not found under {FSDD} (set MMLIB_SHARED_DATA)")


@needs_fsdd
def test_official_test_split_is_takes_0_to_4_and_images_match_labels():
    ds = load_dataset("fsdd_av", root=str(FSDD))
    assert ds.inputs["audio"].shape == (3000, 1, 129, 63) and ds.inputs["audio"].dtype == np.float16
    assert ds.inputs["image"].shape == (3000, 1, 8, 8)
    assert {s: len(v) for s, v in ds.splits.items()} == {"train": 2430, "val": 270, "test": 300}
    assert np.bincount(ds.labels[ds.splits["test"]]).tolist() == [30] * 10
    assert np.isfinite(ds.inputs["audio"].astype(np.float32)).all()


@needs_fsdd
def test_test_images_never_appear_in_training():
    ds = load_dataset("fsdd_av", root=str(FSDD))
    flat = ds.inputs["image"].reshape(3000, -1)
    train = {row.tobytes() for row in flat[ds.splits["train"]]}
    test = {row.tobytes() for row in flat[ds.splits["test"]]}
    assert not train & test


@needs_fsdd
def test_weakening_changes_only_the_weakened_side():
    clean = load_dataset("fsdd_av", root=str(FSDD))
    noisy = load_dataset("fsdd_av", root=str(FSDD), audio_snr_db=0.0, image_downsample=4)
    assert not np.array_equal(clean.inputs["audio"], noisy.inputs["audio"])
    assert np.array_equal(clean.labels, noisy.labels)
    assert np.allclose(noisy.inputs["image"][:, :, :4, :4].mean(axis=(2, 3)), noisy.inputs["image"][:, :, 0, 0],
                       atol=1e-6)


def test_snr_zero_db_gives_noise_as_strong_as_the_signal():
    waves = np.zeros((1, 8000), dtype=np.float32)
    waves[0, :4000] = 0.5 * np.sin(np.arange(4000) / 5.0)
    noisy = add_noise_at_snr(waves, 0.0, np.random.default_rng(0))
    noise_power = ((noisy - waves) ** 2).mean()
    assert noise_power == pytest.approx((waves[0, :4000] ** 2).mean(), rel=0.05)


def test_downsample_by_two_averages_two_by_two_blocks():
    image = np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8) / 64
    out = degrade_images(image, 0.0, 2, np.random.default_rng(0))
    assert out[0, 0, 0, 0] == out[0, 0, 1, 1] == pytest.approx((0 + 1 + 8 + 9) / 4 / 64)


def test_missing_root_says_where_to_get_the_data(tmp_path):
    with pytest.raises(ValueError, match="github.com/Jakobovski/free-spoken-digit-dataset"):
        load_dataset("fsdd_av")
    with pytest.raises(FileNotFoundError, match="has no recordings/ folder"):
        load_dataset("fsdd_av", root=str(tmp_path))


@needs_fsdd
@pytest.mark.slow
def test_ours_trains_two_epochs_on_spoken_and_written_digits(tmp_path):
    """The paper's method end to end on real audio (ResNet-18 on spectrograms) and digit images. The
    spectrograms are coarser than the loader's default (65 x 32 instead of 129 x 63: n_fft 128, hop
    256), which keeps every recording and cuts the test's time about fourfold."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "mmlib", "train", "--dataset", "fsdd_av", "--data", f"root={FSDD}",
         "--data", "n_fft=128", "--data", "hop=256", "--method", "ours", "--epochs", "2", "--probe", "false",
         "--results-dir", str(tmp_path), "--checkpoint-dir", str(tmp_path / "ckpt"), "--quiet"],
        capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1", "MMLIB_CPU_THREADS": "2"},
    )
    assert out.returncode == 0, out.stderr
    (path,) = tmp_path.glob("ours-fsdd_av-*.json")
    record = json.loads(path.read_text())
    assert record["modalities"] == ["audio", "image"] and len(record["history"]) == 2
    assert record["dataset_identity"]["split_sizes"] == {"train": 2430, "val": 270, "test": 300}
    options = record["config"]["dataset_options"]
    assert options["n_fft"] == 128 and options["hop"] == 256
    assert record["test"]["fused_acc"] > 30.0  # ten classes: chance is 10%
    assert record["history"][1]["order"][0] == min(record["history"][0]["shapley"],
                                                   key=record["history"][0]["shapley"].get)
