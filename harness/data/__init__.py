"""Datasets by name (a registry) and device-resident batching.

``load_dataset(name, data_root=..., download=...)`` returns a :class:`Dataset` whose splits
hold uint8 images (N, C, H, W) and int64 labels; :mod:`harness.data.batches` turns a split into
shuffled, augmented, normalised batches on the training device.
"""
from harness.data.registry import DATASETS, Dataset, DataError, Split, load_dataset, register_dataset

from harness.data import digits as _digits  # noqa: F401  (registers "digits")
from harness.data import cifar as _cifar  # noqa: F401  (registers "cifar10", "cifar100")

__all__ = ["DATASETS", "Dataset", "DataError", "Split", "load_dataset", "register_dataset"]
