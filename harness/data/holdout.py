"""A validation split held out of the training split: its last ``count`` images, in the
dataset's own order (for CIFAR, images 45,000-49,999 of the training files, as the research
group's ``cifar10_dataloaders`` holds them out)."""
from __future__ import annotations

from dataclasses import replace

from harness.data.registry import DataError, Dataset, Split


def hold_out(dataset: Dataset, count: int) -> tuple[Dataset, Split]:
    """(``dataset`` training on all but its last ``count`` training images, those images).

    The normalisation statistics stay the dataset's own, so holding out changes no pixel of
    what the model sees."""
    n = len(dataset.train)
    if not 0 < count < n:
        raise DataError(f"RunSpec.validation must be between 1 and {n - 1} (the {n} training "
                        f"images of {dataset.name}), got {count}")
    cut = n - count
    train = Split(dataset.train.images[:cut], dataset.train.labels[:cut])
    held = Split(dataset.train.images[cut:], dataset.train.labels[cut:])
    source = (f"{dataset.source}; validation: the last {count} training images held out "
              f"({cut} left to train on)")
    return replace(dataset, train=train, source=source), held
