"""Datasets as in-memory uint8 tensors: MNIST, CIFAR-10, CelebA (``Male``) and an embedded MNIST sample.

``load_dataset(name, split, root=...)`` is the one entry point; ``check_datasets`` reports what a
data root holds and whether it passes the integrity checks.
"""

from interpretgan.data.base import ArrayDataset, DatasetInfo, iterate_batches
from interpretgan.data.registry import (
    DATA_ENV,
    DATASETS,
    check_datasets,
    dataset_info,
    load_dataset,
    resolve_data_root,
)

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "ArrayDataset",
    "DatasetInfo",
    "check_datasets",
    "dataset_info",
    "iterate_batches",
    "load_dataset",
    "resolve_data_root",
]
