"""The dataset registry: a name maps to a loader returning a :class:`Dataset`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from harness.data.preprocess import Preprocess


class DataError(RuntimeError):
    """A dataset cannot be loaded; the message says what to pass or fix."""


@dataclass(frozen=True)
class Split:
    images: torch.Tensor   # uint8, (N, C, H, W)
    labels: torch.Tensor   # int64, (N,)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(f"Split.images must be uint8 (N, C, H, W), got {self.images.dtype} "
                            f"{tuple(self.images.shape)}")
        if len(self.labels) != len(self.images):
            raise DataError(f"Split.labels has {len(self.labels)} entries for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Dataset:
    name: str
    num_classes: int
    train: Split
    test: Split
    mean: tuple        # per channel, in [0, 1]
    std: tuple
    flip: bool         # horizontal flips preserve the label
    source: str        # where the bytes came from
    preprocess: Optional[Preprocess] = None   # how a lab's model received the images, if declared

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.train.images.shape[1])


Loader = Callable[[Optional[Path], bool], Dataset]
RootCheck = Callable[[Optional[Path]], Optional[str]]   # data root -> a problem line, or None


@dataclass(frozen=True)
class Entry:
    """A registered dataset: its loader, and what it needs of the data root."""

    load: Loader
    check_root: Optional[RootCheck] = None


DATASETS: dict[str, Entry] = {}


def register_dataset(name: str, check_root: Optional[RootCheck] = None) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        DATASETS[name] = Entry(fn, check_root)
        return fn
    return deco


def root_problem(name: str, data_root: Optional[Path], download: bool = False) -> Optional[str]:
    """Why ``name`` cannot load from ``data_root`` (checked before any run starts), or None."""
    entry = DATASETS.get(name)
    if entry is None or entry.check_root is None:
        return None
    if download and data_root is not None:
        return None
    return entry.check_root(Path(data_root) if data_root is not None else None)


def load_dataset(name: str, data_root: Optional[Path] = None, download: bool = False) -> Dataset:
    """A registered dataset by name, or a user's factory ``package.module:function``
    (:mod:`harness.data.factory`)."""
    from harness.imports import is_import_path

    if is_import_path(name):
        from harness.data.factory import load_factory
        return load_factory(name, data_root)
    try:
        entry = DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}, or "
                        f"your own factory as 'package.module:function'") from None
    return entry.load(Path(data_root) if data_root is not None else None, download)
