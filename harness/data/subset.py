"""A dataset restricted to some of its classes, relabelled 0..k-1 in the order given: the
honest transfer task of a calibration (a backbone trained on CIFAR-10's classes 0-4 judged on a
fresh head for classes 5-9), usable from a user's dataset factory."""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch

from harness.data.registry import DataError, Dataset, Split


def _keep(split: Split, classes: Sequence[int], num_classes: int) -> Split:
    new = torch.full((num_classes,), -1, dtype=torch.int64)
    new[torch.tensor(classes)] = torch.arange(len(classes))
    mapped = new[split.labels]
    chosen = mapped >= 0
    return Split(split.images[chosen].contiguous(), mapped[chosen])


def only_classes(dataset: Dataset, classes: Sequence[int]) -> Dataset:
    """``dataset`` with only ``classes`` (labels 0..len(classes)-1 in that order); the input
    statistics stay the whole dataset's, so no pixel is seen differently."""
    classes = [int(c) for c in classes]
    if not classes or len(set(classes)) != len(classes) or not all(0 <= c < dataset.num_classes for c in classes):
        raise DataError(f"classes must be distinct labels in 0..{dataset.num_classes - 1} of "
                        f"{dataset.name}, got {classes!r}")
    return replace(dataset, name=f"{dataset.name}[{','.join(map(str, classes))}]",
                   num_classes=len(classes), train=_keep(dataset.train, classes, dataset.num_classes),
                   test=_keep(dataset.test, classes, dataset.num_classes),
                   source=f"{dataset.source}; classes {classes} only, relabelled 0..{len(classes) - 1}")
